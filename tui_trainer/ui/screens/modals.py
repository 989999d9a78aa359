"""Small typed modals: confirm, error, help, and the save-as path prompt."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no question; ``y``/Enter on Yes returns True, ``n``/Escape returns False."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self._question, self._yes, self._no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self._question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._yes, variant="warning", id="yes")
                yield Button(self._no, variant="primary", id="no")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ErrorScreen(ModalScreen[None]):
    """A failure shown as text the user can read (and scroll), never a crash to the shell."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, message: str, details: str = "") -> None:
        super().__init__()
        self._title, self._message, self._details = title, message, details

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog"):
            yield Label(self._title, classes="dialog-title")
            with VerticalScroll(classes="error-body"):
                yield Static(Text(self._message), id="error-message")
                if self._details:
                    yield Static(Text(self._details, style="dim"), id="error-details")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="close")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """The keys of the screen underneath, with what each does."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, screen: Screen, intro: str) -> None:
        super().__init__()
        self._intro = intro
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            # The screen's and the app's keys; a focused widget's own (cursor keys) are obvious.
            if active.node not in (screen, screen.app) or not active.enabled:
                continue
            if not binding.description or binding.description in seen:
                continue
            seen.add(binding.description)
            table.add_row(screen.app.get_key_display(binding), binding.description)
        table.add_row("ctrl+p", "command palette (all main actions)")
        self._table = table

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Label("Help", classes="dialog-title")
            with VerticalScroll(classes="help-body"):
                yield Static(self._intro, classes="help-intro")
                yield Static(self._table)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)


class SavePathScreen(ModalScreen[Path | None]):
    """Asks where to save a file; returns the path, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: Path) -> None:
        super().__init__()
        self._title, self._default = title, default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Input(str(self._default), id="save-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._finish(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self._finish(self.query_one("#save-path", Input).value)
        else:
            self.dismiss(None)

    def _finish(self, text: str) -> None:
        text = text.strip()
        if not text:
            self.notify("Type a file path, e.g. run.toml", severity="error")
            return
        self.dismiss(Path(text).expanduser())

    def action_cancel(self) -> None:
        self.dismiss(None)
