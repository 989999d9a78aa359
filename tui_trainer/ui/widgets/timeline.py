"""A timeline of sequential step ranges: which dataset is active when."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui_trainer.ui.widgets.bars import BAR_STYLES


class StepTimeline(Static):
    """Each dataset's ``[start, end)`` drawn on a shared step axis."""

    DEFAULT_CSS = """
    StepTimeline { height: auto; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ranges: list[tuple[str, int | None, int | None]] = []

    def set_ranges(self, ranges: list[tuple[str, int | None, int | None]]) -> None:
        self._ranges = list(ranges)
        self.update(self._render_ranges())

    def on_resize(self) -> None:
        self.update(self._render_ranges())

    def _render_ranges(self) -> Table | Text:
        if not self._ranges:
            return Text("add datasets, then give each a step range", style="dim")
        ends = [e for _, _, e in self._ranges if e] + [s for _, s, _ in self._ranges if s]
        horizon = max(ends, default=0) or 1
        width = max(self.size.width - 34, 10) if self.size.width else 30
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(no_wrap=True, max_width=16)
        table.add_column(ratio=1)
        table.add_column(justify="right", no_wrap=True, width=13)
        for i, (name, start, end) in enumerate(self._ranges):
            if start is None or end is None:
                table.add_row(name, Text("no range set", style="dim"), "")
                continue
            lo = round(start / horizon * width)
            hi = max(lo + 1, round(end / horizon * width)) if end > start else lo
            bar = Text("·" * lo, style="dim")
            bar.append("█" * (hi - lo), style=BAR_STYLES[i % len(BAR_STYLES)])
            bar.append("·" * max(0, width - hi), style="dim")
            table.add_row(name, bar, f"{start}–{end}")
        return table
