"""Reading what a widget shows, as plain text."""

from __future__ import annotations

from rich.console import Console
from textual.widgets import Static


def static_text(widget: Static, width: int = 120) -> str:
    """The widget's content rendered without styles (tables and Text alike)."""
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    content = widget.content
    console.print(content)
    return console.export_text()


async def wait_until(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds (never blocks the app's event loop)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        await pilot.pause(0.02)
