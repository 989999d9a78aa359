"""``report.html``: one self-contained page per run, or one comparing several runs.

Everything is inline (SVG charts from :mod:`plots`, a small stylesheet, no scripts, no
network), so the file can be copied off a GPU box and opened anywhere.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui_trainer.analytics import plots
from tui_trainer.analytics.run_data import RunData, load_run

REPORT_NAME = "report.html"
COMPARISON_NAME = "comparison.html"
_STEP_CHARTS = ("loss", "lr", "grad_norm", "tokens_per_s", "gpu_utilization_pct", "gpu_memory_bytes")
_GPU_SERIES = ("gpu_utilization_pct", "gpu_memory_bytes")
NOT_SAMPLED = "GPU utilization and memory: not sampled"
_WHY_NOT = {True: " (its step events carry no GPU readings).", False: " (the run trained without a CUDA device)."}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.1em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart svg{max-width:100%;height:auto}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:.5em}
pre{background:#f7f7f7;padding:.8em;font-size:.8em;overflow:auto;max-height:30em}
.status{display:inline-block;padding:.1em .6em;border-radius:.8em;background:#eee}.finished{background:#d4edda}
.stopped{background:#fff3cd}.failed{background:#f8d7da}.muted{color:#777}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{_num(c)}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool) else f"<td>{_e(c)}</td>"
            for c in row
        ) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _charts(items: Sequence[str | None]) -> str:
    return '<div class="grid">' + "".join(f'<div class="chart">{svg}</div>' for svg in items if svg) + "</div>"


def _page(title: str, body: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>{body}"
        f'<p class="muted">written by tui-trainer report at {stamp}</p></body></html>\n'
    )


def _findings(run: RunData) -> str:
    if not run.findings and not run.recoveries:
        return "<p>No findings: no spikes, divergence, plateau, overfitting or non-finite steps.</p>"
    rows = [
        [f["step"], f.get("kind", ""), f.get("metric", ""), f.get("value"), f.get("threshold"), f.get("message", ""),
         f.get("recommendation", "")]
        for f in run.findings
    ]
    out = _table(["step", "kind", "metric", "value", "threshold", "what happened", "recommendation"], rows)
    if run.recoveries:
        out += "<h3>Recoveries</h3>" + _table(
            ["at step", "back to", "lr factor", "batches skipped"],
            [[r.get("from_step"), Path(r.get("checkpoint", "")).name, r.get("lr_factor"), r.get("skipped_steps")]
             for r in run.recoveries],
        )
    return out


def _data(run: RunData) -> str:
    if not run.datasets:
        return "<p>No dataset statistics.</p>"
    total = sum(d.get("samples") or 0 for d in run.datasets.values()) or 1
    weights = sum(d.get("weight") or 0 for d in run.datasets.values()) or 1
    rows = [
        [name, d.get("rows"), d.get("tokens_prepared"), (d.get("weight") or 0) / weights, d.get("samples"),
         (d.get("samples") or 0) / total, d.get("epochs")]
        for name, d in run.datasets.items()
    ]
    plan = f"<pre>{_e(run.plan)}</pre>" if run.plan else ""
    table = _table(["dataset", "rows", "tokens", "weight share", "samples drawn", "realised share", "epochs"], rows)
    return plan + table + _charts([plots.share_chart(run)])


def _checkpoints(run: RunData) -> str:
    if not run.checkpoints:
        return "<p>No checkpoints were saved.</p>"
    rows = [[c["step"], c.get("reason", ""), Path(c.get("path", "")).name, c.get("seconds"),
             "kept" if c["exists"] else "pruned"] for c in run.checkpoints]
    return _table(["step", "reason", "directory", "save seconds", "on disk"], rows)


def _summary(run: RunData) -> str:
    m = run.final_metrics()
    status = f'<span class="status {run.status}">{_e(run.status)}</span>'
    ending = f" <span class='muted'>{_e(run.ending)}</span>" if run.ending else ""
    where = f"<p>{_e(run.run_dir)}{' on ' + _e(run.device) if run.device else ''}</p>"
    return where + f"<p>{status}{ending}</p>" + _table(list(m), [list(m.values())])


def _curves(runs: Sequence[RunData]) -> str:
    sampled = any(run.series(name) for run in runs for name in _GPU_SERIES)
    on_cuda = any(run.device.startswith("cuda") for run in runs)
    note = "" if sampled else f'<p class="muted">{_e(NOT_SAMPLED + _WHY_NOT[on_cuda])}</p>'
    return _charts([plots.step_chart(runs, name) for name in _STEP_CHARTS]) + note


def render_run(run: RunData) -> str:
    sections = [
        ("Summary", _summary(run)),
        ("Curves", _curves([run])),
        ("Findings", _findings(run)),
    ]
    task = plots.metric_charts([run])
    if task:
        sections.append(("Task metrics", _charts([svg for _, svg in task])))
    sections += [("Data", _data(run)), ("Checkpoints", _checkpoints(run)), ("Config", f"<pre>{_e(run.config_text)}</pre>")]
    return _page(f"Run report: {run.name}", "".join(f"<h2>{t}</h2>{b}" for t, b in sections))


def render_comparison(runs: Sequence[RunData]) -> str:
    metrics = [run.final_metrics() for run in runs]
    keys = list(dict.fromkeys(k for m in metrics for k in m))
    table = _table(["run", *keys], [[run.name, *(m.get(k) for k in keys)] for run, m in zip(runs, metrics)])
    findings = "".join(f"<h3>{_e(run.name)}</h3>{_findings(run)}" for run in runs)
    task = plots.metric_charts(runs)
    sections = [
        ("Final metrics", table),
        ("Curves", _curves(runs)),
    ]
    if task:
        sections.append(("Task metrics", _charts([svg for _, svg in task])))
    sections += [
        ("Findings", findings),
        ("Data", "".join(f"<h3>{_e(run.name)}</h3>{_data(run)}" for run in runs)),
        ("Configs", "".join(f"<h3>{_e(run.name)}</h3><pre>{_e(run.config_text)}</pre>" for run in runs)),
    ]
    return _page(f"Comparison of {len(runs)} runs", "".join(f"<h2>{t}</h2>{b}" for t, b in sections))


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_run_report(run_dir: Path) -> Path:
    """Write ``<run_dir>/report.html`` from what the run directory holds."""
    return _write(Path(run_dir) / REPORT_NAME, render_run(load_run(Path(run_dir))))


def write_comparison(run_dirs: Sequence[Path], out: Path) -> Path:
    """One page comparing ``run_dirs``; ``out`` is a file, or a directory to put comparison.html in."""
    runs = [load_run(Path(d)) for d in run_dirs]
    out = Path(out)
    if out.is_dir():
        out = out / COMPARISON_NAME
    return _write(out, render_comparison(runs))
