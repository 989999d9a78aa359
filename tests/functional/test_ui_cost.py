"""What keeps the monitor cheap for the training thread: repaints that ride along with step
updates, a loss chart spaced by its measured cost, and no work for unchanged values."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tests.functional.fakes import fixed_sample, step_event
from tui_trainer.ui.run_state import RunState
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.widgets.loss_chart import CPU_SHARE, LossChart


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossChart(min_interval=0.0, id="chart")


async def test_chart_redraws_are_spaced_by_their_cost() -> None:
    app = ChartApp()
    spent_before = LossChart.total_cpu_spent
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        await pilot.pause()
        assert LossChart.total_cpu_spent > spent_before  # the first draw was timed
        points = [(i, 3.0 - i / 100) for i in range(1, 50)]
        draws = chart.draws
        chart._draw_cost = 0.01  # a 10 ms draw: the next may come 10 ms / CPU_SHARE later
        chart.set_points(points, [])
        assert chart.draws == draws and chart._pending is not None  # postponed, with a fallback timer
        chart._last_draw -= 0.01 / CPU_SHARE  # that long has passed
        chart.set_points(points, [])
        assert chart.draws == draws + 1 and chart._pending is None
        chart._draw_cost = 10.0
        chart.set_points(points, [], force=True)  # a run that ended is drawn at once
        assert chart.draws == draws + 2


class CountingSampler:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return fixed_sample()


async def test_system_samples_ride_along_with_step_updates() -> None:
    sampler = CountingSampler()
    state = RunState()
    screen = MonitorScreen(state, sampler=sampler, sample_every=1.0)
    app = App()
    async with app.run_test(size=(100, 32)) as pilot:
        await app.push_screen(screen)
        await pilot.pause()
        assert sampler.calls == 1  # on mount
        for step in range(1, 6):
            state.apply(step_event(step, 100))
            screen.show_state()
        assert sampler.calls == 1  # not due yet: no extra repaint
        screen._last_sample -= 1.0
        state.apply(step_event(6, 100))
        screen.show_state()
        assert sampler.calls == 2  # due: taken in the same update as the step
        screen._sample_if_due()  # the fallback timer finds nothing to do
        assert sampler.calls == 2


async def test_unchanged_values_are_not_repainted() -> None:
    state = RunState()
    screen = MonitorScreen(state, sampler=None)
    app = App()
    async with app.run_test(size=(100, 32)) as pilot:
        await app.push_screen(screen)
        state.apply(step_event(1, 100))
        screen.show_state()
        await pilot.pause()
        metrics = screen.query_one("#metrics")
        refreshes = []
        original = metrics.refresh
        metrics.refresh = lambda *a, **k: (refreshes.append(1), original(*a, **k))[1]
        screen.show_state()  # nothing new arrived
        assert refreshes == []
        state.apply(step_event(2, 100))
        screen.show_state()
        assert refreshes
        # Without a sampler (services.system_sample=None) the panel just waits.
        assert screen.query_one("#system-panel").border_title is None
