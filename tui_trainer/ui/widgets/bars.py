"""Horizontal percentage bars (mix weights, per-dataset sample shares)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui_trainer.ui.widgets.quiet_update import update_if_changed

BAR_STYLES = ("green", "cyan", "magenta", "yellow", "blue", "red")


class ShareBars(Static):
    """One row per name: label, bar proportional to its share, and the percentage."""

    DEFAULT_CSS = """
    ShareBars { height: auto; }
    """

    def __init__(self, empty_text: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self._empty_text = empty_text
        self._rows: list[tuple[str, float]] = []

    def set_shares(self, rows: list[tuple[str, float]]) -> None:
        """``rows`` are (name, fraction in [0, 1]); fractions need not sum to 1."""
        rows = list(rows)
        if rows == self._rows:
            return
        # Re-layout only when the number of rows (the widget's height) changes.
        relayout = len(rows) != len(self._rows)
        self._rows = rows
        # Shares move every step but their bars and 0.1% labels seldom do.
        update_if_changed(self, self._render_rows(), layout=relayout)

    def _render_rows(self) -> Text:
        # Plain Text rather than a rich Table: the monitor redraws this several times a second.
        if not self._rows:
            return Text(self._empty_text, style="dim")
        label_width = min(16, max(len(name) for name, _ in self._rows))
        width = max((self.size.width or 40) - label_width - 10, 8)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (name, share) in enumerate(self._rows):
            filled = round(max(0.0, min(share, 1.0)) * width)
            text.append(f"{name[:label_width]:<{label_width}} ")
            text.append("█" * filled, style=BAR_STYLES[i % len(BAR_STYLES)])
            text.append("·" * (width - filled), style="dim")
            text.append(f" {share * 100:5.1f}%" + ("\n" if i < len(self._rows) - 1 else ""))
        return text

    def on_resize(self) -> None:
        self.update(self._render_rows())
