"""The glue between the engine (which runs in a worker thread) and the app.

The engine calls ``on_event`` from the training thread after every step. Posting every
step would make a fast run spend its time repainting, so :class:`EventForwarder` keeps
only the newest step event and posts it at most ``max_rate`` times a second; any other
event first flushes the pending step (so order is kept) and is then posted at once.
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

TrainFn = Callable[..., Any]
"""``train(cfg, on_event=..., resume=..., controls=...)`` with the engine's signature."""


class EventForwarder:
    """Thread-safe ``on_event`` callback that posts coalesced :class:`EngineEvent` messages."""

    def __init__(
        self,
        post: Callable[[Message], Any],
        max_rate: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self._interval = 1.0 / max_rate
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

    def flush(self) -> None:
        """Post the step event held back by coalescing, if any (called when the run ends)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._send(pending, self._clock())

    def _send(self, event: Event, now: float) -> None:
        self._last_post = now
        self.posted += 1
        self._post(EngineEvent(event))


def default_train_fn() -> TrainFn:
    """The real engine, imported only when a run starts (it pulls in torch)."""
    from tui_trainer.engine.api import train

    return train


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
    try:
        result = train_fn(cfg, on_event=forwarder, resume=resume, controls=controls)
    except UserError as err:
        forwarder.flush()
        post(TrainingCrashed(str(err), user_error=True))
    except BaseException as err:  # noqa: BLE001 - a bug in the engine must still reach the screen
        forwarder.flush()
        post(TrainingCrashed(f"{type(err).__name__}: {err}", user_error=False, details=traceback.format_exc()))
    else:
        forwarder.flush()
        post(TrainingDone(result))
