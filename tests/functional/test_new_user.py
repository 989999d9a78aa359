"""Issue 13: what went wrong for a new user in the first ten minutes, one test per item."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Button, DataTable, Input, Log, Select, Static

from tests.functional.fakes import T0, FakeEngine, fake_runs, make_services, scripted_events, step_event
from tests.functional.helpers import flows_app as _app, type_into as _type, demo_corpora_mix, rendered_text, static_text, wait_training, wait_until
from tui_trainer.config.io import save_config
from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.engine import events as ev
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.messages import EngineEvent
from tui_trainer.ui.screens.datasets import DatasetsScreen
from tui_trainer.ui.screens.home import HomeScreen
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.screens.resume import ResumePicker
from tui_trainer.ui.screens.wizard import WizardScreen


async def _to_wizard(pilot, strategy: str = "weighted") -> WizardScreen:
    """home -> n -> two demo corpora -> ctrl+n, waiting for the wizard's setup."""
    await pilot.press("n")
    screen = pilot.app.screen
    assert isinstance(screen, DatasetsScreen)
    if strategy != screen.draft.strategy:
        screen.query_one("#strategy", Select).value = strategy
        await pilot.pause()
    if not screen.draft.datasets:
        screen.add_dataset("demo:python-code")
        screen.add_dataset("demo:python-docs")
    await wait_until(pilot, lambda: all(d.inspected for d in screen.draft.datasets))
    await pilot.pause()
    screen.query_one("#datasets", DataTable).focus()
    await pilot.press("ctrl+n")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen) and pilot.app.screen.ready)
    await pilot.pause()
    return pilot.app.screen


def _status(wiz: WizardScreen) -> str:
    return static_text(wiz.query_one("#wiz-status", Static), width=400)


async def test_1_wizard_summary_follows_every_edit(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _to_wizard(pilot)
        await _type(pilot, "#f-train-max-steps", "40")
        assert "40 optimizer steps" in _status(wiz)
        await _type(pilot, "#f-train-max-steps", "25")
        assert "25 optimizer steps" in _status(wiz) and "40 optimizer" not in _status(wiz)
        await _type(pilot, "#f-train-max-steps", "0")  # from epochs and the estimated rows
        assert f"{wiz.plan.total_steps:,} optimizer steps (1 epoch(s)" in _status(wiz)


async def test_2_back_and_forth_keeps_edits(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _to_wizard(pilot)
        await _type(pilot, "#f-train-max-steps", "25")
        await _type(pilot, "#f-run-name", "mine")
        await pilot.press("escape")
        assert isinstance(app.screen, DatasetsScreen)
        wiz = await _to_wizard(pilot)
        assert wiz.query_one("#f-train-max-steps", Input).value == "25"
        assert wiz.config.train.max_steps == 25 and wiz.config.run.name == "mine"


async def test_2_loaded_config_survives_home_new_next(tmp_path: Path) -> None:
    loaded = config_from_dict({
        "run": {"name": "mine"},
        "lora": {"enabled": True, "r": 8},
        "data": {"max_seq_len": 256, "datasets": [{"name": "code", "path": "demo:python-code"}]},
        "train": {"max_steps": 30},
    })
    app = TrainerApp(config=loaded, services=make_services(tmp_path), output_dir=tmp_path / "runs", browse_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.ready)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        wiz = await _to_wizard(pilot)
        cfg = wiz.config
        assert (cfg.run.name, cfg.lora.enabled, cfg.lora.r, cfg.data.max_seq_len, cfg.train.max_steps) == ("mine", True, 8, 256, 30)


async def test_2_picking_a_preset_says_what_it_changed(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        wiz = await _to_wizard(pilot)
        fits = wiz.fits
        wiz.query_one("#level", Select).value = "highspeed"
        await wait_until(pilot, lambda: wiz.fits > fits)
        await pilot.pause()
        status = _status(wiz)
        assert "preset changed" in status
        assert "learning rate 0.0002 → 0.0003" in status and "micro batch 8 → 16" in status


async def test_3_sequential_ranges_checked_against_max_steps(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await demo_corpora_mix(pilot, "sequential")
        await pilot.pause()
        a, b = screen.draft.datasets
        a.start_step, a.end_step, b.start_step, b.end_step = 0, 50, 50, 70
        screen.query_one("#datasets", DataTable).focus()
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.ready)
        wiz = app.screen
        await _type(pilot, "#f-train-max-steps", "40")
        assert "python-docs would get no samples in this run of 40 steps" in _status(wiz)
        assert wiz.query_one("#start", Button).disabled
        await _type(pilot, "#f-train-max-steps", "70")
        assert "✓ valid" in _status(wiz)
        plan = static_text(wiz.query_one("#plan", Static), width=200)
        assert "2 datasets, sequential" in plan and "steps 50-69: python-docs" in plan


async def test_3_plan_is_at_the_top_of_the_monitor_log(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path)
    engine.gate.clear()
    app = _app(tmp_path, engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_training(RunConfig())
        await pilot.pause()
        plan = "2 datasets, sequential: code 75% (~960 samples, 5 epochs), docs 25% (~320 samples, 2 epochs)\n  steps 0-29: code\n  steps 30-39: docs"
        app.post_message(EngineEvent(ev.RunStarted(0, time=T0, config={}, run_dir=str(tmp_path / "r"), world_size=1, device="cpu", total_steps=40, plan=plan)))
        await pilot.pause()
        lines = app.screen.query_one("#event-log", Log).lines
        i = next(i for i, line in enumerate(lines) if "plan: 2 datasets, sequential: code 75%" in line)
        assert "run started" in lines[i - 1]  # right under the run's first line
        assert lines[i + 1].endswith("plan: steps 0-29: code") and lines[i + 2].endswith("plan: steps 30-39: docs")
        app.stop_training()
        engine.gate.set()
        await wait_training(app)


async def test_4_event_log_follows_after_resize(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path)
    engine.gate.clear()
    app = _app(tmp_path, engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_training(RunConfig())
        await pilot.pause()
        for event in scripted_events(str(tmp_path / "r"), total=40, upto=30):
            app.post_message(EngineEvent(event))
        await pilot.pause()
        log = app.screen.query_one("#event-log", Log)
        await pilot.resize_terminal(80, 24)  # the log gets shorter: its end moves down
        await pilot.pause()
        app.post_message(EngineEvent(ev.CheckpointSaved(31, time=T0 + 62, path=str(tmp_path / "r/checkpoints/step-00000031"), reason="user")))
        await pilot.pause()
        assert log.is_vertical_scroll_end and log.max_scroll_y > 0
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        app.post_message(EngineEvent(ev.RunStopped(31, time=T0 + 63, reason="user", checkpoint="step-00000031")))
        await pilot.pause()
        assert log.is_vertical_scroll_end and "stopped" in log.lines[-1]
        # the user scrolls up: new lines no longer move the view
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        app.post_message(EngineEvent(ev.Warning_(32, time=T0 + 64, message="x")))
        await pilot.pause()
        assert log.scroll_offset.y == 0
        app.stop_training()
        engine.gate.set()
        await wait_training(app)


async def test_8_esc_on_the_monitor_goes_home(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path, total=2)
    app = _app(tmp_path, engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_wizard(pilot)
        await pilot.press("ctrl+t")
        await wait_training(app)
        await pilot.pause()
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


def _resumable_run(tmp_path: Path, *, finished: bool = False):
    runs = fake_runs(tmp_path / "runs")
    run = runs[1] if finished else runs[0]
    run.path.mkdir(parents=True)
    raw = {"run": {"name": "code-mix"}, "train": {"max_steps": 1000}, "data": {"datasets": [{"name": "code", "path": "demo:python-code"}]}}
    save_config(config_from_dict(raw), run.path / "config.toml")
    with (run.path / "events.jsonl").open("w") as fh:
        for event in scripted_events(str(run.path), total=1000, upto=30):
            fh.write(json.dumps(event.to_dict()) + "\n")
    return runs, run


async def test_13_resumed_run_chart_has_the_earlier_curve(tmp_path: Path) -> None:
    from tui_trainer.runs.listing import EventFollower

    runs, run = _resumable_run(tmp_path)
    engine = FakeEngine(tmp_path, total=203)  # resumed at step 200: three more steps
    app = _app(tmp_path, runs=runs, engine=engine)
    app.services.follower = EventFollower
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ResumePicker) and app.screen.loaded)
        await pilot.press("enter", "down", "enter")  # run, then its newest valid checkpoint (step 200)
        await wait_until(pilot, lambda: engine.calls)
        await wait_training(app)
        await pilot.pause()
        steps = [s for s, _ in app.run_state.train_points]
        # the earlier steps come from the run's events.jsonl, then the resumed run's (coalesced) ones
        assert steps[:30] == list(range(1, 31)) and steps[30:] and steps[-1] == 203 and min(steps[30:]) > 200
        assert app.run_state.eval_points[0][0] == 10


async def test_14_picker_shows_a_finished_run_as_finished_and_offers_a_new_run(tmp_path: Path) -> None:
    runs, run = _resumable_run(tmp_path, finished=True)
    engine = FakeEngine(tmp_path, total=3)
    app = _app(tmp_path, runs=runs, engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ResumePicker) and app.screen.loaded)
        picker = app.screen
        picker.query_one("#picker-runs", DataTable).move_cursor(row=1)
        await pilot.pause()
        detail = static_text(picker.query_one("#picker-detail", Static), width=300)
        assert "finished all its steps: nothing to resume" in detail
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen))
        assert not engine.calls  # nothing was "resumed"
        assert app.screen.config.run.name == "code-mix" and app.screen.config.train.max_steps == 1000


async def test_11_a_path_that_does_not_exist_is_refused_at_the_input(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        screen = app.screen
        await _type(pilot, "#path-input", str(tmp_path / "nope.jsonl"))
        await pilot.press("enter")
        await pilot.pause()
        assert screen.draft.datasets == []  # nothing added, no "Added nope" toast
        problem = screen.query_one("#path-problem", Static)
        assert problem.display and "nope.jsonl: no such file or directory" in static_text(problem, width=300)
        assert screen.query_one("#path-input", Input).value.endswith("nope.jsonl")  # kept for fixing
        (tmp_path / "real.jsonl").write_text('{"text": "x"}\n')
        await _type(pilot, "#path-input", str(tmp_path / "real.jsonl"))
        await pilot.press("enter")
        await pilot.pause()
        assert [d.name for d in screen.draft.datasets] == ["real"] and not problem.display


async def test_9_long_messages_wrap_at_80x24(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await demo_corpora_mix(pilot, "sequential")
        a, b = screen.draft.datasets
        a.start_step, a.end_step, b.start_step, b.end_step = 0, 300, 250, 500
        screen.query_one("#strategy", Select).focus()
        screen._refresh_all()
        await pilot.pause()
        status = screen.query_one("#mix-status", Static)
        message = screen.draft.validate()
        assert message and len(message) > 3 * 50  # longer than the three 50-column lines it used to get
        region = status.region
        shown = rendered_text(app, region)
        tail = " ".join(message.split()[-4:])
        assert tail in " ".join(shown.split()), (tail, shown)  # the end of the message is on screen, not cut off


async def test_9_home_table_keeps_every_column_at_80_columns(tmp_path: Path) -> None:
    app = _app(tmp_path, runs=fake_runs(tmp_path / "runs"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "reads", 0) > 0)
        await pilot.pause()
        table = app.screen.query_one("#runs-table", DataTable)
        header = rendered_text(app, table.region.__class__(table.region.x, table.region.y, table.region.width, 1))
        for column in ("run", "status", "step", "best eval", "checkpoint", "age"):
            assert f" {column} " in f" {' '.join(header.split())} ", header
        assert "30m ago" in rendered_text(app, table.region)
