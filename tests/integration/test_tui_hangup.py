"""The terminal goes away under a training app (sshd closes the pty master): the run saves
its signal checkpoint and the process exits 75 within 10 s, leaving nothing behind."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import demo_cfg, write_cfg
from tui_trainer.engine.checkpoint.store import verify_checkpoint
from tui_trainer.runs.listing import discover_runs, list_checkpoints

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HANGUP_TO_EXIT_S = 10.0


def _wait_exit(pid: int, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    return None


def test_closed_pty_saves_and_exits_75(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    config = tmp_path / "run.toml"
    # Short steps (seq 64): the step in flight at the hangup finishes before the save.
    write_cfg(demo_cfg(tmp_path, max_steps=400, checkpoint={"every_steps": 0, "every_minutes": 0}), config)
    env = {**os.environ, "TERM": "xterm-256color", "HF_HUB_OFFLINE": "1", "COLUMNS": "100", "LINES": "32"}
    argv = [sys.executable, "-m", "tui_trainer", "tui", "--config", str(config), "--start"]
    pid, master = pty.fork()
    if pid == 0:  # the child: the app on the pty's slave side, as a login shell would start it
        os.chdir(ROOT)
        os.execve(sys.executable, argv, env)
    screen = b""
    steps = []
    code = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(set(steps)) < 2:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    screen = (screen + os.read(master, 65536))[-20000:]
                except OSError:
                    break
            steps = [int(s) for s in re.findall(rb"step (\d+)/\d+", screen) if int(s) > 0]
        assert len(set(steps)) >= 2, f"the step count never moved on screen: {screen[-2000:]!r}"
        os.close(master)  # what sshd does when the connection drops
        hung_up = time.monotonic()
        code = _wait_exit(pid, HANGUP_TO_EXIT_S)
        seconds = time.monotonic() - hung_up
    finally:
        if code is None:  # never leave the app behind, whatever failed
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert code == 75, f"exit {code} after {seconds:.1f}s (None: still running after {HANGUP_TO_EXIT_S}s)"
    print(f"hangup to exit: {seconds:.2f}s")
    runs = discover_runs(out)
    assert len(runs) == 1 and runs[0].status == "stopped", runs
    checkpoints = list_checkpoints(runs[0].path, verify=True)
    assert checkpoints and checkpoints[-1].valid and checkpoints[-1].reason == "signal"
    assert verify_checkpoint(checkpoints[-1].path, full=True) is None
    assert not (runs[0].path / "run.pid").exists()
    assert "run_stopped" in (runs[0].path / "events.jsonl").read_text()
