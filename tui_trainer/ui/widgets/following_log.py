"""A Log that stays on its newest line, across resizes, unless the user scrolled up.

Textual's Log follows only while its scroll offset is at the maximum. Shrinking the
terminal raises the maximum without moving the offset, so after 120x40 -> 80x24 the log
silently stopped following. Here "following" is the user's choice: it ends when they
scroll up and comes back when they scroll to the end.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import Log


class FollowingLog(Log):
    """Log whose following survives resizes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.following = True
        """Whether new lines scroll into view (False after the user scrolls up)."""

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.size.height:
            self.following = self.is_vertical_scroll_end

    def on_resize(self) -> None:
        if self.following:
            # After the layout settles: the new maximum offset is known only then.
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Log:
        return super().write_lines(lines, self.following if scroll_end is None else scroll_end)
