"""What a checkpoint holds, under named keys, and how it is written and read back strictly.

Files (DESIGN §4.3): trainable weights (peft adapter or full model, safetensors),
``optimizer.pt``, ``scheduler.pt``, ``rng.pt`` (each a dict with one named key, loaded
with ``weights_only=True``) and ``trainer_state.json``. Loading fails loudly on any
missing or unexpected key: a checkpoint that only half-matches is worse than none.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from tui_trainer.engine.checkpoints import TRAINER_STATE
from tui_trainer.engine.progress_state import RunProgress
from tui_trainer.engine.rng import capture_rng
from tui_trainer.errors import ResumeError

STATE_FORMAT = 1
TRAINER_STATE_KEYS = frozenset(f.name for f in fields(RunProgress)) | {
    "format",
    "total_steps",
    "epoch",
    "sampler",
    "fingerprint",
    "micro_batch_size",
    "grad_accum",
    "reason",
    "time",
    "lora",
}
"""trainer_state.json holds exactly these: the run's counters plus what resuming checks."""
PT_FILES = {"optimizer.pt": "optimizer", "scheduler.pt": "scheduler", "rng.pt": "rng"}
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _key_problems(state: dict[str, Any]) -> str | None:
    missing = TRAINER_STATE_KEYS - set(state)
    extra = set(state) - TRAINER_STATE_KEYS
    return f"missing keys {sorted(missing)}, unexpected keys {sorted(extra)}" if missing or extra else None


def write_checkpoint_files(directory: Path, *, model, optimizer, scheduler, trainer_state: dict[str, Any]) -> None:
    problem = _key_problems(trainer_state)
    if problem:
        raise KeyError(f"trainer_state: {problem}")
    # peft writes only the adapter; transformers writes model*.safetensors + config.json.
    model.save_pretrained(directory)
    torch.save({"optimizer": optimizer.state_dict()}, directory / "optimizer.pt")
    torch.save({"scheduler": scheduler.state_dict()}, directory / "scheduler.pt")
    torch.save({"rng": capture_rng()}, directory / "rng.pt")
    (directory / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=1, sort_keys=True), encoding="utf-8")


def _load_named(path: Path, key: str) -> Any:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ResumeError(f"{path}: missing; the checkpoint is incomplete") from None
    except Exception as err:  # weights_only refuses pickled code: that is a corrupt or foreign file
        raise ResumeError(f"{path}: cannot be loaded safely ({err})") from None
    if not isinstance(payload, dict) or set(payload) != {key}:
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ResumeError(f"{path}: expected exactly the key {key!r}, found {found}")
    return payload[key]


def read_trainer_state_strict(directory: Path) -> dict[str, Any]:
    path = directory / TRAINER_STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ResumeError(f"{path}: unreadable ({err})") from None
    problem = _key_problems(state)
    if problem:
        raise ResumeError(f"{path}: {problem}")
    if state["format"] != STATE_FORMAT:
        raise ResumeError(f"{path}: checkpoint format {state['format']} is not supported (expected {STATE_FORMAT})")
    return state


def load_weights(directory: Path, model, *, lora: bool) -> None:
    """Load the trainable weights into ``model``; every key must match."""
    if lora:
        from peft import set_peft_model_state_dict

        path = directory / ADAPTER_WEIGHTS
        if not path.is_file():
            raise ResumeError(f"{directory}: no {ADAPTER_WEIGHTS}; this is not a LoRA checkpoint of this config")
        result = set_peft_model_state_dict(model, load_file(path))
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k]
        if unexpected or missing:
            raise ResumeError(f"{path}: adapter keys do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})")
        return
    files = sorted(directory.glob("model*.safetensors"))
    if not files:
        raise ResumeError(f"{directory}: no model*.safetensors; this is not a full fine-tuning checkpoint of this config")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(file))
    result = model.load_state_dict(weights, strict=False)
    tied = _tied_names(model)
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise ResumeError(
            f"{directory}: model weights do not match (missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})"
        )


def _tied_names(model) -> set[str]:
    """Parameter names that share storage with another parameter (save_pretrained stores one copy)."""
    seen: dict[int, str] = {}
    tied: set[str] = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        ptr = tensor.data_ptr()
        if ptr in seen:
            tied.update({name, seen[ptr]})
        else:
            seen[ptr] = name
    return tied


def load_training_state(directory: Path, *, optimizer, scheduler) -> dict[str, Any]:
    """Load optimizer and scheduler; return the RNG state (restored last, after all set-up)."""
    optimizer_state = _load_named(directory / "optimizer.pt", "optimizer")
    scheduler_state = _load_named(directory / "scheduler.pt", "scheduler")
    rng_state = _load_named(directory / "rng.pt", "rng")
    try:
        optimizer.load_state_dict(optimizer_state)
    except (ValueError, KeyError) as err:
        raise ResumeError(f"{directory / 'optimizer.pt'}: does not match the model's parameters ({err})") from None
    scheduler.load_state_dict(scheduler_state)
    return rng_state
