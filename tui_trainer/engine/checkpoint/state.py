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

from tui_trainer.engine.checkpoint.store import TRAINER_STATE
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


# Keys a checkpoint of an older version may lack: their owners start afresh without them.
OPTIONAL_STATE_KEYS = frozenset({"analytics"})


def _key_problems(state: dict[str, Any]) -> str | None:
    missing = TRAINER_STATE_KEYS - set(state)
    extra = set(state) - TRAINER_STATE_KEYS - OPTIONAL_STATE_KEYS
    return f"missing keys {sorted(missing)}, unexpected keys {sorted(extra)}" if missing or extra else None


def write_checkpoint_files(
    directory: Path, *, model, optimizer, scheduler, trainer_state: dict[str, Any], gathered: tuple[dict, dict] | None = None
) -> None:
    """``gathered``: (weights, optimizer state) an FSDP run collected on rank 0 (checkpoint/sharded.py);
    without it the model and optimizer hold their full state themselves."""
    problem = _key_problems(trainer_state)
    if problem:
        raise KeyError(f"trainer_state: {problem}")
    # peft writes only the adapter; transformers writes model*.safetensors + config.json.
    if gathered is None:
        model.save_pretrained(directory)
        optimizer_state = optimizer.state_dict()
    else:
        weights, optimizer_state = gathered
        model.save_pretrained(directory, state_dict=weights)
    torch.save({"optimizer": optimizer_state}, directory / "optimizer.pt")
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
    from tui_trainer.engine.checkpoint import sharded

    if sharded.is_sharded(model):
        return _load_weights_sharded(directory, model, lora=lora)
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
    if (missing or result.unexpected_keys) and _load_converted(directory, model):
        return
    if missing or result.unexpected_keys:
        raise ResumeError(
            f"{directory}: model weights do not match (missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})"
        )


def _load_weights_sharded(directory: Path, model, *, lora: bool) -> None:
    """Every rank reads the full weights and keeps its own shard (FSDP; collective)."""
    from tui_trainer.engine.checkpoint import sharded

    if lora:
        path = directory / ADAPTER_WEIGHTS
        if not path.is_file():
            raise ResumeError(f"{directory}: no {ADAPTER_WEIGHTS}; this is not a LoRA checkpoint of this config")
        weights = sharded.adapter_weights_by_name(model, load_file(path), str(path))
    else:
        files = sorted(directory.glob("model*.safetensors"))
        if not files:
            raise ResumeError(f"{directory}: no model*.safetensors; this is not a full fine-tuning checkpoint of this config")
        weights = {}
        for file in files:
            weights.update(load_file(file))
        missing = sorted(set(sharded.trainable_names(model)) - set(weights) - _tied_names(model))
        if missing:
            raise ResumeError(f"{directory}: model weights do not match (missing {missing[:5]})")
    sharded.load_trainable(model, weights, str(directory))


def _load_converted(directory: Path, model) -> bool:
    """Load through transformers when save_pretrained renamed the keys (v5 writes some architectures,
    e.g. ViT, under their legacy names); True when every weight then matched."""
    from_pretrained = getattr(type(model), "from_pretrained", None)
    if from_pretrained is None or not (directory / "config.json").is_file():
        return False
    dtype = next(model.parameters()).dtype
    try:
        fresh = from_pretrained(directory, dtype=dtype)
    except (OSError, ValueError):
        return False
    result = model.load_state_dict(fresh.state_dict(), strict=False)
    return not result.missing_keys and not result.unexpected_keys


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


def load_training_state(directory: Path, *, optimizer, scheduler, model=None) -> dict[str, Any]:
    """Load optimizer and scheduler; return the RNG state (restored last, after all set-up).

    ``model`` (the unwrapped one): a sharded model's optimizer loads through its shards.
    """
    from tui_trainer.engine.checkpoint import sharded

    optimizer_state = _load_named(directory / "optimizer.pt", "optimizer")
    scheduler_state = _load_named(directory / "scheduler.pt", "scheduler")
    rng_state = _load_named(directory / "rng.pt", "rng")
    try:
        if model is not None and sharded.is_sharded(model):
            sharded.load_optimizer_sharded(model, optimizer, optimizer_state)
        else:  # by position: an FSDP checkpoint's name keys load as well as indexes
            optimizer.load_state_dict(optimizer_state)
    except ResumeError as err:
        raise ResumeError(f"{directory / 'optimizer.pt'}: {err}") from None
    except (ValueError, KeyError) as err:
        raise ResumeError(f"{directory / 'optimizer.pt'}: does not match the model's parameters ({err})") from None
    scheduler.load_state_dict(scheduler_state)
    return rng_state
