"""Hyperparameter search end to end on the demo model: pruning, resume after kill -9, all trials failing.

Each trial is its own ``tui-trainer train`` process, as in production; the trials are a
few steps of the tiny demo model, so a study takes seconds per trial.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

pytestmark = pytest.mark.slow

GOOD_LR, BAD_LR = 3e-3, 1e-9


def study_config(tmp_path: Path, space: dict, train: dict | None = None, **search) -> Path:
    """A study of the demo model: 4-step trials at seq 32, an eval every step; ``train`` overrides the trials' [train]."""
    raw = {
        "run": {"name": "s", "output_dir": str(tmp_path / "runs"), "seed": 1},
        "model": {"name_or_path": "demo:tiny-llama"},
        "lora": {"enabled": False},
        "data": {
            "max_seq_len": 32, "eval_fraction": 0.02,
            "datasets": [{"name": "code", "path": "demo:python-code", "text_field": "text"}],
        },
        "train": {"max_steps": 4, "micro_batch_size": 4, "grad_accum": 1, "lr": GOOD_LR, "warmup_ratio": 0.0,
                  "eval_every": 1, "eval_max_rows": 8, **(train or {})},
        "checkpoint": {"every_steps": 0, "every_minutes": 0, "keep_last": 1},
        "search": {"space": space, **search},
    }
    path = tmp_path / "search.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def search(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_trainer", "search", *args], capture_output=True, text=True, timeout=timeout)


def results(tmp_path: Path) -> dict:
    (study,) = (tmp_path / "runs").glob("s-search-*")
    return json.loads((study / "results.json").read_text())


MAX_STEPS = 30


def test_median_pruner_stops_the_bad_learning_rates(tmp_path: Path) -> None:
    # A grid of one good and two bad learning rates, 3 trials; the config's own lr (good) is on the grid
    # and runs first as the baseline, so after one completed trial each bad-lr trial is behind it at step 1.
    # The baseline holds its own grid point, so the other two trials are the two bad points
    # (tests/unit/test_search_space.py: every point of a grid runs once, the baseline included).
    # 30 steps, not 4: the stop is asynchronous (the study reads a trial's eval, then writes its STOP file),
    # and on a loaded CI machine a 4-step trial once finished all 4 steps before the stop reached it.
    cfg = study_config(
        tmp_path, {"train.lr": {"choices": [GOOD_LR, BAD_LR, BAD_LR / 10]}}, {"max_steps": MAX_STEPS},
        trials=3, sampler="grid", pruner="median", startup_trials=1,
    )
    done = search(str(cfg))
    assert done.returncode == 0, done.stderr
    out = results(tmp_path)
    trials = out["trials"]
    assert len(trials) == 3
    assert trials[0]["baseline"] and trials[0]["state"] == "complete" and trials[0]["params"]["train.lr"] == GOOD_LR
    bad = [t for t in trials if t["params"]["train.lr"] in (BAD_LR, BAD_LR / 10)]
    assert len(bad) == 2 and all(t["state"] == "pruned" for t in bad), trials
    assert all(t["steps"] < MAX_STEPS for t in bad)  # stopped early through the graceful stop...
    for t in bad:  # ...which leaves the trial's own resumable checkpoint
        assert list(Path(t["run_dir"], "checkpoints").glob("step-*"))
    assert out["best"]["params"]["train.lr"] == GOOD_LR
    assert out["steps_saved_by_pruning"] == sum(MAX_STEPS - t["steps"] for t in bad) >= 2  # every step the pruned trials did not run
    study = next((tmp_path / "runs").glob("s-search-*"))
    assert "[train]" in (study / "best.toml").read_text()
    assert "best trial" in done.stdout and "pruned" in done.stdout


def test_all_trials_failing_is_exit_2_naming_each_error(tmp_path: Path) -> None:
    cfg = study_config(tmp_path, {"train.lr": {"choices": [1e-3, 1e-4]}}, trials=2, sampler="grid", baseline=False)
    text = cfg.read_text().replace('name_or_path = "demo:tiny-llama"', f'name_or_path = "{tmp_path}/no-such-model"')
    cfg.write_text(text)
    done = search(str(cfg))
    assert done.returncode == 2
    assert "every trial failed" in done.stderr
    assert "trial 0:" in done.stderr and "trial 1:" in done.stderr and "no-such-model" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_space_is_exit_2_before_any_trial(tmp_path: Path) -> None:
    cfg = study_config(tmp_path, {"train.lr": {"low": 1e-3, "high": 1e-5}})
    done = search(str(cfg), timeout=60)
    assert done.returncode == 2 and "low must be < high" in done.stderr and "Traceback" not in done.stderr
    assert not list((tmp_path / "runs").glob("s-search-*/trials"))


def test_study_resumes_after_kill_9_without_rerunning_finished_trials(tmp_path: Path) -> None:
    # Two trials are enough: trial 0 finishes, trial 1 is killed mid-run and resumed (an eval every 4 steps
    # still gives each trial its objective).
    cfg = study_config(tmp_path, {"train.lr": {"choices": [GOOD_LR, 1e-3]}}, {"max_steps": 12, "eval_every": 4},
                       trials=2, sampler="grid", pruner="none")
    text = cfg.read_text().replace("every_steps = 0", "every_steps = 2")
    cfg.write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "tui_trainer", "search", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 400
        events: list[dict] = []
        while time.monotonic() < deadline:  # until trial 0 is complete and trial 1 has a checkpoint
            studies = list((tmp_path / "runs").glob("s-search-*"))
            if studies and (studies[0] / "events.jsonl").is_file():
                events = [json.loads(line) for line in (studies[0] / "events.jsonl").read_text().splitlines() if line]
                if any(e["number"] == 0 and e["state"] == "complete" for e in events) and list(
                    studies[0].glob("trials/001/trial-*/checkpoints/step-*")
                ):
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"the study never got to trial 1's first checkpoint: {events}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    study = studies[0]
    # The orphaned trial gets SIGTERM from the kernel (PDEATHSIG): it saves and exits instead of training unwatched.
    run_dir = next(study.glob("trials/001/trial-*"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and '"run_stopped"' not in (run_dir / "events.jsonl").read_text():
        time.sleep(0.2)
    assert '"run_stopped"' in (run_dir / "events.jsonl").read_text()
    finished_runs = sorted(study.glob("trials/000/trial-*"))
    done = search(str(cfg), "--resume", "auto")
    assert done.returncode == 0, done.stderr
    assert "re-queued (resumes from its checkpoint)" in done.stdout
    assert sorted(study.glob("trials/000/trial-*")) == finished_runs  # trial 0 was not run again
    out = json.loads((study / "results.json").read_text())
    assert sorted(t["state"] for t in out["trials"]) == ["complete"] * 2
    resumed = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    starts = [e for e in resumed if e["type"] == "run_started"]
    assert len(starts) == 2 and starts[1]["resumed_from"]  # the same run directory, continued from its checkpoint
    assert max(e["step"] for e in resumed if e["type"] == "step") == 12


def test_the_study_process_loads_no_model(tmp_path: Path) -> None:
    # Trials are processes of their own: the controller never imports torch, so nothing can leak between trials.
    cfg = study_config(tmp_path, {"train.lr": {"choices": [1e-3]}}, {"max_steps": 1}, trials=1, sampler="grid", baseline=False)
    code = (
        "import sys, threading\n"
        "from tui_trainer.search.study import Study\n"
        f"out = Study({str(cfg)!r}, trials=1, resume=None, stop=threading.Event(), on_line=lambda s: None).run()\n"
        "assert out.exit_code == 0, out.message\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_detached_study_survives_its_launcher_and_a_bad_one_fails_in_the_foreground(tmp_path: Path) -> None:
    bad = study_config(tmp_path, {"train.nope": {"choices": [1]}})
    done = search(str(bad), "--detach", timeout=60)
    assert done.returncode == 2 and "unknown key 'train.nope'" in done.stderr  # validated before detaching
    cfg = study_config(tmp_path, {"train.lr": {"choices": [GOOD_LR]}}, {"max_steps": 1}, trials=1, sampler="grid")
    started = time.monotonic()
    done = search(str(cfg), "--detach", timeout=60)
    assert done.returncode == 0, done.stderr
    study = Path(done.stdout.strip())
    assert study.is_dir() and time.monotonic() - started < 30  # returns at once; the study runs on
    # Done when the detached study printed its last line (results.json and report.html come before it).
    log = study / "search.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "results: " not in log.read_text():
        time.sleep(0.5)
    out = json.loads((study / "results.json").read_text())
    assert [t["state"] for t in out["trials"]] == ["complete"] and out["trials"][0]["baseline"]
    assert "best trial 0" in log.read_text() and (study / "report.html").is_file()
