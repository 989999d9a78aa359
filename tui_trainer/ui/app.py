"""The tui-trainer Textual app: screens, the training worker, and run controls.

Threads: the engine runs in one thread worker; it only posts messages. Everything that
touches widgets happens in message handlers on the app's thread. Signal handlers (added
to the event loop, so they run on that thread too) only set the run's stop event.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui_trainer.config import RunConfig, load_config
from tui_trainer.engine.control import Controls
from tui_trainer.engine.events import StepMetrics
from tui_trainer.errors import UserError
from tui_trainer.ui.messages import EngineEvent, TrainingCrashed, TrainingDone
from tui_trainer.ui.mix_draft import MixDraft
from tui_trainer.ui.run_state import RunState
from tui_trainer.ui.screens.datasets import DatasetsScreen
from tui_trainer.ui.screens.home import HomeScreen
from tui_trainer.ui.screens.modals import ConfirmScreen, ErrorScreen, HelpScreen
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.screens.resume import ResumePicker
from tui_trainer.ui.screens.wizard import WizardScreen
from tui_trainer.ui.services import Services
from tui_trainer.ui.widgets.loss_chart import LossChart
from tui_trainer.ui.worker import DEFAULT_UI_RATE, EventForwarder, RepaintBudget, run_training

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class TrainerApp(App[int]):
    """Home, datasets, preset wizard, monitor and resume picker around one engine worker."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-trainer"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        *,
        config: RunConfig | None = None,
        start: bool = False,
        monitor_run: Path | None = None,
        output_dir: Path | None = None,
        services: Services | None = None,
        browse_root: Path | None = None,
        handle_signals: bool = False,
        max_ui_rate: float = DEFAULT_UI_RATE,
    ) -> None:
        super().__init__()
        self.services = services or Services()
        self.initial_config = config
        self.output_dir = Path(output_dir or (config.run.output_dir if config else "runs"))
        self.browse_root = browse_root
        self._start = start
        self._monitor_run = monitor_run
        self._handle_signals = handle_signals
        self._max_ui_rate = max_ui_rate
        self.controls: Controls | None = None
        """Controls of the run the worker is training (None before the first run)."""
        self.run_state: RunState | None = None
        """What is known of the local run (kept after it ends for the monitor)."""
        self.forwarder: EventForwarder | None = None
        self.repaint_budget: RepaintBudget | None = None
        """Spaces the forwarder's step updates so the UI stays within its CPU share."""
        self.last_result: Any = None
        """The engine's TrainResult of the last local run."""
        self.exit_code = 0
        """What the process returns: the last local run's outcome (0, 75, 2, 1)."""
        self._exit_after_run = False
        self.engine_busy = threading.Event()
        """Set while the engine thread is inside train() (Textual marks the worker cancelled at shutdown)."""

    # -- lifecycle -------------------------------------------------------------------
    def on_mount(self) -> None:
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self._on_stop_signal)
        self.push_screen(HomeScreen())
        if self.initial_config is not None and self._start:
            self.start_training(self.initial_config)
        elif self.initial_config is not None:
            self.push_screen(WizardScreen(self.initial_config, fit_on_mount=False))
        elif self._monitor_run is not None:
            self.open_monitor(self._monitor_run)
        self.set_interval(0.5, self._flush_forwarder)

    def on_unmount(self) -> None:
        # However the app goes away, a running engine must stop (and save) rather than keep
        # the process alive behind a closed UI.
        if self.engine_busy.is_set() and self.controls is not None:
            self.controls.request_stop("user")
            self.controls.pause.clear()
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    def _on_stop_signal(self) -> None:
        if self.training_active:
            self._exit_after_run = True
            self.stop_training("signal")
        else:
            self.exit(self.exit_code, return_code=self.exit_code)

    def _flush_forwarder(self) -> None:
        if self.forwarder is not None:
            self.forwarder.flush_if_due()

    # -- training --------------------------------------------------------------------
    @property
    def training_active(self) -> bool:
        return self.run_state is not None and self.run_state.running

    def start_training(self, cfg: RunConfig, resume: str | Path | None = None) -> None:
        if self.training_active:
            self.notify("A run is already training; stop it first (s on the monitor).", severity="warning")
            return
        self.controls = Controls()
        self.run_state = RunState()
        self.forwarder = EventForwarder(self.post_message, max_rate=self._max_ui_rate)
        self.repaint_budget = RepaintBudget()
        self.push_screen(self._local_monitor())
        self.engine_busy.set()
        self._train_worker(cfg, resume, self.controls, self.forwarder)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train_worker(self, cfg: RunConfig, resume: str | Path | None, controls: Controls, forwarder: EventForwarder) -> None:
        try:
            run_training(self.services.train, cfg, resume=resume, controls=controls, forwarder=forwarder, post=self.post_message)
        finally:
            self.engine_busy.clear()

    def _local_monitor(self) -> MonitorScreen:
        return MonitorScreen(self.run_state, sampler=self.services.system_sample, sample_every=self.services.sample_every)

    def _visible_local_monitor(self) -> MonitorScreen | None:
        screen = self.screen
        if isinstance(screen, MonitorScreen) and not screen.following and screen.state is self.run_state:
            return screen
        return None

    def on_engine_event(self, message: EngineEvent) -> None:
        if self.run_state is None:
            return
        self.run_state.apply(message.event)
        self._refresh_monitor()
        if isinstance(message.event, StepMetrics) and self.forwarder is not None and self.repaint_budget is not None:
            self.forwarder.set_interval(self.repaint_budget.next_interval(exempt=LossChart.total_cpu_spent))

    def on_training_done(self, message: TrainingDone) -> None:
        result = message.result
        self.last_result = result
        self.exit_code = result.exit_code
        self.forwarder = None
        if self.run_state is not None:
            if self.run_state.running:  # the engine's last event may have been coalesced away
                self.run_state.status = result.status
            if result.message:
                self.run_state.final_message = result.message
        self._refresh_monitor()
        if self._exit_after_run:
            self.exit(result.exit_code, return_code=result.exit_code)
            return
        severity = "information" if result.status == "finished" else "warning"
        self.notify(result.message or f"Run {result.status} at step {result.final_step}", severity=severity, timeout=10)

    def on_training_crashed(self, message: TrainingCrashed) -> None:
        self.exit_code = message.exit_code
        self.forwarder = None
        if self.run_state is not None:
            self.run_state.status = "failed"
            self.run_state.final_message = message.message
        self._refresh_monitor()
        if self._exit_after_run:
            self.exit(message.exit_code, return_code=message.exit_code, message=message.message)
            return
        title = "Training could not start" if message.user_error else "Training failed (a bug; details below)"
        self.push_screen(ErrorScreen(title, message.message, message.details))

    def toggle_pause(self) -> None:
        if self.controls is None or not self.training_active or self.run_state is None:
            return
        if self.controls.pause.is_set():
            self.controls.pause.clear()
            self.run_state.status = "training"
            self.notify("Resumed")
        else:
            self.controls.pause.set()
            self.run_state.status = "paused"
            self.notify("Paused after the current step; p resumes")
        self._refresh_monitor()

    def checkpoint_now(self) -> None:
        if self.controls is None or not self.training_active:
            return
        self.controls.checkpoint_now.set()
        self.notify("A checkpoint will be saved after the current step")

    def stop_training(self, reason: str = "user") -> None:
        if self.controls is None or not self.training_active or self.run_state is None:
            return
        self.controls.request_stop(reason)
        # A paused engine must wake up to reach the stop check and save.
        self.controls.pause.clear()
        self.run_state.status = "stopping"
        self._refresh_monitor()

    def _refresh_monitor(self) -> None:
        monitor = self._visible_local_monitor()
        if monitor is not None:
            monitor.show_state()

    def request_external_stop(self, run_dir: Path) -> None:
        try:
            path = self.services.request_stop(run_dir)
        except OSError as err:
            self.push_screen(ErrorScreen("Could not ask the run to stop", f"Writing the STOP file in {run_dir} failed: {err}"))
            return
        self.notify(f"Wrote {path}; the run stops and saves at its next step")

    # -- navigation ------------------------------------------------------------------
    def open_monitor(self, run_dir: Path) -> None:
        local = self.run_state is not None and self.run_state.run_dir and Path(self.run_state.run_dir).resolve() == Path(run_dir).resolve()
        if local:
            self.push_screen(self._local_monitor())
            return
        follower = self.services.follower(Path(run_dir))
        self.push_screen(
            MonitorScreen(
                RunState(),
                follow=follower,
                follow_dir=Path(run_dir),
                sampler=self.services.system_sample,
                sample_every=self.services.sample_every,
                poll_every=self.services.poll_every,
            )
        )

    def open_wizard_from_mix(self, draft: MixDraft) -> None:
        base = RunConfig.model_validate({"data": draft.to_raw(), "run": {"output_dir": str(self.output_dir)}})
        self.push_screen(WizardScreen(base, data_tokens=draft.est_tokens()))

    def action_new_run(self) -> None:
        draft = MixDraft.from_section(self.initial_config.data) if self.initial_config else MixDraft()
        self.push_screen(DatasetsScreen(draft, browse_root=self.browse_root))

    def action_demo(self) -> None:
        try:
            cfg = self.services.demo_config(self.output_dir)
        except UserError as err:
            self.push_screen(ErrorScreen("The demo could not be set up", str(err)))
            return
        self.start_training(cfg)

    def action_resume(self) -> None:
        self.push_screen(ResumePicker(), self._resume_picked)

    def _resume_picked(self, checkpoint: Path | None) -> None:
        if checkpoint is None:
            return
        run_dir = checkpoint.parent.parent
        try:
            cfg = load_config(run_dir / "config.toml")
        except UserError as err:
            self.push_screen(ErrorScreen("Cannot resume this run", str(err)))
            return
        self.start_training(cfg, resume=checkpoint)

    def action_monitor(self) -> None:
        if self.run_state is None:
            self.notify("No run in this session yet: pick one on the home screen and press m.")
            return
        self.push_screen(self._local_monitor())

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen, getattr(self.screen, "HELP", "")))

    async def action_quit(self) -> None:
        if not self.training_active:
            self.exit(self.exit_code, return_code=self.exit_code)
            return
        if self._exit_after_run:
            return  # already stopping to quit
        question = "Training is running. Stop it, save a resumable checkpoint, and quit?"
        self.push_screen(ConfirmScreen(question, yes="Save and quit", no="Keep training"), self._quit_confirmed)

    def _quit_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            self._exit_after_run = True
            self.stop_training("user")
            self.notify("Saving a checkpoint; the app closes when it is written")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("New run", "Pick datasets and a preset, then train", self.action_new_run)
        yield SystemCommand("Demo", "Train the embedded demo model now", self.action_demo)
        yield SystemCommand("Resume", "Continue a run from one of its checkpoints", self.action_resume)
        yield SystemCommand("Monitor", "Show the run of this session", self.action_monitor)
        yield SystemCommand("Help", "Keys of this screen", self.action_help)
        yield from super().get_system_commands(screen)
