"""Home and detached runs: a live run of another process is marked, m follows it, stop asks then writes
STOP, and quitting the app leaves that process training (it is never signalled)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from textual.widgets import DataTable, Static

from tests.functional.fakes import fake_runs, make_services, scripted_events
from tests.functional.helpers import home_read, static_text, wait_until
from tui_trainer.runs.listing import EventFollower, discover_runs, request_stop
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.home import HomeScreen, is_detached
from tui_trainer.ui.screens.modals import ConfirmScreen
from tui_trainer.ui.screens.monitor import MonitorScreen

# Stands in for `tui-trainer train --detach`: owns the run directory as the engine does (flock on
# run.lock, host:pid in run.pid) and records any signal it gets instead of dying of it.
TRAINER = r"""
import fcntl, os, signal, socket, sys, time
from pathlib import Path
run = Path(sys.argv[1])
fd = os.open(run / "run.lock", os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
(run / "run.pid").write_text(f"{socket.gethostname()}:{os.getpid()}\n")
def got(sig, frame):
    with open(run / "signals", "a") as fh:
        fh.write(signal.Signals(sig).name + "\n")
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, got)
(run / "ready").write_text("ok")
time.sleep(120)
"""


def _start_detached_run(root: Path) -> tuple[Path, subprocess.Popen]:
    run = root / "runs" / "detached-20231114-221320"
    run.mkdir(parents=True)
    with (run / "events.jsonl").open("w") as fh:
        for event in scripted_events(str(run), total=40, upto=12):
            fh.write(json.dumps(event.to_dict()) + "\n")
    proc = subprocess.Popen([sys.executable, "-c", TRAINER, str(run)])
    deadline = time.monotonic() + 20
    while not (run / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the stand-in trainer did not start"
        time.sleep(0.05)
    return run, proc


async def test_detached_run_is_marked_followed_asked_to_stop_and_left_training_on_quit(tmp_path: Path) -> None:
    run, proc = _start_detached_run(tmp_path)
    try:
        services = make_services(tmp_path)
        services.discover_runs, services.follower, services.request_stop = discover_runs, EventFollower, request_stop
        app = TrainerApp(services=services, output_dir=tmp_path / "runs")
        async with app.run_test(size=(100, 32)) as pilot:
            await home_read(pilot, app)
            table = app.screen.query_one("#runs-table", DataTable)
            assert table.get_row_at(0)[1].plain == "detached"
            summary = static_text(app.screen.query_one("#home-summary", Static))
            assert f"1 training detached (pid {proc.pid})" in summary
            await pilot.press("m")
            await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.state.step == 12)
            assert app.screen.following and app.screen.follow_dir == run
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)  # asks first
            assert not (run / "STOP").exists()
            await pilot.press("y")
            await wait_until(pilot, lambda: (run / "STOP").is_file())
            await pilot.press("q")  # nothing trains in this app: it quits without asking
            await wait_until(pilot, lambda: not app.is_running)
        assert app.return_code in (0, None)
        time.sleep(0.2)  # a signal sent on the way out would have been handled by now
        assert proc.poll() is None, "the detached run's process ended with the app"
        assert not (run / "signals").exists(), (run / "signals").read_text()
    finally:
        proc.kill()
        proc.wait()


async def test_a_finished_or_own_run_is_not_marked_detached(tmp_path: Path) -> None:
    runs = fake_runs(tmp_path)
    here = f"{socket.gethostname()}:{os.getpid()}"
    mine = replace(runs[1], path=tmp_path / "mine", name="mine", status="running", started=runs[0].started + 1, owner=here)
    other = replace(mine, owner=f"{socket.gethostname()}:1")
    assert not is_detached(mine) and is_detached(other) and not any(is_detached(r) for r in runs)
    app = TrainerApp(services=make_services(tmp_path, runs=[mine, *runs]), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        await home_read(pilot, app)
        assert isinstance(app.screen, HomeScreen)
        table = app.screen.query_one("#runs-table", DataTable)
        assert [table.get_row_at(i)[1].plain for i in range(table.row_count)] == ["running", "stopped", "finished", "failed"]
        assert "detached" not in static_text(app.screen.query_one("#home-summary", Static))
