"""How a training run ended, and the sentences that tell people what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Outcome:
    status: str
    """finished | stopped."""
    stop_reason: str | None
    """Why the run stopped early (user, signal, stop_file, oom, nan), None when finished."""
    checkpoint: Path | None
    """The newest valid checkpoint left behind."""
    message: str
    """What happened, for people."""


def resume_hint(run_dir: Path) -> str:
    return f"tui-trainer train {run_dir / 'config.toml'} --resume {run_dir}"


def stop_message(step: int, reason: str, run_dir: Path, saved: bool) -> str:
    if saved:
        return f"stopped at step {step} ({reason}); resume with: {resume_hint(run_dir)}"
    return f"stopped at step {step} ({reason}) without a checkpoint (the save failed)"


def oom_message(step: int, run_dir: Path) -> str:
    return (
        f"out of GPU memory at step {step} even with micro-batch 1; turn on "
        "train.gradient_checkpointing, lower data.max_seq_len, or set model.load_in_4bit = true, "
        f"then resume with: {resume_hint(run_dir)}"
    )


def nan_message(streak: int, step: int, checkpoint: Path | None) -> str:
    return (
        f"{streak} steps in a row had a NaN/inf loss (step {step}); lower train.lr or set "
        f"train.max_grad_norm, then resume from {checkpoint or 'the start'}"
    )
