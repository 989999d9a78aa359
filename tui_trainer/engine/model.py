"""Where the model comes from and what precision it trains in; the task builds it (tasks/).

Model paths are resolved before anything heavy happens so that a typo fails in a second
with exit code 2, not after minutes of dataset preparation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
import torch

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import ConfigError, ModelError
from tui_trainer.tasks.tokenizer import load_tokenizer  # noqa: F401  (re-exported for the CLI and benchmarks)


@dataclass(frozen=True)
class PrecisionPlan:
    precision: str
    """What the run computes in: fp32, bf16 or fp16."""
    mixed_precision: str
    """accelerate's mixed_precision value: no, bf16 or fp16."""
    tf32: bool
    """Whether TF32 matmuls are enabled (CUDA Ampere+ only)."""
    load_dtype: torch.dtype
    """dtype the weights are loaded in."""


def _hub_offline() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_model_path(name_or_path: str, *, tokenizer_only: bool = False, gguf_file: str | None = None) -> str:
    """``demo:*`` and ``.gguf`` -> their built/converted dir; a local dir must hold a config.json; hub ids need a network.

    ``tokenizer_only`` (for ``prepare``) accepts a directory that holds just a tokenizer.
    """
    from tui_trainer.demo.catalog import resolve_model_path as resolve_demo
    from tui_trainer.demo.catalog import resolves

    if resolves(name_or_path, gguf_file):
        return resolve_demo(name_or_path, gguf_file)
    path = Path(name_or_path).expanduser()
    looks_local = path.is_absolute() or name_or_path.startswith((".", "~")) or path.exists()
    if looks_local:
        if not path.is_dir():
            raise ModelError(f"model.name_or_path: {name_or_path!r} does not exist; give a model directory or a hub id")
        if not (path / "config.json").is_file() and not (tokenizer_only and (path / "tokenizer.json").is_file()):
            raise ModelError(
                f"model.name_or_path: {path} has no config.json; point it at a directory saved with save_pretrained"
            )
        return str(path)
    if name_or_path.count("/") > 1:
        raise ModelError(f"model.name_or_path: {name_or_path!r} is neither a local directory nor a hub id (owner/name)")
    if _hub_offline():
        raise ModelError(
            f"model.name_or_path: {name_or_path!r} is not a local directory and the hub is offline "
            "(HF_HUB_OFFLINE is set); download it on a connected machine and give its local path"
        )
    return name_or_path


def plan_precision(cfg: RunConfig, device: torch.device) -> PrecisionPlan:
    wanted = cfg.train.precision
    on_cuda = device.type == "cuda"
    bf16_ok = on_cuda and torch.cuda.is_bf16_supported()
    if not on_cuda:
        if wanted in ("bf16", "fp16"):
            raise ConfigError(f"train.precision = {wanted!r} needs a CUDA GPU; use \"auto\" or \"fp32\" on CPU")
        precision = "fp32"
    elif wanted == "auto":
        precision = "bf16" if bf16_ok else "fp16"
    elif wanted == "bf16" and not bf16_ok:
        raise ConfigError('train.precision = "bf16" is not supported by this GPU; use "auto" (fp16) or "fp32"')
    else:
        precision = wanted
    dtype_names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if cfg.model.dtype != "auto":
        load_dtype = dtype_names[cfg.model.dtype]
    elif cfg.lora.enabled and precision == "bf16":
        # Frozen base weights in bf16 halve memory; trainable LoRA weights stay fp32 (peft upcasts).
        load_dtype = torch.bfloat16
    else:
        load_dtype = torch.float32
    tf32 = bool(cfg.train.tf32 and on_cuda)
    return PrecisionPlan(precision, {"fp32": "no"}.get(precision, precision), tf32, load_dtype)


def load_model(cfg: RunConfig, path: str, plan: PrecisionPlan, device: torch.device) -> torch.nn.Module:
    """The model of ``cfg``'s task, as the engine builds it (for scripts and benchmarks that need the same one)."""
    from tui_trainer.tasks.registry import get_task

    return get_task(cfg).build_model(cfg, path, plan.load_dtype, device)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
