"""The tui-trainer Textual app: navigation between screens around one run controller.

Threads: the engine runs in one thread worker (ui/controller.py); it only posts messages.
Everything that touches widgets happens in message handlers on the app's thread. Signal
handlers (added to the event loop, so they run on that thread too) only set the run's
stop event. Screens never call the app: they post the requests of ui/messages.py.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import UserError
from tui_trainer.ui import messages as msg
from tui_trainer.ui.controller import RunController
from tui_trainer.ui.mix_draft import MixDraft
from tui_trainer.ui.run_state import RunState
from tui_trainer.ui.screens.datasets import DatasetsScreen
from tui_trainer.ui.screens.demo_picker import DemoPicker
from tui_trainer.ui.screens.home import HomeScreen
from tui_trainer.ui.screens.modals import ConfirmScreen, ErrorScreen, HelpScreen
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.screens.resume import ResumePicker
from tui_trainer.ui.screens.search import SearchScreen
from tui_trainer.ui.screens.wizard import WizardScreen
from tui_trainer.ui.services import Services
from tui_trainer.ui.widgets.loss_chart import LossChart
from tui_trainer.ui.wizard_launch import AppLaunches
from tui_trainer.ui.wizard_open import wizard_for_draft
from tui_trainer.ui.worker import DEFAULT_UI_RATE

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
        self.controller = RunController(
            self, self.services.train, max_ui_rate=max_ui_rate, cpu_spent_elsewhere=lambda: LossChart.total_cpu_spent
        )
        """The local run: its controls, state, worker and outcome."""
        self.draft: MixDraft | None = None
        """The mix being edited, kept across visits of the datasets screen."""
        self.wizard_raw: dict[str, Any] | None = None
        """The wizard's last values (edited or fitted), kept across visits."""
        self._exit_after_run = False
        self.launches = AppLaunches(self, lambda text: self.push_screen(ErrorScreen("The run could not start", text)))
        """Runs started in processes of their own (the wizard's detached / processes)."""

    # The run's pieces, read by tests, benchmarks and the launcher.
    @property
    def controls(self) -> Any:
        return self.controller.controls

    @property
    def run_state(self) -> RunState | None:
        return self.controller.run_state

    @property
    def last_result(self) -> Any:
        return self.controller.last_result

    @property
    def exit_code(self) -> int:
        return self.controller.exit_code

    @property
    def engine_busy(self) -> Any:
        return self.controller.engine_busy

    @property
    def training_active(self) -> bool:
        return self.controller.active

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
        self.set_interval(0.5, self.controller.flush)

    def on_unmount(self) -> None:
        self.controller.stop_for_shutdown()
        self.launches.stop_attached()
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

    # -- training --------------------------------------------------------------------
    def start_training(self, cfg: RunConfig, resume: str | Path | None = None, history: list[Any] | None = None) -> None:
        if self.training_active:
            self.notify("A run is already training; stop it first (s on the monitor).", severity="warning")
            return
        self.controller.start(cfg, Path(resume) if resume is not None else None, history)
        self.push_screen(self._local_monitor())

    def stop_training(self, reason: str = "user") -> None:
        if self.controller.stop(reason):
            self._refresh_monitor()

    def _local_monitor(self) -> MonitorScreen:
        return MonitorScreen(self.run_state, sampler=self.services.system_sample, sample_every=self.services.sample_every)

    def _refresh_monitor(self) -> None:
        if not self.screen_stack:  # the app is shutting down as the run ends: nothing to refresh
            return
        screen = self.screen
        if isinstance(screen, MonitorScreen) and not screen.following and screen.state is self.run_state:
            screen.show_state()

    def on_engine_event(self, message: msg.EngineEvent) -> None:
        self.controller.on_event(message.event)
        self._refresh_monitor()

    def on_training_done(self, message: msg.TrainingDone) -> None:
        text = self.controller.on_done(message)
        self._refresh_monitor()
        result = message.result
        if self._exit_after_run:
            self.exit(result.exit_code, return_code=result.exit_code)
            return
        self.notify(text, severity="information" if result.status == "finished" else "warning", timeout=10)

    def on_training_crashed(self, message: msg.TrainingCrashed) -> None:
        self.controller.on_crashed(message)
        self._refresh_monitor()
        if self._exit_after_run:
            self.exit(message.exit_code, return_code=message.exit_code, message=message.message)
            return
        title = "Training could not start" if message.user_error else "Training failed (a bug; details below)"
        self.push_screen(ErrorScreen(title, message.message, message.details))

    # -- requests from screens ---------------------------------------------------------
    def on_start_training(self, message: msg.StartTraining) -> None:
        self.start_training(message.config, message.resume)

    def on_toggle_pause(self, message: msg.TogglePause) -> None:
        text = self.controller.toggle_pause()
        if text:
            self.notify(text)
            self._refresh_monitor()

    def on_checkpoint_now(self, message: msg.CheckpointNow) -> None:
        text = self.controller.checkpoint_now()
        if text:
            self.notify(text)

    def on_stop_training(self, message: msg.StopTraining) -> None:
        self.stop_training(message.reason)

    def on_request_external_stop(self, message: msg.RequestExternalStop) -> None:
        try:
            path = self.services.request_stop(message.run_dir)
        except OSError as err:
            self.push_screen(ErrorScreen("Could not ask the run to stop", f"Writing the STOP file in {message.run_dir} failed: {err}"))
            return
        self.notify(f"Wrote {path}; the run stops and saves at its next step")

    def on_open_monitor(self, message: msg.OpenMonitor) -> None:
        self.open_monitor(message.run_dir)

    def on_open_wizard(self, message: msg.OpenWizard) -> None:
        self.draft = message.draft
        kept = self.wizard_raw or (self.initial_config.to_dict() if self.initial_config else None)
        self.push_screen(wizard_for_draft(message.draft, kept, self.output_dir))

    def on_launch_run(self, message: msg.LaunchRun) -> None:
        self.launches.start(message.config, detach=message.detach, nproc=message.nproc)

    def on_wizard_screen_edited(self, message: WizardScreen.Edited) -> None:
        self.wizard_raw = message.raw

    def on_go_home(self, message: msg.GoHome) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, HomeScreen):
            self.pop_screen()

    def on_new_run_from(self, message: msg.NewRunFrom) -> None:
        self._load_new_run(message.run_dir)

    @work(thread=True, exit_on_error=False, group="load")
    def _load_new_run(self, run_dir: Path) -> None:
        from tui_trainer.config.io import load_config

        try:
            cfg = load_config(run_dir / "config.toml")
        except UserError as err:
            self.post_message(msg.LoadFailed("Cannot start a new run from this run", str(err)))
            return
        self.call_from_thread(self.push_screen, WizardScreen(cfg, fit_on_mount=False))

    def on_open_search(self, message: msg.OpenSearch) -> None:
        self.push_screen(SearchScreen(message.study_dir))

    def on_start_search(self, message: msg.StartSearch) -> None:
        from tui_trainer.ui.screens.search_setup import SearchSetupScreen

        self.push_screen(SearchSetupScreen(message.config), self._search_set_up)

    def _search_set_up(self, cfg: Any) -> None:
        if cfg is not None:  # None: the set-up was cancelled
            self.notify("Starting a hyperparameter study in its own process…")
            self._start_search(cfg)

    @work(thread=True, exit_on_error=False, group="search")
    def _start_search(self, cfg: Any) -> None:
        try:
            study_dir = self.services.start_search(cfg)
        except UserError as err:
            self.post_message(msg.LoadFailed("The study could not start", str(err)))
            return
        self.post_message(msg.OpenSearch(study_dir))

    def on_load_failed(self, message: msg.LoadFailed) -> None:
        self.push_screen(ErrorScreen(message.title, message.text))

    # -- navigation ------------------------------------------------------------------
    def open_monitor(self, run_dir: Path) -> None:
        state = self.run_state
        if state is not None and state.run_dir and Path(state.run_dir).resolve() == Path(run_dir).resolve():
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

    def action_new_run(self) -> None:
        if self.draft is None:
            self.draft = MixDraft.from_section(self.initial_config.data) if self.initial_config else MixDraft()
        settings = self.wizard_raw or (self.initial_config.to_dict() if self.initial_config else None)
        self.push_screen(DatasetsScreen(self.draft, browse_root=self.browse_root, settings=settings))

    def action_demo(self) -> None:
        self.push_screen(DemoPicker(), self._demo_picked)

    def _demo_picked(self, which: str | None) -> None:
        if which is not None:
            self._load_demo(which)

    @work(thread=True, exit_on_error=False, group="load")
    def _load_demo(self, which: str) -> None:
        builders = {
            "tiny": self.services.demo_config, "smollm2": self.services.smollm2_config,
            "sae": self.services.sae_demo_config, "classification": self.services.classification_demo_config,
        }  # fmt: skip
        try:
            cfg = builders[which](self.output_dir)
        except UserError as err:
            self.post_message(msg.LoadFailed("The demo could not be set up", str(err)))
            return
        self.post_message(msg.StartTraining(cfg))

    def action_resume(self) -> None:
        self.push_screen(ResumePicker(), self._resume_picked)

    def _resume_picked(self, checkpoint: Path | None) -> None:
        if checkpoint is not None:
            self._read_resume(checkpoint)

    @work(thread=True, exit_on_error=False, group="load")
    def _read_resume(self, checkpoint: Path) -> None:
        from tui_trainer.config.io import load_config

        run_dir = checkpoint.parent.parent
        try:
            cfg = load_config(run_dir / "config.toml")
        except UserError as err:
            self.post_message(msg.LoadFailed("Cannot resume this run", str(err)))
            return
        step = _checkpoint_step(checkpoint)
        try:
            history = [e for e in self.services.follower(run_dir).poll() if step is None or e.step <= step]
        except (OSError, UserError):
            history = []  # the chart starts at the checkpoint; training is unaffected
        self.post_message(msg.ResumeReady(cfg, checkpoint, history))

    def on_resume_ready(self, message: msg.ResumeReady) -> None:
        self.start_training(message.config, resume=message.checkpoint, history=message.history)

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


def _checkpoint_step(checkpoint: Path) -> int | None:
    name = checkpoint.name.removeprefix("step-")
    return int(name) if name.isdigit() else None
