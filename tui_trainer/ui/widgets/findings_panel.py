"""The detectors' newest findings with what to do about them (DESIGN §4.4 ``anomaly`` events).

Hidden until the first finding: a clean run keeps the monitor's layout it always had. The
full message of every finding is in the event log; the panel keeps the step, the kind and
the recommendation of the newest few, where they stay in view while the log scrolls on.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from tui_trainer.engine import events as ev
from tui_trainer.ui.widgets import styles

SHOWN = 2
"""Findings listed (newest first); the title counts them all."""

KIND_LABELS = {
    "spike": "spike",
    "divergence": "divergence",
    "plateau": "plateau",
    "overfit": "overfitting",
    "nonfinite": "non-finite",
}


def findings_text(findings: Sequence[ev.Anomaly], shown: int = SHOWN) -> Text:
    text = Text()
    for i, finding in enumerate(reversed(findings[-shown:])):
        if i:
            text.append("\n")
        text.append(f"step {finding.step:,} ", style="bold")
        text.append(f"{KIND_LABELS.get(finding.kind, finding.kind)} ({finding.metric})", style=f"bold {styles.WARNING}")
        text.append("\n→ " + finding.recommendation)
    return text


class FindingsPanel(Static):
    """The newest findings and their recommendations."""

    MAX_HEIGHT = 12
    """Rows at most, borders included; less where the side column is short (the monitor sets it)."""
    MIN_HEIGHT = 3
    """The border and the newest finding's first line."""

    DEFAULT_CSS = """
    FindingsPanel { height: auto; max-height: 12; border: round $warning; padding: 0 1; overflow-y: auto; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.display = False
        self.shown_count = 0
        """How many findings the panel has been given (it redraws only when that changes)."""

    def show(self, findings: Sequence[ev.Anomaly]) -> bool:
        """Show ``findings``; True when that changed what the panel holds."""
        if len(findings) == self.shown_count:
            return False
        self.shown_count = len(findings)
        self.display = bool(findings)
        self.border_title = f"findings ({len(findings)})"
        self.update(findings_text(findings))
        return True
