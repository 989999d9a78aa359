"""What a study found: results.json (every trial), best.toml (the best trial's config), importances,
and the best trial against the baseline (the config's own values, run as trial 0 on the same data)."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.config.search_section import SearchSection
from tui_trainer.search.space import Param


@dataclass(frozen=True)
class StudySummary:
    """The study's trials and its headline figures."""

    trials: list[dict[str, Any]]
    """One dict per trial: number, state, params, value, steps, run_dir, error, baseline."""
    best: dict[str, Any] | None
    """The best completed trial (None when none completed)."""
    baseline: dict[str, Any] | None
    """The completed baseline trial (the config's own values), if it ran."""
    importances: dict[str, float]
    """optuna's parameter importances (empty with fewer than two completed trials)."""
    objective: str
    """The metric the study optimized."""
    direction: str
    """minimize or maximize."""
    steps_saved: int
    """Optimizer steps pruned trials did not run, against running them to the end."""
    seconds_saved: float = 0.0
    """Wall time those steps would have taken, at the completed trials' median seconds per step."""
    trial_seconds: float = 0.0
    """Wall time of every trial's run (run_started to its end), summed."""

    @property
    def improvement(self) -> float | None:
        """How much better the best trial is than the baseline, as a fraction of the baseline (positive = better)."""
        if not self.best or not self.baseline or not self.baseline["value"]:
            return None
        b, d = self.best["value"], self.baseline["value"]
        gain = (d - b) if self.direction == "minimize" else (b - d)
        return gain / abs(d)

    def headline(self) -> str:
        best = self.best
        counts = {s: sum(1 for t in self.trials if t["state"] == s) for s in ("complete", "pruned", "failed")}
        text = (f"best trial {best['number']}: {self.objective} {best['value']:.4g} "
                f"({', '.join(f'{k}={_fmt(v)}' for k, v in best['params'].items())}); "
                f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed")
        if self.improvement is not None:
            if best["number"] == self.baseline["number"]:
                text += f"; no trial beat the config's own values (trial {best['number']}): keep them"
            else:
                text += (f"; best {best['value']:.4g} vs default {self.baseline['value']:.4g} "
                         f"(trial {self.baseline['number']}, the config's own values): {self.improvement:.1%} better")
        if self.steps_saved:
            text += f"; pruning saved {self.steps_saved} steps"
            if self.seconds_saved and self.trial_seconds:
                share = self.seconds_saved / (self.trial_seconds + self.seconds_saved)
                text += f" (~{self.seconds_saved:.0f} s, {share:.0%} of running every trial to the end)"
        return text


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def trial_timing(run_dir: str | Path | None) -> tuple[float, int]:
    """(seconds from run_started to run_finished or run_stopped, steps reached) from a trial's events;
    (0, 0) when it never started. Process start-up and the cleanup after the end are left out:
    a pruned trial pays them anyway."""
    if not run_dir:
        return 0.0, 0
    try:
        lines = Path(run_dir, "events.jsonl").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 0.0, 0
    first = end = None
    steps = 0
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("type")
        if kind == "run_started" and first is None:
            first = float(event["time"])
        elif kind in ("run_finished", "run_stopped"):
            end = float(event["time"])
        elif kind == "step":
            steps = max(steps, int(event.get("step") or 0))
    if first is None or end is None:
        return 0.0, steps
    return end - first, steps


def _state(t) -> str:
    """The trial event's word for optuna's state (optuna says FAIL, the events and the table say failed)."""
    return {"FAIL": "failed"}.get(t.state.name, t.state.name.lower())


def summarize(study, study_dir: Path, search: SearchSection, params: tuple[Param, ...]) -> StudySummary | None:
    """Write results.json and best.toml; return the summary (None when the study has no trials)."""
    from optuna.trial import TrialState

    frozen = study.get_trials(deepcopy=False)
    if not frozen:
        return None
    requeued = {t.user_attrs.get("resumes") for t in frozen}
    planned = max((t.user_attrs.get("steps", 0) for t in frozen if t.state == TrialState.COMPLETE), default=0)
    trials, steps_saved, trial_seconds, full_rates = [], 0, 0.0, []
    for t in frozen:
        if t.number in requeued:
            continue  # closed by a resume; its re-queued twin carries on
        value = t.value if t.state == TrialState.COMPLETE else None
        row = {
            "number": t.number, "state": _state(t), "params": dict(t.params), "value": value,
            "steps": t.user_attrs.get("steps", 0), "run_dir": t.user_attrs.get("run_dir"),
            "error": t.user_attrs.get("error"), "baseline": bool(t.user_attrs.get("baseline")),
            "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
        }
        seconds, steps = trial_timing(row["run_dir"])
        trial_seconds += seconds
        if t.state == TrialState.COMPLETE and steps:
            full_rates.append(seconds / steps)
        if t.state == TrialState.PRUNED and planned:
            steps_saved += max(0, planned - row["steps"])
        trials.append(row)
    # The steps a pruned trial skipped cost what a completed trial's steps cost, evals included (its
    # own rate would count its stop checkpoint as training: 83 s estimated vs 21 s CPU measured).
    seconds_saved = steps_saved * statistics.median(full_rates) if full_rates else 0.0
    complete = [r for r in trials if r["state"] == "complete" and r["value"] is not None and math.isfinite(r["value"])]
    pick = min if search.direction == "minimize" else max
    best = pick(complete, key=lambda r: r["value"]) if complete else None
    baseline = next((r for r in complete if r["baseline"]), None)
    importances: dict[str, float] = {}
    if len(complete) >= 2 and len(params) >= 1:
        try:
            import optuna

            importances = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ImportError):
            importances = {}  # too few distinct values for the evaluator: nothing to rank
    summary = StudySummary(trials, best, baseline, importances, search.objective, search.direction, steps_saved,
                           seconds_saved, trial_seconds)
    out = {
        "objective": search.objective, "direction": search.direction, "trials": trials,
        "best": best, "baseline": baseline, "improvement": summary.improvement,
        "importances": importances, "steps_saved_by_pruning": steps_saved,
        "seconds_saved_by_pruning": round(seconds_saved, 1), "trial_seconds": round(trial_seconds, 1),
    }
    (study_dir / "results.json").write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    if best and best.get("run_dir"):
        source = Path(best["run_dir"]) / "config.toml"
        if source.is_file():
            (study_dir / "best.toml").write_text(
                f"# best trial {best['number']} of {study_dir.name}: {search.objective} = {best['value']:.6g}\n"
                + source.read_text(encoding="utf-8"), encoding="utf-8")
    return summary
