"""The recovery policy: whether a bad stretch is rolled back, to which checkpoint, at what learning rate.

PaLM's recipe for loss spikes: restart from a checkpoint before the spike and skip the
batches around it. The sampler is step-indexed, so skipping is arithmetic: the run goes
back to checkpoint step c and draws, for its next step, the batch that the detection
step would have drawn; the batches [c, detected) are never seen again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui_trainer.analytics.detectors import Onset


@dataclass(frozen=True)
class Candidate:
    """A checkpoint the run could go back to."""

    step: int
    """Its step."""
    path: Any
    """Its directory."""


class RecoveryPolicy:
    def __init__(self, *, enabled: bool, lr_factor: float, max_recoveries: int) -> None:
        self.enabled = enabled
        self.lr_factor = lr_factor
        self.max_recoveries = max_recoveries
        self.done = 0
        """Rollbacks so far in this run (kept across resumes and rollbacks)."""

    @classmethod
    def from_config(cls, analytics: Any) -> RecoveryPolicy:
        return cls(
            enabled=analytics.recovery == "rollback",
            lr_factor=analytics.recovery_lr_factor,
            max_recoveries=analytics.max_recoveries,
        )

    def allows(self) -> bool:
        return self.enabled and self.done < self.max_recoveries

    def candidates(self, onset: Onset, checkpoints: Sequence[Candidate]) -> list[Candidate]:
        """Checkpoints from before the bad window, newest first (the engine verifies them in turn)."""
        return sorted((c for c in checkpoints if c.step <= onset.first_bad_step), key=lambda c: -c.step)

    def record(self) -> float:
        """Count a rollback; the factor to multiply the learning rate by now."""
        self.done += 1
        return self.lr_factor

    @property
    def cumulative_factor(self) -> float:
        return self.lr_factor**self.done

    def skipped(self, onset: Onset, checkpoint_step: int) -> int:
        return max(onset.detected_step - checkpoint_step, 0)
