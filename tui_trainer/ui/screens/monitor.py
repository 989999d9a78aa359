"""The live monitor: chart, metrics, progress/ETA, GPU or host panel, findings, shares, event log.

Two modes. Local: the app's training worker feeds :class:`RunState` and calls
:meth:`MonitorScreen.show_state`. Follow: the screen polls another process's
``events.jsonl`` through ``runs.EventFollower`` and its stop key writes the STOP file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual import work
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static

from tui_trainer.ui.messages import CheckpointNow, FollowedEvents, GoHome, RequestExternalStop, StopTraining, TogglePause
from tui_trainer.ui.run_state import RunState, format_duration
from tui_trainer.ui.screens.modals import ConfirmScreen
from tui_trainer.ui.widgets.bars import ShareBars
from tui_trainer.ui.widgets.findings_panel import FindingsPanel
from tui_trainer.ui.widgets.following_log import FollowingLog
from tui_trainer.ui.widgets.loss_chart import VIEWS, LossChart
from tui_trainer.ui.widgets.quiet_update import update_if_changed
from tui_trainer.ui.widgets.system_panel import SystemPanel, SystemSample
from tui_trainer.ui.widgets.task_metrics import SHOWN_BY_DEFAULT, TaskMetrics
from tui_trainer.ui.widgets import styles

STATUS_STYLE = {
    "starting": "yellow",
    "training": "green",
    "paused": "yellow",
    "stopping": "yellow",
    "finished": "bold green",
    "stopped": "yellow",
    "failed": styles.ERROR,
}


PULSE_INTERVAL = 0.25
"""Seconds between frames of the pulsing bar while a run starts. Textual animates it 15 times
a second, which cost 3.6% of a core taken from data preparation in the engine thread."""

PROGRESS_RESOLUTION = 200
"""Positions of the progress bar that trigger a repaint (half-cells of a 100-cell bar)."""


def _position(done: float, total: float | None) -> int | None:
    return round(PROGRESS_RESOLUTION * done / total) if total else None


MARKED_ON = {"loss": ("loss", "eval_loss"), "lr": (), "grad_norm": ("grad_norm",)}
"""Findings on which curves are marked on each chart view (a loss spike on the loss chart...)."""


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


class MonitorScreen(Screen[None]):
    """Everything about one run, updated as events arrive."""

    HELP = (
        "The live view of a training run. p pauses or resumes between steps, c saves a "
        "checkpoint after the current step, s stops the run (after asking) and saves a "
        "resumable checkpoint. g switches the chart between loss, learning rate and gradient norm; "
        "the detectors' findings (spikes, divergence, plateau, overfitting) are marked on it, listed "
        "with a recommendation in the findings panel and in the event log. "
        "t switches between the chart and the task's eval metrics "
        "(SAE: L0, explained variance, dead features, CE loss score; classification: accuracy, "
        "macro-F1, recall per class, confusion matrix; causal LM: perplexity). "
        "Escape goes back to the home screen; training continues."
    )

    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("s", "stop", "Stop"),
        Binding("g", "cycle_chart", "Chart"),
        Binding("t", "toggle_task_metrics", "Loss/metrics"),
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
        self._task_view: bool | None = None
        """The user's choice of the task panel over the loss chart (None: the task's default)."""
        self.remote_host: str | None = None
        """The machine a followed run trains on when it is not this one: the system panel then
        shows the run's own GPU readings from its step events, not this machine's."""
        self.polls = 0
        """Polls of the followed run read and applied so far (tests wait on it)."""
        self.poll_in_flight = False
        """A poll is being read in its thread; a poll asked for meanwhile runs right after it."""
        self._poll_again = False
        self._remote_shown_step: int | None = None

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
            panel = TaskMetrics(id="task-metrics")
            panel.display = False  # until an eval has something for it
            yield panel
            with Vertical(id="monitor-side"):
                yield SystemPanel(id="system-panel")
                yield FindingsPanel(id="findings")
                yield ShareBars("no samples yet", id="shares")
        yield FollowingLog(id="event-log", max_lines=500)
        yield Footer()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_findings)

    def _fit_findings(self) -> None:
        """The findings panel takes what the GPU and shares panels leave of the side column: on a
        24-line terminal it pushed the shares out (it scrolls instead; the log has every finding)."""
        side, findings = self.query_one("#monitor-side"), self.query_one("#findings", FindingsPanel)
        others = sum(w.outer_size.height for w in side.children if w is not findings and w.display)
        room = max(FindingsPanel.MIN_HEIGHT, side.size.height - others)
        if findings.styles.max_height is None or findings.styles.max_height.value != min(room, FindingsPanel.MAX_HEIGHT):
            findings.styles.max_height = min(room, FindingsPanel.MAX_HEIGHT)

    def on_mount(self) -> None:
        self.query_one("#shares").border_title = "samples per dataset"
        self.query_one("#event-log").border_title = "events"
        if self._sampler is not None:
            if not self.following:  # a followed run's first poll says first whose machine to show
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
        """Read the followed run's new events in a thread (a long run's first read is megabytes)."""
        if self.poll_in_flight:
            self._poll_again = True
            return
        self.poll_in_flight = True
        self._read_followed()

    @work(thread=True, exit_on_error=False, group="follow")
    def _read_followed(self) -> None:
        try:
            events = self.follow.poll()
            remote_host = getattr(self.follow, "remote_host", lambda: None)()
        except OSError:
            events, remote_host = [], None  # the next poll tries again; the screen must hear back
        self.post_message(FollowedEvents(events, remote_host))

    def on_followed_events(self, message: FollowedEvents) -> None:
        first = self.polls == 0
        self.polls += 1
        self.poll_in_flight = False
        if message.remote_host and message.remote_host != self.remote_host:
            self.remote_host = message.remote_host
            self._remote_shown_step = None
        for event in message.events:
            self.state.apply(event)
        if first and self.remote_host is None and self._sampler is not None:
            self._take_sample()
        if message.events or first:
            self.show_state()
        if self._poll_again:
            self._poll_again = False
            self.poll_follower()

    def _show_remote_system(self) -> None:
        s, panel = self.state, self.query_one("#system-panel", SystemPanel)
        if s.gpu_sampled_step is None:
            panel.show_note(f"on {self.remote_host}", "no GPU readings in the run's events (a CPU run has none)")
        elif s.gpu_sampled_step != self._remote_shown_step:
            self._remote_shown_step = s.gpu_sampled_step
            panel.add_sample(SystemSample(
                kind="gpu", title=f"GPU on {self.remote_host}", util_pct=s.gpu_util_pct or 0.0,
                mem_used=s.gpu_memory_bytes or 0, mem_total=0,
            ))  # fmt: skip

    def _sample_if_due(self) -> None:
        # Each repaint of the monitor costs the training thread GIL time, so a sample rides
        # along with the step update that is drawn anyway; this timer only samples when no
        # step arrived for a whole interval (paused, evaluating, saving).
        if self.remote_host is not None:
            self._show_remote_system()
            return
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
        self._show_chart(force=not s.running)
        if self.query_one("#findings", FindingsPanel).show(s.findings):
            self.call_after_refresh(self._fit_findings)
        if self.query_one("#task-metrics", TaskMetrics).show(s.task, s.evals):
            self._place_task_metrics()
        self.query_one("#shares", ShareBars).set_shares(s.shares())
        self._write_new_log_lines()
        self._sample_if_due()
        # Refreshing bindings rebuilds the footer: only when the available keys can change.
        if s.status != self._shown_status:
            self._shown_status = s.status
            self.refresh_bindings()

    def _show_chart(self, *, force: bool = False) -> None:
        s, chart = self.state, self.query_one("#loss-chart", LossChart)
        curve = {"loss": s.train_points, "lr": s.lr_points, "grad_norm": s.grad_points}[chart.view]
        evals = s.eval_points if chart.view == "loss" else []
        wanted = MARKED_ON[chart.view]
        marks = [(f.step, f.kind) for f in s.findings if f.metric in wanted]
        chart.set_points(curve, evals, marks=marks, force=force)

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

    def _place_task_metrics(self) -> None:
        # The panel takes the chart's place (side by side neither fits 100 columns); sae and
        # classification show it from their first eval on, causal_lm only when asked for.
        panel = self.query_one("#task-metrics", TaskMetrics)
        wanted = self._task_view if self._task_view is not None else self.state.task in SHOWN_BY_DEFAULT
        panel.display = wanted and panel.has_content
        chart = self.query_one("#loss-chart", LossChart)
        if chart.display != (not panel.display):
            chart.display = not panel.display
            if chart.display:
                chart.draw_now()
        self.refresh_bindings()

    def _write_new_log_lines(self) -> None:
        new = self.state.log_total - self._log_shown
        if new <= 0:
            return
        lines = list(self.state.log)[-min(new, len(self.state.log)) :]
        self.query_one("#event-log", FollowingLog).write_lines(lines)
        self._log_shown = self.state.log_total

    # -- actions ---------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.following and action in ("pause", "checkpoint"):
            return False  # hidden: another process's run can only be asked to stop
        if action in ("pause", "checkpoint", "stop"):
            return self.state.running and self.state.status != "stopping"
        if action == "toggle_task_metrics":
            panels = self.query("#task-metrics").results(TaskMetrics)
            return any(panel.has_content for panel in panels)
        return True

    def action_pause(self) -> None:
        self.post_message(TogglePause())

    def action_checkpoint(self) -> None:
        self.post_message(CheckpointNow())

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
            self.post_message(RequestExternalStop(Path(self.follow_dir or self.state.run_dir)))
            self.state.status = "stopping"
            self.show_state()
        else:
            self.post_message(StopTraining("user"))

    def action_cycle_chart(self) -> None:
        chart = self.query_one("#loss-chart", LossChart)
        views = list(VIEWS)
        if chart.display:
            chart.view = views[(views.index(chart.view) + 1) % len(views)]
        self._show_chart(force=True)
        if not chart.display:  # the task's panel had the chart's place: g brings the chart back
            self._task_view = False
            self._place_task_metrics()

    def action_toggle_task_metrics(self) -> None:
        self._task_view = not self.query_one("#task-metrics", TaskMetrics).display
        self._place_task_metrics()

    def action_home(self) -> None:
        # Home, as the footer says, even when the wizard and datasets screens are beneath.
        self.post_message(GoHome())
