"""Real training through the app: the demo engine drives the monitor (headless Textual)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.helpers import static_text, wait_until
from tui_trainer.demo.catalog import demo_run_config
from tui_trainer.runs.listing import list_checkpoints
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.services import Services

pytestmark = pytest.mark.slow


async def test_demo_steps_update_monitor_then_stop_leaves_checkpoint(tmp_path: Path) -> None:
    cfg = demo_run_config(steps=200, output_dir=str(tmp_path / "runs"))
    app = TrainerApp(services=Services(sample_every=0.5), output_dir=tmp_path / "runs")
    seen_steps: list[int] = []
    async with app.run_test(size=(100, 32)) as pilot:
        app.start_training(cfg)
        await wait_until(pilot, lambda: app.run_state.step >= 3 or not app.run_state.running, timeout=240)
        assert app.run_state.running, app.run_state.final_message
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        title = static_text(monitor.query_one("#monitor-title"))
        assert "/200" in title and app.run_state.name.startswith("demo-")
        seen_steps.append(app.run_state.step)
        await wait_until(pilot, lambda: app.run_state.step > seen_steps[0], timeout=120)
        assert app.run_state.loss is not None and app.run_state.tokens_per_s
        # stop through the UI: confirm, then the engine saves and the app reports 75
        await pilot.press("s")
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.engine_busy.is_set(), timeout=120)
        await pilot.pause()
        assert app.run_state.status == "stopped"
        assert app.exit_code == 75
    run_dir = Path(app.last_result.run_dir)
    checkpoints = list_checkpoints(run_dir)
    assert checkpoints and checkpoints[-1].valid
    assert checkpoints[-1].step == app.last_result.final_step
