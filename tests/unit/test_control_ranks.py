"""engine/control.agree across two real gloo processes: a request seen by ONE rank becomes
every rank's decision at the same step.

Each rank runs the loop's skeleton: agree, then (if agreed) the save barrier, then a
training all-reduce. Were a rank to act on its own flags, the ranks would part ways in
different collectives: the one still training waits in its all-reduce until gloo's
timeout (GLOO_TIMEOUT_S) fails it, and the test fails instead of hanging.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

STEPS = 8
REQUEST_AT = 3
GLOO_TIMEOUT_S = 10


SCENARIOS = (
    "stop_file_on_rank_1",
    "signal_on_rank_1",
    "checkpoint_now_on_rank_0",
    "time_due_on_rank_1_and_user_stop_on_rank_0",
)


def _scenario(rank: int, scenario: str, stop_file: Path) -> list[tuple]:
    import torch
    import torch.distributed as dist

    from tui_trainer.engine.control import Controls, agree

    accelerator = SimpleNamespace(num_processes=2, device=torch.device("cpu"))
    controls = Controls()
    log: list[tuple] = []
    for step in range(STEPS):
        if step == REQUEST_AT:
            if scenario == "stop_file_on_rank_1" and rank == 1:
                stop_file.write_text("")  # rank 0's STOP path is elsewhere: only rank 1 sees it
            elif scenario == "signal_on_rank_1" and rank == 1:
                controls.request_stop("signal")
            elif scenario == "checkpoint_now_on_rank_0" and rank == 0:
                controls.checkpoint_now.set()
            elif scenario.startswith("time_due") and rank == 0:
                controls.request_stop("user")
        time_due = scenario.startswith("time_due") and rank == 1 and step == REQUEST_AT
        decision = agree(controls, accelerator, stop_file=stop_file, run_dir=None, time_due=time_due)
        if decision.stop is not None:
            log.append(("stop", step, decision.stop, controls.reason))
            break
        if decision.save is not None:
            dist.barrier()  # save_checkpoint's wait_for_everyone
            log.append(("save", step, decision.save))
        grads = torch.ones(4)
        dist.all_reduce(grads)  # the step's gradient all-reduce
        log.append(("step", step, float(grads[0])))
    dist.barrier()  # both ranks leave the scenario together, or time out here
    return log


def _rank_main(rank: int, store: str, base: str, results) -> None:
    """Every scenario in turn in one process group: one spawn (and torch import) per rank."""
    import torch.distributed as dist

    try:
        dist.init_process_group(
            "gloo", init_method=f"file://{store}", rank=rank, world_size=2, timeout=timedelta(seconds=GLOO_TIMEOUT_S)
        )
        for scenario in SCENARIOS:
            stop_file = Path(base) / scenario / f"rank{rank}" / "STOP"
            stop_file.parent.mkdir(parents=True)
            try:
                results.put((rank, scenario, _scenario(rank, scenario, stop_file), None))
            except Exception:
                results.put((rank, scenario, None, traceback.format_exc()))
                return  # a timed-out group is broken: the scenarios after it cannot run
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_logs(tmp_path_factory) -> dict[str, dict[int, list[tuple] | str]]:
    """scenario -> rank -> its log (or the error it failed with)."""
    base = tmp_path_factory.mktemp("ranks")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(rank, str(base / "store"), str(base), results)) for rank in (0, 1)]
    for proc in procs:
        proc.start()
    logs: dict[str, dict[int, list[tuple] | str]] = {scenario: {} for scenario in SCENARIOS}
    try:
        while any(len(by_rank) < 2 for by_rank in logs.values()):
            try:
                # spawn + import torch on 2 busy cores, then every scenario; a hang ends at gloo's timeout
                rank, scenario, log, error = results.get(timeout=GLOO_TIMEOUT_S + 120)
            except queue.Empty:
                break
            logs[scenario][rank] = error or log
            if error:
                break
    finally:
        for proc in procs:
            proc.join(timeout=GLOO_TIMEOUT_S + 30)
            if proc.is_alive():
                proc.kill()
    return logs


def _both(rank_logs, scenario: str) -> list[tuple]:
    by_rank = rank_logs[scenario]
    assert set(by_rank) == {0, 1}, f"{scenario}: no result from rank(s) {sorted({0, 1} - set(by_rank))}: {by_rank}"
    failed = {rank: log for rank, log in by_rank.items() if isinstance(log, str)}
    assert not failed, f"{scenario}: {failed}"
    assert by_rank[0] == by_rank[1], f"{scenario}: the ranks parted ways: {by_rank}"
    return by_rank[0]


def _trained(log: list[tuple]) -> list[int]:
    return [entry[1] for entry in log if entry[0] == "step"]


@pytest.mark.parametrize(("scenario", "reason"), [("stop_file_on_rank_1", "stop_file"), ("signal_on_rank_1", "signal")])
def test_a_stop_one_rank_sees_stops_both_at_the_same_step(rank_logs, scenario, reason):
    log = _both(rank_logs, scenario)
    assert _trained(log) == list(range(REQUEST_AT))
    assert log[-1] == ("stop", REQUEST_AT, reason, reason)  # and each rank's controls name it


def test_checkpoint_now_on_rank_0_saves_on_both_once(rank_logs):
    log = _both(rank_logs, "checkpoint_now_on_rank_0")
    assert [entry for entry in log if entry[0] == "save"] == [("save", REQUEST_AT, "user")]
    assert _trained(log) == list(range(STEPS))


def test_a_user_stop_on_one_rank_wins_over_a_save_due_on_the_other(rank_logs):
    log = _both(rank_logs, "time_due_on_rank_1_and_user_stop_on_rank_0")
    assert not [entry for entry in log if entry[0] == "save"]
    assert log[-1] == ("stop", REQUEST_AT, "user", "user")
