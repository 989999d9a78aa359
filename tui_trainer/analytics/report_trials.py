"""``report.html`` of a hyperparameter study: one self-contained page comparing its trials.

The page answers what a study is run for: which values won, by how much against the
config's own values (the baseline trial), which keys mattered (optuna's importances), and
what pruning cut short. It reads the study directory only (``results.json`` written at the
study's end, ``study.json``, each trial's events through :func:`search.progress.read_study`),
so it can be rewritten for a live or finished study alike, and is built from the same
inline-SVG pieces as a run's report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tui_trainer.analytics import plots
from tui_trainer.analytics.report_html import REPORT_NAME, _charts, _e, _page, _table, _write
from tui_trainer.search.progress import StudyView, read_study

STATE_COLORS = {"complete": "#2ca02c", "pruned": "#ff7f0e", "failed": "#d62728", "running": "#1f77b4", "interrupted": "#7f7f7f"}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _results(study_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((study_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a study still running: no importances or baseline comparison yet


def _param_text(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _headline(view: StudyView, results: dict[str, Any]) -> str:
    best, baseline, gain = results.get("best"), results.get("baseline"), results.get("improvement")
    counts = {s: sum(1 for t in view.trials if t.state == s) for s in ("complete", "pruned", "failed", "running")}
    lines = [f"{len(view.trials)} trials of {view.budget}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    if best:
        params = ", ".join(f"{k} = {_param_text(v)}" for k, v in best["params"].items())
        lines.append(f"best: trial {best['number']}, {view.objective} {best['value']:.4g} ({params})")
    if baseline and best and gain is not None:
        if best["number"] == baseline["number"]:
            lines.append(f"no trial beat the config's own values (trial {baseline['number']}, {baseline['value']:.4g})")
        else:
            lines.append(f"best {best['value']:.4g} vs default {baseline['value']:.4g} "
                         f"(trial {baseline['number']}, the config's own values): {gain:.1%} better")
    if results.get("steps_saved_by_pruning"):
        saved = results.get("seconds_saved_by_pruning") or 0
        lines.append(f"pruning saved {results['steps_saved_by_pruning']} steps" + (f" (~{saved:.0f} s of training)" if saved else ""))
    return "".join(f"<p>{_e(line)}</p>" for line in lines)


def _trials_table(view: StudyView) -> str:
    keys = list(dict.fromkeys(k for t in view.trials for k in t.params))
    rows = []
    for t in view.trials:
        state = t.state + (" (baseline)" if t.baseline else "")
        value = t.value if _finite(t.value) else None
        rows.append([t.number, state, *(t.params.get(k) for k in keys), value, t.steps, t.error or ""])
    return _table(["#", "state", *keys, view.objective, "steps", "error"], rows)


def objective_chart(view: StudyView) -> str | None:
    """Each trial's objective by trial number, coloured by state, with the best so far."""
    points = [(t.number, t.value, t.state) for t in view.trials if _finite(t.value)]
    if not points:
        return None
    fig, ax = plots._figure(f"{view.objective} by trial")
    ax.set_xlabel("trial", fontsize=8)
    for state in dict.fromkeys(s for _, _, s in points):
        mine = [(n, v) for n, v, s in points if s == state]
        ax.scatter([n for n, _ in mine], [v for _, v in mine], s=18, color=STATE_COLORS.get(state, "grey"), label=state, zorder=3)
    pick = min if view.direction == "minimize" else max
    best, steps = None, []
    for t in view.trials:
        if t.state == "complete" and _finite(t.value):
            best = t.value if best is None else pick(best, t.value)
        if best is not None:
            steps.append((t.number, best))
    if steps:
        ax.step([n for n, _ in steps], [v for _, v in steps], where="post", color="black", lw=1, label="best so far")
    ax.legend(fontsize=7)
    return plots.to_svg(fig)


def curves_chart(view: StudyView) -> str | None:
    """Every trial's eval curve (pruned ones dashed, the baseline black) over the median of the completed trials."""
    if not any(t.curve for t in view.trials):
        return None
    fig, ax = plots._figure(f"{view.objective} at each eval, every trial")
    for t in view.trials:
        if not t.curve:
            continue
        style = {"color": "black", "lw": 2} if t.baseline else {"lw": 1}
        ax.plot([s for s, _ in t.curve], [v for _, v in t.curve], marker=".", ls="--" if t.state == "pruned" else "-",
                label=f"{t.number}{' (baseline)' if t.baseline else ''} {t.state}", **style)
    if view.median_curve:
        steps = sorted(view.median_curve)
        ax.plot(steps, [view.median_curve[s] for s in steps], color="grey", lw=3, alpha=0.4, label="median (completed)")
    ax.legend(fontsize=6, ncol=2)
    return plots.to_svg(fig)


def importance_chart(importances: dict[str, float], completed: int) -> str | None:
    """optuna's parameter importances as bars, the largest first (from ``completed`` trials: few make them rough)."""
    if not importances:
        return None
    names = sorted(importances, key=importances.get, reverse=True)
    fig, ax = plots._subplots((plots.FIGSIZE[0], 0.8 + 0.35 * len(names)))
    ax.barh(range(len(names)), [importances[n] for n in names], color="#1f77b4")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(f"parameter importance (optuna, fANOVA over {completed} completed trials)", fontsize=10, loc="left")
    ax.tick_params(labelsize=8)
    return plots.to_svg(fig)


def param_charts(view: StudyView) -> list[str]:
    """For each searched key, the objective of every trial against the value it tried."""
    out = []
    keys = list(dict.fromkeys(k for t in view.trials for k in t.params))
    for key in keys:
        rows = [(t.params[key], t.value, t.state) for t in view.trials if key in t.params and _finite(t.value)]
        numeric = all(_finite(v) for v, _, _ in rows)
        if not rows:
            continue
        fig, ax = plots._figure(f"{view.objective} against {key}")
        ax.set_xlabel(key, fontsize=8)
        labels = sorted({str(v) for v, _, _ in rows}) if not numeric else []
        for state in dict.fromkeys(s for _, _, s in rows):
            mine = [(v, y) for v, y, s in rows if s == state]
            xs = [v if numeric else labels.index(str(v)) for v, _ in mine]
            ax.scatter(xs, [y for _, y in mine], s=18, color=STATE_COLORS.get(state, "grey"), label=state, zorder=3)
        if numeric and all(v > 0 for v, _, _ in rows) and max(v for v, _, _ in rows) / min(v for v, _, _ in rows) > 20:
            ax.set_xscale("log")
        if labels:
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.legend(fontsize=7)
        out.append(plots.to_svg(fig))
    return out


def render_study(study_dir: Path) -> str:
    view = read_study(study_dir)
    results = _results(study_dir)
    importances = {k: float(v) for k, v in (results.get("importances") or {}).items()}
    sections = [
        ("Summary", f"<p>{_e(study_dir)}: {_e(view.direction)} {_e(view.objective)}</p>" + _headline(view, results)),
        ("Trials", _trials_table(view)),
        ("Objective", _charts([objective_chart(view), curves_chart(view)])),
    ]
    if importances:
        completed = sum(1 for t in view.trials if t.state == "complete")
        sections.append(("Parameter importance", _charts([importance_chart(importances, completed)])))
    else:
        sections.append(("Parameter importance", "<p>Not computed: it needs two completed trials with different values.</p>"))
    sections.append(("Values tried", _charts(param_charts(view))))
    best_toml = study_dir / "best.toml"
    if best_toml.is_file():
        sections.append(("Best config (best.toml)", f"<pre>{_e(best_toml.read_text(encoding='utf-8'))}</pre>"))
    return _page(f"Search report: {study_dir.name}", "".join(f"<h2>{t}</h2>{b}" for t, b in sections))


def is_study_dir(path: Path) -> bool:
    """A hyperparameter study's directory (it holds optuna's journal), not a run's."""
    return (Path(path) / "study.journal").is_file()


def write_study_report(study_dir: Path) -> Path:
    """Write ``<study_dir>/report.html`` comparing the study's trials."""
    study_dir = Path(study_dir)
    return _write(study_dir / REPORT_NAME, render_study(study_dir))
