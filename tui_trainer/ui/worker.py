"""The glue between the engine (which runs in a worker thread) and the app.

The engine calls ``on_event`` from the training thread after every step. Posting every
step would make a fast run spend its time repainting, so :class:`EventForwarder` keeps
only the newest step event and posts it at most once per ``interval``; any other event
first flushes the pending step (so order is kept) and is then posted at once.

Why the interval matters: the training thread needs the GIL between torch ops, so every
millisecond the UI thread spends painting is a millisecond the engine waits
(benchmarks/gil_contention.py: a pure-Python thread using 3.4% of a core slowed a CPU run
by 3.3-3.8%; a thread using the same CPU in GIL-free C code, by 0.9-1.1%). So
:class:`RepaintBudget` sets the interval from what the UI thread actually spends, keeping
it within a fixed share of a core whatever the terminal size or machine.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from tui_trainer.engine.control import Controls
from tui_trainer.engine.events import Event, StepMetrics
from tui_trainer.errors import UserError
from tui_trainer.ui.messages import EngineEvent, TrainingCrashed, TrainingDone

DEFAULT_UI_RATE = 10.0
"""Step updates posted per second at most (fewer when the repaint budget says so)."""

STEP_UPDATE_SHARE = 0.006
"""Share of one core the UI thread may spend on step updates while a run trains. With the
loss chart's 0.4% (widgets/loss_chart.py) the UI takes about 1% of a core, and the engine's
throughput with the app attached stays within about that of its throughput without it."""

SLOWEST_REPAINT = 2.0
"""Seconds between step updates at most, however expensive a repaint is."""

TrainFn = Callable[..., Any]
"""``train(cfg, on_event=..., resume=..., controls=...)`` with the engine's signature."""


class EventForwarder:
    """Thread-safe ``on_event`` callback that posts coalesced :class:`EngineEvent` messages."""

    def __init__(
        self,
        post: Callable[[Message], Any],
        max_rate: float = DEFAULT_UI_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self._interval = 1.0 / max_rate
        self.min_interval = 1.0 / max_rate
        """The shortest interval :meth:`set_interval` accepts."""
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: StepMetrics | None = None
        self._last_post = float("-inf")
        self.posted = 0
        """Messages posted so far (the benchmark and tests read it)."""
        self.received = 0
        """Events received from the engine so far."""

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.received += 1
            if isinstance(event, StepMetrics):
                now = self._clock()
                if now - self._last_post >= self._interval:
                    self._pending = None
                    self._send(event, now)
                else:
                    self._pending = event
                return
            self._flush_locked()
            self._send(event, self._clock())

    @property
    def interval(self) -> float:
        """Seconds between posted step events at least."""
        return self._interval

    def set_interval(self, seconds: float) -> None:
        """Space step events at least ``seconds`` apart (never closer than ``max_rate`` allows)."""
        with self._lock:
            self._interval = max(self.min_interval, seconds)

    def flush(self) -> None:
        """Post the step event held back by coalescing, if any (called when the run ends)."""
        with self._lock:
            self._flush_locked()

    def flush_if_due(self) -> None:
        """Post a held-back step once its interval has passed: when the engine pauses or
        a step is slow, the last step must not wait for the next one to be shown."""
        with self._lock:
            if self._pending is not None and self._clock() - self._last_post >= self._interval:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._send(pending, self._clock())

    def _send(self, event: Event, now: float) -> None:
        self._last_post = now
        self.posted += 1
        self._post(EngineEvent(event))


class RepaintBudget:
    """Keeps the UI thread's CPU within ``share`` of a core by spacing out step updates.

    Called on the UI thread at each step update, :meth:`next_interval` charges the thread
    CPU spent since the previous call (the repaint, system sampling, everything but work
    with a budget of its own, like the loss chart) against ``share`` of the wall time that
    passed, and returns how long the next update must wait to pay back any overspend. The
    first call only starts the clock: composing the monitor is not a step update's cost.
    """

    def __init__(
        self,
        share: float = STEP_UPDATE_SHARE,
        *,
        slowest: float = SLOWEST_REPAINT,
        credit_seconds: float = 1.0,
        cpu_clock: Callable[[], float] = time.thread_time,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.share = share
        self.slowest = slowest
        self._max_credit = share * credit_seconds  # idle time must not bank a burst of repaints
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._last: tuple[float, float, float] | None = None
        self.debt = 0.0
        """CPU seconds spent beyond the share so far (negative: unspent credit)."""

    def next_interval(self, exempt: float = 0.0) -> float:
        """Seconds the next step update must wait. ``exempt`` is the running total of CPU
        seconds spent on work budgeted elsewhere; only its increase is left out."""
        cpu, wall = self._cpu_clock(), self._wall_clock()
        if self._last is not None:
            last_cpu, last_wall, last_exempt = self._last
            spent = (cpu - last_cpu) - max(0.0, exempt - last_exempt)
            self.debt = max(self.debt + spent - self.share * (wall - last_wall), -self._max_credit)
        self._last = (cpu, wall, exempt)
        return min(max(self.debt / self.share, 0.0), self.slowest)


def run_training(
    train_fn: TrainFn,
    cfg: Any,
    *,
    resume: str | Path | None,
    controls: Controls,
    forwarder: EventForwarder,
    post: Callable[[Message], Any],
) -> None:
    """Body of the app's thread worker: run the engine, report the outcome as a message.

    Never raises: a UserError or a bug becomes :class:`TrainingCrashed` so the app can
    show an error screen instead of dying with the terminal in raw mode. The app owns
    ``forwarder`` so it can flush a held-back step while the engine is paused.
    """
    outcome: Message
    try:
        outcome = TrainingDone(train_fn(cfg, on_event=forwarder, resume=resume, controls=controls))
    except UserError as err:
        outcome = TrainingCrashed(str(err), user_error=True)
    except BaseException as err:  # noqa: BLE001 - a bug in the engine must still reach the screen
        outcome = TrainingCrashed(f"{type(err).__name__}: {err}", user_error=False, details=traceback.format_exc())
    forwarder.flush()
    post(outcome)
