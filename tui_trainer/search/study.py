"""The study: optuna asks for trials, each trial is a run of its own, evals are reported back for pruning.

The study lives in a file (optuna's ``JournalFileBackend``), so a study whose process died
or whose SSH session dropped continues with ``--resume``: finished trials are kept, an
interrupted trial is re-queued with the same values and resumes from its checkpoint.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_trainer.config.io import dumps_config, read_toml
from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.config.search_section import SearchSection
from tui_trainer.errors import ConfigError, ResumeError
from tui_trainer.runs.listing import list_checkpoints
from tui_trainer.search.space import Param, apply_params, baseline_params, build_space, grid
from tui_trainer.search.summary import StudySummary, summarize
from tui_trainer.search.trial_process import TrialProcess

POLL_SECONDS = 0.5
STUDY_NAME = "study"


@dataclass(frozen=True)
class SearchOutcome:
    """How a study ended, for the CLI."""

    study_dir: Path
    """``<output_dir>/<name>-search-<time>/``."""
    exit_code: int
    """0 done, 2 every trial failed, 75 stopped with the study resumable."""
    message: str
    """What to tell the user (the best trial, or how to resume, or each trial's error)."""
    summary: StudySummary | None
    """The trials and the best against the baseline (None when nothing finished)."""


STOP_FILE = "STOP"


def new_study_dir(cfg: RunConfig) -> Path:
    """``<output_dir>/<name>-search-<time>/``, created now."""
    path = Path(cfg.run.output_dir) / f"{cfg.run.name}-search-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    try:
        path.mkdir(parents=True, exist_ok=False)
    except OSError as err:
        raise ConfigError(f"run.output_dir: cannot create the study directory {path}: {err.strerror or err}") from None
    return path


def study_dir_for(cfg: RunConfig, resume: str | None) -> Path:
    """A new study directory, or the one ``--resume auto|DIR`` names."""
    out = Path(cfg.run.output_dir)
    if resume is None:
        return new_study_dir(cfg)
    if resume == "auto":
        found = sorted(p for p in out.glob(f"{cfg.run.name}-search-*") if (p / "study.journal").is_file())
        if not found:
            raise ResumeError(f"--resume auto: no study of {cfg.run.name!r} under {out}; start one without --resume")
        return found[-1]
    path = Path(resume)
    if not (path / "study.journal").is_file():
        raise ResumeError(f"--resume {resume}: no study.journal there; give a study directory (<name>-search-<time>)")
    return path


def tpe_startup_trials(budget: int) -> int:
    """Random trials before TPE models the space: optuna's default of 10 is more than a short
    study's whole budget, which made an 8-trial study pure random search; a third of the budget
    (at least 2, the baseline among them) leaves TPE the rest to exploit."""
    return max(2, min(10, budget // 3))


def _sampler(search: SearchSection, params: tuple[Param, ...], seed: int, budget: int):
    import optuna

    class AskTellGrid(optuna.samplers.GridSampler):
        """optuna's grid, minus its ``study.stop()`` once the grid is used up: that only works inside
        ``study.optimize``, and this study asks and tells (its budget is capped at the grid size instead)."""

        def after_trial(self, study, trial, state, values) -> None:
            return None

        def before_trial(self, study, trial) -> None:
            # optuna gives an enqueued trial (the baseline) no grid point and hands trial n point n,
            # so with the baseline taking a number one point of the grid was never run and the
            # baseline's own point ran twice. Here the baseline holds the point it is, and every
            # other trial takes the first point not yet run or running.
            attrs = trial.system_attrs
            if "grid_id" in attrs:
                return
            fixed = attrs.get("fixed_params")
            if fixed is not None:
                values = tuple(fixed.get(name) for name in self._param_names)
                ids = [i for i, point in enumerate(self._all_grids)
                       if all(self._grid_value_equal(a, b) for a, b in zip(point, values))]
            else:
                ids = sorted(self._get_unvisited_grid_ids(study))[:1] or [0]
            if ids:
                study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
                study._storage.set_trial_system_attr(trial._trial_id, "grid_id", ids[0])

    if search.sampler == "grid":
        return AskTellGrid({p.key: p.grid_values() for p in params}, seed=seed)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe_startup_trials(budget))


def _pruner(search: SearchSection):
    import optuna

    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials, n_warmup_steps=search.warmup_steps)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def open_study(study_dir: Path, cfg: RunConfig, params: tuple[Param, ...], budget: int | None = None):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(study_dir / "study.journal")))
    return optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        sampler=_sampler(cfg.search, params, cfg.run.seed, budget or cfg.search.trials),
        pruner=_pruner(cfg.search),
        direction=cfg.search.direction,
        load_if_exists=True,
    )


class Study:
    """Runs trials until the budget is spent, pruning through each trial's graceful stop."""

    def __init__(
        self, config_path: Path, *, trials: int | None, resume: str | None, stop: threading.Event,
        on_line: Callable[[str], None] = print, poll_seconds: float = POLL_SECONDS, study_dir: Path | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.raw = read_toml(self.config_path)
        self.cfg = config_from_dict(self.raw, str(config_path))
        if self.cfg.search is None:
            raise ConfigError(f"{config_path}: no [search] section; add [search] and [search.space] (README 'Hyperparameter search')")
        self.search = self.cfg.search
        self.params = build_space(self.raw, self.cfg)
        self.budget = trials or self.search.trials
        if self.search.sampler == "grid":
            self.budget = min(self.budget, len(grid(self.params)))
        self.base_raw = {k: v for k, v in self.raw.items() if k != "search"}
        self.study_dir = Path(study_dir) if study_dir is not None else study_dir_for(self.cfg, resume)
        self.resuming = resume is not None
        self.stop = stop
        self.on_line = on_line
        self.poll_seconds = poll_seconds
        self.running: dict[int, tuple[Any, TrialProcess]] = {}
        self.events_path = self.study_dir / "events.jsonl"

    # ------------------------------------------------------------ bookkeeping
    def _emit(self, number: int, state: str, params: dict[str, Any], value: float | None, **extra: Any) -> None:
        line = {"type": "trial", "time": time.time(), "step": extra.pop("step", 0), "number": number, "state": state,
                "params": params, "value": value, **extra}
        with self.events_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        shown = "" if value is None or (isinstance(value, float) and math.isnan(value)) else f" {self.search.objective} {value:.4g}"
        self.on_line(f"trial {number:3d} {state:<8}{shown}  {_params_text(params)}")

    def _trial_root(self, number: int) -> Path:
        return self.study_dir / "trials" / f"{number:03d}"

    def _finished_count(self, study) -> int:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        requeued = {t.user_attrs.get("resumes") for t in trials}
        return sum(
            1 for t in trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and t.number not in requeued)
        )

    def _requeue_interrupted(self, study) -> None:
        """Trials left RUNNING by a dead study process: closed as failed and re-queued with their values
        (the new trial's ``resumes`` names the old one, which then no longer counts against the budget)."""
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            run_dir = TrialProcess(t.number, self._trial_root(t.number), dict(t.params)).run_dir
            study.tell(t.number, state=TrialState.FAIL)
            resumable = run_dir is not None and any(c.valid for c in list_checkpoints(run_dir))
            attrs = {"resumes": t.number, **({"resume_from": str(run_dir)} if resumable else {})}
            if t.user_attrs.get("baseline"):
                attrs["baseline"] = True
            study.enqueue_trial(dict(t.params), user_attrs=attrs, skip_if_exists=False)
            self._emit(t.number, "interrupted", dict(t.params), None, step=0)
            self.on_line(f"trial {t.number:3d} was interrupted: re-queued" + (" (resumes from its checkpoint)" if "resume_from" in attrs else ""))

    def _write_study_card(self) -> None:
        """study.json: what a reader of the study directory (the TUI's search screen) needs besides the events."""
        card = {
            "config": str(self.config_path.resolve()), "budget": self.budget, "objective": self.search.objective,
            "direction": self.search.direction, "sampler": self.search.sampler, "pruner": self.search.pruner,
            "space": {p.key: p.kind for p in self.params}, "max_steps": self.cfg.train.max_steps,
        }
        (self.study_dir / "study.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")

    # ------------------------------------------------------------ the loop
    def run(self) -> SearchOutcome:
        study = open_study(self.study_dir, self.cfg, self.params, self.budget)
        (self.study_dir / STOP_FILE).unlink(missing_ok=True)  # a stop asked of an earlier session is not this one's
        if self.resuming:
            self._requeue_interrupted(study)
        elif self.search.baseline:
            base = baseline_params(self.cfg, self.params)
            on_grid = self.search.sampler != "grid" or base in grid(self.params)
            if None not in base.values() and on_grid:
                study.enqueue_trial(base, user_attrs={"baseline": True})
        self._write_study_card()
        self.on_line(f"study {self.study_dir} — {self.budget} trials, {self.search.sampler} sampler, "
                     f"{self.search.pruner} pruner, {self.search.direction} {self.search.objective}")
        deadline = time.monotonic() + self.search.timeout_minutes * 60 if self.search.timeout_minutes else None
        started = self._finished_count(study)
        while True:
            out_of_time = deadline is not None and time.monotonic() >= deadline
            can_start = not self.stop.is_set() and not out_of_time
            while can_start and len(self.running) < self.search.parallel and started + len(self.running) < self.budget:
                self._start_trial(study)
            if not self.running:
                break
            self._poll(study)
            if (self.study_dir / STOP_FILE).exists():
                self.stop.set()  # the search screen's stop (or a user's `touch STOP`): the same graceful stop
            if self.stop.is_set():
                for _, proc in self.running.values():
                    proc.request_stop()
            started = self._finished_count(study)
            time.sleep(self.poll_seconds)
        return self._outcome(study)

    def _start_trial(self, study) -> None:
        trial = study.ask()
        params = {p.key: p.suggest(trial) for p in self.params}
        trial_raw = apply_params(self.base_raw, params)
        resume_from = trial.user_attrs.get("resume_from")
        # A re-queued trial carries on in the interrupted trial's directory (its checkpoints are there).
        root = Path(resume_from).parent if resume_from else self._trial_root(trial.number)
        trial_raw.setdefault("run", {})
        trial_raw["run"]["output_dir"] = str(root.resolve())
        trial_raw["run"]["name"] = "trial"
        text = dumps_config(config_from_dict(trial_raw, f"trial {trial.number}"))
        proc = TrialProcess(trial.number, root, params)
        proc.start(text, resume=Path(resume_from) if resume_from else None)
        self.running[trial.number] = (trial, proc)
        self._emit(trial.number, "running", params, None, baseline=bool(trial.user_attrs.get("baseline")), root=str(root))

    def _poll(self, study) -> None:
        from optuna.trial import TrialState

        for number, (trial, proc) in list(self.running.items()):
            for point in proc.poll_events(self.search.objective):
                if proc.stop_requested or point.step == 0:
                    continue  # a step-0 eval (eval_at_start) is the untrained model: it says nothing about the values
                if not math.isfinite(point.value):
                    proc.request_stop()  # NaN: no later eval can redeem it
                    continue
                trial.report(point.value, point.step)
                if trial.should_prune():
                    proc.request_stop()
            code = proc.returncode()
            if code is None:
                continue
            proc.poll_events(self.search.objective)  # the lines written just before exiting
            del self.running[number]
            trial.set_user_attr("steps", proc.steps)
            trial.set_user_attr("run_dir", str(proc.run_dir) if proc.run_dir else None)
            values = [p.value for p in proc.evals if math.isfinite(p.value)]
            if proc.stop_requested and not self.stop.is_set() and code in (0, 75):
                study.tell(trial, state=TrialState.PRUNED)
                self._emit(number, "pruned", proc.params, proc.evals[-1].value if proc.evals else None, step=proc.steps)
            elif code == 0 and values:
                best = min(values) if self.search.direction == "minimize" else max(values)
                study.tell(trial, best)
                self._emit(number, "complete", proc.params, best, step=proc.steps)
            elif code == 75 and self.stop.is_set():
                trial.set_user_attr("stopped_by_study", True)  # left RUNNING: --resume re-queues it
                self.on_line(f"trial {number:3d} stopped with a checkpoint; the study resumes it")
            else:
                reason = proc.failure_text() if code != 0 else f"no {self.search.objective} was reported (check eval_every)"
                trial.set_user_attr("error", reason)
                study.tell(trial, state=TrialState.FAIL)
                self._emit(number, "failed", proc.params, None, step=proc.steps, error=reason)

    def _outcome(self, study) -> SearchOutcome:
        summary = summarize(study, self.study_dir, self.search, self.params)
        if summary is not None:
            from tui_trainer.analytics.report_trials import write_study_report

            self.on_line(f"report: {write_study_report(self.study_dir)}")
        if self.stop.is_set():
            return SearchOutcome(self.study_dir, 75, f"search stopped; continue it with: tui-trainer search CONFIG --resume {self.study_dir}", summary)
        if summary is None or summary.best is None:
            errors = "; ".join(f"trial {t['number']}: {t.get('error') or t['state']}" for t in (summary.trials if summary else []))
            return SearchOutcome(self.study_dir, 2, f"every trial failed ({errors or 'none ran'}); fix the config and run again", summary)
        return SearchOutcome(self.study_dir, 0, summary.headline(), summary)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
