"""Datasets: add files (browser, typed path, demo corpora), inspect them, and set the mix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, DirectoryTree, Footer, Input, Label, Select, Static

from tui_trainer.config import DatasetSpec
from tui_trainer.data.demo import DEMO_CORPORA
from tui_trainer.data.formats import is_saved_dataset
from tui_trainer.ui.mix_draft import STRATEGIES, DraftDataset, MixDraft
from tui_trainer.ui.widgets.bars import ShareBars
from tui_trainer.ui.widgets.dataset_tree import DatasetTree
from tui_trainer.ui.widgets.timeline import StepTimeline

if TYPE_CHECKING:
    from tui_trainer.ui.app import TrainerApp


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


class DatasetsScreen(Screen[None]):
    """Builds the ``[data]`` section; Next stays disabled until the core accepts the mix."""

    HELP = (
        "Add datasets from the file browser (Enter on a file), by typing a path, or with the demo "
        "buttons. Pick a strategy; edit the highlighted dataset's weight (weighted, curriculum) or "
        "step range (sequential). In curriculum mode shift+up/down reorders the phases. Delete "
        "removes a dataset. The message at the top is the same validation training runs; Next "
        "(ctrl+n) opens the model and preset step once the mix is valid."
    )

    BINDINGS = [
        Binding("ctrl+n", "next", "Next"),
        Binding("shift+up", "move(-1)", "Move up"),
        Binding("shift+down", "move(1)", "Move down"),
        Binding("delete", "remove", "Remove"),
        Binding("escape", "back", "Back"),
    ]

    class Inspected(Message):
        """A dataset's inspection finished (in a worker thread)."""

        def __init__(self, entry: DraftDataset, preview: Any | None, problem: str | None) -> None:
            super().__init__()
            self.entry = entry
            self.preview = preview
            self.problem = problem

    def __init__(self, draft: MixDraft | None = None, browse_root: Path | None = None) -> None:
        super().__init__()
        self.draft = draft or MixDraft()
        self._browse_root = browse_root or Path.cwd()
        self._editing = False
        self._editor_row: int | None = None
        self._mix_col: Any = None

    @property
    def trainer(self) -> TrainerApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Horizontal(id="ds-top"):
            yield Select([(s, s) for s in STRATEGIES], value=self.draft.strategy, allow_blank=False, id="strategy")
            yield Static("", id="mix-status")
            yield Button("Next ▸", id="next", variant="success", disabled=True)
        with Horizontal(id="ds-body"):
            with Vertical(id="ds-add"):
                yield Input(placeholder="type a path, Enter adds it", id="path-input")
                yield DatasetTree(self._browse_root, id="file-tree")
                with Horizontal(id="demo-buttons"):
                    for corpus in DEMO_CORPORA:
                        yield Button(corpus.removeprefix("demo:"), id=f"add-{corpus.removeprefix('demo:')}", classes="demo-button")
            with Vertical(id="ds-mix"):
                yield DataTable(id="datasets", cursor_type="row")
                with Horizontal(id="ds-editor"):
                    yield Label("weight", id="weight-label")
                    yield Input(id="weight", type="number")
                    yield Label("steps", id="range-label")
                    yield Input(placeholder="start", id="start-step", type="integer")
                    yield Input(placeholder="end", id="end-step", type="integer")
                yield ShareBars("weights appear here", id="mix-bars")
                yield Static("", id="phase-table")
                yield StepTimeline(id="timeline")
                with VerticalScroll(id="preview-box"):
                    yield Static("", id="preview")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#datasets", DataTable)
        self._mix_col = table.add_columns("name", "format", "shape", "rows", "tokens", "mix")[-1]
        self.query_one("#ds-add").border_title = "add"
        self.query_one("#preview-box").border_title = "preview"
        for entry in self.draft.datasets:
            if not entry.inspected:
                self._inspect(entry)
        self._refresh_all()

    # -- adding ----------------------------------------------------------------------
    def add_dataset(self, path: str) -> None:
        path = path.strip()
        if not path:
            return
        entry = self.draft.add(path)
        self._inspect(entry)
        self._refresh_all(select=len(self.draft.datasets) - 1)
        self.notify(f"Added {entry.name}")

    @on(Input.Submitted, "#path-input")
    def _typed_path(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.add_dataset(str(Path(event.value.strip()).expanduser()) if not event.value.startswith("demo:") else event.value)
            event.input.value = ""

    @on(DirectoryTree.FileSelected)
    def _file_picked(self, event: DirectoryTree.FileSelected) -> None:
        self.add_dataset(str(event.path))

    @on(DirectoryTree.DirectorySelected)
    def _dir_picked(self, event: DirectoryTree.DirectorySelected) -> None:
        if is_saved_dataset(event.path):
            self.add_dataset(str(event.path))

    @on(Button.Pressed, ".demo-button")
    def _demo_picked(self, event: Button.Pressed) -> None:
        self.add_dataset("demo:" + (event.button.id or "").removeprefix("add-"))

    @work(thread=True, group="inspect")
    def _inspect(self, entry: DraftDataset) -> None:
        try:
            spec = DatasetSpec(name=entry.name, path=entry.path, **entry.extra)
            preview = self.trainer.services.inspect_dataset(spec)
        except Exception as err:  # noqa: BLE001 - DataError or an unreadable file: shown on the row
            self.post_message(self.Inspected(entry, None, str(err)))
        else:
            self.post_message(self.Inspected(entry, preview, None))

    def on_datasets_screen_inspected(self, message: Inspected) -> None:
        message.entry.preview, message.entry.problem = message.preview, message.problem
        self._refresh_all()

    # -- editing ---------------------------------------------------------------------
    def _current_index(self) -> int | None:
        table = self.query_one("#datasets", DataTable)
        if not self.draft.datasets:
            return None
        return min(table.cursor_row, len(self.draft.datasets) - 1)

    @on(Select.Changed, "#strategy")
    def _strategy_changed(self, event: Select.Changed) -> None:
        self.draft.strategy = str(event.value)
        self._refresh_all()
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#datasets")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Rebuilding the table re-highlights the same row; only a real move reloads the editor,
        # otherwise the input being typed in would be overwritten mid-number.
        if event.cursor_row != self._editor_row:
            self._load_editor()
            self._show_preview()

    @on(Input.Changed, "#weight, #start-step, #end-step")
    def _edited(self, event: Input.Changed) -> None:
        index = self._current_index()
        if self._editing or index is None:
            return
        entry = self.draft.datasets[index]
        try:
            if event.input.id == "weight":
                entry.weight = float(event.value) if event.value.strip() else 0.0
            elif event.input.id == "start-step":
                entry.start_step = _int_or_none(event.value)
            else:
                entry.end_step = _int_or_none(event.value)
        except ValueError:
            self.query_one("#mix-status", Static).update(Text(f"{event.input.id}: not a number: {event.value!r}", style="red"))
            self.query_one("#next", Button).disabled = True
            return
        self._refresh_all(keep_editor=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "move":
            return self.draft.strategy == "curriculum"  # False hides it: order only matters in curriculum
        return True

    def action_move(self, delta: int) -> None:
        index = self._current_index()
        if index is None:
            return
        self._refresh_all(select=self.draft.move(index, delta))

    def action_remove(self) -> None:
        index = self._current_index()
        if index is None or self.focused is not None and isinstance(self.focused, Input):
            return
        removed = self.draft.datasets[index].name
        self.draft.remove(index)
        self._refresh_all(select=max(0, index - 1))
        self.notify(f"Removed {removed}")

    def action_next(self) -> None:
        if self.draft.validate() is not None:
            self.app.bell()
            return
        self.trainer.open_wizard_from_mix(self.draft)

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- rendering -------------------------------------------------------------------
    def _refresh_all(self, select: int | None = None, keep_editor: bool = False) -> None:
        """Redraw after a change; ``keep_editor`` is an edit of the selected dataset's fields
        (the editor and the preview stay as they are)."""
        table = self.query_one("#datasets", DataTable)
        rows = self.draft.normalized()
        shares = dict(rows)
        if keep_editor and table.row_count == len(self.draft.datasets):
            for i, d in enumerate(self.draft.datasets):
                table.update_cell(str(i), self._mix_col, self._mix_cell(i, d, shares), update_width=True)
        else:
            self._rebuild_table(table, shares, table.cursor_row if select is None else select)
        strategy = self.draft.strategy
        self.query_one("#weight-label").display = self.query_one("#weight").display = strategy in ("weighted", "curriculum")
        for wid in ("#range-label", "#start-step", "#end-step"):
            self.query_one(wid).display = strategy == "sequential"
        self.query_one("#ds-editor").display = bool(self.draft.datasets) and strategy != "uniform"
        bars = self.query_one("#mix-bars", ShareBars)
        bars.display = strategy != "sequential"
        bars.set_shares(rows)
        # Hidden panels are not redrawn: a strategy change comes through here before they show.
        phases = self.query_one("#phase-table", Static)
        phases.display = strategy == "curriculum" and bool(self.draft.datasets)
        if phases.display:
            phases.update(self._phase_table())
        timeline = self.query_one("#timeline", StepTimeline)
        timeline.display = strategy == "sequential"
        if timeline.display:
            timeline.set_ranges([(d.name, d.start_step, d.end_step) for d in self.draft.datasets])
        if not keep_editor:
            self._load_editor()
            self._show_preview()
        self._show_validation()

    def _rebuild_table(self, table: DataTable, shares: dict[str, float], cursor: int) -> None:
        table.clear()
        for i, d in enumerate(self.draft.datasets):
            p = d.preview
            if d.problem:
                fmt, shape, rows, tokens = Text("error", style="red"), "", "", ""
            elif p is None:
                fmt, shape, rows, tokens = Text("reading…", style="dim"), "", "", ""
            else:
                fmt, shape, rows, tokens = p.format, p.shape.kind, f"{p.rows:,}", f"{p.est_tokens:,}"
            table.add_row(d.name, fmt, shape, rows, tokens, self._mix_cell(i, d, shares), key=str(i))
        if self.draft.datasets:
            table.move_cursor(row=min(cursor, len(self.draft.datasets) - 1))

    def _mix_cell(self, i: int, d: DraftDataset, shares: dict[str, float]) -> str:
        if self.draft.strategy == "sequential":
            return f"{'?' if d.start_step is None else d.start_step}–{'?' if d.end_step is None else d.end_step}"
        if self.draft.strategy == "curriculum":
            return f"phase {i}, {shares.get(d.name, 0) * 100:.0f}%"
        return f"{shares.get(d.name, 0) * 100:.1f}%"

    def _phase_table(self) -> Table:
        table = Table(box=None, padding=(0, 1), show_edge=False, title_justify="left")
        table.add_column("phase", style="bold")
        table.add_column("dataset")
        table.add_column("weight", justify="right")
        for i, d in enumerate(self.draft.datasets):
            table.add_row(str(i), d.name, f"{d.weight:g}")
        return table

    def _load_editor(self) -> None:
        index = self._current_index()
        if index is None:
            return
        d = self.draft.datasets[index]
        self._editor_row = index
        self._editing = True
        try:
            self.query_one("#weight", Input).value = f"{d.weight:g}"
            self.query_one("#start-step", Input).value = "" if d.start_step is None else str(d.start_step)
            self.query_one("#end-step", Input).value = "" if d.end_step is None else str(d.end_step)
        finally:
            self._editing = False

    def _show_preview(self) -> None:
        index = self._current_index()
        box = self.query_one("#preview", Static)
        if index is None:
            box.update(Text("Nothing added yet.", style="dim"))
            return
        d = self.draft.datasets[index]
        if d.problem:
            box.update(Text(d.problem, style="red"))
        elif d.preview is None:
            box.update(Text(f"reading {d.path} …", style="dim"))
        else:
            p = d.preview
            text = Text()
            text.append(f"{d.path}\n", style="bold")
            fields = ", ".join(p.fields) if p.fields else "–"
            text.append(f"{p.format} · {p.shape.kind} · fields: {fields}\n", style="dim")
            for record in p.preview:
                text.append(" ".join(str(record).split())[:300] + "\n")
            box.update(text)

    def _show_validation(self) -> None:
        problem = self.draft.validate()
        status = self.query_one("#mix-status", Static)
        pending = [d.name for d in self.draft.datasets if not d.inspected]
        if problem:
            status.update(Text(problem, style="red"))
        elif pending:
            status.update(Text(f"reading {', '.join(pending)} …", style="dim"))
        else:
            tokens = self.draft.est_tokens()
            extra = f", ~{tokens:,} tokens" if tokens else ""
            status.update(Text(f"✓ {len(self.draft.datasets)} dataset(s), {self.draft.strategy}{extra}", style="green"))
        self.query_one("#next", Button).disabled = problem is not None
