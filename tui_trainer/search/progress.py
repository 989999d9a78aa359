"""A study as its directory shows it, for a reader in another process (the TUI's search screen).

Read from ``study.json``, the study's ``events.jsonl`` (one ``trial`` line per state change)
and each trial's own ``events.jsonl`` (its eval curve); never from optuna's journal, which
only the study process writes.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.search.trial_process import objective_of


@dataclass(frozen=True)
class TrialRow:
    """One trial as the table shows it."""

    number: int
    """optuna's trial number."""
    state: str
    """running | complete | pruned | failed | interrupted (a dead study's trial, continued by a re-queued one)."""
    params: dict[str, Any]
    """The sampled values of the searched keys."""
    value: float | None
    """The objective of a complete trial (best over its evals), or its last eval otherwise."""
    steps: int
    """Optimizer steps the trial reached."""
    run_dir: Path | None
    """The trial's run directory (for its monitor), once it exists."""
    curve: tuple[tuple[int, float], ...]
    """(step, objective) at each eval after step 0."""
    baseline: bool
    """True for the trial that runs the config's own values."""
    error: str | None = None
    """Why a failed trial failed."""


@dataclass(frozen=True)
class StudyView:
    """The whole study at one moment."""

    study_dir: Path
    """The study's directory."""
    objective: str
    """The optimized metric."""
    direction: str
    """minimize or maximize."""
    budget: int
    """Trials the study will run."""
    trials: tuple[TrialRow, ...]
    """Every trial so far, by number (a re-queued trial replaces the interrupted one it continues)."""
    median_curve: dict[int, float]
    """Median objective of the completed trials at each eval step (the pruner's yardstick)."""

    @property
    def best(self) -> TrialRow | None:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        if not done:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(done, key=lambda t: t.value)

    @property
    def remaining(self) -> int:
        finished = sum(1 for t in self.trials if t.state not in ("running", "interrupted"))
        return max(0, self.budget - finished)


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # the line being written right now
        if isinstance(item, dict):
            out.append(item)
    return out


def _run_dir(root: Path) -> Path | None:
    dirs = sorted(p for p in root.glob("trial-*") if p.is_dir())
    return dirs[-1] if dirs else None


def _curve(run_dir: Path | None, objective: str) -> tuple[tuple[int, float], ...]:
    if run_dir is None:
        return ()
    points = []
    for event in _lines(run_dir / "events.jsonl"):
        if event.get("type") == "eval" and int(event.get("step") or 0) > 0:
            points.append((int(event["step"]), objective_of(event, objective)))
    return tuple(points)


def read_study(study_dir: str | Path) -> StudyView:
    """The study's state from its files; a study still starting reads as empty."""
    study_dir = Path(study_dir)
    card = {}
    try:
        card = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    objective = card.get("objective", "eval_loss")
    latest: dict[int, dict[str, Any]] = {}
    roots: dict[int, Path] = {}
    for event in _lines(study_dir / "events.jsonl"):
        if event.get("type") != "trial":
            continue
        number = int(event["number"])
        latest[number] = {**latest.get(number, {}), **{k: v for k, v in event.items() if v is not None}}
        if event.get("root"):
            roots[number] = Path(event["root"])
    rows = []
    for number, event in sorted(latest.items()):
        root = roots.get(number, study_dir / "trials" / f"{number:03d}")
        run_dir = _run_dir(root)
        curve = _curve(run_dir, objective)
        value = event.get("value")
        if value is None and curve:
            value = curve[-1][1]
        rows.append(TrialRow(
            number, event.get("state", "running"), dict(event.get("params") or {}), value,
            max(int(event.get("step") or 0), curve[-1][0] if curve else 0), run_dir, curve,
            bool(event.get("baseline")), event.get("error"),
        ))
    by_step: dict[int, list[float]] = {}
    for row in rows:
        if row.state == "complete":
            for step, value in row.curve:
                by_step.setdefault(step, []).append(value)
    median = {step: statistics.median(values) for step, values in sorted(by_step.items())}
    return StudyView(study_dir, objective, card.get("direction", "minimize"), int(card.get("budget", len(rows))), tuple(rows), median)


@dataclass(frozen=True)
class StudyInfo:
    """One study directory, for the home screen's list."""

    path: Path
    """The study directory."""
    name: str
    """Its directory name (``<name>-search-<time>``)."""
    trials: int
    """Trials started so far."""
    budget: int
    """Trials the study will run."""
    best: float | None
    """Best objective of a completed trial."""
    objective: str
    """The optimized metric."""
    live: bool
    """True while the study process (detached, pid in search.pid) is alive."""
    updated: float
    """Unix time of the study's newest event."""


def _pid_alive(study_dir: Path) -> bool:
    import os

    try:
        pid = int((study_dir / "search.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def discover_studies(output_dir: str | Path) -> list[StudyInfo]:
    """Studies directly under ``output_dir``, newest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        if not (path / "study.journal").is_file():
            continue
        view = read_study(path)
        best = view.best
        events = path / "events.jsonl"
        updated = events.stat().st_mtime if events.exists() else path.stat().st_mtime
        out.append(StudyInfo(path, path.name, len(view.trials), view.budget, best.value if best else None,
                             view.objective, _pid_alive(path), updated))
    return sorted(out, key=lambda s: s.updated, reverse=True)
