"""Home: the runs under the output directory and the main actions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

if TYPE_CHECKING:
    from tui_trainer.ui.app import TrainerApp

STATUS_STYLE = {"running": "green", "finished": "bold green", "stopped": "yellow", "failed": "red"}

EMPTY_TEXT = """\
No runs yet in {output_dir}.

Press [b]d[/b] to train the embedded demo right now: a tiny model on two small
Python corpora, no files or downloads needed. It runs on the CPU in a minute.

Press [b]n[/b] to set up your own run: pick datasets and their mix, then a model
and a preset fitted to this machine. [b]r[/b] resumes a stopped run from a checkpoint.
"""


def format_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


class HomeScreen(Screen[None]):
    """The runs table (newest first), or an explanation of how to start."""

    HELP = (
        "Runs found in the output directory, newest first. n sets up a new run, d starts "
        "the embedded demo, r picks a checkpoint to resume, m (or Enter) opens the monitor "
        "of the highlighted run, q quits."
    )

    BINDINGS = [
        Binding("n", "app.new_run", "New run"),
        Binding("d", "app.demo", "Demo"),
        Binding("r", "app.resume", "Resume"),
        Binding("m", "monitor", "Monitor"),
        Binding("f5", "reload", "Refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._runs: list[Any] = []

    @property
    def trainer(self) -> TrainerApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home-body"):
            yield Static("", id="home-summary")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="home-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_columns("run", "status", "step", "best eval", "last checkpoint", "age")

    def on_screen_resume(self) -> None:
        # Also sent when the screen is first pushed, after mount: the one initial read.
        self.action_reload()

    def action_reload(self) -> None:
        output_dir = self.trainer.output_dir
        try:
            self._runs = list(self.trainer.services.discover_runs(output_dir))
        except Exception as err:  # noqa: BLE001 - an unreadable directory is shown, not fatal
            self._runs = []
            self.notify(f"Could not read runs in {output_dir}: {err}", severity="error")
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        now = self.trainer.services.clock()
        for run in self._runs:
            status = Text(run.status, style=STATUS_STYLE.get(run.status, "dim"))
            total = run.total_steps or "?"
            best = "–" if run.best_eval is None else f"{run.best_eval:.4f}"
            last = run.last_checkpoint
            last_text = "–" if last is None else f"step {last.step}"  # the newest valid checkpoint
            table.add_row(run.name, status, f"{run.step}/{total}", best, last_text, format_age(now - run.updated), key=str(run.path))
        empty = not self._runs
        table.display = not empty
        self.query_one("#home-empty", Static).display = empty
        if empty:
            self.query_one("#home-empty", Static).update(EMPTY_TEXT.format(output_dir=output_dir))
            self.query_one("#home-summary", Static).update("")
        else:
            self.query_one("#home-summary", Static).update(f"{len(self._runs)} run(s) in {output_dir}")
            table.focus()

    def selected_run(self) -> Path | None:
        table = self.query_one("#runs-table", DataTable)
        if not self._runs or table.cursor_row is None or table.cursor_row >= len(self._runs):
            return None
        return Path(self._runs[table.cursor_row].path)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_monitor()

    def action_monitor(self) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected: start one with d (demo) or n (new run).", severity="warning")
            return
        self.trainer.open_monitor(run)
