"""Resolve, load and wrap the model and tokenizer a run trains.

Model paths are resolved before anything heavy happens so that a typo fails in a second
with exit code 2, not after minutes of dataset preparation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tui_trainer.config import RunConfig
from tui_trainer.errors import ConfigError, ModelError


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


def resolve_model_path(name_or_path: str, *, tokenizer_only: bool = False) -> str:
    """``demo:tiny-llama`` -> its local dir; a local dir must hold a config.json; hub ids need a network.

    ``tokenizer_only`` (for ``prepare``) accepts a directory that holds just a tokenizer.
    """
    from tui_trainer.data.demo import is_demo_name
    from tui_trainer.data.demo import resolve_model_path as resolve_demo

    if is_demo_name(name_or_path):
        return resolve_demo(name_or_path)
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


def load_tokenizer(cfg: RunConfig, path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"model.name_or_path: cannot load a tokenizer from {path}: {err}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"model.name_or_path: {path} has no fast tokenizer (tokenizer.json); tui-trainer needs one")
    # Packing separates documents with EOS and collation pads; encoder-style tokenizers
    # (BERT's [SEP]/[PAD]) have no EOS, so fall back to the separator.
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token is None:
        raise ModelError(f"model.name_or_path: the tokenizer of {path} has no eos, sep or pad token to end documents")
    return tokenizer


def load_model(cfg: RunConfig, path: str, plan: PrecisionPlan, device: torch.device) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    kwargs: dict[str, Any] = {
        "dtype": plan.load_dtype,
        "trust_remote_code": cfg.model.trust_remote_code,
        "attn_implementation": cfg.model.attn_implementation,
    }
    if cfg.model.load_in_4bit:
        kwargs["quantization_config"] = _four_bit_config(device)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing/unexpected-keys report is noise for a training UI
    hf_logging.disable_progress_bar()  # tqdm bars would tear through the rich display and the TUI
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (ValueError, ImportError) as err:
            if "attn_implementation" not in str(err) and "sdpa" not in str(err).lower():
                raise
            kwargs["attn_implementation"] = "eager"  # architectures without an SDPA path
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelError(f"model.name_or_path: cannot load a causal LM from {path}: {err}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.lora.enabled:
        model = _apply_lora(cfg, model)
    return model


def _four_bit_config(device: torch.device) -> Any:
    if device.type != "cuda":
        raise ConfigError("model.load_in_4bit needs a CUDA GPU; set it to false on CPU")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise ConfigError("model.load_in_4bit needs the bitsandbytes package: pip install bitsandbytes") from None
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )


def _apply_lora(cfg: RunConfig, model: torch.nn.Module) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.model.load_in_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.train.gradient_checkpointing
        )
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        task_type="CAUSAL_LM",
    )
    try:
        peft_model = get_peft_model(model, lora)
    except ValueError as err:
        raise ConfigError(f"lora.target_modules: {err}") from None
    if cfg.train.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    return peft_model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
