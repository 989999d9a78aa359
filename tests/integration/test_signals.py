"""SIGTERM, SIGHUP, SIGINT and SIGUSR1 (SLURM's warning) to a real `tui-trainer train`: exit
75, a valid checkpoint, exact continuation; signals landed inside a save (fault ``holdsave``)
keep it whole, and the third one exits at once without leaving a half checkpoint visible."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.integration.conftest import cli, demo_cfg, popen, write_cfg
from tui_trainer.engine.checkpoint.store import verify_checkpoint
from tui_trainer.runs.listing import list_checkpoints

pytestmark = pytest.mark.slow


def _last_step(events_path):
    steps = [json.loads(l)["step"] for l in events_path.read_text().splitlines() if '"type": "step"' in l]
    return steps[-1] if steps else 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1])
def test_signal_stops_with_checkpoint_and_resume_continues(tmp_path, sig):
    cfg_path = write_cfg(demo_cfg(tmp_path, max_steps=400, checkpoint={"every_steps": 0, "every_minutes": 0}), tmp_path / "run.toml")
    proc = popen("train", str(cfg_path))
    deadline = time.time() + 240
    events = None
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("it-*/events.jsonl"))
        if found and _last_step(found[0]) >= 2:
            events = found[0]
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    assert events is not None
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert "--resume" in err and "Traceback" not in err
    run_dir = events.parent
    reached = _last_step(events)
    checkpoint = run_dir / "checkpoints" / f"step-{reached:08d}"
    assert verify_checkpoint(checkpoint) is None
    stopped = [json.loads(l) for l in events.read_text().splitlines() if '"run_stopped"' in l]
    assert stopped[-1]["reason"] == "signal" and stopped[-1]["checkpoint"] == str(checkpoint)
    resumed = cli("train", str(cfg_path), "--resume", "auto", "--max-steps", str(reached + 2))
    assert resumed.returncode == 0, resumed.stderr
    after = [json.loads(l) for l in events.read_text().splitlines()]
    restart = max(i for i, item in enumerate(after) if item["type"] == "run_started")
    next_steps = [item["step"] for item in after[restart:] if item["type"] == "step"]
    assert after[restart]["step"] == reached and next_steps == [reached + 1, reached + 2]


def _wait_line(proc, text):
    """Read the trainer's stderr up to the line containing ``text`` (gated on its output, never a sleep)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return
    pytest.fail(f"stderr ended before {text!r}: {''.join(seen)[-2000:]}")


def _held_save(tmp_path, holds):
    cfg = demo_cfg(tmp_path, max_steps=400, checkpoint={"every_steps": 2, "every_minutes": 0, "keep_last": 5})
    cfg_path = write_cfg(cfg, tmp_path / "run.toml")
    proc = popen("train", str(cfg_path), env={"TUI_TRAINER_FAULTS": f"holdsave@4x{holds}"})
    _wait_line(proc, "holdsave: waiting")  # inside the step-4 save, its tmp dir written to
    return cfg_path, proc


def test_second_sigint_while_saving_finishes_the_save_and_exits_75(tmp_path):
    cfg_path, proc = _held_save(tmp_path, 2)
    proc.send_signal(signal.SIGINT)
    _wait_line(proc, "finishing the current step")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    dirs = list((tmp_path / "runs").glob("it-*/checkpoints/*"))
    assert sorted(p.name for p in dirs) == ["step-00000002", "step-00000004"], dirs
    assert all(verify_checkpoint(p) is None for p in dirs)
    assert list_checkpoints(dirs[0].parent.parent)[-1].reason == "signal"


def test_third_sigint_while_saving_exits_at_once_and_resume_uses_the_last_whole_checkpoint(tmp_path):
    cfg_path, proc = _held_save(tmp_path, 3)
    proc.send_signal(signal.SIGINT)
    _wait_line(proc, "finishing the current step")
    proc.send_signal(signal.SIGINT)
    _wait_line(proc, "still saving")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run_dir = next((tmp_path / "runs").glob("it-*"))
    visible = list_checkpoints(run_dir, verify=True)
    assert [(c.step, c.valid) for c in visible] == [(2, True)]  # the half-written step 4 is not one
    resumed = cli("train", str(cfg_path), "--resume", "auto", "--max-steps", "5")
    assert resumed.returncode == 0, resumed.stderr
    events = run_dir / "events.jsonl"
    after = [json.loads(l) for l in events.read_text().splitlines()]
    restart = max(i for i, item in enumerate(after) if item["type"] == "run_started")
    assert after[restart]["step"] == 2
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
