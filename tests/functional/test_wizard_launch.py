"""The wizard's launch options, the second demo and "measure this config", against injected services."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

from textual.widgets import Input, Select, Static, Switch

from tests.functional.fakes import FakeEngine, make_services
from tests.functional.helpers import static_text, wait_until
from tui_trainer.config.schema import config_from_dict
from tui_trainer.planning.hardware import GIB
from tui_trainer.runs.launch import StartedRun
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.screens.wizard import WizardScreen

BASE = {"data": {"datasets": [{"name": "code", "path": "demo:python-code"}]}, "train": {"max_steps": 40}}


class FakeLauncher:
    """services.launch: records each start and makes the run directory, starts no process."""

    def __init__(self, root: Path) -> None:
        self.root, self.calls, self.threads = root, [], []

    def __call__(self, cfg, *, detach: bool, nproc: int) -> StartedRun:
        self.threads.append(threading.current_thread())
        run_dir = self.root / f"{cfg.run.name}-{len(self.calls)}"
        run_dir.mkdir(parents=True)
        self.calls.append((cfg, detach, nproc, run_dir))
        return StartedRun(run_dir, 4242)


def _app(tmp_path: Path, **services):
    svc = make_services(tmp_path, engine=FakeEngine(tmp_path, total=3))
    stops: list[int] = []
    svc.end_process = stops.append  # no real process: the launcher is a fake
    for name, value in services.items():
        setattr(svc, name, value)
    return TrainerApp(services=svc, output_dir=tmp_path / "runs"), stops


async def _wizard(pilot, app) -> WizardScreen:
    app.push_screen(WizardScreen(config_from_dict(BASE), fit_on_mount=False))
    await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.ready)
    return app.screen


async def test_detached_start_launches_follows_and_is_left_running_on_quit(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path / "runs")
    app, stops = _app(tmp_path, launch=launcher)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _wizard(pilot, app)
        assert wiz.query_one("#launch-nproc", Input).value == "1"  # the fake machine's GPU reports no count: one process
        wiz.query_one("#launch-detach", Switch).value = True
        await pilot.pause()
        assert "starts detached, keeps training when the app quits" in static_text(wiz.query_one("#wiz-status", Static), width=300)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        cfg, detach, nproc, run_dir = launcher.calls[0]
        assert (detach, nproc, cfg.train.max_steps) == (True, 1, 40)
        assert launcher.threads[0] is not threading.main_thread()  # the launch (a subprocess) never runs on the UI thread
        assert app.screen.following and app.screen.follow_dir == run_dir
        assert app.services.train.calls == []  # nothing trains in the app's own worker
    assert stops == []  # quitting leaves a detached run training


async def test_processes_above_one_launch_and_the_app_stops_them_on_quit(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path / "runs")
    four_gpus = lambda: SimpleNamespace(kind="cuda", name="Test GPU", total_bytes=80 * GIB, free_bytes=78 * GIB, bf16=True, gpu_count=4)  # noqa: E731
    app, stops = _app(tmp_path, launch=launcher, detect_hardware=four_gpus)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _wizard(pilot, app)
        nproc = wiz.query_one("#launch-nproc", Input)
        assert nproc.value == "4"  # one process per visible GPU
        nproc.value = "0"
        await pilot.pause()
        assert "processes" in static_text(wiz.query_one("#wiz-status", Static), width=300) and wiz.query_one("#start").disabled
        assert nproc.has_class("-invalid")
        nproc.value = "2"
        await pilot.pause()
        assert not nproc.has_class("-invalid")
        assert "starts on 2 processes (torchrun), stopped with a checkpoint" in static_text(wiz.query_one("#wiz-status", Static), width=300)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        _, detach, n, run_dir = launcher.calls[0]
        assert (detach, n) == (False, 2) and app.screen.follow_dir == run_dir
    assert stops == [4242]  # an attached multi-process run's launcher gets SIGTERM: it saves and stops with the app


async def test_one_process_not_detached_trains_in_the_app(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path / "runs")
    app, _ = _app(tmp_path, launch=launcher)
    async with app.run_test(size=(120, 40)) as pilot:
        await _wizard(pilot, app)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.services.train.calls)
        assert not app.screen.following and launcher.calls == []


async def test_smollm2_is_offered_as_the_second_demo(tmp_path: Path) -> None:
    from tui_trainer.demo.catalog import smollm2_demo_config

    app, _ = _app(tmp_path, smollm2_config=lambda out: smollm2_demo_config(output_dir=str(out)))
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _wizard(pilot, app)
        preset = wiz.query_one("#preset", Select)
        labels = [str(prompt) for prompt, _ in preset._options]
        assert "demo: tiny Llama" in labels and "demo: SmolLM2-135M" in labels
        preset.value = "__demo_smollm2__"
        await pilot.pause()
        assert wiz.config.model.name_or_path == "demo:smollm2-135m" and wiz.config.lora.enabled
        assert wiz.query_one("#f-model-name-or-path", Input).value == "demo:smollm2-135m"
        status = static_text(wiz.query_one("#wiz-status", Static), width=400)
        assert "134.5M parameters" in status and "converts the GGUF (~1 min)" in status
        assert wiz.query_one("#level", Select).disabled  # a demo is a whole run, not a preset level


async def test_measure_runs_in_a_worker_and_shows_figures_next_to_the_estimate(tmp_path: Path) -> None:
    release, seen = threading.Event(), []

    def measure(cfg):
        seen.append((cfg, threading.current_thread()))
        release.wait(10)
        return SimpleNamespace(step_median_s=0.42, step_p90_s=0.5, tokens_per_s=12_345.0, peak_memory_bytes=3 * GIB, memory_kind="rss")

    app, _ = _app(tmp_path, measure=measure)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _wizard(pilot, app)
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: seen)
        memory = lambda: static_text(wiz.query_one("#memory", Static), width=200)  # noqa: E731
        assert wiz.measuring and "measuring a few steps" in memory()
        assert seen[0][1] is not threading.main_thread() and seen[0][0].train.max_steps == 40
        await pilot.press("ctrl+b")  # a second request while one runs starts nothing
        await pilot.press("ctrl+t")  # nor does a start: the run and the measurement would share the machine
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen) and app.services.train.calls == []
        release.set()
        await wait_until(pilot, lambda: not wiz.measuring)
        assert len(seen) == 1
        assert "0.42 s/step (p90 0.5), 12,345 tokens/s, peak 3.0 GiB RSS" in memory()
        wiz.query_one("#f-train-lr", Input).value = "1e-4"
        await pilot.pause()
        assert "(before the last edits)" in memory()


async def test_a_failed_measurement_is_shown_and_the_app_stays(tmp_path: Path) -> None:
    def measure(cfg):
        raise RuntimeError("the measured run ended stopped after 1 steps")

    app, _ = _app(tmp_path, measure=measure)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _wizard(pilot, app)
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: not wiz.measuring)
        assert app.screen is wiz and wiz.measured is None
        assert any("Measuring failed: RuntimeError: the measured run ended" in str(n.message) for n in app._notifications)
