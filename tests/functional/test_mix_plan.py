"""The datasets screen shows the shares and step ranges of the core's plan (issue 10 item 6, issue 13 item 12)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, DataTable, Input, Static

from tests.functional.fakes import make_services
from tests.functional.helpers import demo_corpora_mix, static_text
from tui_trainer.ui.app import TrainerApp


def _app(tmp_path: Path) -> TrainerApp:
    return TrainerApp(services=make_services(tmp_path), output_dir=tmp_path / "runs", browse_root=tmp_path)


async def test_curriculum_shows_each_phase_steps_and_shares(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await demo_corpora_mix(pilot, "curriculum")
        table = screen.query_one("#datasets", DataTable)
        table.move_cursor(row=1)
        await pilot.pause()
        screen.query_one("#weight", Input).value = "3"
        await pilot.pause()
        # 1,000 + 250 rows x 200 tokens / 512 per packed row, 95% kept, one epoch at batch 32: 14 steps
        total = screen.plan.total_steps
        assert screen.plan_known and total > 2
        phases = static_text(screen.query_one("#phase-table", Static))
        half = -(-total // 2)
        assert f"0–{half - 1}" in phases and f"{half}–{total - 1}" in phases
        lines = [line for line in phases.splitlines() if line.strip()]
        # phase 0: only python-code; phase 1: 1:3, the shares of that phase, not of the weights overall
        assert "python-code 100%" in lines[1] and "python-docs" not in lines[1]
        assert "python-docs 75%" in lines[2] and "python-code 25%" in lines[2]
        assert str(table.get_row_at(0)[5]) == "phase 0: 100%"
        assert str(table.get_row_at(1)[5]) == "phase 1: 75%"


async def test_sequential_proposes_contiguous_ranges_and_shows_total(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await demo_corpora_mix(pilot, "sequential")
        total = screen.plan.total_steps
        ranges = [(d.start_step, d.end_step) for d in screen.draft.datasets]
        assert ranges[0][0] == 0 and ranges[0][1] == ranges[1][0] and ranges[1][1] == total
        table = screen.query_one("#datasets", DataTable)
        assert "?" not in str(table.get_row_at(0)[5]) and "?" not in str(table.get_row_at(1)[5])
        status = static_text(screen.query_one("#mix-status", Static), width=400)
        assert f"a run of {total} steps" in status
        assert screen.draft.validate() is None and not screen.query_one("#next", Button).disabled
