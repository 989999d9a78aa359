"""The live monitor: loss chart, metrics, progress/ETA, GPU or host panel, shares, event log.

Two modes. Local: the app's training worker feeds :class:`RunState` and calls
:meth:`MonitorScreen.show_state`. Follow: the screen polls another process's
``events.jsonl`` through ``runs.EventFollower`` and its stop key writes the STOP file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Log, ProgressBar, Static

from tui_trainer.ui.run_state import RunState, format_duration
from tui_trainer.ui.screens.modals import ConfirmScreen
from tui_trainer.ui.widgets.bars import ShareBars
from tui_trainer.ui.widgets.loss_chart import LossChart
from tui_trainer.ui.widgets.quiet_update import update_if_changed
from tui_trainer.ui.widgets.system_panel import SystemPanel, SystemSample

if TYPE_CHECKING:
    from tui_trainer.ui.app import TrainerApp

STATUS_STYLE = {
    "starting": "yellow",
    "training": "green",
    "paused": "yellow",
    "stopping": "yellow",
    "finished": "bold green",
    "stopped": "yellow",
    "failed": "bold red",
}


PULSE_INTERVAL = 0.25
"""Seconds between frames of the pulsing bar while a run starts. Textual animates it 15 times
a second, which cost 3.6% of a core taken from data preparation in the engine thread."""

PROGRESS_RESOLUTION = 200
"""Positions of the progress bar that trigger a repaint (half-cells of a 100-cell bar)."""


def _position(done: float, total: float | None) -> int | None:
    return round(PROGRESS_RESOLUTION * done / total) if total else None


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


class MonitorScreen(Screen[None]):
    """Everything about one run, updated as events arrive."""

    HELP = (
        "The live view of a training run. p pauses or resumes between steps, c saves a "
        "checkpoint after the current step, s stops the run (after asking) and saves a "
        "resumable checkpoint. Escape goes back to the home screen; training continues."
    )

    BINDINGS = [
        Binding("p", "pause", "Pause/resume"),
        Binding("c", "checkpoint", "Checkpoint now"),
        Binding("s", "stop", "Stop"),
        Binding("escape", "home", "Home"),
    ]

    def __init__(
        self,
        state: RunState,
        *,
        follow: Any | None = None,
        follow_dir: Path | None = None,
        sampler: Callable[[], SystemSample | None] | None = None,
        sample_every: float = 1.0,
        poll_every: float = 0.5,
    ) -> None:
        super().__init__()
        self.state = state
        """The run being shown (owned by the app in local mode, by this screen when following)."""
        self.follow = follow
        """An EventFollower when showing another process's run, else None."""
        self.follow_dir = follow_dir
        """The followed run's directory (its STOP file is what the stop key writes)."""
        self._sampler = sampler
        self._sample_every = sample_every
        self._poll_every = poll_every
        self._log_shown = 0
        self._shown_status = ""
        self._last_sample = float("-inf")

    @property
    def following(self) -> bool:
        return self.follow is not None

    def compose(self) -> ComposeResult:
        # What changes every step (title, progress, metrics) sits in the top rows: Textual
        # repaints the rectangle around all changed widgets, and keeping the chart out of
        # it makes a step update several times cheaper.
        yield Static("", id="monitor-title")
        yield ProgressBar(total=100, show_eta=False, id="monitor-progress")
        yield Static("", id="metrics")
        with Horizontal(id="monitor-main"):
            yield LossChart(id="loss-chart")
            with Vertical(id="monitor-side"):
                yield SystemPanel(id="system-panel")
                yield ShareBars("no samples yet", id="shares")
        yield Log(id="event-log", max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#shares").border_title = "samples per dataset"
        self.query_one("#event-log").border_title = "events"
        if self._sampler is not None:
            self._take_sample()
            if self._sample_every > 0:
                self.set_interval(self._sample_every, self._sample_if_due)
        if self.following:
            self.poll_follower()
            if self._poll_every > 0:
                self.set_interval(self._poll_every, self.poll_follower)
        self.show_state()

    # -- data in ---------------------------------------------------------------------
    def poll_follower(self) -> None:
        new = self.follow.poll()
        for event in new:
            self.state.apply(event)
        if new:
            self.show_state()

    def _sample_if_due(self) -> None:
        # Each repaint of the monitor costs the training thread GIL time, so a sample rides
        # along with the step update that is drawn anyway; this timer only samples when no
        # step arrived for a whole interval (paused, evaluating, saving).
        if self._sampler is None or self._sample_every <= 0:
            return
        if time.monotonic() - self._last_sample >= self._sample_every:
            self._take_sample()

    def _take_sample(self) -> None:
        self._last_sample = time.monotonic()
        try:
            sample = self._sampler()
        except Exception as err:  # noqa: BLE001 - a flaky driver must not take the monitor down
            self.query_one("#system-panel", SystemPanel).border_title = f"stats unavailable: {err}"
            return
        if sample is not None:
            self.query_one("#system-panel", SystemPanel).add_sample(sample)

    # -- rendering -------------------------------------------------------------------
    def show_state(self) -> None:
        try:
            self._show_state()
        except NoMatches:
            pass  # an event arrived while the screen was being torn down

    def _show_state(self) -> None:
        s = self.state
        title = Text()
        title.append(s.name or "waiting for the run to start", style="bold")
        title.append("  ")
        title.append(s.status, style=STATUS_STYLE.get(s.status, ""))
        total = s.total_steps or "?"
        title.append(f"  step {s.step}/{total}")
        if s.running:
            title.append(f"  ETA {format_duration(s.eta_seconds())}")
        if self.following:
            title.append("  (following)", style="dim")
        update_if_changed(self.query_one("#monitor-title", Static), title)
        # Unknown total: the pulsing bar while the run starts, an empty one once it has ended.
        total, done = s.total_steps or (None if s.running else 1), s.step if s.total_steps else 0
        bar = self.query_one("#monitor-progress", ProgressBar)
        # Repaint the bar when it visibly moves (half a cell of 200), not at every step of a long run.
        if bar.total != total or _position(bar.progress, bar.total) != _position(done, total):
            bar.update(total=total, progress=done)
            if total is None:
                bar.query_one("#bar").auto_refresh = PULSE_INTERVAL
        update_if_changed(self.query_one("#metrics", Static), self._metrics_text())
        self.query_one("#loss-chart", LossChart).set_points(s.train_points, s.eval_points, force=not s.running)
        self.query_one("#shares", ShareBars).set_shares(s.shares())
        self._write_new_log_lines()
        self._sample_if_due()
        # Refreshing bindings rebuilds the footer: only when the available keys can change.
        if s.status != self._shown_status:
            self._shown_status = s.status
            self.refresh_bindings()

    def _metrics_text(self) -> Text:
        # Always two lines, whatever the width or the values: a height that never changes
        # means a step update never re-lays out the screen.
        s = self.state
        lines = (
            (
                ("loss", _fmt(s.loss, ".4f")),
                ("best eval", _fmt(s.best_eval, ".4f")),
                ("lr", _fmt(s.lr, ".2e")),
                ("grad norm", _fmt(s.grad_norm, ".3f")),
            ),
            (
                ("tokens/s", _fmt(s.tokens_per_s, ",.0f")),
                ("epoch", f"{s.epoch:.2f}"),
                ("tokens seen", f"{s.tokens_seen:,}"),
            ),
        )
        text = Text(no_wrap=True, overflow="ellipsis")
        for row, pairs in enumerate(lines):
            for i, (label, value) in enumerate(pairs):
                text.append(("   " if i else "") + label + " ", style="dim")
                text.append(value, style="bold")
            if row == 0:
                text.append("\n")
        return text

    def _write_new_log_lines(self) -> None:
        new = self.state.log_total - self._log_shown
        if new <= 0:
            return
        lines = list(self.state.log)[-min(new, len(self.state.log)) :]
        self.query_one("#event-log", Log).write_lines(lines)
        self._log_shown = self.state.log_total

    # -- actions ---------------------------------------------------------------------
    @property
    def trainer(self) -> TrainerApp:
        return self.app  # type: ignore[return-value]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.following and action in ("pause", "checkpoint"):
            return False  # hidden: another process's run can only be asked to stop
        if action in ("pause", "checkpoint", "stop"):
            return self.state.running and self.state.status != "stopping"
        return True

    def action_pause(self) -> None:
        self.trainer.toggle_pause()

    def action_checkpoint(self) -> None:
        self.trainer.checkpoint_now()

    def action_stop(self) -> None:
        if self.following:
            question = f"Ask run {self.state.name or self.follow_dir} to stop? It saves a checkpoint at its next step."
        else:
            question = "Stop training? A resumable checkpoint is saved after the current step."
        self.app.push_screen(ConfirmScreen(question, yes="Stop and save", no="Keep training"), self._stop_confirmed)

    def _stop_confirmed(self, confirmed: bool | None) -> None:
        if not confirmed:
            return
        if self.following:
            self.trainer.request_external_stop(Path(self.follow_dir or self.state.run_dir))
            self.state.status = "stopping"
            self.show_state()
        else:
            self.trainer.stop_training("user")

    def action_home(self) -> None:
        self.app.pop_screen()
