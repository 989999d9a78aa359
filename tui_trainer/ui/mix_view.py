"""What the datasets screen shows of a mix, from the core's plan (no widgets here).

Shares come from the sampler the run would build (ui/plan_preview.py), so a curriculum
phase shows the shares of that phase, not the weights normalized over every dataset.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from tui_trainer.config.schema import config_from_dict
from tui_trainer.errors import ConfigError
from tui_trainer.ui.mix_draft import MixDraft
from tui_trainer.ui.plan_preview import PlanPreview, estimated_rows, preview_plan
from tui_trainer.ui.widgets.bars import BAR_STYLES

NOMINAL_STEPS = 1000
"""Run length used for the shares while the real one is unknown (datasets not read yet)."""


def draft_config(draft: MixDraft, settings: dict[str, Any] | None) -> Any:
    """The config the wizard would start from: the kept settings with this mix (None if invalid)."""
    raw = dict(settings or {})
    kept = {k: v for k, v in raw.get("data", {}).items() if k not in ("strategy", "datasets")}
    raw["data"] = {**draft.to_raw(), **kept}
    try:
        return config_from_dict(raw, source="mix")
    except ConfigError:
        return None


def draft_plan(draft: MixDraft, settings: dict[str, Any] | None) -> tuple[PlanPreview | None, bool]:
    """The core's plan for the draft, and whether its run length is known (else nominal)."""
    cfg = draft_config(draft, settings)
    if cfg is None or not draft.datasets:
        return None, False
    rows = estimated_rows(cfg, [d.preview for d in draft.datasets])
    plan = preview_plan(cfg, rows)
    if plan is not None:
        return plan, True
    nominal = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": NOMINAL_STEPS})})
    return preview_plan(nominal, None), False


def run_length(draft: MixDraft, settings: dict[str, Any] | None) -> int | None:
    """Steps of the run once the datasets are read; sequential ranges are not needed for it."""
    probe = MixDraft(strategy="uniform", datasets=draft.datasets, base=draft.base)
    plan, known = draft_plan(probe, settings)
    return plan.total_steps if plan is not None and known else None


def propose_ranges(draft: MixDraft, total: int) -> bool:
    """Give datasets without a sequential range contiguous ranges covering the rest of the run."""
    empty = [d for d in draft.datasets if d.start_step is None and d.end_step is None]
    if not empty:
        return False
    cursor = max((d.end_step for d in draft.datasets if d.end_step is not None), default=0)
    left = max(total - cursor, len(empty))
    for k, d in enumerate(empty):
        d.start_step = cursor + left * k // len(empty)
        d.end_step = cursor + left * (k + 1) // len(empty)
    return True


def _span(start: int, end: int, known: bool) -> str:
    if not known:
        return "?"
    return "no steps" if end <= start else f"{start}–{end - 1}"


def phase_table(plan: PlanPreview, known: bool) -> Table:
    """Curriculum: per phase, its steps and the active datasets' shares."""
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("phase", style="bold", no_wrap=True)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("shares of each batch")
    for p, phase in enumerate(plan.phases):
        shares = ", ".join(f"{name} {share * 100:.0f}%" for name, share in sorted(phase.shares, key=lambda s: -s[1]))
        table.add_row(str(p), _span(phase.start, phase.end, known), shares)
    return table


def join_shares(plan: PlanPreview | None) -> dict[str, tuple[int, float]]:
    """Curriculum: each dataset's first phase and its share of the batch there."""
    out: dict[str, tuple[int, float]] = {}
    for p, phase in enumerate(plan.phases if plan else ()):
        for name, share in phase.shares:
            out.setdefault(name, (p, share))
    return out


def class_distribution(classes: Any, width: int) -> Text:
    """Bars of training rows per label (data.inspect.ClassDistribution), the imbalance, what the cap keeps.

    With a cap, each bar is split: the rows the cap keeps solid, the rows it drops shaded.
    Eval rows are held out per class before the cap and never capped, so the bars count training rows.
    """
    labels, train = classes.labels, classes.train
    text = Text()
    text.append(f"{len(labels)} classes · imbalance {classes.imbalance:.1f}:1", style="bold")
    text.append(f" (largest / smallest of {sum(classes.counts):,} rows)\n", style="dim")
    name_width = min(14, max((len(n) for n in labels), default=1))
    number_width = max((len(f"{c:,}") for c in train), default=1)
    capped = classes.cap > 0
    tail = number_width + (number_width + 3 if capped else 0)
    # Narrow boxes shorten the names before the bars: every line stays within ``width``.
    name_width = max(4, min(name_width, width - tail - 3 - 6))
    bar_width = max(1, width - name_width - tail - 3)
    largest = max(train, default=1) or 1
    for i, (name, count) in enumerate(zip(labels, train, strict=True)):
        whole = round(bar_width * count / largest)
        solid = round(bar_width * classes.kept[i] / largest)
        text.append(f"{name[:name_width]:<{name_width}} ")
        text.append("█" * solid, style=BAR_STYLES[i % len(BAR_STYLES)])
        text.append("▒" * (whole - solid), style="dim")
        text.append(" " * (bar_width - whole))
        text.append(f" {count:>{number_width},}")
        if capped:
            text.append(f" → {classes.kept[i]:>{number_width},}", style="bold")
        text.append("\n")
    kept_total, train_total = sum(classes.kept), sum(train)
    if capped:
        text.append(
            f"cap {classes.cap:,} per class keeps {kept_total:,} of {train_total:,} training rows; "
            f"imbalance {classes.imbalance_kept:.1f}:1 after the cap"
        )
    else:
        text.append(f"no cap: all {train_total:,} training rows are used (classification.max_samples_per_class = 0)", style="dim")
    return text
