"""Every screen works at 80x24: it renders, its footer shows keys, and help opens; under NO_COLOR errors and focus stay readable."""

from __future__ import annotations

import pytest
from textual.widgets import Footer, Input
from textual.widgets._footer import FooterKey

from tests.functional.fakes import make_services
from tests.functional.helpers import contrast, rendered_cells, wait_until
from tests.functional.scenes import SCENES, prepare_scratch
from tui_trainer.config.schema import config_from_dict
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.wizard import WizardScreen
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
            await pilot.pause()
            # every key the footer shows is whole, left of the palette key (at 100 columns the
            # wizard's long labels pushed Quit and Help off the line)
            keys = list(footer.query(FooterKey).results())
            palette = [k for k in keys if k.action == "app.command_palette"]
            right_edge = palette[0].region.x if palette else footer.region.right
            assert [k.description for k in keys if k not in palette and k.region.right > right_edge] == []
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


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
async def test_errors_and_focus_stay_readable(no_color, tmp_path, monkeypatch) -> None:
    """Under NO_COLOR Textual greys every colour by luminance: pure red error text became
    colour 54 on 18 (contrast 1.6), the blue focus ring 101 on 39. WCAG: text >= 4.5, a focus
    indicator >= 3."""
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = TrainerApp(services=make_services(tmp_path), output_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.no_color is no_color
        base = config_from_dict({"data": {"datasets": [{"name": "code", "path": "demo:python-code"}]}})
        app.push_screen(WizardScreen(base, data_tokens=200_000))
        await wait_until(pilot, lambda: isinstance(app.screen, WizardScreen) and app.screen.ready)
        field = app.screen.query_one("#f-train-grad-accum", Input)
        field.focus()
        field.value = "0"
        await pilot.pause()
        status = app.screen.query_one("#wiz-status")
        error = [c for c in rendered_cells(app, status.region) if "grad_accum" in c[0]]
        assert error, "the error text is not on screen"
        assert min(contrast(fg, bg) for _, fg, bg in error) >= 4.5
        ring = [c for c in rendered_cells(app, field.region) if set(c[0]) <= set("▊▎▁▔")]
        assert ring, "the focused input has no border"
        assert min(contrast(fg, bg) for _, fg, bg in ring) >= 3.0
