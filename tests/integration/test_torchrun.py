"""Several processes through torchrun on CPU (gloo): same losses as one process, one
decision for all ranks on a signal to the launcher, resume at another world size."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import cli, demo_cfg, popen, run_events, sigterm_after_steps, wait_for_steps, write_cfg
from tui_trainer.engine.checkpoint.store import verify_checkpoint

pytestmark = pytest.mark.slow


def _run_dir(out: Path) -> Path:
    (found,) = list(out.glob("it-*"))
    return found


def test_two_processes_train_the_same_losses_as_one(tmp_path):
    runs = {}
    for nproc in (1, 2):
        base = tmp_path / f"n{nproc}"
        base.mkdir()
        cfg_path = write_cfg(demo_cfg(base, max_steps=6), base / "run.toml")
        result = cli("train", str(cfg_path), "--nproc", str(nproc), timeout=400)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[nproc] = _run_dir(base / "runs")
    one, two = (run_events(runs[n]) for n in (1, 2))
    assert [e["type"] for e in two].count("run_started") == 1 and two[0]["type"] != "run_failed"
    started = next(e for e in two if e["type"] == "run_started")
    assert started["world_size"] == 2
    loss_one = [e["loss"] for e in one if e["type"] == "step"]
    loss_two = [e["loss"] for e in two if e["type"] == "step"]
    assert len(loss_one) == len(loss_two) == 6
    print(f"max |loss 1 proc - loss 2 procs| = {np.max(np.abs(np.subtract(loss_one, loss_two))):.2e}")
    for n, events in ((1, one), (2, two)):
        print(f"{n} process(es): {np.median([e['tokens_per_s'] for e in events if e['type'] == 'step']):,.0f} tokens/s (median)")
    np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5, atol=1e-5)
    assert (runs[2] / "final").is_dir() and not (runs[2] / "run.pid").exists()


def test_sigterm_to_the_launcher_stops_every_rank_and_resumes_at_one_process(tmp_path):
    cfg = demo_cfg(tmp_path, max_steps=400, checkpoint={"every_steps": 0, "every_minutes": 0})
    cfg_path = write_cfg(cfg, tmp_path / "run.toml")
    returncode, err = sigterm_after_steps(cfg_path, tmp_path / "runs", 2)
    assert returncode == 75, err[-3000:]
    run_dir = _run_dir(tmp_path / "runs")
    events = run_events(run_dir)
    stopped = [e for e in events if e["type"] == "run_stopped"]
    assert len(stopped) == 1 and stopped[0]["reason"] == "signal"
    reached = stopped[0]["step"]
    checkpoints = list((run_dir / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == [f"step-{reached:08d}"] and verify_checkpoint(checkpoints[0]) is None

    resumed = cli("train", str(cfg_path), "--resume", str(run_dir), "--max-steps", str(reached + 2))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = run_events(run_dir)
    restart = max(i for i, e in enumerate(after) if e["type"] == "run_started")
    assert after[restart]["step"] == reached and after[restart]["world_size"] == 1
    assert [e["step"] for e in after[restart:] if e["type"] == "step"] == [reached + 1, reached + 2]


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        todo += [int(c) for c in children]
    return found


def _rank_pid(launcher_pid: int, rank: int) -> int | None:
    for pid in _descendants(launcher_pid):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return pid
    return None


def test_a_signal_only_rank_1_gets_stops_both_ranks_at_one_step_with_one_checkpoint(tmp_path):
    """SIGTERM to rank 1 alone (as when a node's agent signals its own workers): the ranks
    agree before the next step, so rank 0 stops there too and saves the one checkpoint.
    Without the agreement rank 1 would wait in the save barrier while rank 0 waits in the
    gradient all-reduce: a hang, which the timeout below turns into a failure."""
    cfg = demo_cfg(tmp_path, max_steps=400, checkpoint={"every_steps": 0, "every_minutes": 0})
    cfg_path = write_cfg(cfg, tmp_path / "run.toml")
    launcher = popen("train", str(cfg_path), "--nproc", "2")
    family: list[int] = []
    try:
        wait_for_steps(launcher, tmp_path / "runs", 2)
        rank1 = _rank_pid(launcher.pid, 1)
        assert rank1 is not None, "rank 1's process not found"
        family = _descendants(launcher.pid)
        os.kill(rank1, signal.SIGTERM)
        _, err = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            for pid in [launcher.pid, *family]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    assert launcher.returncode == 75, err[-3000:]
    run_dir = _run_dir(tmp_path / "runs")
    [stopped] = [e for e in run_events(run_dir) if e["type"] == "run_stopped"]
    assert stopped["reason"] == "signal"
    checkpoints = list((run_dir / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == [f"step-{stopped['step']:08d}"] and verify_checkpoint(checkpoints[0]) is None


def test_a_rank_left_waiting_past_dist_timeout_s_is_exit_2_naming_the_key_and_the_checkpoint_survives(tmp_path):
    """The save at step 2 takes 12 s on rank 0 (only rank 0 writes) while rank 1 waits in its next
    collective: with train.dist_timeout_s = 5 rank 1 gives up. This is the setting's negative
    control (torch's gloo default is 30 min, so without it the run would just be slow), and the
    failure must read as what to change, with no traceback from the ranks or from torchrun."""
    cfg = demo_cfg(tmp_path, max_steps=5, dist_timeout_s=5, checkpoint={"every_steps": 2, "every_minutes": 0})
    cfg_path = write_cfg(cfg, tmp_path / "run.toml")
    result = cli("train", str(cfg_path), "--nproc", "2", env={"TUI_TRAINER_FAULTS": "slowsave@2x12"}, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "rank 1 waited longer than train.dist_timeout_s = 5 s" in result.stderr
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr
    events = run_events(_run_dir(tmp_path / "runs"))
    assert events[-2]["type"] == "run_failed" and events[-2]["error"].startswith("DistributedError: rank 0 stopped")
    saved = [e["path"] for e in events if e["type"] == "checkpoint_saved"]
    assert len(saved) == 1 and verify_checkpoint(Path(saved[0])) is None  # the slow save itself completed
