"""One local run's controls and state: start, pause, checkpoint now, stop; the worker; the outcome.

The app is navigation; this owns what the engine thread and the monitor share. It never
touches widgets: it updates :class:`RunState` and returns what the app should tell the
user, and the app decides which screen shows it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App

from tui_trainer.engine.control import Controls
from tui_trainer.engine.events import Event, StepMetrics
from tui_trainer.ui.messages import TrainingCrashed, TrainingDone
from tui_trainer.ui.run_state import RunState
from tui_trainer.ui.worker import DEFAULT_UI_RATE, EventForwarder, RepaintBudget, run_training


class RunController:
    """The run this app trains in its worker thread (at most one at a time)."""

    def __init__(
        self,
        app: App[Any],
        train: Callable[..., Any],
        *,
        max_ui_rate: float = DEFAULT_UI_RATE,
        cpu_spent_elsewhere: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._train = train
        self._max_ui_rate = max_ui_rate
        self._cpu_spent_elsewhere = cpu_spent_elsewhere
        self.controls: Controls | None = None
        """Controls of the run the worker trains (None before the first run)."""
        self.run_state: RunState | None = None
        """What is known of the local run (kept after it ends for the monitor)."""
        self.forwarder: EventForwarder | None = None
        """Coalesces the engine's step events into UI updates (None when no run trains)."""
        self.repaint_budget: RepaintBudget | None = None
        """Spaces the forwarder's step updates so the UI stays within its CPU share."""
        self.last_result: Any = None
        """The engine's TrainResult of the last local run."""
        self.exit_code = 0
        """The last local run's outcome (0, 75, 2, 1): what the process returns."""
        self.engine_busy = threading.Event()
        """Set while the engine thread is inside train() (Textual marks the worker cancelled at shutdown)."""
        self.step_updates = 0
        """Step events that reached the UI (after coalescing) over this app's runs."""
        self.clock = clock
        """Wall clock of pause and resume (the events' own times are on the same clock)."""
        self.resumed_from: Path | None = None
        """The checkpoint the current run resumed from (its run's earlier events seed the chart)."""

    @property
    def active(self) -> bool:
        return self.run_state is not None and self.run_state.running

    def start(self, cfg: Any, resume: Path | None = None, history: list[Event] | None = None) -> None:
        """Start training ``cfg`` in a thread worker; ``history`` is the resumed run's earlier events."""
        self.controls = Controls()
        self.run_state = RunState()
        for event in history or ():
            self.run_state.apply_history(event)
        self.resumed_from = resume
        self.forwarder = EventForwarder(self._app.post_message, max_rate=self._max_ui_rate)
        self.repaint_budget = RepaintBudget()
        self.engine_busy.set()
        controls, forwarder = self.controls, self.forwarder

        def body() -> None:
            try:
                run_training(self._train, cfg, resume=resume, controls=controls, forwarder=forwarder, post=self._app.post_message)
            finally:
                self.engine_busy.clear()

        self._app.run_worker(body, thread=True, exclusive=True, exit_on_error=False, group="training")

    # -- events from the worker -------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if self.run_state is None:
            return
        self.run_state.apply(event)
        if isinstance(event, StepMetrics):
            self.step_updates += 1
        if isinstance(event, StepMetrics) and self.forwarder is not None and self.repaint_budget is not None:
            self.forwarder.set_interval(self.repaint_budget.next_interval(exempt=self._cpu_spent_elsewhere()))

    def on_done(self, message: TrainingDone) -> str:
        """Record the outcome; returns the line to tell the user."""
        result = message.result
        self.last_result = result
        self.exit_code = result.exit_code
        self.forwarder = None
        if self.run_state is not None:
            if self.run_state.running:  # the engine's last event may have been coalesced away
                self.run_state.status = result.status
            if result.message:
                self.run_state.final_message = result.message
        return result.message or f"Run {result.status} at step {result.final_step}"

    def on_crashed(self, message: TrainingCrashed) -> None:
        self.exit_code = message.exit_code
        self.forwarder = None
        if self.run_state is not None:
            self.run_state.status = "failed"
            self.run_state.final_message = message.message

    def flush(self) -> None:
        if self.forwarder is not None:
            self.forwarder.flush_if_due()

    # -- controls -----------------------------------------------------------------------
    def toggle_pause(self) -> str | None:
        """Pause or resume; returns what to tell the user (None when no run trains)."""
        if self.controls is None or self.run_state is None or not self.active:
            return None
        if self.controls.pause.is_set():
            self.controls.pause.clear()
            self.run_state.mark_resumed(self.clock())
            self.run_state.status = "training"
            return "Resumed"
        self.controls.pause.set()
        self.run_state.mark_paused(self.clock())
        self.run_state.status = "paused"
        return "Paused after the current step; p resumes"

    def checkpoint_now(self) -> str | None:
        if self.controls is None or not self.active:
            return None
        self.controls.checkpoint_now.set()
        if self.controls.pause.is_set():
            return "Saving a checkpoint now (the run is paused between steps)"
        return "A checkpoint will be saved after the current step"

    def stop(self, reason: str = "user") -> bool:
        """Ask the run to stop and save; False when no run trains."""
        if self.controls is None or self.run_state is None or not self.active:
            return False
        self.controls.request_stop(reason)
        # A paused engine must wake up to reach the stop check and save.
        self.controls.pause.clear()
        self.run_state.status = "stopping"
        return True

    def stop_for_shutdown(self) -> None:
        """The app goes away: a running engine must stop (and save) rather than outlive the UI."""
        if self.engine_busy.is_set() and self.controls is not None:
            self.controls.request_stop("user")
            self.controls.pause.clear()
