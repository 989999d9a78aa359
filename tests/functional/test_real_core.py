"""The screens against the real core (inspection, presets, fitting, runs), not the fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.functional.helpers import home_read, static_text, wait_until
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.home import HomeScreen
from tui_trainer.ui.screens.wizard import WizardScreen
from tui_trainer.ui.services import Services


@pytest.mark.slow
async def test_demo_corpora_to_fitted_wizard(tmp_path: Path) -> None:
    app = TrainerApp(services=Services(system_sample=None), output_dir=tmp_path / "runs", browse_root=tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("n")
        screen = app.screen
        screen.add_dataset("demo:python-code")
        screen.add_dataset("demo:python-docs")
        await wait_until(pilot, lambda: all(d.inspected for d in screen.draft.datasets), timeout=60)
        assert all(d.problem is None and d.preview.rows > 0 for d in screen.draft.datasets)
        await pilot.press("ctrl+n")
        await pilot.pause()
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        assert wizard.config is not None, static_text(wizard.query_one("#wiz-status"), width=400)
        assert [d.name for d in wizard.config.data.datasets] == ["python-code", "python-docs"]
        assert "memory" in static_text(wizard.query_one("#memory")) and "peak" in static_text(wizard.query_one("#memory"))


async def test_home_reads_a_real_runs_directory(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "demo-20231114-221320"
    run.mkdir(parents=True)
    lines = [
        {"type": "run_started", "time": 1.7e9, "step": 0, "config": {}, "run_dir": str(run), "world_size": 1, "device": "cpu", "total_steps": 80},
        {"type": "step", "time": 1.7e9 + 5, "step": 12, "loss": 2.5, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 100.0, "samples_per_dataset": {}, "total_steps": 80},
    ]
    (run / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    app = TrainerApp(services=Services(system_sample=None, clock=lambda: 1.7e9 + 65), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        assert isinstance(app.screen, HomeScreen)
        await home_read(pilot, app)
        table = app.screen.query_one("#runs-table")
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == "demo-20231114-221320" and row[2] == "12/80" and row[5] == "1m ago"
