"""The shape of a preset file: architecture facts, levels and their data-size adjustments.

Validated with pydantic (``extra="forbid"``) so a typo in a preset is an error naming the
key, exactly like the run config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass as validated_dataclass

LEVELS = ("highspeed", "quality", "bestaccuracy")
SIZE_CLASSES = ("small", "medium", "large")


def unknown_level(level: str) -> str:
    return f"unknown level {level!r}; levels are {', '.join(LEVELS)}"


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
            raise ValueError(unknown_level(unknown[0]))
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
        from tui_trainer.paths import is_shipped

        return not is_shipped(self.source)


