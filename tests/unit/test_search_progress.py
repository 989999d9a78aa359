"""The search screen's view of a study, read from its directory as another process writes it."""

from __future__ import annotations

import json
from pathlib import Path

from tui_trainer.search.progress import read_study


def write_lines(path: Path, items: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")


def trial_run(study: Path, number: int, losses: list[float]) -> Path:
    run = study / "trials" / f"{number:03d}" / "trial-20261201-000000"
    evals = [{"type": "eval", "step": 0, "time": 0, "eval_loss": 9.0}]  # the untrained baseline eval: not a point
    evals += [{"type": "eval", "step": i + 1, "time": 0, "eval_loss": v} for i, v in enumerate(losses)]
    write_lines(run / "events.jsonl", evals)
    return run


def test_trials_curves_median_best_and_budget(tmp_path: Path) -> None:
    study = tmp_path / "s-search-1"
    write_lines(study / "study.json", [])
    (study / "study.json").write_text(json.dumps({"objective": "eval_loss", "direction": "minimize", "budget": 5}))
    trial_run(study, 0, [3.0, 2.0])
    trial_run(study, 1, [2.0, 1.0])
    trial_run(study, 2, [4.0])
    trial_run(study, 3, [3.5, 3.4, 3.3, 3.2])
    ev = lambda n, state, value=None, **kw: {"type": "trial", "time": 0, "step": 0, "number": n, "state": state, "params": {"train.lr": 0.1 * (n + 1)}, "value": value, **kw}  # noqa: E731
    write_lines(study / "events.jsonl", [
        ev(0, "running", baseline=True), ev(0, "complete", 2.0, step=2),
        ev(1, "running"), ev(1, "complete", 1.0, step=2),
        ev(2, "running"), ev(2, "pruned", 4.0, step=1),
        ev(3, "running"), ev(3, "interrupted"),
        ev(4, "running", root=str(study / "trials" / "003")),
    ])
    view = read_study(study)
    assert [t.state for t in view.trials] == ["complete", "complete", "pruned", "interrupted", "running"]
    assert view.trials[0].baseline and not view.trials[1].baseline
    assert view.trials[0].curve == ((1, 3.0), (2, 2.0))
    assert view.median_curve == {1: 2.5, 2: 1.5}  # completed trials only: the pruned one is not the yardstick
    assert view.best.number == 1
    assert view.remaining == 2  # 5 budgeted, 3 closed; the interrupted one is continued, not counted
    running = view.trials[-1]
    assert running.run_dir is not None and running.run_dir.parent.name == "003"  # a re-queued trial lives in the old root
    assert running.value == 3.2 and running.steps == 4


def test_a_study_still_starting_reads_as_empty(tmp_path: Path) -> None:
    view = read_study(tmp_path)
    assert view.trials == () and view.best is None and view.median_curve == {}


def test_promote_best_writes_a_user_preset_that_loads(tmp_path: Path) -> None:
    from tui_trainer.planning.presets import load_presets
    from tui_trainer.search.promote import promote_best

    study = tmp_path / "s-search-1"
    (study / "trials" / "000").mkdir(parents=True)
    (study / "study.json").write_text(json.dumps({"objective": "eval_loss", "direction": "minimize", "budget": 1}))
    run = trial_run(study, 0, [2.0, 1.5])
    (run / "config.toml").write_text('[model]\nname_or_path = "demo:tiny-llama"\n')
    write_lines(study / "events.jsonl", [
        {"type": "trial", "time": 0, "step": 2, "number": 0, "state": "complete", "value": 1.5,
         "params": {"train.lr": 3e-3, "train.warmup_ratio": 0.05, "data.datasets.code.weight": 0.4}},
    ])
    users = tmp_path / "presets"
    promoted = promote_best(study, level="quality", user_dir=users)
    assert promoted.family == "demo-tiny" and promoted.left_out == ("data.datasets.code.weight",)
    tuned = load_presets(users)["demo-tiny-tuned"]
    assert tuned.levels["quality"].lr == 3e-3 and tuned.levels["quality"].warmup_ratio == 0.05
    shipped = load_presets(users)["demo-tiny"]
    assert tuned.levels["highspeed"] == shipped.levels["highspeed"]  # everything else comes from the family


def test_discover_studies_lists_study_dirs_only(tmp_path: Path) -> None:
    from tui_trainer.runs.listing import discover_runs
    from tui_trainer.search.progress import discover_studies

    study = tmp_path / "s-search-1"
    trial_run(study, 0, [2.0])
    (study / "study.journal").write_text("")
    (study / "study.json").write_text(json.dumps({"objective": "eval_loss", "direction": "minimize", "budget": 3}))
    write_lines(study / "events.jsonl", [{"type": "trial", "time": 0, "step": 1, "number": 0, "state": "complete", "params": {}, "value": 2.0}])
    run = tmp_path / "plain-run"
    write_lines(run / "events.jsonl", [{"type": "run_started", "time": 0, "step": 0}])
    (info,) = discover_studies(tmp_path)
    assert (info.name, info.trials, info.budget, info.best, info.live) == ("s-search-1", 1, 3, 2.0, False)
    assert [r.name for r in discover_runs(tmp_path)] == ["plain-run"]  # a study is not a run
