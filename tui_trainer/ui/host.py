"""What screens may read from the app they run in, without importing it.

The app imports every screen; a screen importing the app back would be a cycle. Screens
read these attributes through :func:`host` and post messages (ui/messages.py) for
everything that changes state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, cast

from tui_trainer.ui.services import Services


class Host(Protocol):
    """The read-only face of the app."""

    services: Services
    """The core functions the UI calls (fakes in tests)."""
    output_dir: Path
    """Where runs live (the home screen's and the picker's directory)."""
    browse_root: Path | None
    """Root of the datasets screen's file browser."""


def host(node: Any) -> Host:
    """The app ``node`` (a screen or widget) runs in, typed as a :class:`Host`."""
    return cast(Host, node.app)
