"""Ranges a study starts from when the user picks keys to search (the TUI's search set-up).

Around the config's own value where a scale makes sense (the learning rate from 1e-5 to 1e-2
or a decade either side of it, on a log scale), the usual choices where the key is discrete
(LoRA rank 4..32).
"""

from __future__ import annotations

from typing import Any

from tui_trainer.config.schema import RunConfig
from tui_trainer.config.search_section import ParamRange

SEARCHABLE: tuple[str, ...] = (
    "train.lr",
    "train.weight_decay",
    "train.warmup_ratio",
    "train.lr_scheduler",
    "lora.r",
    "lora.alpha",
    "lora.dropout",
)
"""Keys offered for every run, before the per-dataset weights."""


def searchable_keys(cfg: RunConfig) -> tuple[str, ...]:
    """The keys the set-up offers for this config (dataset weights when the mix is weighted)."""
    keys = [k for k in SEARCHABLE if cfg.lora.enabled or not k.startswith("lora.")]
    if cfg.data.strategy in ("weighted", "curriculum"):
        keys += [f"data.datasets.{d.name}.weight" for d in cfg.data.datasets]
    return tuple(keys)


def suggested_range(key: str, cfg: RunConfig) -> ParamRange:
    """A sensible first range for ``key`` around the config's value."""
    if key == "train.lr":
        # Wide on purpose: a preset's rate is made for its epochs, and a short study budget can want
        # one far off it (the demo's best-accuracy rate, 1e-3, was 2.5x too low for 24 steps).
        lr = cfg.train.lr
        return ParamRange(low=min(1e-5, lr / 10), high=min(max(1e-2, lr * 10), 1.0), log=True)
    if key == "train.weight_decay":
        return ParamRange(low=0.0, high=0.1)
    if key == "train.warmup_ratio":
        return ParamRange(low=0.0, high=0.2)
    if key == "train.lr_scheduler":
        return ParamRange(choices=["cosine", "linear", "constant"])
    if key == "lora.r":
        return ParamRange(choices=sorted({4, 8, 16, 32, cfg.lora.r}))
    if key == "lora.alpha":
        return ParamRange(choices=sorted({cfg.lora.r, 2 * cfg.lora.r, 4 * cfg.lora.r}))
    if key == "lora.dropout":
        return ParamRange(low=0.0, high=0.2)
    if key.startswith("data.datasets.") and key.endswith(".weight"):
        return ParamRange(low=0.1, high=1.0)
    raise KeyError(key)


def default_objective(cfg: RunConfig) -> str:
    """The metric a study of ``cfg`` optimizes unless told: the one the task ranks checkpoints by."""
    if cfg.classification is not None:
        return cfg.classification.metric_for_best
    return "eval_loss"


def search_config(cfg: RunConfig, keys: list[str], *, trials: int = 12, objective: str = "eval_loss") -> dict[str, Any]:
    """The config as a raw dict with a ``[search]`` section over ``keys`` (each at its suggested range)."""
    raw = cfg.to_dict()
    direction = "minimize" if objective in ("eval_loss", "mse") else "maximize"
    raw["search"] = {
        "trials": trials,
        "objective": objective,
        "direction": direction,
        "space": {key: suggested_range(key, cfg).model_dump(exclude_none=True, exclude_defaults=True) for key in keys},
    }
    return raw
