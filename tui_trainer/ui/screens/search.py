"""A hyperparameter study, live: the trials table, the highlighted trial's eval curve against the
median of the completed trials, the best so far and the budget left.

The study runs in its own process (``tui-trainer search --detach``); this screen only reads
its directory, in a worker thread every ``poll_every`` seconds, so quitting the app leaves
the study running.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual_plotext import PlotextPlot

from tui_trainer.ui.messages import GoHome, OpenMonitor
from tui_trainer.ui.widgets import styles

STATE_STYLE = {"running": "green", "complete": "bold green", "pruned": "yellow", "failed": styles.ERROR, "interrupted": "dim"}


def _value(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _params(params: dict[str, Any]) -> str:
    return "  ".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())


class SearchScreen(Screen[None]):
    """The live trials of one study directory."""

    HELP = (
        "The trials of a hyperparameter study running in its own process. Up/down picks a trial: "
        "the chart shows its eval curve against the median of the completed trials (what the "
        "pruner compares with). Enter opens the trial's monitor, p writes the best trial as a user "
        "preset, s stops the study (running trials save a checkpoint; --resume continues it), "
        "Esc goes home and leaves the study running."
    )

    DEFAULT_CSS = """
    #search-title { height: auto; padding: 0 1; text-style: bold; }
    #search-main { height: 1fr; }
    #trials-table { width: 3fr; height: 1fr; }
    #search-chart { width: 2fr; height: 1fr; min-width: 30; }
    #search-status { height: auto; padding: 0 1; }
    """

    BINDINGS = [
        Binding("enter", "open_trial", "Trial monitor"),
        Binding("p", "promote", "Promote best"),
        Binding("s", "stop_study", "Stop study"),
        Binding("escape", "home", "Home"),
    ]

    class ViewRead(Message):
        """The study directory was read (in a worker thread)."""

        def __init__(self, view: Any) -> None:
            super().__init__()
            self.view = view
            """search.progress.StudyView."""

    class Promoted(Message):
        """Promoting the best trial finished (in a worker thread)."""

        def __init__(self, text: str, error: bool) -> None:
            super().__init__()
            self.text = text
            """What was written, or why not."""
            self.error = error
            """True when nothing was written."""

    def __init__(self, study_dir: Path, *, poll_every: float = 2.0) -> None:
        super().__init__()
        self.study_dir = Path(study_dir)
        self.poll_every = poll_every
        self.view: Any = None
        self.reads = 0
        """Reads shown so far (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="search-body"):
            yield Static("", id="search-title")
            with Horizontal(id="search-main"):
                yield DataTable(id="trials-table", cursor_type="row", zebra_stripes=True)
                yield PlotextPlot(id="search-chart")
            yield Static("", id="search-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#trials-table", DataTable).add_columns("#", "state", "objective", "steps", "params")
        self.poll()
        if self.poll_every:
            self.set_interval(self.poll_every, self.poll)

    def poll(self) -> None:
        self._read(self.study_dir)

    @work(thread=True, exclusive=True, group="search-read")
    def _read(self, study_dir: Path) -> None:
        from tui_trainer.search.progress import read_study

        self.post_message(self.ViewRead(read_study(study_dir)))

    def on_search_screen_view_read(self, message: ViewRead) -> None:
        view = self.view = message.view
        table = self.query_one("#trials-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for t in view.trials:
            mark = " (baseline)" if t.baseline else ""
            table.add_row(str(t.number), Text(t.state + mark, style=STATE_STYLE.get(t.state, "")), _value(t.value),
                          str(t.steps), _params(t.params), key=str(t.number))
        if view.trials:
            table.move_cursor(row=min(keep or 0, len(view.trials) - 1))
        best = view.best
        best_text = f"best: trial {best.number}, {view.objective} {_value(best.value)}" if best else "best: none completed yet"
        base = next((t for t in view.trials if t.baseline and t.state == "complete" and t.value), None)
        if best is not None and base is not None and best.number != base.number:
            gain = (base.value - best.value) if view.direction == "minimize" else (best.value - base.value)
            best_text += f" vs default {_value(base.value)} ({gain / abs(base.value):.1%} better)"
        self.query_one("#search-title", Static).update(
            f"{self.study_dir.name} — {view.direction} {view.objective} — {len(view.trials)} trials, "
            f"{view.remaining} of {view.budget} left — {best_text}"
        )
        self._draw_curve()
        self.reads += 1

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._draw_curve()

    def selected_trial(self) -> Any:
        table = self.query_one("#trials-table", DataTable)
        if self.view is None or not self.view.trials or table.cursor_row is None or table.cursor_row >= len(self.view.trials):
            return None
        return self.view.trials[table.cursor_row]

    def _draw_curve(self) -> None:
        chart = self.query_one("#search-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        trial = self.selected_trial()
        if trial is not None and trial.curve:
            plt.plot([s for s, _ in trial.curve], [v for _, v in trial.curve], label=f"trial {trial.number}", marker="braille")
        if self.view is not None and self.view.median_curve:
            steps = sorted(self.view.median_curve)
            plt.plot(steps, [self.view.median_curve[s] for s in steps], label="median (completed)", marker="braille")
        plt.title(f"{self.view.objective if self.view else 'objective'} by step")
        chart.refresh()
        status = ""
        if trial is not None:
            status = f"trial {trial.number}: {trial.state}" + (f" — {trial.error}" if trial.error else "")
            if trial.run_dir is not None:
                status += f" — {trial.run_dir}"
        self.query_one("#search-status", Static).update(status)

    def action_open_trial(self) -> None:
        trial = self.selected_trial()
        if trial is None or trial.run_dir is None:
            self.notify("This trial has no run directory yet", severity="warning")
            return
        self.post_message(OpenMonitor(trial.run_dir))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_trial()

    def action_promote(self) -> None:
        self._promote(self.study_dir)

    @work(thread=True, exclusive=True, group="search-promote")
    def _promote(self, study_dir: Path) -> None:
        from tui_trainer.errors import UserError
        from tui_trainer.search.promote import promote_best

        try:
            done = promote_best(study_dir)
        except UserError as err:
            self.post_message(self.Promoted(str(err), True))
            return
        left = f"; not a preset setting, kept in best.toml: {', '.join(done.left_out)}" if done.left_out else ""
        values = ", ".join(f"{k}={v}" for k, v in done.values.items())
        self.post_message(self.Promoted(f"wrote {done.path} (extends {done.family}, level {done.level}: {values}){left}", False))

    def on_search_screen_promoted(self, message: Promoted) -> None:
        self.notify(message.text, severity="error" if message.error else "information", timeout=10)

    def action_stop_study(self) -> None:
        from tui_trainer.search.study import STOP_FILE

        try:
            (self.study_dir / STOP_FILE).write_text("stop requested\n", encoding="utf-8")
        except OSError as err:
            self.notify(f"Could not write {self.study_dir / STOP_FILE}: {err}", severity="error")
            return
        self.notify("Study asked to stop: running trials save a checkpoint; `tui-trainer search FILE --resume auto` continues it")

    def action_home(self) -> None:
        self.post_message(GoHome())
