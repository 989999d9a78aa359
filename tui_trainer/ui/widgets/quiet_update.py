"""Static updates that skip unchanged content.

Every repaint runs on the UI thread holding the GIL that the training thread needs between
torch ops, and Textual repaints a Static on ``update`` even when nothing changed; the
monitor's values change far less often than they are refreshed.
"""

from __future__ import annotations

from textual.visual import VisualType
from textual.widgets import Static


def update_if_changed(widget: Static, content: VisualType, *, layout: bool = False) -> bool:
    """``widget.update(content)`` unless it already shows ``content``; True when updated."""
    if widget.content == content:
        return False
    widget.update(content, layout=layout)
    return True
