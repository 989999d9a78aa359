"""App-level messages: what the training worker and the run follower tell the app.

Widget-owned messages live inside their widgets; these cross screens, so they live here.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from tui_trainer.engine.events import Event


class EngineEvent(Message):
    """An engine event (already coalesced for per-step metrics) reached the UI thread."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
        """The frozen engine event."""


class TrainingDone(Message):
    """The engine's ``train()`` returned; the run is over however it ended."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result
        """The engine's TrainResult (status, exit_code, checkpoint, message)."""


class TrainingCrashed(Message):
    """The engine raised instead of returning a result."""

    def __init__(self, message: str, *, user_error: bool, details: str = "") -> None:
        super().__init__()
        self.message = message
        """One-paragraph message for the error screen."""
        self.user_error = user_error
        """True for a UserError (bad config, data, model path): exit code 2, no traceback."""
        self.details = details
        """The traceback for anything that is not a UserError (a bug)."""

    @property
    def exit_code(self) -> int:
        return 2 if self.user_error else 1
