"""Model-family presets: ``presets/*.toml`` (shipped) plus the user's own, validated like a config.

One file per model family holds the architecture facts the memory estimator needs, the
LoRA target modules, a chat-template note and three levels (``highspeed``, ``quality``,
``bestaccuracy``), each with adjustments for small, medium and large datasets.

User presets live in ``paths.user_config_dir() / "presets"``. A user file named like a
shipped one changes only the keys it sets; a file with a new name adds a family, and may
start from an existing one with ``extends = "qwen2.5-7b"``. Unknown keys and bad values
are :class:`ConfigError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass as validated_dataclass

import tui_trainer
from tui_trainer import paths
from tui_trainer.errors import ConfigError

LEVELS = ("highspeed", "quality", "bestaccuracy")
SIZE_CLASSES = ("small", "medium", "large")

SMALL_DATA_BELOW_TOKENS = 1_000_000
"""Fewer training tokens than this is "small" data: a few thousand examples."""
LARGE_DATA_FROM_TOKENS = 100_000_000
"""This many tokens or more is "large" data: one pass is usually enough."""

FUSED_PROJECTION_TYPES = frozenset({"phi3"})
"""Model types whose attention uses one ``qkv_proj`` and whose MLP uses one ``gate_up_proj``."""

_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True)
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
PositiveFloat = Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)]
Ratio = Annotated[float, Field(ge=0, lt=1, strict=True, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, strict=True)]


def size_class(data_tokens: int | None) -> str:
    """``small`` / ``medium`` / ``large`` by training tokens; unknown size counts as medium."""
    if data_tokens is None:
        return "medium"
    if data_tokens < SMALL_DATA_BELOW_TOKENS:
        return "small"
    if data_tokens >= LARGE_DATA_FROM_TOKENS:
        return "large"
    return "medium"


@validated_dataclass(frozen=True, config=_STRICT)
class ModelFacts:
    """Architecture of a decoder-only model, as in its ``config.json``; enough to estimate memory."""

    hub_id: Name
    """Hub id (or ``demo:tiny-llama``) written to ``model.name_or_path``."""
    model_type: Name
    """``config.json`` model_type: llama, qwen2, mistral, phi3 (phi3 fuses qkv and gate/up projections)."""
    params: PositiveInt
    """Total parameter count; must agree with the shape below (checked to 1%)."""
    layers: PositiveInt
    """num_hidden_layers."""
    hidden: PositiveInt
    """hidden_size."""
    intermediate: PositiveInt
    """intermediate_size of the MLP."""
    vocab: PositiveInt
    """vocab_size (rows of the embedding and of the output head)."""
    heads: PositiveInt
    """num_attention_heads."""
    kv_heads: PositiveInt
    """num_key_value_heads (fewer than heads = grouped-query attention)."""
    max_position_embeddings: PositiveInt
    """Longest sequence the model was trained for; levels are capped to it."""
    tie_word_embeddings: bool = False
    """Output head shares the input embedding matrix."""
    qkv_bias: bool = False
    """q/k/v projections carry a bias (Qwen2)."""
    head_dim: PositiveInt | None = None
    """Per-head width when it is not hidden / heads."""

    @model_validator(mode="after")
    def _consistent(self) -> ModelFacts:
        if self.heads % self.kv_heads:
            raise ValueError(f"kv_heads = {self.kv_heads} must divide heads = {self.heads}")
        if self.head_dim is None and self.hidden % self.heads:
            raise ValueError(f"hidden = {self.hidden} is not a multiple of heads = {self.heads}; set head_dim")
        computed = self.computed_params()
        if abs(computed - self.params) > 0.01 * self.params:
            raise ValueError(
                f"params = {self.params:,} but layers/hidden/intermediate/vocab/heads/kv_heads give "
                f"{computed:,}; check the numbers against the model's config.json"
            )
        return self

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_size

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_size

    @property
    def fused_projections(self) -> bool:
        return self.model_type in FUSED_PROJECTION_TYPES

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer of one decoder block, by module name."""
        h, i = self.hidden, self.intermediate
        if self.fused_projections:
            return {
                "qkv_proj": (h, self.q_dim + 2 * self.kv_dim),
                "o_proj": (self.q_dim, h),
                "gate_up_proj": (h, 2 * i),
                "down_proj": (i, h),
            }
        return {
            "q_proj": (h, self.q_dim),
            "k_proj": (h, self.kv_dim),
            "v_proj": (h, self.kv_dim),
            "o_proj": (self.q_dim, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    @property
    def layer_linear_params(self) -> int:
        """Weights of one block's linear layers (the part 4-bit loading quantizes)."""
        return sum(a * b for a, b in self.linear_shapes().values())

    @property
    def embedding_params(self) -> int:
        """Input embedding plus the output head when it is a separate matrix."""
        return self.vocab * self.hidden * (1 if self.tie_word_embeddings else 2)

    def computed_params(self) -> int:
        """Parameter count implied by the shape (linear weights, q/k/v biases, RMSNorm weights, embeddings)."""
        bias = self.q_dim + 2 * self.kv_dim if self.qkv_bias else 0
        per_layer = self.layer_linear_params + bias + 2 * self.hidden
        return self.layers * per_layer + self.hidden + self.embedding_params


@validated_dataclass(frozen=True, config=_STRICT)
class SizeAdjustment:
    """Changes to a level for one dataset size class; unset fields keep the level's value."""

    epochs: PositiveFloat | None = None
    """Passes over the data."""
    lr_scale: PositiveFloat = 1.0
    """Multiplies the level's learning rate (below 1 for small data)."""
    effective_batch: PositiveInt | None = None
    """Rows per optimizer step."""
    warmup_ratio: Ratio | None = None
    """Share of steps spent warming up."""


@validated_dataclass(frozen=True, config=_STRICT)
class LevelSettings:
    """Hyperparameters of one level; ``for_size`` applies the dataset-size adjustments."""

    lr: PositiveFloat
    """Peak learning rate."""
    epochs: PositiveFloat
    """Passes over the data."""
    max_seq_len: Annotated[int, Field(ge=8, strict=True)]
    """Tokens per row (capped to the model's max_position_embeddings)."""
    effective_batch: PositiveInt
    """Rows per optimizer step; fitting splits it into micro-batch x gradient accumulation exactly."""
    description: str = ""
    """One line for the preset wizard."""
    lora_r: PositiveInt | None = None
    """LoRA rank (required when the family trains LoRA)."""
    lora_alpha: PositiveFloat | None = None
    """LoRA alpha (required when the family trains LoRA)."""
    lora_dropout: Ratio = 0.05
    """Dropout on the LoRA input."""
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warmup."""
    warmup_ratio: Ratio = 0.03
    """Share of steps spent warming up."""
    weight_decay: NonNegativeFloat = 0.0
    """AdamW weight decay."""
    max_grad_norm: NonNegativeFloat = 1.0
    """Gradient clipping (0 = off)."""
    small: SizeAdjustment | None = None
    """Adjustments for small data (see SMALL_DATA_BELOW_TOKENS)."""
    medium: SizeAdjustment | None = None
    """Adjustments for medium data."""
    large: SizeAdjustment | None = None
    """Adjustments for large data (see LARGE_DATA_FROM_TOKENS)."""

    def for_size(self, size: str) -> LevelSettings:
        """These settings with the adjustment for ``size`` applied (and the per-size tables dropped)."""
        if size not in SIZE_CLASSES:
            raise ValueError(f"size class must be one of {', '.join(SIZE_CLASSES)}, got {size!r}")
        adj: SizeAdjustment = getattr(self, size) or SizeAdjustment()
        return dataclasses.replace(
            self,
            lr=self.lr * adj.lr_scale,
            epochs=adj.epochs if adj.epochs is not None else self.epochs,
            effective_batch=adj.effective_batch if adj.effective_batch is not None else self.effective_batch,
            warmup_ratio=adj.warmup_ratio if adj.warmup_ratio is not None else self.warmup_ratio,
            small=None,
            medium=None,
            large=None,
        )


class _LoraTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, strict=True)
    target_modules: list[Name] = Field(min_length=1)


class _PresetFile(BaseModel):
    """The schema of one preset TOML file (after ``extends``/override merging)."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field("", strict=True)
    chat_template_note: str = Field(..., strict=True)
    extends: str | None = Field(None, strict=True)
    model: ModelFacts
    lora: _LoraTable
    levels: dict[str, LevelSettings]

    @field_validator("levels", mode="before")
    @classmethod
    def _all_levels(cls, levels: Any) -> Any:
        if not isinstance(levels, dict):
            return levels  # pydantic reports the type error
        unknown = sorted(set(levels) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown level {unknown[0]!r}; levels are {', '.join(LEVELS)}")
        missing = [name for name in LEVELS if name not in levels]
        if missing:
            raise ValueError(f"missing level {missing[0]!r}; every preset defines {', '.join(LEVELS)}")
        return levels

    @model_validator(mode="after")
    def _lora_levels(self) -> _PresetFile:
        if self.lora.enabled:
            for name, level in self.levels.items():
                if level.lora_r is None or level.lora_alpha is None:
                    raise ValueError(f"levels.{name}: lora_r and lora_alpha are required when lora.enabled = true")
        return self


@dataclass(frozen=True)
class Preset:
    family: str
    """Preset name: the file name without ``.toml``."""
    facts: ModelFacts
    """Architecture facts of the model."""
    target_modules: tuple[str, ...]
    """LoRA target modules."""
    chat_template_note: str
    """How the model formats chat turns (for messages datasets)."""
    levels: dict[str, LevelSettings]
    """``highspeed``, ``quality`` and ``bestaccuracy``."""
    source: Path
    """The file that defined this preset last (a user file when it overrides a shipped one)."""
    description: str = ""
    """One line shown by ``presets list``."""
    lora_enabled: bool = True
    """False for families trained in full (the random demo model)."""
    merged_from: tuple[Path, ...] = ()
    """Every file that contributed, base first (more than one for overrides and ``extends``)."""

    @property
    def user_defined(self) -> bool:
        return not _is_within(self.source, shipped_presets_dir())


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def shipped_presets_dir() -> Path:
    """``presets/`` next to the package (a source checkout), or inside it when installed as package data."""
    package = Path(tui_trainer.__file__).resolve().parent
    inside = package / "presets"
    return inside if inside.is_dir() else package.parent / "presets"


def user_presets_dir() -> Path:
    return paths.user_config_dir() / "presets"


def _read_preset_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the preset as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read preset file: {err.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: TOML syntax error: {err}") from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value (lists included) replaces the base value."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_MODELS_BY_SECTION: dict[str, type] = {"model": ModelFacts, "lora": _LoraTable}


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the table that ``loc`` (ending in the bad key) points into."""
    table = loc[:-1]
    if not table:
        return list(_PresetFile.model_fields)
    if table[0] in _MODELS_BY_SECTION and len(table) == 1:
        cls = _MODELS_BY_SECTION[table[0]]
        return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else list(cls.model_fields)
    if table[0] == "levels" and len(table) == 2:
        return [f.name for f in dataclasses.fields(LevelSettings)]
    if table[0] == "levels" and len(table) == 3:
        return [f.name for f in dataclasses.fields(SizeAdjustment)]
    return []


def _format_errors(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        key = ".".join(loc)
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            known = _known_keys(loc)
            hint = f"; valid keys here: {', '.join(known)}" if known else ""
            lines.append(f"{where}: unknown key {key!r}{hint}")
        elif e["type"] in ("missing", "missing_argument"):
            lines.append(f"{where}: {key} is required")
        else:
            text = e["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
            got = e.get("input")
            shown = "" if isinstance(got, (dict, list)) or key == "" or " got " in text else f", got {got!r}"
            lines.append(f"{where}: {key + ' ' if key else ''}{text}{shown}")
    return "\n".join(lines)


def _build(family: str, raw: dict[str, Any], files: tuple[Path, ...]) -> Preset:
    where = str(files[-1]) if len(files) == 1 else f"{files[-1]} (applied over {', '.join(map(str, files[:-1]))})"
    try:
        parsed = _PresetFile.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, where)) from None
    return Preset(
        family=family,
        facts=parsed.model,
        target_modules=tuple(parsed.lora.target_modules),
        chat_template_note=parsed.chat_template_note,
        levels={name: parsed.levels[name] for name in LEVELS},
        source=files[-1],
        description=parsed.description,
        lora_enabled=parsed.lora.enabled,
        merged_from=files,
    )


def _toml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def load_presets(user_dir: Path | None = None) -> dict[str, Preset]:
    """Shipped presets, then the user's (``user_dir`` or the user config dir) over them, by family name."""
    raws: dict[str, tuple[dict[str, Any], tuple[Path, ...]]] = {}
    for path in _toml_files(shipped_presets_dir()):
        raws[path.stem] = (_read_preset_toml(path), (path,))
    shipped = set(raws)
    pending = {path.stem: (path, _read_preset_toml(path)) for path in _toml_files(user_dir or user_presets_dir())}
    # `extends` may name another user preset, so resolve in dependency order and catch cycles.
    def resolve(name: str, chain: tuple[str, ...]) -> None:
        path, raw = pending.pop(name)
        base_name = raw.get("extends")
        if base_name is None:
            base_raw, base_files = raws[name] if name in shipped else ({}, ())
        else:
            if not isinstance(base_name, str):
                raise ConfigError(f"{path}: extends must be a preset name (a string), got {base_name!r}")
            if base_name in chain or base_name == name:
                cycle = " -> ".join((*chain, name, base_name))
                raise ConfigError(f"{path}: extends = {base_name!r} makes a cycle ({cycle})")
            if base_name in pending:
                resolve(base_name, (*chain, name))
            if base_name not in raws:
                known = ", ".join(sorted(raws))
                raise ConfigError(f"{path}: extends = {base_name!r} is not a known preset; known presets: {known}")
            base_raw, base_files = raws[base_name]
        merged = _merge({k: v for k, v in base_raw.items() if k != "extends"}, raw)
        raws[name] = (merged, (*base_files, path))

    while pending:
        resolve(next(iter(pending)), ())
    return {name: _build(name, raw, files) for name, (raw, files) in sorted(raws.items())}


def get_preset(name: str, user_dir: Path | None = None) -> Preset:
    """The preset called ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    presets = load_presets(user_dir)
    if name not in presets:
        known = ", ".join(presets) or "(none found)"
        raise ConfigError(
            f"unknown preset {name!r}; known presets: {known}. "
            f"Add your own as {user_dir or user_presets_dir()}/{name}.toml"
        )
    return presets[name]


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
    return level


def params_label(params: int) -> str:
    """4212992 -> "4.2M", 7615616512 -> "7.6B"."""
    if params >= 1e9:
        return f"{params / 1e9:.1f}B"
    if params >= 1e6:
        return f"{params / 1e6:.1f}M"
    return f"{params / 1e3:.0f}K" if params >= 1e3 else str(params)

