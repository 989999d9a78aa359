"""Findings in the monitor: the panel with the recommendation, the log line, the mark on the chart; g switches the chart."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Log

from tests.functional.fakes import T0, make_services, scripted_events
from tests.functional.helpers import poll_followed, static_text, wait_until
from tui_trainer.engine import events as ev
from tui_trainer.runs.listing import EventFollower
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.widgets.findings_panel import FindingsPanel
from tui_trainer.ui.widgets.loss_chart import LossChart

LOSS_SPIKE = ev.Anomaly(
    25, time=T0 + 50, kind="spike", metric="loss", value=9.5, threshold=3.2,
    message="loss spike at step 25: 9.5 > 3.2 (mean 2.1 + 6 sd of the last 24 steps)",
    recommendation="lower train.lr to 1e-04 (now 2e-04) if spikes repeat; one spike the loss recovers from is harmless",
)
GRAD_SPIKE = ev.Anomaly(
    28, time=T0 + 56, kind="spike", metric="grad_norm", value=40.0, threshold=2.0,
    message="grad_norm spike at step 28: 40 > 2", recommendation="set train.max_grad_norm = 1.0 (clipping is off)",
)


def _write(run_dir: Path, events: list[ev.Event], mode: str = "w") -> None:
    with (run_dir / "events.jsonl").open(mode) as fh:
        for event in events:
            fh.write(json.dumps(event.to_dict()) + "\n")


def _app(tmp_path: Path) -> tuple[TrainerApp, Path]:
    run_dir = tmp_path / "runs" / "spiky-20231114-221320"
    run_dir.mkdir(parents=True)
    _write(run_dir, scripted_events(str(run_dir), total=40, upto=20))
    services = make_services(tmp_path)
    services.follower = EventFollower
    return TrainerApp(services=services, monitor_run=run_dir, output_dir=tmp_path / "runs"), run_dir


async def test_a_finding_shows_with_its_recommendation_and_is_marked_on_the_chart(tmp_path: Path) -> None:
    app, run_dir = _app(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.state.step == 20)
        screen = app.screen
        panel = screen.query_one("#findings", FindingsPanel)
        chart = screen.query_one("#loss-chart", LossChart)
        assert not panel.display and chart.marks == []  # a clean run: no panel, no marks
        later = [e for e in scripted_events(str(run_dir), total=40, upto=30) if e.step > 20]
        _write(run_dir, [*later[:6], LOSS_SPIKE, *later[6:], GRAD_SPIKE], mode="a")
        await poll_followed(pilot, screen)
        await wait_until(pilot, lambda: panel.shown_count == 2)
        assert panel.display and panel.border_title == "findings (2)"
        text = static_text(panel, width=32)
        assert text.index("step 28") < text.index("step 25")  # newest first
        assert "lower train.lr to 1e-04" in " ".join(text.split())
        lines = screen.query_one("#event-log", Log).lines
        assert any("FINDING spike (loss): loss spike at step 25" in line and "Recommendation: lower train.lr" in line
                   for line in lines)
        # The loss chart marks the loss spike, not the grad-norm one.
        assert chart.view == "loss" and chart.marks == [(25, "spike")]


async def test_g_cycles_the_chart_through_learning_rate_and_grad_norm(tmp_path: Path) -> None:
    app, run_dir = _app(tmp_path)
    _write(run_dir, [GRAD_SPIKE], mode="a")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.state.findings)
        state = app.screen.state
        chart = app.screen.query_one("#loss-chart", LossChart)
        draws = chart.draws
        await pilot.press("g")
        assert chart.view == "lr" and chart.curve == state.lr_points and chart.marks == []
        assert chart.curve[-1] == (20, state.lr) and chart.draws > draws  # redrawn at once
        await pilot.press("g")
        assert chart.view == "grad_norm" and chart.curve == state.grad_points
        assert chart.marks == [(28, "spike")]
        await pilot.press("g")
        assert chart.view == "loss" and chart.curve == state.train_points


async def test_g_brings_the_chart_back_in_place_of_the_task_metrics(tmp_path: Path) -> None:
    from tests.functional.scenes import task_events
    from tui_trainer.ui.widgets.task_metrics import TaskMetrics

    run_dir = tmp_path / "runs" / "sae-20231114-221320"
    run_dir.mkdir(parents=True)
    _write(run_dir, task_events("sae"))
    services = make_services(tmp_path)
    services.follower = EventFollower
    app = TrainerApp(services=services, monitor_run=run_dir, output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.state.evals)
        chart = app.screen.query_one("#loss-chart", LossChart)
        panel = app.screen.query_one("#task-metrics", TaskMetrics)
        await wait_until(pilot, lambda: panel.display)  # an SAE run shows its metrics in the chart's place
        assert not chart.display
        await pilot.press("g")
        assert chart.display and not panel.display and chart.view == "loss"  # shown first, not yet switched
        await pilot.press("g")
        assert chart.view == "lr"


async def test_at_80x24_the_findings_leave_room_for_the_shares(tmp_path: Path) -> None:
    """The findings panel shrinks (and scrolls) to what the GPU and shares panels leave; before,
    two findings pushed the per-dataset shares out of the 24-line screen."""
    app, run_dir = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.state.step == 20)
        screen = app.screen
        panel, shares = screen.query_one("#findings", FindingsPanel), screen.query_one("#shares")
        side = screen.query_one("#monitor-side")
        later = [e for e in scripted_events(str(run_dir), total=40, upto=30) if e.step > 20]
        _write(run_dir, [*later[:6], LOSS_SPIKE, *later[6:], GRAD_SPIKE], mode="a")
        await poll_followed(pilot, screen)
        await wait_until(pilot, lambda: panel.shown_count == 2 and panel.region.height >= FindingsPanel.MIN_HEIGHT
                         and shares.region.bottom <= side.region.bottom)
        assert shares.region.height >= 3 and shares.region.y >= panel.region.bottom
        await pilot.resize_terminal(120, 40)  # room again: the panel grows back
        await wait_until(pilot, lambda: panel.region.height > 7)
        assert shares.region.bottom <= side.region.bottom
