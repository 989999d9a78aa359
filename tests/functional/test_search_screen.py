"""The search screen reads a study directory another process writes: trials, curves, promote, stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from tests.functional.fakes import make_services
from tests.functional.helpers import static_text, wait_until
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.screens.search import SearchScreen


def _lines(path: Path, items: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(i) + "\n" for i in items)


def _trial(study: Path, n: int, state: str, value: float | None, losses: list[float], **kw) -> None:
    run = study / "trials" / f"{n:03d}" / "trial-20261201-000000"
    _lines(run / "events.jsonl", [{"type": "eval", "time": 0, "step": i + 1, "eval_loss": v} for i, v in enumerate(losses)])
    (run / "config.toml").write_text('[model]\nname_or_path = "demo:tiny-llama"\n')
    _lines(study / "events.jsonl", [{"type": "trial", "time": 0, "step": len(losses), "number": n, "state": state,
                                     "params": {"train.lr": 1e-3 * (n + 1)}, "value": value, **kw}])


@pytest.fixture
def study(tmp_path: Path) -> Path:
    study = tmp_path / "runs" / "demo-search-20261201-000000"
    study.mkdir(parents=True)
    (study / "study.json").write_text(json.dumps({"objective": "eval_loss", "direction": "minimize", "budget": 4}))
    _trial(study, 0, "complete", 2.0, [3.0, 2.0], baseline=True)
    _trial(study, 1, "pruned", 3.5, [3.5])
    return study


async def test_trials_update_live_and_keys_act(tmp_path: Path, study: Path, monkeypatch) -> None:
    monkeypatch.setenv("TUI_TRAINER_CONFIG_HOME", str(tmp_path / "config"))
    app = TrainerApp(services=make_services(tmp_path), output_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = SearchScreen(study, poll_every=0)
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.reads >= 1)
        table = screen.query_one("#trials-table", DataTable)
        assert table.row_count == 2
        title = static_text(screen.query_one("#search-title", Static), width=200)
        assert "2 of 4 left" in title and "best: trial 0, eval_loss 2" in title
        # A new trial appears while the screen is open (the study process writes it).
        _trial(study, 2, "complete", 1.5, [2.5, 1.5])
        screen.poll()
        await wait_until(pilot, lambda: screen.reads >= 2)
        assert table.row_count == 3
        assert "best: trial 2, eval_loss 1.5 vs default 2 (25.0% better)" in static_text(screen.query_one("#search-title", Static), width=200)
        assert screen.view.median_curve == {1: 2.75, 2: 1.75}
        # p: the best trial becomes a user preset extending the family.
        await pilot.press("p")
        preset = tmp_path / "config" / "presets" / "demo-tiny-tuned.toml"
        await wait_until(pilot, preset.is_file)
        assert "extends" in preset.read_text() and "0.003" in preset.read_text()
        # s: the study's own graceful stop.
        await pilot.press("s")
        assert (study / "STOP").is_file()
        # enter: the highlighted trial's monitor, through a message to the app.
        table.move_cursor(row=1)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.follow_dir == study / "trials" / "001" / "trial-20261201-000000"


async def test_home_lists_studies_and_opens_one(tmp_path: Path, study: Path) -> None:
    from tui_trainer.ui.screens.home import HomeScreen

    (study / "study.journal").write_text("")
    app = TrainerApp(services=make_services(tmp_path), output_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_until(pilot, lambda: home.reads >= 1)
        table = home.query_one("#studies-table", DataTable)
        assert table.display and table.row_count == 1
        assert "1 hyperparameter study" in static_text(home.query_one("#studies-summary", Static))
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        assert app.screen.study_dir == study


async def test_wizard_ctrl_f_sets_up_a_study_and_shows_it(tmp_path: Path, study: Path) -> None:
    from textual.widgets import Input, SelectionList

    from tui_trainer.config.schema import RunConfig
    from tui_trainer.ui.screens.search_setup import SearchSetupScreen
    from tui_trainer.ui.screens.wizard import WizardScreen

    started: list = []
    services = make_services(tmp_path)
    services.start_search = lambda cfg: started.append(cfg) or study
    app = TrainerApp(services=services, output_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = WizardScreen(RunConfig(), fit_on_mount=False)
        app.push_screen(wizard)
        await wait_until(pilot, lambda: wizard.config is not None)
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchSetupScreen))
        setup = app.screen
        await wait_until(pilot, lambda: setup.shown == "train.lr")  # the editor is filled on mount
        keys = setup.query_one("#search-keys", SelectionList)
        assert set(keys.selected) == {"train.lr", "lora.r"}  # the two that matter most, picked already
        low = setup.query_one("#range-low", Input)
        assert low.value == "1e-05"  # train.lr's suggested range, shown first
        low.focus()
        low.value = ""
        await pilot.press(*"1e-4")
        await wait_until(pilot, lambda: setup.fields["train.lr"]["low"] == "1e-4")
        # Pick the warmup ratio with the keyboard, and narrow its range.
        keys.focus()
        target = setup.keys.index("train.warmup_ratio")
        for _ in range(target):
            await pilot.press("down")
        await wait_until(pilot, lambda: setup.shown == "train.warmup_ratio")
        await pilot.press("space")
        high = setup.query_one("#range-high", Input)
        assert high.value == "0.2"
        high.focus()
        high.value = ""
        await pilot.press("0", ".", "1", "5")
        await wait_until(pilot, lambda: setup.fields["train.warmup_ratio"]["high"] == "0.15")
        trials = setup.query_one("#setup-trials", Input)
        trials.value = "6"
        await pilot.click("#start-search")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        assert app.screen.study_dir == study
        (cfg,) = started
        assert cfg.run.name == wizard.config.run.name and cfg.search.trials == 6
        space = {k: v.model_dump(exclude_none=True, exclude_defaults=True) for k, v in cfg.search.space.items()}
        # lr's edit was kept while the editor showed another key.
        assert space == {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "lora.r": {"choices": [4, 8, 16, 32]},
                         "train.warmup_ratio": {"low": 0.0, "high": 0.15}}


async def test_search_set_up_names_a_bad_range_and_stays_open(tmp_path: Path) -> None:
    from textual.widgets import Input, SelectionList

    from tui_trainer.config.schema import RunConfig
    from tui_trainer.ui.screens.search_setup import SearchSetupScreen

    app = TrainerApp(services=make_services(tmp_path), output_dir=tmp_path / "runs")
    results: list = []
    async with app.run_test(size=(120, 40)) as pilot:
        setup = SearchSetupScreen(RunConfig())
        app.push_screen(setup, results.append)
        await wait_until(pilot, lambda: setup.shown == "train.lr")
        setup.query_one("#range-low", Input).value = "0.5"  # above high = 0.01
        await wait_until(pilot, lambda: setup.fields["train.lr"]["low"] == "0.5")
        await pilot.press("ctrl+s")
        problem = setup.query_one("#setup-problem", Static)
        await wait_until(pilot, lambda: "low must be < high" in static_text(problem, width=200))
        assert 'search.space."train.lr"' in static_text(problem, width=200)
        assert app.screen is setup and not results
        setup.query_one("#range-low", Input).value = "1e-4"
        setup.query_one("#setup-sampler").value = "grid"
        await wait_until(pilot, lambda: setup.fields["train.lr"]["low"] == "1e-4")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "grid sampler needs a step" in static_text(problem, width=200))
        setup.query_one("#search-keys", SelectionList).deselect_all()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "pick at least one key" in static_text(problem, width=200))
        await pilot.press("escape")
        await wait_until(pilot, lambda: results == [None])
