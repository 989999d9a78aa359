"""The recommendation attached to each finding: a config key and a value to try, not a platitude."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Advice:
    """The settings a recommendation refers to."""

    lr: float
    """train.lr (the peak learning rate)."""
    max_grad_norm: float
    """train.max_grad_norm (0 = no clipping)."""
    lora_dropout: float | None
    """lora.dropout, or None for full fine-tuning."""
    weight_decay: float = 0.0
    """train.weight_decay."""
    recovery: bool = False
    """Whether analytics.recovery = "rollback" will act on divergence by itself."""

    @classmethod
    def from_config(cls, cfg: Any) -> Advice:
        return cls(
            lr=cfg.train.lr,
            max_grad_norm=cfg.train.max_grad_norm,
            lora_dropout=cfg.lora.dropout if cfg.lora.enabled else None,
            weight_decay=cfg.train.weight_decay,
            recovery=cfg.analytics.recovery == "rollback",
        )


def _lower_lr(ctx: Advice, factor: float = 0.5) -> str:
    return f"lower train.lr to {ctx.lr * factor:.0e} (now {ctx.lr:.0e})"


def for_spike(metric: str, ctx: Advice) -> str:
    if metric == "grad_norm" and ctx.max_grad_norm == 0:
        return f"set train.max_grad_norm = 1.0 (clipping is off), or {_lower_lr(ctx)}"
    return f"{_lower_lr(ctx)} if spikes repeat; one spike the loss recovers from is harmless"


def for_divergence(ctx: Advice) -> str:
    fix = _lower_lr(ctx)
    if ctx.max_grad_norm == 0:
        fix += " and set train.max_grad_norm = 1.0"
    if ctx.recovery:
        return f"analytics.recovery rolls back to the last good checkpoint while max_recoveries allows; if it diverges again, {fix}"
    return f'{fix} and resume from the last good checkpoint, or set analytics.recovery = "rollback"'


def for_nonfinite(ctx: Advice) -> str:
    clip = "set train.max_grad_norm = 1.0, " if ctx.max_grad_norm == 0 else ""
    return f"{clip}{_lower_lr(ctx)}; with fp16 use train.precision = \"bf16\" where the GPU has it"


def for_plateau(best_step: int, ctx: Advice) -> str:
    return f"stop: best eval was step {best_step:,}; or {_lower_lr(ctx)} to get past it"


def for_overfit(best_step: int, ctx: Advice) -> str:
    if ctx.lora_dropout is not None:
        more = f"raise lora.dropout to {min(ctx.lora_dropout + 0.1, 0.5):.2f}"
    else:
        more = f"raise train.weight_decay to {max(ctx.weight_decay * 2, 0.01):g}"
    return f"stop: best eval was step {best_step:,} (kept by checkpoint.keep_best); or {more}, or add data"
