"""Detached runs (DESIGN §2.2): validated in the foreground, then trained in their own
session, so closing the terminal that started them does not stop them."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, cli, demo_cfg, write_cfg
from tui_trainer.engine.checkpoint.rundir import run_owner
from tui_trainer.runs.launch import LOG_FILE


def _types(run_dir: Path) -> list[str]:
    try:
        return [json.loads(l)["type"] for l in (run_dir / "events.jsonl").read_text().splitlines()]
    except (OSError, ValueError):
        return []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # reparented to a PID 1 that may not reap it


def _wait(predicate, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_bad_config_is_refused_in_the_foreground(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nname = "x"\noutput_dir = "%s"\n[train]\nlr = "fast"\n' % (tmp_path / "runs"))
    result = cli("train", str(bad), "--detach", timeout=120)
    assert result.returncode == 2 and "lr" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_nproc_zero_is_exit_2(tmp_path):
    cfg_path = write_cfg(demo_cfg(tmp_path), tmp_path / "run.toml")
    result = cli("train", str(cfg_path), "--nproc", "0", timeout=120)
    assert result.returncode == 2 and "--nproc 0" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_detached_run_survives_its_terminal(tmp_path):
    cfg_path = write_cfg(demo_cfg(tmp_path, max_steps=6), tmp_path / "run.toml")
    pid, master = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "tui_trainer", "train", str(cfg_path), "--detach"])
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the launcher has exited and closed the slave side
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(master)  # the terminal goes away, as when the SSH connection drops
    assert os.waitstatus_to_exitcode(status) == 0, output
    run_dir = Path(output.decode().splitlines()[0].strip())
    assert run_dir.parent == tmp_path / "runs"
    _wait(lambda: "run_finished" in _types(run_dir) and run_owner(run_dir) is None)
    assert (run_dir / "final").is_dir() and (run_dir / LOG_FILE).is_file()


@pytest.mark.slow
def test_deleting_a_detached_runs_directory_ends_it_without_recreating_it(tmp_path):
    cfg_path = write_cfg(
        demo_cfg(tmp_path, max_steps=400, checkpoint={"every_steps": 0, "every_minutes": 0}), tmp_path / "run.toml"
    )
    other = tmp_path / "runs" / "other-run"
    other.mkdir(parents=True)
    (other / "keep.txt").write_text("mine")
    result = cli("train", str(cfg_path), "--detach", timeout=120)
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.splitlines()[0])
    trainer = int(re.search(r"pid (\d+)", result.stderr).group(1))
    _wait(lambda: _types(run_dir).count("step") >= 1)
    shutil.rmtree(run_dir)
    _wait(lambda: _gone(trainer), 120)
    assert not run_dir.exists()
    assert (other / "keep.txt").read_text() == "mine"
