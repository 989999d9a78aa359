"""Classification models: ``AutoModelFor{Sequence,Image}Classification``, LoRA with a trainable head.

A directory with a config but no weights (``demo:tiny-vit``) is built from its config with
random weights, seeded by the run, and trained in full. The label names go into the
model config (``id2label``/``label2id``), so ``final/`` predicts them without tui-trainer.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import ConfigError, ModelError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def is_vision_config(model_path: str, trust_remote_code: bool) -> bool:
    """Image models have an ``image_size`` in their config; text models do not."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"model.name_or_path: cannot read a model config from {model_path}: {err}") from None
    return getattr(config, "image_size", None) is not None


def has_weights(model_path: str) -> bool:
    return any((Path(model_path) / name).is_file() for name in WEIGHT_FILES) or not Path(model_path).is_dir()


def build(cfg: RunConfig, model_path: str, labels: Sequence[str], vision: bool, load_dtype: torch.dtype) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    auto = AutoModelForImageClassification if vision else AutoModelForSequenceClassification
    names = {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
    trust = cfg.model.trust_remote_code
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected: the head is what we train
    hf_logging.disable_progress_bar()
    try:
        if has_weights(model_path):
            model = auto.from_pretrained(
                model_path, dtype=load_dtype, trust_remote_code=trust, ignore_mismatched_sizes=True, **names
            )
        else:
            config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust, **names)
            model = auto.from_config(config, dtype=load_dtype, trust_remote_code=trust)
    except (OSError, ValueError) as err:
        kind = "an image" if vision else "a sequence"
        raise ModelError(f"model.name_or_path: cannot load {kind} classification model from {model_path}: {err}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if cfg.train.gradient_checkpointing and model.supports_gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return _apply_lora(cfg, model) if cfg.lora.enabled else model


def _head_names(model: torch.nn.Module) -> list[str]:
    """The classifier head's module names, kept fully trainable (peft ``modules_to_save``)."""
    return [name for name in ("classifier", "score") if hasattr(model, name)]


def _apply_lora(cfg: RunConfig, model: torch.nn.Module) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        modules_to_save=_head_names(model),
        # SEQ_CLS is peft's task type for any one-label-per-example head, images included.
        task_type="SEQ_CLS",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as err:
        raise ConfigError(f"lora.target_modules: {err}") from None


def export(model: torch.nn.Module, target: Path, preprocessor: Any) -> None:
    """``final/``: a full model loadable by the plain Auto class; LoRA runs add their adapter in ``adapter/``.

    The merged copy is what makes ``AutoModelFor...Classification.from_pretrained(final)`` work
    without peft and with the run's label names; the adapter stays for peft users.
    """
    target.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(target / "adapter")
        merged = copy.deepcopy(model).merge_and_unload()  # the trained model itself stays un-merged
        merged.save_pretrained(target)
    else:
        model.save_pretrained(target)
    if preprocessor is not None:
        preprocessor.save_pretrained(target)
