"""Resolve a preset (family x level x data size x hardware) into a RunConfig that fits.

The level fixes the effective batch; fitting only decides how to reach it on this
device: the largest micro-batch that fits (micro-batch x gradient accumulation equals
the target exactly), gradient checkpointing only when nothing fits without it, 4-bit
weights only when 16-bit weights would crowd the card (CUDA with bitsandbytes), and the
precision the hardware supports. A run that cannot fit at all is refused with the
estimate and the cheapest change that would make it fit.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from dataclasses import dataclass

from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.errors import ConfigError
from tui_trainer.planning.hardware import GIB, Hardware
from tui_trainer.planning.memory_estimate import MemoryEstimate, TrainingShape, estimate_memory
from tui_trainer.planning.presets import (
    LevelSettings,
    Preset,
    check_level,
    get_preset,
    load_presets,
    params_label,
    size_class,
)

WEIGHT_SHARE_FOR_4BIT = 0.5
"""16-bit weights above this share of the memory budget switch LoRA runs to 4-bit (QLoRA): the
rest of the card would go to micro-batch 1 with checkpointing, where QLoRA is the usual recipe."""
MIN_SEQ_LEN_SUGGESTION = 128
"""Shorter rows than this are not worth suggesting: most documents would be cut to pieces."""


@dataclass(frozen=True)
class FitResult:
    config: RunConfig
    """The resolved run config (valid: it went through config_from_dict)."""
    estimate: MemoryEstimate
    """Peak memory of the chosen plan on one device."""
    notes: tuple[str, ...]
    """Why each choice was made, one sentence each, for the wizard and the CLI."""
    size_class: str
    """``small``, ``medium`` or ``large`` (by training tokens; medium when unknown)."""


def _bitsandbytes_usable(hardware: Hardware) -> bool:
    # A simulated card plans for another machine: assume it will have bitsandbytes.
    return hardware.simulated or importlib.util.find_spec("bitsandbytes") is not None


def _precision(hardware: Hardware, lora: bool) -> tuple[str, str, bool]:
    """(train.precision, model.dtype, tf32) the engine should use here."""
    if hardware.kind != "cuda":
        return "fp32", "float32", False
    if hardware.bf16:
        return "bf16", "bfloat16" if lora else "float32", True
    # Pre-Ampere cards: fp16 autocast with loss scaling; fp32 master weights when training everything.
    return "fp16", "float16" if lora else "float32", False


def _shape(preset: Preset, level: LevelSettings, hardware: Hardware, seq_len: int, micro_batch: int,
           grad_accum: int, four_bit: bool, checkpointing: bool) -> TrainingShape:  # fmt: skip
    precision, dtype, _ = _precision(hardware, preset.lora_enabled)
    return TrainingShape(
        micro_batch=micro_batch,
        seq_len=seq_len,
        grad_accum=grad_accum,
        lora=preset.lora_enabled,
        lora_r=level.lora_r or 1,
        lora_dropout=level.lora_dropout,
        target_modules=preset.target_modules,
        weight_dtype=dtype,
        load_in_4bit=four_bit,
        autocast=precision in ("bf16", "fp16"),
        gradient_checkpointing=checkpointing,
        device="cuda" if hardware.kind == "cuda" else "cpu",
    )


def _micro_batches(effective: int, devices: int) -> list[int]:
    """Micro-batch sizes that split the batch exactly, also per device under DDP; largest first."""
    per_device = effective // devices if devices > 1 and effective % devices == 0 else effective
    return [m for m in range(per_device, 0, -1) if per_device % m == 0]


def _variants(preset: Preset, hardware: Hardware, budget: int) -> Iterator[tuple[bool, bool]]:
    """(4-bit, checkpointing) in order of preference."""
    can_4bit = preset.lora_enabled and hardware.kind == "cuda" and _bitsandbytes_usable(hardware)
    crowded = preset.facts.params * 2 > WEIGHT_SHARE_FOR_4BIT * budget
    if can_4bit and crowded:
        yield from ((True, False), (True, True))
        return
    yield from ((False, False), (False, True))
    if can_4bit:
        yield from ((True, False), (True, True))


def _search(preset: Preset, level: LevelSettings, hardware: Hardware, seq_len: int, budget: int) -> MemoryEstimate | None:
    """The first plan that fits (its shape says micro-batch, 4-bit and checkpointing), or None."""
    effective = level.effective_batch
    devices = max(1, hardware.gpu_count)
    for four_bit, checkpointing in _variants(preset, hardware, budget):
        for micro in _micro_batches(effective, devices):
            shape = _shape(preset, level, hardware, seq_len, micro, effective // micro, four_bit, checkpointing)
            estimate = estimate_memory(preset.facts, shape)
            if estimate.total <= budget:
                return estimate
    return None


def _smallest(preset: Preset, level: LevelSettings, hardware: Hardware, seq_len: int) -> MemoryEstimate:
    """The cheapest plan there is: micro-batch 1, checkpointing, 4-bit where it could be used."""
    four_bit = preset.lora_enabled and hardware.kind == "cuda"
    shape = _shape(preset, level, hardware, seq_len, 1, level.effective_batch, four_bit, True)
    return estimate_memory(preset.facts, shape)


def _gb(n: float) -> str:
    return f"{n / GIB:.1f} GB"


def _refusal(preset: Preset, level_name: str, level: LevelSettings, hardware: Hardware, seq_len: int,
             budget: int) -> ConfigError:  # fmt: skip
    smallest = _smallest(preset, level, hardware, seq_len)
    measures = ["micro-batch 1", "gradient checkpointing"]
    if smallest.shape.load_in_4bit:
        measures.append("4-bit weights")
    options: list[str] = []
    if hardware.kind == "cuda" and preset.lora_enabled and not _bitsandbytes_usable(hardware):
        options.append("install bitsandbytes (pip install bitsandbytes) so the weights can load in 4 bits")
    shorter = seq_len // 2
    while shorter >= MIN_SEQ_LEN_SUGGESTION:
        if _search(preset, level, hardware, shorter, budget) is not None:
            options.append(f"set data.max_seq_len = {shorter} (--set data.max_seq_len={shorter})")
            break
        shorter //= 2
    device = "a GPU" if hardware.kind == "cuda" else "a machine"
    memory = "memory" if hardware.kind == "cuda" else "RAM (or use a GPU)"
    options.append(f"use {device} with at least {math.ceil(smallest.total / GIB)} GB of {memory}")
    smaller = [
        p for p in load_presets().values()
        if p.facts.params < preset.facts.params and p.family != preset.family and p.lora_enabled
        and _search(p, p.levels[level_name].for_size("medium"), hardware,
                    min(p.levels[level_name].max_seq_len, p.facts.max_position_embeddings), budget)
    ]  # fmt: skip
    if smaller:
        best = max(smaller, key=lambda p: p.facts.params)
        options.append(f"pick a smaller model such as {best.family} ({params_label(best.facts.params)})")
    rest = f" Other options: {'; '.join(options[1:])}." if len(options) > 1 else ""
    return ConfigError(
        f"preset {preset.family} ({level_name}) does not fit on {hardware.describe()}: it needs "
        f"{_gb(smallest.total)} of {_gb(budget)} even with {', '.join(measures)}.\n"
        f"{smallest.format()}\n"
        f"Cheapest change: {options[0]}.{rest}"
    )


def _expected_steps(data_tokens: int, seq_len: int, level: LevelSettings) -> int:
    rows = max(1, math.ceil(data_tokens / seq_len))  # packing fills every row
    return max(1, math.ceil(level.epochs * rows / level.effective_batch))


def fit(preset: Preset, level_name: str, hardware: Hardware, data_tokens: int | None = None,
        base: RunConfig | None = None) -> FitResult:  # fmt: skip
    """Resolve ``preset`` at ``level_name`` for ``hardware`` (see :func:`fit_preset`)."""
    check_level(level_name)
    if data_tokens is not None and data_tokens < 0:
        raise ConfigError(f"--tokens must be >= 0, got {data_tokens}")
    size = size_class(data_tokens)
    level = preset.levels[level_name].for_size(size)
    facts = preset.facts
    notes: list[str] = []
    seq_len = min(level.max_seq_len, facts.max_position_embeddings)
    if seq_len < level.max_seq_len:
        notes.append(f"max_seq_len capped to {seq_len}, the model's context length")
    if data_tokens is None:
        notes.append("data size unknown: medium-data settings (pass the token count for small/large data)")
    else:
        notes.append(f"{size} data ({data_tokens:,} tokens): {level.epochs:g} epoch(s), lr {level.lr:g}, "
                     f"effective batch {level.effective_batch}")  # fmt: skip

    budget = hardware.free_bytes
    estimate = _search(preset, level, hardware, seq_len, budget)
    if estimate is None:
        raise _refusal(preset, level_name, level, hardware, seq_len, budget)
    plan = estimate.shape

    precision, dtype, tf32 = _precision(hardware, preset.lora_enabled)
    if hardware.kind == "cuda":
        extra = " with TF32 matmuls" if tf32 else ""
        why = "" if hardware.bf16 else " (this GPU has no bf16)"
        notes.append(f"{precision} mixed precision{extra}{why}")
    else:
        notes.append("fp32 on the CPU (no mixed precision)")
    if plan.load_in_4bit:
        notes.append(f"4-bit weights (QLoRA): 16-bit weights would take {_gb(facts.params * 2)} of {_gb(budget)}")
    if plan.gradient_checkpointing:
        notes.append("gradient checkpointing on: nothing fits without it")
    accum = level.effective_batch // plan.micro_batch
    notes.append(f"micro-batch {plan.micro_batch} x {accum} accumulation = effective batch {level.effective_batch}")
    if hardware.gpu_count > 1:
        notes.append(f"{hardware.gpu_count} GPUs: each holds a full replica; the estimate is per GPU")
    if hardware.kind == "cuda" and not hardware.simulated and hardware.free_bytes < hardware.total_bytes * 0.9:
        free, total = _gb(hardware.free_bytes), _gb(hardware.total_bytes)
        notes.append(f"only {free} of {total} free: other processes use the GPU")

    base = base or RunConfig()
    raw = base.to_dict()
    if base.run == RunConfig().run:
        raw["run"]["name"] = f"{preset.family}-{level_name}".replace("/", "-")
    raw["model"].update(name_or_path=facts.hub_id, dtype=dtype, load_in_4bit=plan.load_in_4bit)
    raw["lora"] = {"enabled": preset.lora_enabled, "target_modules": list(preset.target_modules)}
    if preset.lora_enabled:
        raw["lora"].update(r=level.lora_r, alpha=level.lora_alpha, dropout=level.lora_dropout)
    raw["data"]["max_seq_len"] = seq_len
    raw["train"].update(
        max_steps=0,
        epochs=level.epochs,
        micro_batch_size=plan.micro_batch,
        grad_accum=accum,
        lr=level.lr,
        lr_scheduler=level.lr_scheduler,
        warmup_ratio=level.warmup_ratio,
        weight_decay=level.weight_decay,
        max_grad_norm=level.max_grad_norm,
        precision=precision,
        tf32=tf32,
        gradient_checkpointing=plan.gradient_checkpointing,
    )
    if data_tokens:
        steps = _expected_steps(data_tokens, seq_len, level)
        raw["train"]["eval_every"] = max(1, steps // 10)
        notes.append(f"about {steps} optimizer steps; evaluation every {raw['train']['eval_every']}")
        if steps < 20:
            notes.append("very few steps: consider more data or more epochs (--set train.epochs=...)")
    config = config_from_dict(raw, source=f"preset {preset.family} ({level_name}), {preset.source}")
    return FitResult(config, estimate, tuple(notes), size)


def fit_preset(name: str, level: str, hardware: Hardware, data_tokens: int | None = None,
               base: RunConfig | None = None) -> FitResult:  # fmt: skip
    """Resolve preset ``name`` at ``level`` for ``hardware`` into a RunConfig that fits.

    ``data_tokens`` picks the small/medium/large adjustments; ``base`` keeps the user's run,
    data and checkpoint sections (datasets etc.) while model, lora and train come from the
    preset. Raises :class:`ConfigError` for an unknown preset or level, or when nothing fits
    (the message holds the estimate and the cheapest change that would make it fit).
    """
    return fit(get_preset(name), level, hardware, data_tokens, base)
