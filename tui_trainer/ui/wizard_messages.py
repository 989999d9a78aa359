"""What the wizard's worker threads tell it, and what it tells the app (``WizardScreen.Edited``).

Defined here to keep wizard.py about the screen; ``namespace`` keeps the handler names
(``on_wizard_screen_edited``) as if they were nested in WizardScreen.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class SetupRead(Message, namespace="wizard_screen"):
    """Presets, levels and the hardware were read (in a worker thread)."""

    def __init__(self, presets: dict[str, Any], levels: tuple[str, ...], hardware: Any, problems: list[str]) -> None:
        super().__init__()
        self.presets = presets
        """Preset families by name."""
        self.levels = levels
        """highspeed / quality / bestaccuracy."""
        self.hardware = hardware
        """The detected Hardware, or None when the probe failed."""
        self.problems = problems
        """What could not be read, for a notification."""


class Fitted(Message, namespace="wizard_screen"):
    """A preset fit finished (in a worker thread)."""

    def __init__(self, seq: int, fit: Any, problem: str | None) -> None:
        super().__init__()
        self.seq = seq
        """Which fit request this answers (only the newest is applied)."""
        self.fit = fit
        """The FitResult, or None when fitting refused."""
        self.problem = problem
        """The UserError's message when fitting refused."""


class Edited(Message, namespace="wizard_screen"):
    """The wizard's values changed: the app keeps them for the next visit."""

    def __init__(self, raw: dict[str, Any]) -> None:
        super().__init__()
        self.raw = raw
        """The config as a plain dict (possibly invalid while being typed)."""


class ModelRead(Message, namespace="wizard_screen"):
    """The base model's config was read and the task's own check ran (in a worker thread)."""

    def __init__(self, key: str, shape: Any) -> None:
        super().__init__()
        self.key = key
        """The values it was read for (model, task and task section); a stale answer is ignored."""
        self.shape = shape
        """The wizard_model.ModelShape."""


class Measured(Message, namespace="wizard_screen"):
    """ "Measure this config" finished (in a worker thread)."""

    def __init__(self, key: str, figures: Any, problem: str | None) -> None:
        super().__init__()
        self.key = key
        """The config it measured (its TOML), to say when the form has moved on since."""
        self.figures = figures
        """measure.BenchFigures, or None when the measurement failed."""
        self.problem = problem
        """Why it failed (a UserError's message, or the run's end), else None."""
