"""The run config: DESIGN §4.2 as pydantic v2 models, TOML load/save and --set overrides.

Unknown keys are errors (``extra="forbid"``) because a typo such as ``lerning_rate``
must never silently fall back to a default.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tui_trainer.errors import ConfigError

Strategy = Literal["uniform", "weighted", "curriculum", "sequential"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunSection(_Section):
    name: str = Field("run", min_length=1, description="run directory name prefix")
    output_dir: str = Field("runs", min_length=1, description="where run directories are created")
    seed: int = Field(42, ge=0, description="seed for model init, data order and dropout")
    task: Literal["causal_lm"] = Field("causal_lm", description="training objective")

    @field_validator("name")
    @classmethod
    def _name_is_a_path_part(cls, v: str) -> str:
        if "/" in v or "\\" in v or v in (".", ".."):
            raise ValueError(f"must be a plain name without path separators, got {v!r}")
        return v


class ModelSection(_Section):
    name_or_path: str = Field("demo:tiny-llama", min_length=1, description="local dir, hub id, or demo:tiny-llama")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="weight dtype")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field("sdpa", description="attention kernel")
    trust_remote_code: bool = Field(False, description="run code shipped with the model (off unless you trust it)")
    load_in_4bit: bool = Field(False, description="QLoRA 4-bit base weights (CUDA + bitsandbytes only)")


class LoraSection(_Section):
    enabled: bool = Field(True, description="train a LoRA adapter; false = full fine-tuning")
    r: int = Field(16, gt=0, description="LoRA rank")
    alpha: float = Field(32, gt=0, description="LoRA scaling alpha")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: str | list[str] = Field("all-linear", description='"all-linear" or a list of module names')

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError('must name at least one module, or be "all-linear"')
        return v


class DatasetSpec(_Section):
    name: str = Field(..., min_length=1, description="unique name used in logs, stats and reports")
    path: str = Field(..., min_length=1, description="file, directory, hub id, or demo:python-code / demo:python-docs")
    text_field: str | None = Field(None, description="field holding plain text (detected when unset)")
    prompt_field: str | None = Field(None, description="prompt field of prompt+completion records")
    completion_field: str | None = Field(None, description="completion field (the only part with loss)")
    messages_field: str | None = Field(None, description="chat messages field (loss on assistant turns only)")
    weight: float = Field(1.0, description="mixing weight (weighted/curriculum)")
    order: int | None = Field(None, ge=0, description="curriculum phase, 0..n-1")
    start_step: int | None = Field(None, ge=0, description="sequential: first step of [start_step, end_step)")
    end_step: int | None = Field(None, gt=0, description="sequential: end of the range (exclusive)")
    max_samples: int = Field(0, ge=0, description="0 = the full dataset; N = cap (subset mode)")

    @field_validator("weight")
    @classmethod
    def _weight_finite(cls, v: float) -> float:
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"must be a finite number, got {v}")
        if v < 0:
            raise ValueError(f"must be >= 0, got {v}")
        return v


class DataSection(_Section):
    strategy: Strategy = Field("weighted", description="how datasets are mixed into batches")
    normalize_weights: bool = Field(True, description="rescale weights to sum to 1")
    shuffle_across_datasets: bool = Field(True, description="mix rows of different datasets within a batch")
    max_seq_len: int = Field(512, ge=8, description="tokens per row")
    packing: bool = Field(True, description="concatenate documents and cut into max_seq_len rows")
    eval_fraction: float = Field(0.05, ge=0, lt=1, description="share of each dataset held out for eval")
    datasets: list[DatasetSpec] = Field(default_factory=list, description="the datasets to train on")


class TrainSection(_Section):
    max_steps: int = Field(0, ge=0, description="optimizer steps; 0 = derive from epochs")
    epochs: float = Field(1.0, gt=0, description="passes over the data when max_steps = 0")
    micro_batch_size: int = Field(8, gt=0, description="rows per forward pass")
    grad_accum: int = Field(4, gt=0, description="micro-batches per optimizer step")
    lr: float = Field(2e-4, gt=0, description="peak learning rate")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="decay after warmup")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="share of steps spent warming up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping; 0 = off")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto = bf16 where supported")
    tf32: bool = Field(True, description="TF32 matmuls on Ampere+ GPUs")
    gradient_checkpointing: bool = Field(False, description="trade compute for activation memory")
    eval_every: int = Field(100, ge=0, description="steps between evals; 0 = only at the end")
    eval_max_rows: int = Field(256, ge=0, description="held-out rows evaluated per dataset; 0 = all")
    eval_at_start: bool = Field(False, description="also evaluate before the first step (the baseline loss)")
    early_stopping_patience: int = Field(0, ge=0, description="evals without improvement; 0 = off")

    @field_validator("lr")
    @classmethod
    def _lr_finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v}")
        return v


class CheckpointSection(_Section):
    every_steps: int = Field(100, ge=0, description="save every N steps; 0 = off")
    every_minutes: float = Field(15, ge=0, description="save every N minutes; 0 = off")
    keep_last: int = Field(3, ge=1, description="newest checkpoints kept (plus best and final)")
    keep_best: bool = Field(True, description="also keep the best checkpoint by eval loss")


class RunConfig(_Section):
    run: RunSection = Field(default_factory=RunSection)
    model: ModelSection = Field(default_factory=ModelSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    checkpoint: CheckpointSection = Field(default_factory=CheckpointSection)

    @model_validator(mode="after")
    def _check_mix(self) -> RunConfig:
        from tui_trainer.data.mix_validation import check_mix_static

        check_mix_static(self.data, max_steps=self.train.max_steps or None)
        return self

    @property
    def effective_batch(self) -> int:
        """Rows per optimizer step (the sampler's global batch)."""
        return self.train.micro_batch_size * self.train.grad_accum

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for TOML/JSON; ``None`` values are dropped because TOML has no null."""
        return _drop_none(self.model_dump(mode="json"))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _loc_to_path(loc: tuple[Any, ...], raw: dict[str, Any] | None) -> str:
    """("data", "datasets", 1, "weight") -> "data.datasets[1].weight" (named when possible)."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                name = node.get("name") if isinstance(node, dict) else None
                if name:
                    label = f"[{item}] ({name})"
            else:
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def format_validation_error(err: ValidationError, raw: dict[str, Any] | None, source: str) -> str:
    """One line per problem: ``run.toml: train.lr must be > 0, got -1``."""
    lines = []
    for e in err.errors():
        where = _loc_to_path(tuple(e["loc"]), raw)
        kind = e["type"]
        if kind == "extra_forbidden":
            section = where.rsplit(".", 1)[0] if "." in where else "top level"
            msg = f"unknown key {where!r} in {section}; check the spelling (see README 'Config reference')"
        elif kind == "missing":
            msg = f"{where} is required"
        else:
            text = e["msg"].removeprefix("Value error, ")
            text = text.replace("Input should be", "must be").replace("greater than or equal to", ">=").replace("less than or equal to", "<=").replace("greater than", ">").replace("less than", "<")
            got = e.get("input")
            suffix = "" if isinstance(got, (dict, list)) or " got " in text else f", got {got!r}"
            msg = f"{where} {text}{suffix}" if where else text
        lines.append(f"{source}: {msg}")
    return "\n".join(lines)


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> RunConfig:
    """Validate a raw dict; errors become :class:`ConfigError` naming the key path."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, raw, source)) from None


def read_toml(path: Path, kind: str = "config") -> dict[str, Any]:
    """Parse a TOML file; every failure is a ConfigError naming the file (and line for syntax)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {kind} file not found; pass the path of a TOML {kind}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; pass the path of a TOML {kind}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the {kind} as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {kind} file: {err.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: TOML syntax error: {err}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load and validate a TOML run config, applying ``key=value`` overrides first."""
    path = Path(path)
    raw = read_toml(path)
    for item in overrides or []:
        apply_override(raw, item)
    return config_from_dict(raw, str(path))


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(dumps_config(cfg), encoding="utf-8")


def dumps_config(cfg: RunConfig) -> str:
    return tomli_w.dumps(cfg.to_dict())


def loads_config(text: str, source: str = "<string>") -> RunConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: TOML syntax error: {err}") from None
    return config_from_dict(raw, source)


def _parse_value(text: str) -> Any:
    """Parse an override value as a TOML value, falling back to a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply ``train.lr=1e-4`` or ``data.datasets.0.weight=0.5`` (or ``data.datasets.code.weight``)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.lr=1e-4")
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = _list_item(node, part, key)
            continue
        if part not in node:
            if part not in _SECTION_NAMES and i == 0:
                raise ConfigError(f"--set {key}: unknown section {part!r}; sections are {', '.join(_SECTION_NAMES)}")
            node[part] = {}
        node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"--set {key}: {where} is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        idx = _list_index(node, last, key)
        node[idx] = _parse_value(value.strip())
    else:
        node[last] = _parse_value(value.strip())


_SECTION_NAMES = ("run", "model", "lora", "data", "train", "checkpoint")


def _list_index(items: list[Any], part: str, key: str) -> int:
    if part.isdigit():
        idx = int(part)
        if idx < len(items):
            return idx
        raise ConfigError(f"--set {key}: index {idx} is out of range ({len(items)} items)")
    for idx, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return idx
    raise ConfigError(f"--set {key}: no dataset named {part!r}")


def _list_item(items: list[Any], part: str, key: str) -> Any:
    return items[_list_index(items, part, key)]


def config_fields() -> list[tuple[str, Any, str]]:
    """(key path, default, description) for every scalar key; the README reference is built from it."""
    rows: list[tuple[str, Any, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            path = f"{prefix}{name}"
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, path + ".")
            elif name == "datasets":
                walk(DatasetSpec, path + "[].")
            else:
                default = None if field.is_required() else field.get_default(call_default_factory=True)
                rows.append((path, default, field.description or ""))

    walk(RunConfig, "")
    return rows
