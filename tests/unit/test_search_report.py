"""The study's report page and headline: best against the config's own values, trials, curves, importances."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tui_trainer.search.summary import StudySummary, trial_timing


def write_lines(path: Path, items: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")


def make_study(tmp_path: Path) -> Path:
    study = tmp_path / "s-search-1"
    study.mkdir()
    (study / "study.journal").write_text("")
    (study / "study.json").write_text(json.dumps({"objective": "eval_loss", "direction": "minimize", "budget": 3}))
    curves = {0: [7.0, 6.9], 1: [6.8, 6.6], 2: [7.5]}
    for n, losses in curves.items():
        run = study / "trials" / f"{n:03d}" / "trial-20261201-000000"
        write_lines(run / "events.jsonl", [{"type": "run_started", "time": 100.0, "step": 0}]
                    + [{"type": "step", "time": 100.0 + s, "step": s} for s in range(1, 2 * len(losses) + 1)]
                    + [{"type": "eval", "time": 100.0 + 2 * (i + 1), "step": 2 * (i + 1), "eval_loss": v} for i, v in enumerate(losses)])
    ev = lambda n, state, value=None, **kw: {"type": "trial", "time": 0, "step": 0, "number": n, "state": state,  # noqa: E731
                                           "params": {"train.lr": [1e-3, 3e-3, 3e-2][n], "train.warmup_ratio": 0.05}, "value": value, **kw}
    write_lines(study / "events.jsonl", [ev(0, "running", baseline=True), ev(0, "complete", 6.9, step=4),
                                         ev(1, "running"), ev(1, "complete", 6.6, step=4), ev(2, "running"), ev(2, "pruned", 7.5, step=2)])
    (study / "results.json").write_text(json.dumps({
        "best": {"number": 1, "value": 6.6, "params": {"train.lr": 3e-3, "train.warmup_ratio": 0.05}},
        "baseline": {"number": 0, "value": 6.9, "params": {"train.lr": 1e-3, "train.warmup_ratio": 0.05}},
        "improvement": 0.3 / 6.9, "importances": {"train.lr": 0.9, "train.warmup_ratio": 0.1},
        "steps_saved_by_pruning": 2, "seconds_saved_by_pruning": 2.0,
    }))
    (study / "best.toml").write_text("# best trial 1\n[train]\nlr = 0.003\n")
    return study


def test_the_study_report_compares_every_trial_on_one_page(tmp_path: Path) -> None:
    from tui_trainer.analytics.report_trials import write_study_report

    page = write_study_report(make_study(tmp_path)).read_text()
    assert "best 6.6 vs default 6.9 (trial 0, the config&#x27;s own values): 4.3% better" in page
    assert "pruning saved 2 steps (~2 s of training)" in page
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<h2>Trials</h2>", 1)[1].split("<h2>", 1)[0])
    assert len(rows) == 4 and "complete (baseline)" in rows[1] and "pruned" in rows[3]
    for title in ("eval_loss by trial", "every trial", "parameter importance (optuna, fANOVA over 2 completed trials)", "eval_loss against train.lr",
                  "eval_loss against train.warmup_ratio"):
        assert title in page, title
    assert page.count("<svg") == 5
    assert "lr = 0.003" in page  # best.toml
    assert "<script" not in page and "http" not in page.split("<svg", 1)[0]  # self-contained


def test_a_live_study_without_results_still_renders(tmp_path: Path) -> None:
    from tui_trainer.analytics.report_trials import render_study

    study = make_study(tmp_path)
    (study / "results.json").unlink()
    page = render_study(study)
    assert "3 trials of 3" in page and "Not computed" in page and "better" not in page


def summary(best_number: int) -> StudySummary:
    trials = [{"number": 0, "state": "complete", "params": {"train.lr": 1e-3}, "value": 6.9, "baseline": True},
              {"number": 1, "state": "complete", "params": {"train.lr": 3e-3}, "value": 6.6, "baseline": False},
              {"number": 2, "state": "pruned", "params": {"train.lr": 3e-2}, "value": None, "baseline": False}]
    return StudySummary(trials, trials[best_number], trials[0], {}, "eval_loss", "minimize", 12, 30.0, 90.0)


def test_the_headline_says_how_much_better_than_the_default() -> None:
    text = summary(1).headline()
    assert "best 6.6 vs default 6.9 (trial 0, the config's own values): 4.3% better" in text
    assert "2 complete, 1 pruned" in text
    assert "pruning saved 12 steps (~30 s, 25% of running every trial to the end)" in text
    assert "keep them" in summary(0).headline() and "better" not in summary(0).headline()


def test_trial_timing_reads_the_runs_span_from_the_events(tmp_path: Path) -> None:
    run = make_study(tmp_path) / "trials" / "000" / "trial-20261201-000000"
    with (run / "events.jsonl").open("a") as fh:
        fh.write(json.dumps({"type": "run_finished", "time": 105.0, "step": 4}) + "\n")
        fh.write(json.dumps({"type": "cleanup", "time": 109.0, "step": 4}) + "\n")  # after the end: not training
    assert trial_timing(run) == (5.0, 4)
    assert trial_timing(tmp_path / "missing") == (0.0, 0)


def test_summarize_names_failed_trials_as_the_events_do(tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    from tui_trainer.config.search_section import SearchSection
    from tui_trainer.search.space import Param
    from tui_trainer.search.summary import summarize

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    for value in (1.0, None):
        trial = study.ask({"train.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
        trial.set_user_attr("error", None if value else "no-such-model")
        study.tell(trial, value, state=TrialState.COMPLETE if value else TrialState.FAIL)
    out = summarize(study, tmp_path, SearchSection(), (Param("train.lr", "float", 1e-4, 1e-2, True),))
    assert [t["state"] for t in out.trials] == ["complete", "failed"]
    assert "1 complete, 0 pruned, 1 failed" in out.headline()
    assert json.loads((tmp_path / "results.json").read_text())["trials"][1]["state"] == "failed"


def test_tui_trainer_report_on_a_study_directory_writes_its_trials_page(tmp_path: Path, capsys) -> None:
    from tui_trainer.cli.main import main

    study = make_study(tmp_path)
    assert main(["report", str(study)]) == 0
    assert f"wrote {study / 'report.html'}" in capsys.readouterr().out
    assert "Search report: s-search-1" in (study / "report.html").read_text()


def test_pruning_savings_are_priced_at_the_completed_trials_seconds_per_step(tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    from tui_trainer.config.search_section import SearchSection
    from tui_trainer.search.space import Param
    from tui_trainer.search.summary import summarize

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    dist = {"train.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    # (state, steps reached, seconds from run_started to the end): completed at 1 and 3 s/step, one pruned at step 1
    # whose stop took 10 s (a checkpoint): the skipped steps cost the median 2 s each, not its own rate.
    for n, (state, steps, seconds) in enumerate([(TrialState.COMPLETE, 4, 4.0), (TrialState.COMPLETE, 4, 12.0),
                                                 (TrialState.PRUNED, 1, 10.0)]):
        run = tmp_path / f"t{n}"
        end = "run_finished" if state == TrialState.COMPLETE else "run_stopped"
        write_lines(run / "events.jsonl", [{"type": "run_started", "time": 0.0, "step": 0}]
                    + [{"type": "step", "time": 0.5 * s, "step": s} for s in range(1, steps + 1)]
                    + [{"type": end, "time": seconds, "step": steps}])
        trial = study.ask(dist)
        trial.set_user_attr("steps", steps)
        trial.set_user_attr("run_dir", str(run))
        study.tell(trial, 1.0 + n if state == TrialState.COMPLETE else None, state=state)
    out = summarize(study, tmp_path, SearchSection(), (Param("train.lr", "float", 1e-4, 1e-2, True),))
    assert (out.steps_saved, out.seconds_saved, out.trial_seconds) == (3, 6.0, 26.0)
    assert "pruning saved 3 steps (~6 s, 19% of running every trial to the end)" in out.headline()


def test_tpe_models_the_space_within_a_short_budget() -> None:
    # optuna's default of 10 random start-up trials made an 8-trial study pure random search.
    from tui_trainer.config.search_section import SearchSection
    from tui_trainer.search.space import Param
    from tui_trainer.search.study import _sampler, tpe_startup_trials

    assert [tpe_startup_trials(n) for n in (1, 6, 8, 12, 30, 100)] == [2, 2, 2, 4, 10, 10]
    sampler = _sampler(SearchSection(), (Param("train.lr", "float", 1e-4, 1e-2, True),), 42, 8)
    assert sampler._n_startup_trials == 2
