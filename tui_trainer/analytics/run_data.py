"""A run directory read back for the report: curves, evals, findings, checkpoints, config."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.errors import DataError

STEP_SERIES = ("loss", "lr", "grad_norm", "tokens_per_s", "gpu_utilization_pct", "gpu_memory_bytes")
"""Per-step values plotted when present (the last two only where a step event carries them)."""


@dataclass
class RunData:
    run_dir: Path
    """The run directory."""
    name: str
    """Its directory name (the label in comparisons)."""
    status: str = "running"
    """finished | stopped | failed | running (from the last ending event)."""
    ending: str = ""
    """The ending's message or error."""
    config_text: str = ""
    """config.toml as written."""
    summary: dict[str, Any] = field(default_factory=dict)
    """report.json (empty when the run never wrote one)."""
    steps: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """Per-step series by name: (step, value)."""
    abandoned: dict[str, list[list[tuple[int, float]]]] = field(default_factory=dict)
    """Per-step values of the branches recoveries rolled back, one list per rollback."""
    evals: list[dict[str, Any]] = field(default_factory=list)
    """``eval`` events as dicts."""
    findings: list[dict[str, Any]] = field(default_factory=list)
    """``anomaly`` events."""
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    """``recovery`` events."""
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    """``checkpoint_saved`` events, with ``exists`` telling whether the directory is still there."""
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per dataset: prepared rows/tokens, configured weight, samples drawn."""
    plan: str = ""
    """The data mix as the run described it."""
    device: str = ""
    """Where it trained."""

    def series(self, name: str) -> list[tuple[int, float]]:
        return self.steps.get(name, [])

    def final_metrics(self) -> dict[str, Any]:
        """The numbers a comparison table shows for this run."""
        last_eval = self.evals[-1] if self.evals else {}
        losses = self.series("loss")
        evals = [e["eval_loss"] for e in self.evals if _finite(e.get("eval_loss"))]
        out: dict[str, Any] = {
            "status": self.status,
            "steps": self.summary.get("steps", losses[-1][0] if losses else 0),
            "final loss": losses[-1][1] if losses else None,
            "last eval loss": last_eval.get("eval_loss"),
            "best eval loss": min(evals) if evals else None,
            "tokens/s": self.summary.get("tokens_per_s"),
            "seconds": self.summary.get("seconds"),
            "findings": len(self.findings),
        }
        for key, value in (last_eval.get("metrics") or {}).items():
            if _finite(value) and key != "eval_loss":
                out[key] = value
        return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line cut off by a kill: the rest of the log is still worth showing
    return events


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    events_path = run_dir / "events.jsonl"
    if not events_path.is_file():
        raise DataError(f"{run_dir}: not a run directory (no events.jsonl); `tui-trainer runs` lists runs")
    data = RunData(run_dir=run_dir.resolve(), name=run_dir.resolve().name)
    config_path = run_dir / "config.toml"
    if config_path.is_file():
        data.config_text = config_path.read_text(encoding="utf-8")
    report_path = run_dir / "report.json"
    if report_path.is_file():
        try:
            data.summary = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError:
            data.summary = {}
    for event in _read_events(events_path):
        _take(data, event)
    for name, info in (data.summary.get("datasets") or {}).items():
        data.datasets.setdefault(name, {}).update(info)
    return data


def _take(data: RunData, event: dict[str, Any]) -> None:
    kind = event.get("type")
    step = int(event.get("step", 0))
    if kind == "step":
        for name in STEP_SERIES:
            value = event.get(name)
            if _finite(value):
                data.steps.setdefault(name, []).append((step, float(value)))
        for ds, samples in (event.get("samples_per_dataset") or {}).items():
            data.datasets.setdefault(ds, {})["samples"] = samples
    elif kind == "eval":
        data.evals.append(event)
    elif kind == "anomaly":
        data.findings.append(event)
    elif kind == "recovery":
        data.recoveries.append(event)
        # The rolled-back steps are trained again: the curves follow the branch that counts,
        # and the abandoned one is kept apart, drawn faintly, because it shows what went wrong.
        for name, points in data.steps.items():
            data.abandoned.setdefault(name, []).append([p for p in points if p[0] > step])
            data.steps[name] = [p for p in points if p[0] <= step]
        data.evals = [e for e in data.evals if int(e.get("step", 0)) <= step]
    elif kind == "checkpoint_saved":
        data.checkpoints.append({**event, "exists": Path(event.get("path", "")).is_dir()})
    elif kind == "dataset_prepared":
        data.datasets.setdefault(event["name"], {}).update(rows=event.get("rows"), tokens_prepared=event.get("tokens"))
    elif kind == "run_started":
        data.plan = event.get("plan", "")
        data.device = event.get("device", "")
        for spec in (event.get("config") or {}).get("data", {}).get("datasets", []):
            data.datasets.setdefault(spec.get("name", "?"), {})["weight"] = spec.get("weight")
        data.status, data.ending = "running", ""
    elif kind == "run_finished":
        data.status, data.ending = "finished", ""
    elif kind == "run_stopped":
        data.status, data.ending = "stopped", event.get("message") or event.get("reason", "")
    elif kind == "run_failed":
        data.status, data.ending = "failed", event.get("error", "")
