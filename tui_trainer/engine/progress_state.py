"""The counters a run carries across checkpoints: step, tokens, losses, early-stopping state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class RunProgress:
    step: int = 0
    """Optimizer steps completed."""
    tokens_seen: int = 0
    """Non-padding training tokens consumed (all processes)."""
    tokens_per_dataset: dict[str, int] = field(default_factory=dict)
    """Non-padding training tokens per dataset name."""
    loss: float | None = None
    """Training loss of the last finite step."""
    eval_loss: float | None = None
    """Latest eval loss."""
    best_eval: float | None = None
    """Eval loss of the best eval so far."""
    best_step: int | None = None
    """Step of the best eval."""
    evals_without_improvement: int = 0
    """Consecutive evals that did not beat the best (early stopping)."""
    best_metric: str = "eval_loss"
    """What "best" is judged by: the task's metric (eval_loss unless the task says otherwise)."""
    best_value: float | None = None
    """That metric's value at the best eval."""
    eval_metrics: dict[str, Any] = field(default_factory=dict)
    """The task's metrics of the latest eval (explained variance, macro-F1, ...), for report.json."""
    elapsed_seconds: float = 0.0
    """Training time of earlier sessions of this run (before the last resume)."""

    def add_tokens(self, per_dataset: dict[str, int], total: int) -> None:
        self.tokens_seen += total
        for name, count in per_dataset.items():
            self.tokens_per_dataset[name] = self.tokens_per_dataset.get(name, 0) + count

    def record_eval(
        self, loss: float, value: float | None = None, higher_is_better: bool = False, metric: str = "eval_loss",
        metrics: dict[str, Any] | None = None,
    ) -> bool:
        """Record an eval judged by ``value`` of ``metric`` (default: the loss); True when it is the best so far."""
        self.eval_loss = loss
        self.eval_metrics = dict(metrics or {})
        if value is None:  # the task's metric is missing from this eval: fall back to the loss, lower is better
            value, higher_is_better = loss, False
        self.best_metric = metric
        best = self.best_value if self.best_value is not None else self.best_eval
        improved = best is None or (value > best if higher_is_better else value < best)
        if improved:
            self.best_eval, self.best_value, self.best_step = loss, value, self.step
            self.evals_without_improvement = 0
        else:
            self.evals_without_improvement += 1
        return improved

    def to_state(self, session_seconds: float) -> dict[str, Any]:
        """The counters for a checkpoint, whose ``elapsed_seconds`` includes this session."""
        return {**asdict(self), "elapsed_seconds": self.elapsed_seconds + session_seconds}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunProgress:
        # Checkpoints from before best_metric/best_value existed lack them: those judged by the loss.
        return cls(**{f.name: state[f.name] for f in fields(cls) if f.name in state})

    def summary(self, total_steps: int, session_seconds: float) -> dict[str, Any]:
        seconds = self.elapsed_seconds + session_seconds
        return {
            "steps": self.step,
            "total_steps": total_steps,
            "seconds": round(seconds, 3),
            "tokens_seen": self.tokens_seen,
            "tokens_per_s": self.tokens_seen / seconds if seconds > 0 else 0.0,
            "final_loss": self.loss,
            "last_eval_loss": self.eval_loss,
            "best_eval_loss": self.best_eval,
            "best_step": self.best_step,
            "best_metric": self.best_metric,
            "best_value": self.best_value,
            "eval_metrics": self.eval_metrics,
        }
