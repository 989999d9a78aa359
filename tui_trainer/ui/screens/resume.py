"""Resume picker: a run, then one of its checkpoints; invalid ones are listed, never chosen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

if TYPE_CHECKING:
    from tui_trainer.ui.app import TrainerApp


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


class ResumePicker(ModalScreen[Path | None]):
    """Returns the chosen checkpoint directory, or None when cancelled."""

    HELP = (
        "Left: runs with checkpoints. Right: the highlighted run's checkpoints, newest first. "
        "Enter on a checkpoint resumes training from it at the exact batch; checkpoints that "
        "failed verification are listed with the reason and cannot be chosen."
    )

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("question_mark", "app.help", "Help"),
        Binding("tab", "app.focus_next", "Switch list", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._runs: list[Any] = []
        self._checkpoints: list[Any] = []

    @property
    def trainer(self) -> TrainerApp:
        return self.app  # type: ignore[return-value]

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
        try:
            runs = self.trainer.services.discover_runs(self.trainer.output_dir)
        except Exception as err:  # noqa: BLE001
            runs = []
            self.notify(f"Could not read runs: {err}", severity="error")
        self._runs = [r for r in runs if r.checkpoints]
        for run in self._runs:
            runs_table.add_row(run.name, run.status, f"{run.step}/{run.total_steps or '?'}", key=str(run.path))
        if not self._runs:
            self.query_one("#picker-detail", Static).update(
                f"No checkpoints under {self.trainer.output_dir}. Runs save one every few steps and whenever they stop."
            )
        else:
            self._show_checkpoints(0)
        runs_table.focus()

    def _show_checkpoints(self, index: int) -> None:
        table = self.query_one("#picker-checkpoints", DataTable)
        table.clear()
        run = self._runs[index]
        self._checkpoints = sorted(run.checkpoints, key=lambda c: c.step, reverse=True)
        for ckpt in self._checkpoints:
            stamp = time.strftime("%m-%d %H:%M", time.localtime(ckpt.time))
            valid = Text("yes", style="green") if ckpt.valid else Text(f"no: {ckpt.problem}", style="red")
            style = "" if ckpt.valid else "dim"
            table.add_row(
                Text(str(ckpt.step), style=style), Text(stamp, style=style), _loss(ckpt.loss), _loss(ckpt.eval_loss), valid,
                key=str(ckpt.path),
            )
        self.query_one("#picker-detail", Static).update(f"{run.name}: {len(self._checkpoints)} checkpoint(s)")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "picker-runs" and self._runs:
            self._show_checkpoints(event.cursor_row)
        elif event.data_table.id == "picker-checkpoints" and self._checkpoints:
            ckpt = self._checkpoints[event.cursor_row]
            detail = str(ckpt.path) if ckpt.valid else f"{ckpt.path}: not resumable ({ckpt.problem})"
            self.query_one("#picker-detail", Static).update(detail)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
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
