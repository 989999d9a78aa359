"""The report's charts: matplotlib figures rendered to inline SVG strings.

The report is written at the end of every run, so its cost is paid by every run end. It
was 2.6 s on the demo (1.25 s importing pyplot and matplotlib, 1.35 s for six charts), and
two thirds of the drawing was ``bbox_inches="tight"`` drawing each figure twice. Figures
are built with :class:`matplotlib.figure.Figure` directly (no pyplot, no backend or figure
manager: nothing to close, nothing kept per figure), per-step charts have fixed margins and
draw once, and long curves are thinned to ``MAX_POINTS`` (a few thousand SVG vertices per
line look the same and weigh a hundred times less than a 100k-step run's). Text is left to
the browser (``SVG_RC``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from tui_trainer.analytics.run_data import RunData

FIGSIZE = (7.5, 3.0)
STEP_MARGINS = {"left": 0.1, "right": 0.98, "bottom": 0.16, "top": 0.88}
"""Fixed margins of a per-step chart (inches 0.75 left: room for tick labels like 120,000)."""
SVG_RC = {"svg.fonttype": "none"}
"""Text stays ``<text>`` for the browser to set, instead of every glyph drawn as a path by
FreeType: the glyph layout was the largest part of the drawing time."""
MAX_POINTS = 2000
"""Points drawn per curve; longer curves are thinned evenly, keeping the first and last."""
_KIND_COLORS = {"spike": "#d62728", "divergence": "#9467bd", "nonfinite": "#000000", "plateau": "#8c564b", "overfit": "#e377c2"}
LABELS = {
    "loss": "training loss",
    "lr": "learning rate",
    "grad_norm": "gradient norm (before clipping)",
    "tokens_per_s": "tokens / s",
    "gpu_utilization_pct": "GPU utilization (%)",
    "gpu_memory_bytes": "GPU memory (GiB)",
}


def to_svg(fig: Figure, *, tight: bool = True) -> str:
    """The figure as an ``<svg>`` element; ``tight`` fits the margins to the labels (a second draw)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight" if tight else None)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML


def _subplots(figsize: tuple[float, float]) -> tuple[Figure, Any]:
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def _figure(title: str) -> tuple[Figure, Any]:
    fig, ax = _subplots(FIGSIZE)
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=8)
    return fig, ax


def thin(points: Sequence[tuple[int, float]], limit: int = MAX_POINTS) -> Sequence[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = (len(points) - 1) / (limit - 1)
    return [points[round(i * stride)] for i in range(limit)]


def _xy(points: Sequence[tuple[int, float]], scale: float = 1.0) -> tuple[list[int], list[float]]:
    points = thin(points)
    return [p[0] for p in points], [p[1] * scale for p in points]


def _mark_events(ax, run: RunData, with_labels: bool) -> None:
    seen: set[str] = set()
    for finding in run.findings:
        kind = finding.get("kind", "?")
        ax.axvline(finding["step"], color=_KIND_COLORS.get(kind, "grey"), ls=":", lw=1,
                   label=kind if with_labels and kind not in seen else None)
        seen.add(kind)
    for recovery in run.recoveries:
        ax.axvline(recovery["step"], color="#2ca02c", ls="--", lw=1.2,
                   label="rollback" if with_labels and "rollback" not in seen else None)
        seen.add("rollback")


def step_chart(runs: Sequence[RunData], name: str) -> str | None:
    """One per-step series, runs overlaid; None when no run has it."""
    if not any(run.series(name) for run in runs):
        return None
    scale = 1 / 2**30 if name == "gpu_memory_bytes" else 1.0
    fig, ax = _figure(LABELS.get(name, name))
    single = len(runs) == 1
    for run in runs:
        xs, ys = _xy(run.series(name), scale)
        line = ax.plot(xs, ys, lw=1.2, label="train" if single else run.name)[0]
        for index, branch in enumerate(run.abandoned.get(name, [])):
            ax.plot(*_xy(branch, scale), lw=1, color=line.get_color(), alpha=0.35, ls="--",
                    label="rolled back" if single and index == 0 else None)
        if name == "loss":
            _eval_lines(ax, run, single, line.get_color())
        if single:
            _mark_events(ax, run, with_labels=True)
    if name == "loss" and _all_positive(runs):
        ax.set_yscale("log")
    kept = [v * scale for run in runs for _, v in run.series(name)]
    if kept and any(run.abandoned.get(name) for run in runs):
        # A rolled-back branch far off the scale would flatten the curve that counts; it runs off the top.
        low, high = min(kept), max(kept)
        pad = 0.15 * (high - low) or 0.1 * abs(high) or 1.0
        ax.set_ylim(low - pad, high + 2 * pad)
    if name == "lr":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.legend(fontsize=7, loc="best")
    fig.subplots_adjust(**STEP_MARGINS)
    return to_svg(fig, tight=False)


def _all_positive(runs: Sequence[RunData]) -> bool:
    values = [v for run in runs for _, v in run.series("loss")]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 5


def _eval_lines(ax, run: RunData, single: bool, color: str) -> None:
    evals = [e for e in run.evals if _finite(e.get("eval_loss"))]
    if not evals:
        return
    steps = [e["step"] for e in evals]
    ax.plot(steps, [e["eval_loss"] for e in evals], marker="o", ms=3, lw=1.5, color=color if not single else "black",
            label="eval (all)" if single else f"{run.name} eval")
    if single:
        names = sorted({k for e in evals for k in (e.get("per_dataset") or {})})
        if len(names) > 1:
            for ds in names:
                points = [(e["step"], e["per_dataset"][ds]) for e in evals if _finite((e.get("per_dataset") or {}).get(ds))]
                ax.plot(*_xy(points), marker=".", lw=1, ls="-.", label=f"eval {ds}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_charts(runs: Sequence[RunData]) -> list[tuple[str, str]]:
    """The task's own eval metrics: each scalar over the evals, and matrices (confusion) of the last eval."""
    charts: list[tuple[str, str]] = []
    scalar_names = sorted({k for run in runs for e in run.evals for k, v in (e.get("metrics") or {}).items()
                           if _finite(v) and k != "eval_loss"})
    for name in scalar_names:
        fig, ax = _figure(name.replace("_", " "))
        for run in runs:
            points = [(e["step"], e["metrics"][name]) for e in run.evals if _finite((e.get("metrics") or {}).get(name))]
            ax.plot(*_xy(points), marker="o", ms=3, lw=1.2, label=run.name)
        if len(runs) > 1:
            ax.legend(fontsize=7)
        charts.append((name, to_svg(fig)))
    for run in runs:
        last = (run.evals[-1].get("metrics") or {}) if run.evals else {}
        for name, value in last.items():
            if _is_matrix(value):
                charts.append((f"{name} ({run.name})", _matrix_chart(name, value, last.get("labels"))))
            elif isinstance(value, dict) and len(value) > 1 and all(_finite(v) for v in value.values()):
                charts.append((f"{name} ({run.name})", _bars_chart(f"{name} per class, last eval", value)))
    return charts


def _bars_chart(title: str, values: dict[str, float]) -> str:
    fig, ax = _subplots((FIGSIZE[0], 0.6 + 0.3 * min(len(values), 40)))
    names = list(values)[:40]
    ax.barh(range(len(names)), [values[n] for n in names], color="#1f77b4")
    ax.set_yticks(range(len(names)), [str(n) for n in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_title(title.replace("_", " "), fontsize=10, loc="left")
    ax.tick_params(labelsize=8)
    return to_svg(fig)


def _is_matrix(value: Any) -> bool:
    return (isinstance(value, list) and len(value) > 1 and all(isinstance(r, list) and len(r) == len(value) for r in value)
            and all(_finite(x) for r in value for x in r))


def _matrix_chart(name: str, matrix: list[list[float]], labels: Any) -> str:
    n = len(matrix)
    size = min(1.2 + 0.45 * n, 9)
    fig, ax = _subplots((size, size))
    ax.imshow(matrix, cmap="Blues")
    ticks = labels if isinstance(labels, list) and len(labels) == n else list(range(n))
    ax.set_xticks(range(n), [str(t) for t in ticks], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), [str(t) for t in ticks], fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    ax.set_title(name.replace("_", " "), fontsize=10, loc="left")
    if n <= 20:
        top = max(max(r) for r in matrix) or 1
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7, color="white" if v > top / 2 else "black")
    return to_svg(fig)


def share_chart(run: RunData) -> str | None:
    """Configured weight vs the realised share of samples, per dataset."""
    names = [n for n, d in run.datasets.items() if d.get("samples")]
    if len(names) < 2:
        return None
    total = sum(run.datasets[n]["samples"] for n in names)
    weights = [run.datasets[n].get("weight") or 0.0 for n in names]
    wsum = sum(weights) or 1.0
    fig, ax = _subplots((FIGSIZE[0], 0.6 + 0.45 * len(names)))
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], [w / wsum for w in weights], height=0.4, label="configured weight", color="#aec7e8")
    ax.barh([y - 0.2 for y in ys], [run.datasets[n]["samples"] / total for n in names], height=0.4,
            label="realised share", color="#1f77b4")
    ax.set_yticks(list(ys), names, fontsize=8)
    ax.set_title("data mix", fontsize=10, loc="left")
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=8)
    return to_svg(fig)
