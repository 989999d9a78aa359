"""The editable hyperparameters of the preset wizard, as (key path, label, type) rows.

Values are applied to the config's plain dict and re-validated by ``config_from_dict``,
so the wizard accepts exactly what a TOML file would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from tui_trainer.config import RunConfig, TrainSection, config_from_dict


@dataclass(frozen=True)
class FormField:
    """One editable key."""

    key: str
    """Dotted key path in the TOML, e.g. ``train.lr``."""
    label: str
    """Short label shown left of the input."""
    kind: str
    """int | float | str | bool | choice."""
    choices: tuple[str, ...] = ()
    """Allowed values for ``choice``."""


FORM_FIELDS: tuple[FormField, ...] = (
    FormField("run.name", "run name", "str"),
    FormField("run.output_dir", "output dir", "str"),
    FormField("lora.enabled", "LoRA", "bool"),
    FormField("lora.r", "LoRA rank", "int"),
    FormField("lora.alpha", "LoRA alpha", "float"),
    FormField("data.max_seq_len", "seq len", "int"),
    FormField("train.max_steps", "max steps", "int"),
    FormField("train.epochs", "epochs", "float"),
    FormField("train.micro_batch_size", "micro batch", "int"),
    FormField("train.grad_accum", "grad accum", "int"),
    FormField("train.lr", "learning rate", "float"),
    FormField("train.lr_scheduler", "scheduler", "choice", get_args(TrainSection.model_fields["lr_scheduler"].annotation)),
    FormField("train.precision", "precision", "choice", get_args(TrainSection.model_fields["precision"].annotation)),
    FormField("train.gradient_checkpointing", "grad ckpt", "bool"),
    FormField("train.eval_every", "eval every", "int"),
    FormField("checkpoint.every_steps", "ckpt every", "int"),
)


def get_value(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def parse_value(field: FormField, text: str) -> Any:
    """Text from an input -> typed value; ValueError names the field."""
    text = text.strip()
    try:
        if field.kind == "int":
            return int(text)
        if field.kind == "float":
            return float(text)
    except ValueError:
        raise ValueError(f"{field.key}: {text!r} is not a {'whole number' if field.kind == 'int' else 'number'}") from None
    return text


def with_value(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``raw`` with ``key`` set (sections created as needed)."""
    import copy

    out = copy.deepcopy(raw)
    node = out
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def validate(raw: dict[str, Any]) -> RunConfig:
    """Raises ConfigError with the core's message."""
    return config_from_dict(raw, source="wizard")
