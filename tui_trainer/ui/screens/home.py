"""Home: the runs under the output directory and the main actions."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui_trainer.ui.host import host
from tui_trainer.ui.messages import OpenMonitor, OpenSearch
from tui_trainer.ui.widgets import styles

STATUS_STYLE = {
    "running": "green",
    "detached": "bold green",
    "finished": "bold green",
    "stopped": "yellow",
    "failed": styles.ERROR,
}


def is_detached(run: Any) -> bool:
    """A live run another process trains (``tui-trainer train --detach``, torchrun, another app)."""
    return run.status == "running" and getattr(run, "owner", None) not in (None, f"{socket.gethostname()}:{os.getpid()}")

EMPTY_TEXT = """\
No runs yet in {output_dir}.

Press [b]d[/b] and Enter to train the embedded demo right now: a tiny model on two
small Python corpora, no files or downloads needed. It runs on the CPU in a minute.
The same key offers the real SmolLM2-135M, a sparse autoencoder and a classifier.

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
        "Runs found in the output directory, newest first. n sets up a new run, d picks "
        "a demo (the tiny causal LM, SmolLM2-135M LoRA, an SAE or a classifier), r picks a checkpoint to resume, m (or Enter) opens the monitor "
        "of the highlighted run, q quits. A run marked detached trains in a process of its own "
        "(tui-trainer train --detach, or several processes): m follows it through its events.jsonl, "
        "s on that monitor asks it to stop (it saves a checkpoint), and quitting this app leaves it training. Hyperparameter studies (started from the wizard with "
        "ctrl+f, or `tui-trainer search`) are listed below the runs: Enter shows their trials."
    )

    BINDINGS = [
        Binding("n", "app.new_run", "New run"),
        Binding("d", "app.demo", "Demo"),
        Binding("r", "app.resume", "Resume"),
        Binding("m", "monitor", "Monitor"),
        Binding("f5", "reload", "Refresh", show=False),
    ]

    class RunsRead(Message):
        """The runs under the output directory were read (in a worker thread)."""

        def __init__(self, runs: list[Any], problem: str | None, studies: list[Any] | None = None) -> None:
            super().__init__()
            self.runs = runs
            """RunInfo of each run, newest first."""
            self.studies = studies or []
            """StudyInfo of each hyperparameter study, newest first."""
            self.problem = problem
            """Why the directory could not be read, or None."""

    def __init__(self) -> None:
        super().__init__()
        self._runs: list[Any] = []
        self._studies: list[Any] = []
        self.reads = 0
        """Reads of the runs shown so far (tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home-body"):
            yield Static("", id="home-summary")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="studies-summary")
            yield DataTable(id="studies-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="home-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        # Short headers: at 80 columns "last checkpoint" pushed the age column off the screen.
        table.add_columns("run", "status", "step", "best eval", "checkpoint", "age")
        studies = self.query_one("#studies-table", DataTable)
        studies.add_columns("study", "status", "trials", "best", "age")
        studies.display = False

    def on_screen_resume(self) -> None:
        # Also sent when the screen is first pushed, after mount: the one initial read.
        self.action_reload()

    def action_reload(self) -> None:
        self._read_runs(host(self).output_dir)

    @work(thread=True, group="home-runs")
    def _read_runs(self, output_dir: Path) -> None:
        # Every run's events.jsonl is read: disk IO stays off the UI thread.
        try:
            runs, problem = list(host(self).services.discover_runs(output_dir)), None
        except Exception as err:  # noqa: BLE001 - an unreadable directory is shown, not fatal
            runs, problem = [], f"Could not read runs in {output_dir}: {err}"
        try:
            studies = list(host(self).services.discover_studies(output_dir))
        except Exception:  # noqa: BLE001 - a damaged study must not hide the runs
            studies = []
        self.post_message(self.RunsRead(runs, problem, studies))

    def on_home_screen_runs_read(self, message: RunsRead) -> None:
        self._runs = message.runs
        self._studies = message.studies
        self._show_studies()
        if message.problem:
            self.notify(message.problem, severity="error")
        self._show_runs(host(self).output_dir)
        self.reads += 1

    def _show_runs(self, output_dir: Path) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        now = host(self).services.clock()
        for run in self._runs:
            shown = "detached" if is_detached(run) else run.status
            status = Text(shown, style=STATUS_STYLE.get(shown, "dim"))
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
            self.query_one("#home-summary", Static).update(self._summary(output_dir))
            table.focus()

    def _summary(self, output_dir: Path) -> Text:
        text = Text(f"{len(self._runs)} run(s) in {output_dir}")
        detached = [run for run in self._runs if is_detached(run)]
        if detached:
            owners = ", ".join(f"pid {run.owner.rpartition(':')[2]}" for run in detached[:3])
            text.append(f"; {len(detached)} training detached ({owners}): m follows one", style="green")
        return text

    def _show_studies(self) -> None:
        table = self.query_one("#studies-table", DataTable)
        table.clear()
        now = host(self).services.clock()
        for study in self._studies:
            status = Text("running" if study.live else "idle", style="green" if study.live else "dim")
            best = "–" if study.best is None else f"{study.objective} {study.best:.4g}"
            table.add_row(study.name, status, f"{study.trials}/{study.budget}", best, format_age(now - study.updated), key=str(study.path))
        table.display = bool(self._studies)
        summary = f"{len(self._studies)} hyperparameter stud{'y' if len(self._studies) == 1 else 'ies'} (Enter shows its trials)"
        label = self.query_one("#studies-summary", Static)
        label.update(summary if self._studies else "")
        label.display = bool(self._studies)

    def selected_run(self) -> Path | None:
        table = self.query_one("#runs-table", DataTable)
        if not self._runs or table.cursor_row is None or table.cursor_row >= len(self._runs):
            return None
        return Path(self._runs[table.cursor_row].path)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "studies-table":
            if event.cursor_row < len(self._studies):
                self.post_message(OpenSearch(Path(self._studies[event.cursor_row].path)))
            return
        self.action_monitor()

    def action_monitor(self) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected: start one with d (demo) or n (new run).", severity="warning")
            return
        self.post_message(OpenMonitor(run))
