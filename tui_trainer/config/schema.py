"""The run config: DESIGN §4.2 as pydantic v2 models (TOML files and --set overrides live in config/io.py).

Unknown keys are errors (``extra="forbid"``) because a typo such as ``lerning_rate``
must never silently fall back to a default.
"""

from __future__ import annotations

import math
import types
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tui_trainer.config.mix_rules import Strategy, check_mix_static
from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.config.search_section import SearchSection
from tui_trainer.errors import ConfigError



class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunSection(_Section):
    name: str = Field("run", min_length=1, description="run directory name prefix")
    output_dir: str = Field("runs", min_length=1, description="where run directories are created")
    seed: int = Field(42, ge=0, description="seed for model init, data order and dropout")
    task: str = Field("causal_lm", description="training objective: one of tasks.registry.TASK_NAMES")

    @field_validator("task")
    @classmethod
    def _task_is_registered(cls, v: str) -> str:
        from tui_trainer.tasks.registry import TASK_NAMES

        if v not in TASK_NAMES:
            raise ValueError(f"unknown task {v!r}; choose one of: {', '.join(TASK_NAMES)}")
        return v

    @field_validator("name")
    @classmethod
    def _name_is_a_path_part(cls, v: str) -> str:
        if "/" in v or "\\" in v or v in (".", ".."):
            raise ValueError(f"must be a plain name without path separators, got {v!r}")
        return v


class ModelSection(_Section):
    name_or_path: str = Field(
        "demo:tiny-llama", min_length=1, description="local dir, hub id, .gguf file, demo:tiny-llama or demo:smollm2-135m"
    )
    gguf_file: str | None = Field(
        None, min_length=1, description="a .gguf file inside the name_or_path directory (converted once, then cached)"
    )
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
    compile: bool = Field(False, description="torch.compile the model (first steps compile; eager with a warning where it cannot run)")
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="several processes (--nproc): ddp = a full model copy per GPU; fsdp = weights, gradients and optimizer state sharded across GPUs (CUDA only)",
    )
    dist_timeout_s: int = Field(
        3600,
        ge=1,
        description="several processes: how long a rank waits for the others in a collective before the run fails; "
        "rank 0's checkpoint writes and the final export happen while the others wait (torch's NCCL default is 600 s)",
    )
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


class AnalyticsSection(_Section):
    """``[analytics]``: the detectors that watch the curves, recovery from divergence, TensorBoard."""

    spike_sigma: float = Field(6.0, gt=0, description="a step whose loss or grad norm is > mean + N sd of the window")
    spike_window: int = Field(128, ge=8, description="steps in the spike window (spikes are looked for once it is full)")
    plateau_patience: int = Field(0, ge=0, description="evals without improvement before a plateau finding; 0 = off")
    recovery: Literal["off", "rollback"] = Field("off", description="rollback: on divergence or NaNs, go back to the last good checkpoint")
    recovery_lr_factor: float = Field(0.5, gt=0, lt=1, description="learning rate multiplier applied at each rollback")
    max_recoveries: int = Field(2, ge=0, description="rollbacks before the run stops as without recovery")
    tensorboard: bool = Field(False, description="also write TensorBoard event files into <run_dir>/tensorboard")


class SaeSection(_Section):
    """``[sae]``: a sparse autoencoder on one layer of the frozen base ``model.name_or_path``."""

    layer: int = Field(6, ge=0, description="decoder layer whose activations the SAE reads")
    site: Literal["resid_post", "mlp_out", "attn_out"] = Field("resid_post", description="where in the layer")
    hook_module: str | None = Field(None, min_length=1, description="explicit module path (overrides layer + site)")
    architecture: Literal["topk", "standard"] = Field("topk", description="topk (TopK + AuxK) | standard (ReLU + L1)")
    expansion_factor: int = Field(8, gt=0, description="d_sae = expansion_factor x d_in")
    k: int = Field(32, gt=0, description="topk: active features per token")
    l1_coefficient: float = Field(5.0, ge=0, description="standard: L1 penalty, warmed up over l1_warmup_fraction")
    l1_warmup_fraction: float = Field(0.05, ge=0, le=1, description="standard: share of steps the L1 warms up over")
    aux_k_coefficient: float = Field(0.03, ge=0, description="topk: AuxK loss weight on dead features")
    normalize_activations: Literal["none", "expected_norm"] = Field(
        "expected_norm", description="expected_norm: scale inputs to E||x|| = sqrt(d_in) (folded into saved weights)"
    )
    dead_feature_window_tokens: int = Field(1_000_000, gt=0, description="a feature silent this many tokens is dead")
    buffer_tokens: int = Field(65536, gt=0, description="activation shuffle buffer size in tokens")
    drop_bos: bool = Field(True, description="leave BOS positions out of the SAE's activations")
    normalize_decoder: bool | None = Field(
        None,
        description="unit-norm decoder rows after every step, gradient parallel to each row removed before it; "
        "default: on for topk (EleutherAI/sparsify), off for standard (SAELens scales its L1 by the row norms)",
    )


class RunConfig(_Section):
    run: RunSection = Field(default_factory=RunSection)
    model: ModelSection = Field(default_factory=ModelSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    checkpoint: CheckpointSection = Field(default_factory=CheckpointSection)
    analytics: AnalyticsSection = Field(default_factory=AnalyticsSection)
    search: SearchSection | None = Field(None, description="tui-trainer search: the study and its space")
    sae: SaeSection | None = Field(None, description="task sae: the SAE (run.task = \"sae\")")
    classification: ClassificationSection | None = Field(
        None, description='task classification: labels and class imbalance (run.task = "classification")'
    )

    @model_validator(mode="after")
    def _check_classification_section(self) -> RunConfig:
        if self.classification is not None and self.run.task != "classification":
            raise ValueError(
                f'the [classification] section needs run.task = "classification" (run.task is "{self.run.task}"); '
                'set run.task = "classification" or remove [classification]'
            )
        if self.run.task == "classification" and self.classification is None:
            self.classification = ClassificationSection()
        return self

    @model_validator(mode="after")
    def _check_sae_section(self) -> RunConfig:
        if self.sae is not None and self.run.task != "sae":
            raise ValueError(
                f'the [sae] section needs run.task = "sae" (run.task is "{self.run.task}"); '
                'set run.task = "sae" or remove [sae]'
            )
        if self.run.task == "sae" and self.sae is None:
            self.sae = SaeSection()
        return self

    @model_validator(mode="after")
    def _check_mix(self) -> RunConfig:
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


def config_fields() -> list[tuple[str, Any, str]]:
    """(key path, default, description) for every scalar key; the README reference is built from it."""
    rows: list[tuple[str, Any, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            # An optional task section (``SaeSection | None``) documents its keys like any other section.
            if isinstance(ann, types.UnionType):
                ann = next((a for a in ann.__args__ if isinstance(a, type) and issubclass(a, BaseModel)), ann)
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
