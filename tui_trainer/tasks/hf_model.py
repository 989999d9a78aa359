"""Loading a transformers model for training: dtype, attention implementation, 4-bit, checkpointing, LoRA.

Shared by the tasks that fine-tune a pretrained transformers model; each passes its own
``Auto*`` class and peft task type.
"""

from __future__ import annotations

from typing import Any

import torch

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import ConfigError, ModelError


def load_pretrained(
    auto_class: Any, cfg: RunConfig, path: str, load_dtype: torch.dtype, device: torch.device, *, what: str, **extra: Any
) -> torch.nn.Module:
    from transformers.utils import logging as hf_logging

    kwargs: dict[str, Any] = {
        "dtype": load_dtype,
        "trust_remote_code": cfg.model.trust_remote_code,
        "attn_implementation": cfg.model.attn_implementation,
        **extra,
    }
    if cfg.model.load_in_4bit:
        kwargs["quantization_config"] = _four_bit_config(device)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing/unexpected-keys report is noise for a training UI
    hf_logging.disable_progress_bar()  # tqdm bars would tear through the rich display and the TUI
    try:
        try:
            model = auto_class.from_pretrained(path, **kwargs)
        except (ValueError, ImportError) as err:
            if "attn_implementation" not in str(err) and "sdpa" not in str(err).lower():
                raise
            kwargs["attn_implementation"] = "eager"  # architectures without an SDPA path
            model = auto_class.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelError(f"model.name_or_path: cannot load {what} from {path}: {err}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
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


def apply_lora(cfg: RunConfig, model: torch.nn.Module, task_type: str, **extra: Any) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.model.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.train.gradient_checkpointing)
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        task_type=task_type,
        **extra,
    )
    try:
        peft_model = get_peft_model(model, lora)
    except ValueError as err:
        raise ConfigError(f"lora.target_modules: {err}") from None
    if cfg.train.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    return peft_model


def save_pretrained(model: torch.nn.Module, processor: Any, target, *, merge: bool, lora: bool) -> None:
    """HF-loadable weights (the adapter for LoRA) and the tokenizer/processor; ``merged/`` on request."""
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    if processor is not None:
        processor.save_pretrained(target)
    if merge and lora:
        merged = model.merge_and_unload()
        merged.save_pretrained(target / "merged")
        if processor is not None:
            processor.save_pretrained(target / "merged")
