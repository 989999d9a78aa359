"""The datasets screen at 80x24 (issue 13 items 9 and 10): demo buttons and the curriculum column are
shortened deliberately instead of cut, and under NO_COLOR (and the default theme) the error text and
the focus ring stay readable, checked on the rendered cells."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Static

from tests.functional.fakes import make_services
from tests.functional.helpers import contrast, demo_corpora_mix, home_read, rendered_cells, rendered_text, static_text, wait_until
from tests.functional.scenes import prepare_scratch
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.datasets import COLUMNS, NARROW_COLUMNS


def _app(tmp_path: Path) -> TrainerApp:
    prepare_scratch(tmp_path)
    return TrainerApp(services=make_services(tmp_path), output_dir=tmp_path / "runs", browse_root=tmp_path / "data")


async def _curriculum(pilot, app):
    await home_read(pilot, app)
    return await demo_corpora_mix(pilot, "curriculum")


@pytest.mark.parametrize(("size", "labels", "columns"), [
    ((80, 24), ["code", "docs"], NARROW_COLUMNS),
    ((120, 40), ["python-code", "python-docs"], COLUMNS),
])  # fmt: skip
async def test_demo_buttons_and_the_mix_column_fit(size, labels, columns, tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await _curriculum(pilot, app)
        await wait_until(pilot, lambda: screen._columns == columns)
        await pilot.pause()
        buttons = list(screen.query(".demo-button").results(Button))
        assert [str(b.label) for b in buttons] == labels
        for button in buttons:
            # One line, whole: the label is on the button's middle row and nothing wraps below it.
            assert button.region.height == 3 and len(str(button.label)) <= button.content_size.width
            assert str(button.label) in rendered_text(app, button.region)
        table = screen.query_one("#datasets", DataTable)
        shown = rendered_text(app, table.region)
        for row in range(2):
            assert str(table.get_row_at(row)[-1]) in shown  # "phase 0: 100%", not "pha"
        assert "phase 0: 100%" in shown
        # What the narrow table leaves out is in the preview's summary line.
        assert "~200,000 tokens" in static_text(screen.query_one("#preview", Static)) or "~50,000 tokens" in static_text(
            screen.query_one("#preview", Static)
        )
        # Pressing a short-labelled button still adds the full corpus.
        before = len(screen.draft.datasets)
        await pilot.click("#add-python-docs")
        await pilot.pause()
        assert screen.draft.datasets[before].path == "demo:python-docs"


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
async def test_errors_and_the_focus_ring_are_readable_at_80x24(no_color, tmp_path: Path, monkeypatch) -> None:
    """WCAG: text >= 4.5 against its background, a focus indicator >= 3; NO_COLOR greys every colour."""
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color is no_color
        screen = await _curriculum(pilot, app)
        # A path that does not exist is refused at the input with the reason, in the error style.
        field = screen.query_one("#path-input", Input)
        field.focus()
        field.value = "nope/missing.jsonl"
        await pilot.press("enter")
        problem = screen.query_one("#path-problem", Static)
        await wait_until(pilot, lambda: problem.display and problem.region.height > 0)
        await pilot.pause()
        cells = [c for c in rendered_cells(app, problem.region) if any(ch.isalpha() for ch in c[0])]
        assert cells and "no such file" in " ".join(c[0] for c in cells)
        assert min(contrast(fg, bg) for _, fg, bg in cells) >= 4.5
        ring = [c for c in rendered_cells(app, field.region) if set(c[0]) <= set("▊▎▁▔")]
        assert ring, "the focused input has no border"
        assert min(contrast(fg, bg) for _, fg, bg in ring) >= 3.0
        # A mix the core refuses: the validation message in the status line, same contrast rule.
        weight = screen.query_one("#weight", Input)
        weight.focus()
        weight.value = "-1"
        status = screen.query_one("#mix-status", Static)
        await wait_until(pilot, lambda: screen.draft.validate() is not None)
        await pilot.pause()
        cells = [c for c in rendered_cells(app, status.region) if any(ch.isalpha() for ch in c[0])]
        assert cells and "weight" in " ".join(c[0] for c in cells)
        assert min(contrast(fg, bg) for _, fg, bg in cells) >= 4.5
