"""End to end in a real pseudo-terminal: start training from the command line, read the
rendered screen (pyte) until the step count moves, send SIGHUP, expect exit 75 and a
valid checkpoint, as when an SSH connection drops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_trainer.config.io import save_config
from tui_trainer.demo.catalog import demo_run_config
from tui_trainer.runs.listing import discover_runs, list_checkpoints

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COLS, ROWS = 100, 32


def _command(config: Path) -> list[str]:
    """The installed console script when it has the ``tui`` command, else the same entry point."""
    script = Path(sys.executable).parent / "tui-trainer"
    if script.exists():
        probe = subprocess.run([str(script), "tui", "--help"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return [str(script), "tui", "--config", str(config), "--start"]
    code = "import sys; from pathlib import Path; from tui_trainer.ui.launch import run_app; sys.exit(run_app(config_path=Path(sys.argv[1]), start=True))"
    return [sys.executable, "-c", code, str(config)]


def _steps(screen) -> int | None:
    match = re.search(r"step (\d+)/(\d+)", "\n".join(screen.display))
    return int(match.group(1)) if match else None


def test_sighup_stops_with_checkpoint_and_exit_75(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    config = tmp_path / "run.toml"
    save_config(demo_run_config(steps=400, output_dir=str(out)), config)
    env = {**os.environ, "TERM": "xterm-256color", "HF_HUB_OFFLINE": "1", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    cmd = _command(config)
    child = pexpect.spawn(cmd[0], cmd[1:], cwd=str(ROOT), env=env, dimensions=(ROWS, COLS), timeout=5)
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    first: int | None = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            try:
                stream.feed(child.read_nonblocking(65536, timeout=0.5))
            except pexpect.TIMEOUT:
                pass
            step = _steps(screen)
            if step is not None and step > 0:
                if first is None:
                    first = step
                elif step > first:
                    break
        else:
            pytest.fail("the step count never moved on screen:\n" + "\n".join(screen.display))
        child.kill(signal.SIGHUP)
        after = b""
        while True:  # drain until the app has restored the terminal and exited
            try:
                chunk = child.read_nonblocking(65536, timeout=120)
            except pexpect.EOF:
                break
            after += chunk
            stream.feed(chunk)
        child.wait()
    finally:
        if child.isalive():
            child.kill(signal.SIGKILL)
    assert child.exitstatus == 75, f"exit {child.exitstatus} / signal {child.signalstatus}"
    # The terminal (tmux keeps it on SIGHUP) shows how the run ended and the exact resume command.
    printed = after.decode("utf-8", "replace")
    assert "tui-trainer: " in printed and "--resume" in printed, printed[-2000:]
    runs = discover_runs(out)
    assert len(runs) == 1 and runs[0].status == "stopped"
    checkpoints = list_checkpoints(runs[0].path, verify=True)
    assert checkpoints and checkpoints[-1].valid and checkpoints[-1].step >= first
