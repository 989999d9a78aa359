""""Promote best": the best trial's values as a user preset that ``extends`` the model's family preset.

Only keys a preset level holds are promoted (learning rate, schedule, LoRA settings); others
(dataset weights, seeds) stay in ``best.toml``, the full config of the best trial, and the
result says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from tui_trainer.config.io import read_toml
from tui_trainer.errors import ConfigError
from tui_trainer.planning.presets import load_presets, user_presets_dir
from tui_trainer.search.progress import read_study

LEVEL_FIELDS = {
    "train.lr": "lr",
    "train.lr_scheduler": "lr_scheduler",
    "train.warmup_ratio": "warmup_ratio",
    "train.weight_decay": "weight_decay",
    "train.max_grad_norm": "max_grad_norm",
    "lora.r": "lora_r",
    "lora.alpha": "lora_alpha",
    "lora.dropout": "lora_dropout",
}
"""Searched key -> the preset level field it becomes."""


@dataclass(frozen=True)
class Promoted:
    """What promoting wrote."""

    path: Path
    """The new user preset file."""
    family: str
    """The preset it extends."""
    level: str
    """The level it overrides."""
    values: dict[str, Any]
    """Level fields written, by name."""
    left_out: tuple[str, ...]
    """Searched keys a preset cannot hold (they are in best.toml)."""


def family_of(model_name: str, user_dir: Path | None = None) -> str:
    """The preset family whose model is ``model_name`` (its hub id or demo name)."""
    for name, preset in load_presets(user_dir).items():
        if preset.facts.hub_id == model_name and not name.endswith("-tuned"):
            return name
    raise ConfigError(
        f"model.name_or_path = {model_name!r} belongs to no preset family, so there is nothing to extend; "
        "use the study's best.toml as the config instead"
    )


def promote_best(study_dir: Path, *, level: str = "quality", user_dir: Path | None = None) -> Promoted:
    """Write ``<user presets>/<family>-tuned.toml`` with the best trial's values at ``level``."""
    view = read_study(study_dir)
    best = view.best
    if best is None or best.run_dir is None:
        raise ConfigError(f"{study_dir}: no completed trial yet; promote once a trial has finished")
    config = read_toml(best.run_dir / "config.toml")
    family = family_of(str(config.get("model", {}).get("name_or_path", "")), user_dir)
    values = {LEVEL_FIELDS[k]: v for k, v in best.params.items() if k in LEVEL_FIELDS}
    left_out = tuple(k for k in best.params if k not in LEVEL_FIELDS)
    if not values:
        raise ConfigError(f"{study_dir}: the searched keys ({', '.join(left_out)}) are not preset settings; use best.toml")
    body = {
        "extends": family,
        "description": f"{family} tuned by {study_dir.name}: trial {best.number}, {view.objective} {best.value:.4g}",
        "levels": {level: values},
    }
    target_dir = user_dir or user_presets_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{family}-tuned.toml"
    path.write_text(f"# written by tui-trainer's search screen from {study_dir}\n" + tomli_w.dumps(body), encoding="utf-8")
    load_presets(target_dir)  # a preset that does not load must not be left behind silently
    return Promoted(path, family, level, values, left_out)
