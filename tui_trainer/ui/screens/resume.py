"""Resume picker: a run, then one of its checkpoints; invalid ones are listed, never chosen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from tui_trainer.ui.host import host
from tui_trainer.ui.messages import NewRunFrom
from tui_trainer.ui.widgets import styles


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


class ResumePicker(ModalScreen[Path | None]):
    """Returns the chosen checkpoint directory, or None when cancelled."""

    HELP = (
        "Left: runs with checkpoints. Right: the highlighted run's checkpoints, newest first. "
        "Enter on a checkpoint resumes training from it at the exact batch; checkpoints that "
        "failed verification are listed with the reason and cannot be chosen. A finished run "
        "has nothing left to resume: Enter on it starts a new run from its config."
    )

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("question_mark", "app.help", "Help"),
        Binding("tab", "app.focus_next", "Switch list", show=False),
    ]

    class RunsRead(Message):
        """The runs and their checkpoints were read (in a worker thread)."""

        def __init__(self, runs: list[Any], problem: str | None) -> None:
            super().__init__()
            self.runs = runs
            """RunInfo of each run, newest first."""
            self.problem = problem
            """Why the output directory could not be read, or None."""

    def __init__(self) -> None:
        super().__init__()
        self._runs: list[Any] = []
        self._checkpoints: list[Any] = []
        self.loaded = False
        """True once the runs were read (tests wait on it)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Resume a run: choose a run, then a checkpoint (Enter)", classes="dialog-title")
            with Horizontal(id="picker-lists"):
                yield DataTable(id="picker-runs", cursor_type="row")
                yield DataTable(id="picker-checkpoints", cursor_type="row")
            yield Static("", id="picker-detail")
        yield Footer()

    def on_mount(self) -> None:
        runs_table = self.query_one("#picker-runs", DataTable)
        runs_table.add_columns("run", "status", "step")
        ckpt_table = self.query_one("#picker-checkpoints", DataTable)
        ckpt_table.add_columns("step", "time", "loss", "eval", "valid")
        runs_table.border_title = "runs"
        ckpt_table.border_title = "checkpoints"
        runs_table.focus()
        self._read_runs(host(self).output_dir)

    @work(thread=True, group="picker-runs")
    def _read_runs(self, output_dir: Path) -> None:
        try:
            runs, problem = list(host(self).services.discover_runs(output_dir)), None
        except Exception as err:  # noqa: BLE001 - shown, not fatal
            runs, problem = [], f"Could not read runs: {err}"
        self.post_message(self.RunsRead(runs, problem))

    def on_resume_picker_runs_read(self, message: RunsRead) -> None:
        if message.problem:
            self.notify(message.problem, severity="error")
        runs_table = self.query_one("#picker-runs", DataTable)
        self._runs = [r for r in message.runs if r.checkpoints]
        for run in self._runs:
            status = Text(run.status, style="bold green" if run.status == "finished" else "")
            runs_table.add_row(run.name, status, f"{run.step}/{run.total_steps or '?'}", key=str(run.path))
        if not self._runs:
            self.query_one("#picker-detail", Static).update(
                f"No checkpoints under {host(self).output_dir}. Runs save one every few steps and whenever they stop."
            )
        else:
            self._show_checkpoints(0)
        self.loaded = True

    def _show_checkpoints(self, index: int) -> None:
        table = self.query_one("#picker-checkpoints", DataTable)
        table.clear()
        run = self._runs[index]
        self._checkpoints = sorted(run.checkpoints, key=lambda c: c.step, reverse=True)
        for ckpt in self._checkpoints:
            stamp = time.strftime("%m-%d %H:%M", time.localtime(ckpt.time))
            valid = Text("yes", style="green") if ckpt.valid else Text(f"no: {ckpt.problem}", style=styles.ERROR)
            style = "" if ckpt.valid else "dim"
            table.add_row(
                Text(str(ckpt.step), style=style), Text(stamp, style=style), _loss(ckpt.loss), _loss(ckpt.eval_loss), valid,
                key=str(ckpt.path),
            )
        self.query_one("#picker-detail", Static).update(self._run_detail(run))

    def _run_detail(self, run: Any) -> str:
        if run.status == "finished":
            return f"{run.name} finished all its steps: nothing to resume. Enter starts a new run from its config."
        return f"{run.name}: {len(self._checkpoints)} checkpoint(s)"

    def _current_run(self) -> Any:
        table = self.query_one("#picker-runs", DataTable)
        return self._runs[min(table.cursor_row, len(self._runs) - 1)] if self._runs else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "picker-runs" and self._runs:
            self._show_checkpoints(event.cursor_row)
        elif event.data_table.id == "picker-checkpoints" and self._checkpoints:
            ckpt = self._checkpoints[event.cursor_row]
            run = self._current_run()
            if run is not None and run.status == "finished":
                detail = self._run_detail(run)
            else:
                detail = str(ckpt.path) if ckpt.valid else f"{ckpt.path}: not resumable ({ckpt.problem})"
            self.query_one("#picker-detail", Static).update(detail)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        run = self._current_run()
        if run is not None and run.status == "finished":
            # Resuming a finished run would only re-save its final checkpoint.
            self.app.post_message(NewRunFrom(Path(run.path)))
            self.dismiss(None)
            return
        if event.data_table.id == "picker-runs":
            self.query_one("#picker-checkpoints", DataTable).focus()
            return
        self.choose(event.cursor_row)

    def choose(self, index: int) -> None:
        ckpt = self._checkpoints[index]
        if not ckpt.valid:
            self.app.bell()
            self.notify(f"Checkpoint step {ckpt.step} cannot be resumed: {ckpt.problem}", severity="error")
            return
        self.dismiss(Path(ckpt.path))

    def action_cancel(self) -> None:
        self.dismiss(None)
