"""A run directory has one owner: a resume of a live run is refused (exit 2, naming
host:pid) and changes nothing; a run killed with -9 frees its directory."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.integration.conftest import cli, demo_cfg, popen, write_cfg
from tui_trainer.engine.checkpoint.rundir import PID_FILE, run_owner
from tui_trainer.runs.listing import read_run

pytestmark = pytest.mark.slow


def _steps(events):
    return [json.loads(l)["step"] for l in events.read_text().splitlines() if '"type": "step"' in l]


def test_live_run_refuses_a_second_trainer_and_a_killed_one_frees_it(tmp_path):
    # A one-row eval at the end: nothing here asserts on it, and the lock is what is under test.
    cfg_path = write_cfg(demo_cfg(tmp_path, max_steps=8, eval_max_rows=1), tmp_path / "run.toml")
    # hang@5: the owner is held live inside its training loop, after its step-4 checkpoint.
    owner = popen("train", str(cfg_path), env={"TUI_TRAINER_FAULTS": "hang@5"})
    try:
        deadline = time.time() + 240
        events = None
        while time.time() < deadline:
            found = list((tmp_path / "runs").glob("it-*/events.jsonl"))
            if found and 5 in _steps(found[0]):
                events = found[0]
                break
            assert owner.poll() is None, owner.communicate()
            time.sleep(0.1)
        assert events is not None
        run_dir = events.parent
        pid_text = (run_dir / PID_FILE).read_text()
        assert run_owner(run_dir) == pid_text.strip()
        before = events.read_text()

        second = cli("train", str(cfg_path), "--resume", str(run_dir))
        assert second.returncode == 2, second.stderr
        assert pid_text.strip() in second.stderr and "Traceback" not in second.stderr
        assert (run_dir / PID_FILE).read_text() == pid_text  # never delete another process's run.pid
        assert events.read_text() == before and not (run_dir / "report.json").exists()
        assert read_run(run_dir).status == "running"

        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=60)
        assert run_owner(run_dir) is None
        resumed = cli("train", str(cfg_path), "--resume", str(run_dir))
        assert resumed.returncode == 0, resumed.stderr
        assert _steps(events)[-1] == 8 and not (run_dir / PID_FILE).exists()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.communicate()
