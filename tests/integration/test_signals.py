"""SIGTERM, SIGHUP and SIGINT to a real `tui-trainer train`: exit 75, a valid checkpoint, exact continuation."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.integration.conftest import cli, demo_cfg, popen, write_cfg
from tui_trainer.engine.checkpoints import verify_checkpoint

pytestmark = pytest.mark.slow


def _last_step(events_path):
    steps = [json.loads(l)["step"] for l in events_path.read_text().splitlines() if '"type": "step"' in l]
    return steps[-1] if steps else 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
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


def test_second_sigint_while_saving_leaves_no_half_checkpoint(tmp_path):
    cfg_path = write_cfg(demo_cfg(tmp_path, max_steps=400, checkpoint={"every_steps": 0, "every_minutes": 0}), tmp_path / "run.toml")
    proc = popen("train", str(cfg_path))
    deadline = time.time() + 240
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("it-*/events.jsonl"))
        if found and _last_step(found[0]) >= 1:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    checkpoints = tmp_path / "runs"
    dirs = [p for p in checkpoints.glob("it-*/checkpoints/*")]
    assert dirs and all(verify_checkpoint(p) is None for p in dirs), dirs
    assert not [p for p in dirs if p.name.endswith(".tmp")]
