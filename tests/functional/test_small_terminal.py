"""Every screen works at 80x24: it renders, its footer shows keys, and help opens; NO_COLOR is honoured."""

from __future__ import annotations

import pytest
from textual.widgets import Footer

from tests.functional.scenes import SCENES, prepare_scratch
from tui_trainer.ui.screens.modals import HelpScreen


@pytest.mark.parametrize("name", ["home_runs", "datasets_sequential", "wizard", "monitor", "resume_picker"])
async def test_screen_at_80x24(name, tmp_path, monkeypatch) -> None:
    prepare_scratch(tmp_path)
    monkeypatch.chdir(tmp_path)
    scene = SCENES[name]
    app = scene.make_app()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await scene.run_before(pilot)
            screen = app.screen
            footer = screen.query_one(Footer)
            assert footer.region.y == 23 and footer.region.width == 80
            # the main content is laid out inside the terminal, not pushed off it
            main = "#runs-table, #datasets, #mix-status, #next, #preset, #level, #start, #loss-chart, #event-log, #picker-checkpoints"
            for widget in screen.query(main).results():
                if widget.display:
                    assert widget.region.height > 0, f"{widget} has no room at 80x24"
                    assert widget.region.y + 1 <= 23, f"{widget} is off screen at 80x24"
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert app.screen is screen
    finally:
        if app.controls is not None:
            app.controls.request_stop("user")
        if hasattr(app.services.train, "gate"):
            app.services.train.gate.set()


async def test_no_color_env_is_respected(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    app = SCENES["home_empty"].make_app()
    async with app.run_test(size=(80, 24)):
        assert app.no_color
