"""Datasets: add files (browser, typed path, demo corpora), inspect them, and set the mix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, DirectoryTree, Footer, Input, Label, Select, Static

from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.demo.catalog import DEMO_CORPORA
from tui_trainer.demo.classification_demos import CLASSIFICATION_DATASETS
from tui_trainer.data.formats import is_saved_dataset
from tui_trainer.ui.host import host
from tui_trainer.ui.messages import OpenWizard
from tui_trainer.ui.mix_draft import STRATEGIES, DraftDataset, MixDraft, typed_path_problem
from tui_trainer.tasks.classification.images import is_image_folder
from tui_trainer.ui.datasets_view import (
    COLUMNS,
    NARROW_COLUMNS,
    table_width,
    class_settings,
    inspect_entry,
    validation_status,
    mix_cell,
    int_or_none,
    preview_text,
    demo_labels,
    table_cells,
)
from tui_trainer.ui.mix_view import draft_plan, phase_table, propose_ranges, run_length
from tui_trainer.ui.plan_preview import PlanPreview
from tui_trainer.ui.widgets.bars import ShareBars
from tui_trainer.ui.widgets.dataset_tree import DatasetTree
from tui_trainer.ui.widgets.timeline import StepTimeline
from tui_trainer.ui.widgets import styles


class DatasetsScreen(Screen[None]):
    """Builds the ``[data]`` section; Next stays disabled until the core accepts the mix."""

    HELP = (
        "Add datasets from the file browser (Enter on a file), by typing a path, or with the demo "
        "buttons. Pick a strategy; edit the highlighted dataset's weight (weighted, curriculum) or "
        "step range (sequential). In curriculum mode shift+up/down reorders the phases. Delete "
        "removes a dataset. The message at the top is the same validation training runs; Next "
        "(ctrl+n) opens the model and preset step once the mix is valid."
    )

    DEFAULT_CSS = """
    #demo-label { width: auto; padding: 1 1 0 1; color: $text-muted; }
    .demo-button { height: 3; }
    #demo-select { width: 1fr; }
    """

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

    def __init__(self, draft: MixDraft | None = None, browse_root: Path | None = None, settings: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.draft = draft or MixDraft()
        self._settings = settings
        """The run's other sections (kept wizard values or a loaded config): the run length comes from them."""
        self.plan: PlanPreview | None = None
        """The core's plan for the mix on screen."""
        self.plan_known = False
        """Whether the plan's run length is the real one (datasets read) or nominal."""
        self._browse_root = browse_root or Path.cwd()
        self._editing = False
        self._editor_row: int | None = None
        self._mix_col: Any = None
        self._columns: tuple[str, ...] = ()
        self._full_width = 0
        """Cells the six-column table needs for the rows it shows (the narrow one is used below that)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="ds-top"):
            yield Select([(s, s) for s in STRATEGIES], value=self.draft.strategy, allow_blank=False, id="strategy")
            yield Button("Next ▸", id="next", variant="success", disabled=True)
        yield Static("", id="mix-status")
        with Horizontal(id="ds-body"):
            with Vertical(id="ds-add"):
                yield Input(placeholder="type a path, Enter adds it", id="path-input")
                yield Static("", id="path-problem")
                yield DatasetTree(self._browse_root, id="file-tree")
                with Horizontal(id="demo-buttons"):
                    yield Label("demo", id="demo-label")
                    for corpus in DEMO_CORPORA:
                        name = corpus.removeprefix("demo:")
                        button = Button(name, id=f"add-{name}", classes="demo-button")
                        button.tooltip = f"add the embedded corpus {corpus}"
                        yield button
                    # A classification run's demos: labeled data (the corpora above have no labels).
                    demos = [(name.removeprefix("demo:"), name) for name in CLASSIFICATION_DATASETS]
                    yield Select(demos, prompt="choose…", id="demo-select")
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
        self._set_columns(COLUMNS)
        self.query_one("#ds-add").border_title = "add"
        self.query_one("#preview-box").border_title = "preview"
        self.query_one("#path-problem").display = False
        for entry in self.draft.datasets:
            if not entry.inspected:
                self._inspect(entry, self._class_settings())
        self._refresh_all()

    def _set_columns(self, columns: tuple[str, ...]) -> None:
        table = self.query_one("#datasets", DataTable)
        table.clear(columns=True)
        self._columns = columns
        self._mix_col = table.add_columns(*columns)[-1]

    def on_resize(self) -> None:
        # Sizes are known after the layout pass that follows the resize.
        self.call_after_refresh(self._fit_width)

    def _fit_width(self) -> None:
        """Narrow terminals: shorter demo button labels and fewer table columns, chosen, not cut."""
        room = self.query_one("#demo-buttons").size.width - self.query_one("#demo-label").outer_size.width
        labels = demo_labels([c.removeprefix("demo:") for c in DEMO_CORPORA], room)
        for button, label in zip(self.query(".demo-button").results(Button), labels, strict=True):
            button.label = label
        wanted = COLUMNS if self.query_one("#datasets").size.width >= self._full_width else NARROW_COLUMNS
        if wanted != self._columns:
            self._set_columns(wanted)
            self._refresh_all()

    def _class_settings(self) -> tuple[ClassificationSection, float, int] | None:
        return class_settings(self._settings, self.draft.base)

    def on_screen_resume(self) -> None:
        # Back from the wizard: its edits (the task, the classification keys, the run length) change this screen.
        latest = getattr(self.app, "wizard_raw", None)
        if latest is None or latest == self._settings:
            return
        before = self._class_settings()
        self._settings = latest
        if self._class_settings() != before:
            for entry in self.draft.datasets:
                entry.preview = entry.problem = None
                self._inspect(entry, self._class_settings())
        self._refresh_all()

    # -- adding ----------------------------------------------------------------------
    def add_dataset(self, path: str) -> None:
        path = path.strip()
        if not path:
            return
        entry = self.draft.add(path)
        self._inspect(entry, self._class_settings())
        self._refresh_all(select=len(self.draft.datasets) - 1)
        self.notify(f"Added {entry.name}")

    @on(Input.Submitted, "#path-input")
    def _typed_path(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        problem = self.query_one("#path-problem", Static)
        reason = typed_path_problem(text)
        problem.display = reason is not None
        if reason is not None:
            # Refused at the input, like any other bad value: nothing is added.
            problem.update(Text(reason, style=styles.ERROR))
            self.app.bell()
            return
        self.add_dataset(str(Path(text).expanduser()) if not text.startswith("demo:") else text)
        event.input.value = ""

    @on(DirectoryTree.FileSelected)
    def _file_picked(self, event: DirectoryTree.FileSelected) -> None:
        self.add_dataset(str(event.path))

    @on(DirectoryTree.DirectorySelected)
    def _dir_picked(self, event: DirectoryTree.DirectorySelected) -> None:
        if is_saved_dataset(event.path) or is_image_folder(event.path):
            self.add_dataset(str(event.path))

    @on(Button.Pressed, ".demo-button")
    def _demo_picked(self, event: Button.Pressed) -> None:
        self.add_dataset("demo:" + (event.button.id or "").removeprefix("add-"))

    @on(Select.Changed, "#demo-select")
    def _labeled_demo_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.add_dataset(event.value)
            event.select.clear()  # back to the prompt: the next pick adds another

    @work(thread=True, group="inspect")
    def _inspect(self, entry: DraftDataset, classes: tuple[ClassificationSection, float, int] | None) -> None:
        try:
            preview = inspect_entry(host(self).services, entry, classes)
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
                entry.start_step = int_or_none(event.value)
            else:
                entry.end_step = int_or_none(event.value)
        except ValueError:
            self.query_one("#mix-status", Static).update(Text(f"{event.input.id}: not a number: {event.value!r}", style=styles.ERROR))
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
        self.post_message(OpenWizard(self.draft))

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
        strategy = self.draft.strategy
        total = run_length(self.draft, self._settings)
        if strategy == "sequential" and total and propose_ranges(self.draft, total):
            keep_editor = False  # the proposed ranges must reach the editor too
        self.plan, self.plan_known = draft_plan(self.draft, self._settings)
        rows = list(self.plan.overall) if self.plan and self.plan.overall and self.plan_known else self.draft.normalized()
        shares = dict(rows)
        if keep_editor and table.row_count == len(self.draft.datasets):
            for i, d in enumerate(self.draft.datasets):
                table.update_cell(str(i), self._mix_col, self._mix_cell(i, d, shares), update_width=True)
        else:
            self._rebuild_table(table, shares, table.cursor_row if select is None else select)
        self.query_one("#weight-label").display = self.query_one("#weight").display = strategy in ("weighted", "curriculum")
        for wid in ("#range-label", "#start-step", "#end-step"):
            self.query_one(wid).display = strategy == "sequential"
        self.query_one("#ds-editor").display = bool(self.draft.datasets) and strategy != "uniform"
        labeled = self._class_settings() is not None
        self.query_one("#demo-select").display = labeled
        for button in self.query(".demo-button"):
            button.display = not labeled
        bars = self.query_one("#mix-bars", ShareBars)
        bars.display = strategy != "sequential"
        bars.set_shares(rows)
        # Hidden panels are not redrawn: a strategy change comes through here before they show.
        phases = self.query_one("#phase-table", Static)
        phases.display = strategy == "curriculum" and bool(self.draft.datasets)
        if phases.display:
            phases.update(phase_table(self.plan, self.plan_known) if self.plan else "")
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
        shown = []
        for i, d in enumerate(self.draft.datasets):
            cells = table_cells(d, self._mix_cell(i, d, shares))
            shown.append(cells)
            table.add_row(*(cells[c] for c in self._columns), key=str(i))
        full = table_width(shown, COLUMNS)
        if full != self._full_width:
            self._full_width = full
            self.call_after_refresh(self._fit_width)
        if self.draft.datasets:
            table.move_cursor(row=min(cursor, len(self.draft.datasets) - 1))

    def _mix_cell(self, i: int, d: DraftDataset, shares: dict[str, float]) -> str:
        return mix_cell(self.draft.strategy, self.plan, i, d, shares)

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
            box.update(Text(d.problem, style=styles.ERROR))
        elif d.preview is None:
            box.update(Text(f"reading {d.path} …", style="dim"))
        else:
            box.update(preview_text(d, max(24, self.query_one("#preview-box").size.width - 4)))

    def _show_validation(self) -> None:
        text, next_enabled = validation_status(self.draft, self.plan, self.plan_known)
        self.query_one("#mix-status", Static).update(text)
        self.query_one("#next", Button).disabled = not next_enabled
