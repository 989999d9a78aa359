"""The monitor: local worker runs (fake engine), pause/checkpoint/stop, follow mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Log, ProgressBar, Static

from tests.functional.helpers import static_text, wait_until
from tests.functional.fakes import FakeEngine, make_services, scripted_events
from tui_trainer.config import RunConfig
from tui_trainer.engine import events as ev
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.messages import EngineEvent
from tui_trainer.ui.screens.modals import ConfirmScreen
from tui_trainer.ui.screens.monitor import MonitorScreen


@asynccontextmanager
async def _training(tmp_path: Path, *, total: int, delay: float) -> AsyncIterator[tuple[TrainerApp, Pilot, FakeEngine]]:
    """An app training a fake engine, on the monitor, past its first step."""
    engine = FakeEngine(tmp_path, total=total, delay=delay)
    app = TrainerApp(services=make_services(tmp_path, engine), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        app.start_training(RunConfig())
        await wait_until(pilot, lambda: engine.started.is_set() and app.run_state.step > 0)
        yield app, pilot, engine


def _text(app: TrainerApp, selector: str) -> str:
    return static_text(app.screen.query_one(selector, Static))


async def test_monitor_updates_from_event_stream(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path)
    engine.gate.clear()
    app = TrainerApp(services=make_services(tmp_path, engine), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        app.start_training(RunConfig())
        await pilot.pause()
        assert isinstance(app.screen, MonitorScreen)
        # Drive the monitor directly with a scripted stream, as the worker would post it.
        for event in scripted_events(str(tmp_path / "runs" / "x"), total=40, upto=30):
            app.post_message(EngineEvent(event))
        await pilot.pause()
        title = _text(app, "#monitor-title")
        assert "step 30/40" in title
        assert "ETA 00:20" in title  # 10 steps left at 2 s per step (event times)
        bar = app.screen.query_one("#monitor-progress", ProgressBar)
        assert bar.progress == 30 and bar.total == 40
        metrics = _text(app, "#metrics")
        assert "4,096" in metrics and "2.000" not in metrics
        log_lines = app.screen.query_one("#event-log", Log).lines
        assert any("checkpoint step-00000020 saved (interval)" in line for line in log_lines)
        assert any("docs starts epoch 1" in line for line in log_lines)
        assert any("warning: loss spike" in line for line in log_lines)
        shares = _text(app, "#shares")
        assert "75.0%" in shares and "25.0%" in shares
        assert app.run_state.eval_points[-1] == (30, 2.9 - 30 / 40)
        engine.gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()


async def test_local_run_to_completion_through_worker(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path, total=25)
    app = TrainerApp(services=make_services(tmp_path, engine), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        app.start_training(RunConfig())
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.run_state.status == "finished"
        assert app.run_state.step == 25
        assert "step 25/25" in _text(app, "#monitor-title")
        assert app.exit_code == 0
        # Coalescing: 25 instant steps must not become 25 UI updates.
        assert app.last_result.final_step == 25


async def test_stop_asks_for_confirmation_then_saves(tmp_path: Path) -> None:
    async with _training(tmp_path, total=1000, delay=0.002) as (app, pilot, engine):
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep training
        assert isinstance(app.screen, MonitorScreen)
        assert not app.controls.stop.is_set()
        await pilot.press("s")
        await pilot.press("y")
        assert app.controls.stop.is_set() and app.controls.reason == "user"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.run_state.status == "stopped"
        assert app.exit_code == 75
        assert any("checkpoint" in line and "(user)" in line for line in app.run_state.log)


async def test_pause_and_checkpoint_keys(tmp_path: Path) -> None:
    async with _training(tmp_path, total=100000, delay=0.001) as (app, pilot, engine):
        await pilot.press("p")
        assert app.controls.pause.is_set()
        assert app.run_state.status == "paused"
        await pilot.press("c")
        assert app.controls.checkpoint_now.is_set()
        await pilot.press("p")
        assert not app.controls.pause.is_set()
        await pilot.pause(0.2)
        app.stop_training()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("(user)" in line and "checkpoint" in line for line in app.run_state.log)


async def test_quit_while_training_asks_and_saves(tmp_path: Path) -> None:
    async with _training(tmp_path, total=100000, delay=0.001) as (app, pilot, engine):
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert app.return_code == 75
    assert engine.calls and app.last_result.status == "stopped"


async def test_engine_user_error_shows_error_screen(tmp_path: Path) -> None:
    from tui_trainer.errors import DataError
    from tui_trainer.ui.screens.modals import ErrorScreen

    engine = FakeEngine(tmp_path, fail=DataError("data.datasets[0] (code): /x.jsonl not found; check the path"))
    app = TrainerApp(services=make_services(tmp_path, engine), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        app.start_training(RunConfig())
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert "/x.jsonl not found" in _text(app, "#error-message")
        assert app.exit_code == 2
        await pilot.press("escape")
        assert isinstance(app.screen, MonitorScreen)
        assert app.run_state.status == "failed"


async def test_follow_mode_reads_events_and_stop_writes_stop_file(tmp_path: Path) -> None:
    import json

    run_dir = tmp_path / "runs" / "other-20231114-221320"
    run_dir.mkdir(parents=True)
    with (run_dir / "events.jsonl").open("w") as fh:
        for event in scripted_events(str(run_dir), total=40, upto=12):
            fh.write(json.dumps(event.to_dict()) + "\n")
    services = make_services(tmp_path)
    from tui_trainer.runs import EventFollower

    services.follower = EventFollower
    services.request_stop = __import__("tui_trainer.runs", fromlist=["request_stop"]).request_stop
    app = TrainerApp(services=services, monitor_run=run_dir, output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, MonitorScreen) and app.screen.following
        assert "step 12/40" in _text(app, "#monitor-title")
        with (run_dir / "events.jsonl").open("a") as fh:
            fh.write(json.dumps(ev.StepMetrics(13, loss=1.0, lr=1e-4, grad_norm=1.0, tokens_per_s=1.0, samples_per_dataset={}, total_steps=40).to_dict()) + "\n")
        app.screen.poll_follower()
        await pilot.pause()
        assert "step 13/40" in _text(app, "#monitor-title")
        await pilot.press("p")  # not available when following: nothing happens
        assert app.controls is None
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert (run_dir / "STOP").is_file()
