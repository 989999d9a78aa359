"""Home's ``d``: the four demos ``tui-trainer demo`` knows, one Enter away, each said in a line.

The tiny causal-LM demo is first and highlighted, so ``d`` then Enter is still the one
fast path a new user reads about on the empty home screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class Demo:
    """One entry of the picker."""

    key: str
    """What the picker returns: tiny | smollm2 | sae | classification."""
    title: str
    """The entry's first line."""
    detail: str
    """What it trains, on what, and how long it takes on a 2-core CPU."""
    command: str
    """The same demo headless, for a script or a second pane."""


# Times measured 2026-12-02 on 2 busy CPU cores (`tui-trainer demo ...`, the whole command): tiny 101 s,
# SmolLM2 97 s with the conversion into an empty home, SAE 39 s, classification 13 s.
DEMOS = (
    Demo("tiny", "Causal LM: the embedded tiny Llama",
         "fully trained on two Python corpora mixed 70/30; 80 steps, one to two minutes on 2 CPU cores",
         "tui-trainer demo"),
    Demo("smollm2", "Chat LoRA: the real SmolLM2-135M-Instruct",
         "LoRA on a Python chat corpus, eval loss and three answers before and after; 12 steps, "
         "about two minutes on 2 CPU cores with the first use's one-off GGUF conversion",
         "tui-trainer demo --model smollm2"),
    Demo("sae", "Sparse autoencoder on the tiny model's layer 1",
         "TopK SAE on the residual stream over the same 70/30 mix; L0, explained variance and dead "
         "features on the monitor's t panel; 60 steps, under a minute",
         "tui-trainer demo --task sae"),
    Demo("classification", "Classification with a rare class: tiny ViT on digits",
         "one digit 16.5x rarer than the others, balanced class weights; per-class recall and the "
         "confusion matrix on the t panel; 300 steps, under a minute",
         "tui-trainer demo --task classification"),
)  # fmt: skip


class DemoPicker(ModalScreen[str | None]):
    """Pick a demo; Enter returns its key, Escape returns None."""

    BINDINGS = [Binding("enter", "pick", "Train"), Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog demo-dialog"):
            yield Label("Train a demo: no files, no downloads (↑↓ to pick, Enter to train)", classes="dialog-title")
            entries: list[Option | None] = []
            for demo in DEMOS:
                entries += [Option(_entry(demo), id=demo.key), None]  # None: a rule between entries
            yield OptionList(*entries[:-1], id="demo-options")
        yield Footer()

    def on_mount(self) -> None:
        options = self.query_one("#demo-options", OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self) -> None:
        """Enter when the list does not have the focus (a click elsewhere in the dialog)."""
        options = self.query_one("#demo-options", OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _entry(demo: Demo) -> Text:
    text = Text(demo.title, style="bold")
    text.append(f"\n{demo.detail}\n")
    text.append(demo.command, style="dim")
    return text
