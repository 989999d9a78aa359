"""What a checkpoint must agree on with the config that resumes it.

A resume that silently changes the model, the data, the effective batch or the seed would
produce a run that matches neither config. Keys outside this fingerprint are safe to
change between stop and resume: micro-batch size (with the same effective batch),
eval/checkpoint cadence, a longer ``max_steps``, precision and kernels fitted to a new GPU,
logging and output location.
"""

from __future__ import annotations

from typing import Any

from pathlib import Path

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import ResumeError

# Dotted config keys that may differ on resume; everything else is part of the fingerprint.
SAFE_KEYS = frozenset(
    {
        "run.name",
        "run.output_dir",
        "train.micro_batch_size",
        "train.grad_accum",
        "train.max_steps",
        "train.epochs",
        "train.eval_every",
        "train.eval_max_rows",
        "train.eval_at_start",
        "train.early_stopping_patience",
        "train.precision",
        "train.tf32",
        "train.gradient_checkpointing",
        "train.compile",
        "train.dist_timeout_s",
        "model.attn_implementation",
        "model.trust_remote_code",
    }
)
SAFE_PREFIXES = ("checkpoint.", "analytics.")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(sub, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for index, sub in enumerate(value):
            name = sub.get("name", index)
            _flatten(sub, f"{prefix}[{name}]", out)
    else:
        out[prefix] = value


def _is_safe(key: str) -> bool:
    return key in SAFE_KEYS or key.startswith(SAFE_PREFIXES)


def config_fingerprint(cfg: RunConfig, data_fingerprints: dict[str, str] | None = None) -> dict[str, Any]:
    """Flat ``{key: value}`` of everything that must not change across a resume."""
    flat: dict[str, Any] = {}
    _flatten(cfg.to_dict(), "", flat)
    result = {k: v for k, v in flat.items() if not _is_safe(k)}
    result["effective_batch"] = cfg.effective_batch
    for name, digest in sorted((data_fingerprints or {}).items()):
        result[f"prepared[{name}]"] = digest
    return result


def fingerprint_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences, one per key: ``train.lr: 0.0002 -> 0.0001``."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        before, after = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if before != after:
            diffs.append(f"{key}: {before!r} -> {after!r}")
    return diffs


def check_resumable(checkpoint: Path, state: dict[str, Any], current: dict[str, Any], total_steps: int) -> None:
    """Refuse a checkpoint of a different config (listing what differs) or one past the run's end."""
    diffs = fingerprint_diff(state["fingerprint"], current)
    if diffs:
        listed = "\n  ".join(diffs)
        raise ResumeError(
            f"{checkpoint}: was saved with a different config; these settings differ:\n  {listed}\n"
            "Change them back, or start a new run without --resume."
        )
    if state["step"] > total_steps:
        raise ResumeError(
            f"{checkpoint}: is at step {state['step']} but the run now ends at step {total_steps}; "
            "set train.max_steps to at least that"
        )
