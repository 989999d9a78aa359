"""``search.parallel = 2``: two trial processes at once, and a journal that two live trials leave consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_search import GOOD_LR, results, search, study_config

pytestmark = pytest.mark.slow


def _span(run_dir: str) -> tuple[float, float]:
    """(run_started, run_finished) times of a trial's own run."""
    events = [json.loads(line) for line in Path(run_dir, "events.jsonl").read_text().splitlines() if line]
    times = {e["type"]: e["time"] for e in events if e["type"] in ("run_started", "run_finished")}
    return times["run_started"], times["run_finished"]


def test_two_trials_run_at_once_and_the_journal_stays_consistent(tmp_path: Path) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    cfg = study_config(tmp_path, {"train.lr": {"choices": [GOOD_LR, 1e-3, 5e-4]}},
                       trials=3, sampler="grid", pruner="none", parallel=2)
    done = search(str(cfg))
    assert done.returncode == 0, done.stderr
    out = results(tmp_path)
    trials = sorted(out["trials"], key=lambda t: t["number"])
    assert [t["number"] for t in trials] == [0, 1, 2] and all(t["state"] == "complete" for t in trials)
    # Each trial its own directory, every grid point once: the slot freed by the first to finish was refilled.
    assert len({t["run_dir"] for t in trials}) == 3
    assert sorted(t["params"]["train.lr"] for t in trials) == sorted([GOOD_LR, 1e-3, 5e-4])
    # Trials 0 and 1 start together: each started before the other finished.
    (s0, e0), (s1, e1) = _span(trials[0]["run_dir"]), _span(trials[1]["run_dir"])
    assert s0 < e1 and s1 < e0, (s0, e0, s1, e1)
    # The journal, read afresh by optuna, holds the same three finished trials and values as results.json.
    (study_dir,) = (tmp_path / "runs").glob("s-search-*")
    storage = JournalStorage(JournalFileBackend(str(study_dir / "study.journal")))
    study = optuna.load_study(study_name="study", storage=storage)
    frozen = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.state.name for t in frozen] == ["COMPLETE"] * 3
    assert [t.value for t in frozen] == [t["value"] for t in trials]
    # The study's own event log: each trial ran once and ended once.
    lines = [json.loads(line) for line in (study_dir / "events.jsonl").read_text().splitlines()]
    assert sorted((e["number"], e["state"]) for e in lines) == [(n, s) for n in range(3) for s in ("complete", "running")]
