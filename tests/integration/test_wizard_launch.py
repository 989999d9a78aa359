"""A detached start from the app's wizard (the real launcher: runs.launch) keeps training after the app quits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from textual.widgets import Switch

from tests.functional.fakes import make_services
from tests.functional.helpers import wait_until
from tests.integration.conftest import ROOT, demo_cfg
from tui_trainer.engine.checkpoint.rundir import run_owner
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.screens.wizard import WizardScreen
from tui_trainer.ui.services import Services


def _types(run_dir: Path) -> list[str]:
    try:
        return [json.loads(line)["type"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
async def test_detached_start_from_the_wizard_survives_the_app(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the detached trainer is `python -m tui_trainer` from here
    services = make_services(tmp_path)
    services.launch = Services().launch  # the real one: a process in its own session
    services.follower = Services().follower
    services.poll_every = 0.2  # the fakes read a followed run once; this one is live
    app = TrainerApp(services=services, output_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(WizardScreen(demo_cfg(tmp_path, max_steps=30), fit_on_mount=False))
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.ready)
        app.screen.query_one("#launch-detach", Switch).value = True
        await pilot.pause()
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), timeout=60)
        started = app.launches.started[0]
        monitor = app.screen
        assert monitor.following and monitor.follow_dir == started.run_dir
        # the monitor follows the run's events: quit once it trains (a trainer still starting up would
        # outlive the app even if the app tried to end it)
        await wait_until(pilot, lambda: monitor.state.step >= 1, timeout=120)
        await pilot.press("q")  # the app quits at once: nothing trains in it
    assert app.return_code == 0
    assert _alive(started.pid) or "run_finished" in _types(started.run_dir)
    deadline = time.monotonic() + 300
    while not ("run_finished" in _types(started.run_dir) and run_owner(started.run_dir) is None):
        ended = {"run_stopped", "run_failed"} & set(_types(started.run_dir))
        assert not ended and time.monotonic() < deadline, (started.run_dir / "train.log").read_text()
        time.sleep(0.2)
    assert (started.run_dir / "final").is_dir()
    assert not (started.run_dir / "STOP").exists()
