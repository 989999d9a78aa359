"""The monitor: local worker runs (fake engine), pause/checkpoint/stop, follow mode."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Log, ProgressBar, Static

from tests.functional.helpers import followed, poll_followed, static_text, wait_until
from tests.functional.fakes import T0, FakeEngine, make_services, scripted_events, step_event
from tui_trainer.config.schema import RunConfig
from tui_trainer.engine import events as ev
from tui_trainer.runs.listing import EventFollower
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.messages import EngineEvent
from tui_trainer.ui.screens.modals import ConfirmScreen
from tui_trainer.ui.screens.monitor import MonitorScreen


@asynccontextmanager
async def _training(tmp_path: Path, *, total: int = 1000) -> AsyncIterator[tuple[TrainerApp, Pilot, FakeEngine]]:
    """An app training a fake engine, on the monitor, held after its first step until the test opens the gate.

    Held, not sized by wall time: a fake that runs free can finish before the pilot's keys arrive on a slow machine.
    """
    engine = FakeEngine(tmp_path, total=total, hold_after=1)
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
        assert app.exit_code == 0 and app.last_result.final_step == 25


async def test_step_events_are_coalesced(tmp_path: Path) -> None:
    total = 2000
    engine = FakeEngine(tmp_path, total=total)
    app = TrainerApp(services=make_services(tmp_path, engine), output_dir=tmp_path / "runs", max_ui_rate=10)
    async with app.run_test(size=(100, 32)) as pilot:
        started = time.monotonic()
        app.start_training(RunConfig())
        await app.workers.wait_for_complete()
        await pilot.pause()
        elapsed = time.monotonic() - started
        assert app.run_state.step == total
        updates = app.controller.step_updates
        # At most 10 a second (+ the first and the final flush), however fast the engine: 2,000
        # steps must not become 2,000 repaints. The bound scales with the time the run took.
        assert updates <= 2 + 10 * elapsed * 1.5, (updates, elapsed)
        assert updates < total / 10, (updates, elapsed)


async def test_stop_asks_for_confirmation_then_saves(tmp_path: Path) -> None:
    async with _training(tmp_path) as (app, pilot, engine):
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep training
        assert isinstance(app.screen, MonitorScreen)
        assert not app.controls.stop.is_set()
        engine.allow(1)  # one more step: the engine must not see a stop after "n"
        await wait_until(pilot, lambda: app.run_state.step == 2)
        await pilot.press("s")
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        # The engine itself saw the stop, once, before step 3, with the user's reason.
        assert engine.observed == [("stop", 2, "user")]
        assert app.run_state.status == "stopped"
        assert app.exit_code == 75


async def test_pause_and_checkpoint_keys(tmp_path: Path) -> None:
    async with _training(tmp_path) as (app, pilot, engine):
        await pilot.press("p")
        assert app.run_state.status == "paused"
        engine.allow(1)
        await wait_until(pilot, lambda: engine.observed)  # the engine is now waiting in its pause
        await pilot.press("c")
        await pilot.press("p")
        assert app.run_state.status == "training"
        await wait_until(pilot, lambda: app.run_state.step == 2)
        app.stop_training()
        await app.workers.wait_for_complete()
        await pilot.pause()
        # What the engine saw, in order: the pause, then (after p) the checkpoint request, then the stop.
        assert engine.observed == [("paused", 1), ("checkpoint_now", 1), ("stop", 2, "user")]


async def test_eta_leaves_paused_time_out(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path)
    engine.gate.clear()
    app = TrainerApp(services=make_services(tmp_path, engine), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        app.start_training(RunConfig())
        await pilot.pause()
        for event in scripted_events(str(tmp_path / "runs" / "x"), total=40, upto=10):
            app.post_message(EngineEvent(event))
        await pilot.pause()
        assert "ETA 01:00" in _text(app, "#monitor-title")  # 30 steps at 2 s
        now = [T0 + 21.0]
        app.controller.clock = lambda: now[0]
        await pilot.press("p")
        now[0] = T0 + 81.0  # a minute paused
        await pilot.press("p")
        app.post_message(EngineEvent(dataclasses.replace(step_event(11, 40), time=T0 + 82.0)))
        await pilot.pause()
        assert "ETA 00:58" in _text(app, "#monitor-title")  # still 2 s a step: the pause is not a slow step
        app.stop_training()
        engine.gate.set()
        await app.workers.wait_for_complete()


async def test_quit_while_training_asks_and_saves(tmp_path: Path) -> None:
    async with _training(tmp_path) as (app, pilot, engine):
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
    from tui_trainer.runs.listing import EventFollower

    services.follower = EventFollower
    services.request_stop = __import__("tui_trainer.runs.listing", fromlist=["request_stop"]).request_stop
    app = TrainerApp(services=services, monitor_run=run_dir, output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.following
        await followed(pilot, app.screen)
        assert "step 12/40" in _text(app, "#monitor-title")
        with (run_dir / "events.jsonl").open("a") as fh:
            fh.write(json.dumps(ev.StepMetrics(13, loss=1.0, lr=1e-4, grad_norm=1.0, tokens_per_s=1.0, samples_per_dataset={}, total_steps=40).to_dict()) + "\n")
        await poll_followed(pilot, app.screen)
        assert "step 13/40" in _text(app, "#monitor-title")
        await pilot.press("p")  # not available when following: nothing happens
        assert app.controls is None
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert (run_dir / "STOP").is_file()


def _followed_run(tmp_path: Path, owner: str | None, gpu: bool) -> tuple[TrainerApp, list[str]]:
    """A run another process trains (``owner`` in run.pid), the app following it, and the titles
    the local sampler was asked for (it names this machine's GPU)."""
    import json
    import socket

    run_dir = tmp_path / "runs" / "remote-20231114-221320"
    run_dir.mkdir(parents=True)
    events = scripted_events(str(run_dir), total=40, upto=12)
    if gpu:  # a CUDA run samples its own device about once a second
        events = [dataclasses.replace(e, gpu_utilization_pct=91.5, gpu_memory_bytes=12 * 1024**3)
                  if isinstance(e, ev.StepMetrics) and e.step == 11 else e for e in events]  # fmt: skip
    with (run_dir / "events.jsonl").open("w") as fh:
        for event in events:
            fh.write(json.dumps(event.to_dict()) + "\n")
    if owner is not None:
        (run_dir / "run.pid").write_text(owner.replace("THIS", socket.gethostname()) + "\n")
    local: list[str] = []
    services = make_services(tmp_path)
    services.follower = EventFollower
    sample = services.system_sample
    services.system_sample = lambda: local.append("sampled") or sample()
    return TrainerApp(services=services, monitor_run=run_dir, output_dir=tmp_path / "runs"), local


async def test_a_run_followed_on_another_machine_shows_its_own_gpu_not_this_one(tmp_path: Path) -> None:
    app, local = _followed_run(tmp_path, "gpu-node-7:4242", gpu=True)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await followed(pilot, app.screen)
        panel = app.screen.query_one("#system-panel")
        assert app.screen.remote_host == "gpu-node-7" and panel.border_title == "GPU on gpu-node-7"
        assert "91.5%" in _text(app, "#sys-util") and "12.0 GiB in use" in _text(app, "#sys-mem")
        assert local == []  # this machine's GPU was never read: it says nothing about that run


async def test_a_cpu_run_on_another_machine_says_its_events_carry_no_gpu_readings(tmp_path: Path) -> None:
    app, local = _followed_run(tmp_path, "cpu-box:99", gpu=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await followed(pilot, app.screen)
        assert app.screen.query_one("#system-panel").border_title == "on cpu-box"
        assert "no GPU readings" in _text(app, "#sys-util") and local == []


async def test_a_run_followed_on_this_machine_shows_this_machines_gpu(tmp_path: Path) -> None:
    app, local = _followed_run(tmp_path, "THIS:4242", gpu=True)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await followed(pilot, app.screen)
        assert app.screen.remote_host is None and local
        assert app.screen.query_one("#system-panel").border_title == "NVIDIA Test GPU"
