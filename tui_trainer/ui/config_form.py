"""The editable keys of the preset wizard, as (key path, label, type) rows, per task.

Values are applied to the config's plain dict and re-validated by ``config_from_dict``,
so the wizard accepts exactly what a TOML file would. Which rows show depends on the
config itself (``run.task``, ``sae.architecture``, ``classification.loss``), so the form
never offers a key the run would ignore.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, get_args

from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.config.schema import RunConfig, SaeSection, TrainSection, config_from_dict
from tui_trainer.tasks.registry import TASK_NAMES

TASK_SECTIONS = {"sae": SaeSection, "classification": ClassificationSection}
"""Tasks with a section of their own (DESIGN §4.2): only the one run.task names may be present."""


def _choices(section: type, name: str) -> tuple[str, ...]:
    return get_args(section.model_fields[name].annotation)


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
    tasks: tuple[str, ...] = ()
    """The tasks that use the key (empty: every task)."""
    when: tuple[str, tuple[Any, ...]] | None = None
    """(another key, its values) the key is used under, e.g. ``sae.k`` only for ``topk``."""


_TRAINED_WEIGHTS = ("causal_lm", "classification")
"""Tasks that train the model itself (the sae task trains only the autoencoder on a frozen base)."""

FORM_FIELDS: tuple[FormField, ...] = (
    FormField("run.name", "run name", "str"),
    FormField("run.output_dir", "output dir", "str"),
    FormField("lora.enabled", "LoRA", "bool", tasks=_TRAINED_WEIGHTS),
    FormField("lora.r", "LoRA rank", "int", tasks=_TRAINED_WEIGHTS, when=("lora.enabled", (True,))),
    FormField("lora.alpha", "LoRA alpha", "float", tasks=_TRAINED_WEIGHTS, when=("lora.enabled", (True,))),
    FormField("data.max_seq_len", "seq len", "int"),
    FormField("train.max_steps", "max steps", "int"),
    FormField("train.epochs", "epochs", "float"),
    FormField("train.micro_batch_size", "micro batch", "int"),
    FormField("train.grad_accum", "grad accum", "int"),
    FormField("train.lr", "learning rate", "float"),
    FormField("train.lr_scheduler", "scheduler", "choice", _choices(TrainSection, "lr_scheduler")),
    FormField("train.precision", "precision", "choice", _choices(TrainSection, "precision")),
    FormField("train.gradient_checkpointing", "grad ckpt", "bool", tasks=_TRAINED_WEIGHTS),
    FormField("train.eval_every", "eval every", "int"),
    FormField("checkpoint.every_steps", "ckpt every", "int"),
)
"""Keys every task shares (the model path and run.task have rows of their own)."""

SAE_FIELDS: tuple[FormField, ...] = (
    FormField("sae.layer", "layer", "int", tasks=("sae",)),
    FormField("sae.site", "site", "choice", _choices(SaeSection, "site"), tasks=("sae",)),
    FormField("sae.architecture", "architecture", "choice", _choices(SaeSection, "architecture"), tasks=("sae",)),
    FormField("sae.expansion_factor", "expansion", "int", tasks=("sae",)),
    FormField("sae.k", "k (active)", "int", tasks=("sae",), when=("sae.architecture", ("topk",))),
    FormField("sae.l1_coefficient", "L1 coeff", "float", tasks=("sae",), when=("sae.architecture", ("standard",))),
)

CLASSIFICATION_FIELDS: tuple[FormField, ...] = (
    FormField("classification.label_field", "label field", "str", tasks=("classification",)),
    FormField(
        "classification.class_weighting", "class weights", "choice",
        _choices(ClassificationSection, "class_weighting"), tasks=("classification",),
    ),
    FormField("classification.loss", "loss", "choice", _choices(ClassificationSection, "loss"), tasks=("classification",)),
    FormField("classification.focal_gamma", "focal gamma", "float", tasks=("classification",), when=("classification.loss", ("focal",))),
    FormField("classification.max_samples_per_class", "cap / class", "int", tasks=("classification",)),
    FormField(
        "classification.metric_for_best", "best by", "choice",
        _choices(ClassificationSection, "metric_for_best"), tasks=("classification",),
    ),
)  # fmt: skip

TASK_FIELD = FormField("run.task", "task", "choice", TASK_NAMES)
ALL_FIELDS: tuple[FormField, ...] = (TASK_FIELD, *FORM_FIELDS, *SAE_FIELDS, *CLASSIFICATION_FIELDS)
"""Every row of the form, in order."""


def get_value(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def task_of(raw: dict[str, Any]) -> str:
    return get_value(raw, "run.task") or "causal_lm"


def is_shown(field: FormField, raw: dict[str, Any]) -> bool:
    """Whether the run ``raw`` describes uses ``field`` (so the form shows it)."""
    if field.tasks and task_of(raw) not in field.tasks:
        return False
    if field.when is not None:
        key, values = field.when
        return get_value(raw, key) in values
    return True


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
    out = copy.deepcopy(raw)
    node = out
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def with_task(raw: dict[str, Any], task: str, earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """``raw`` switched to ``task``: its section added with the defaults, or with ``earlier`` (what
    the user had set on an earlier visit of that task); the other task sections removed, since the
    schema refuses them."""
    out = with_value(raw, "run.task", task)
    for name, section in TASK_SECTIONS.items():
        if name == task:
            out[name] = {**section().model_dump(mode="json", exclude_none=True), **(earlier or raw.get(name) or {})}
        else:
            out.pop(name, None)
    return out


def fields_in(message: str, fields: tuple[FormField, ...] = ALL_FIELDS) -> list[FormField]:
    """The fields a validation message names (``train.grad_accum must be >= 1``), so each error shows at its field."""
    return [f for f in fields if re.search(rf"(?<![\w.]){re.escape(f.key)}(?![\w])", message)]


def validate(raw: dict[str, Any]) -> RunConfig:
    """Raises ConfigError with the core's message."""
    return config_from_dict(raw, source="wizard")
