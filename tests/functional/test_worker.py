"""The worker glue: step events are coalesced, everything else is delivered in order."""

from __future__ import annotations

from tests.functional.fakes import step_event
from tui_trainer.engine import events as ev
from tui_trainer.ui.messages import EngineEvent
from tui_trainer.ui.worker import EventForwarder, RepaintBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_steps_coalesced_to_rate_and_other_events_flush_in_order() -> None:
    posted: list[EngineEvent] = []
    clock = Clock()
    fwd = EventForwarder(posted.append, max_rate=10, clock=clock)
    for step in range(1, 101):  # 100 steps in one second
        clock.now = step * 0.01
        fwd(step_event(step, 100))
        if step == 55:
            fwd(ev.CheckpointSaved(55, path="/r/checkpoints/step-00000055", reason="interval"))
    fwd.flush()
    kinds = [(type(m.event).__name__, m.event.step) for m in posted]
    steps = [s for k, s in kinds if k == "StepMetrics"]
    assert len(steps) <= 12  # ~10 per second, plus the flushes around the checkpoint and at the end
    assert steps == sorted(steps) and steps[-1] == 100
    i = kinds.index(("CheckpointSaved", 55))
    assert kinds[i - 1] == ("StepMetrics", 55)  # the held-back step is delivered before the checkpoint
    assert fwd.received == 101 and fwd.posted == len(posted)


def test_slow_steps_are_all_delivered() -> None:
    posted: list[EngineEvent] = []
    clock = Clock()
    fwd = EventForwarder(posted.append, max_rate=10, clock=clock)
    for step in range(1, 6):
        clock.now = step * 0.5
        fwd(step_event(step, 5))
    assert [m.event.step for m in posted] == [1, 2, 3, 4, 5]


def test_set_interval_spaces_steps_but_never_below_max_rate() -> None:
    posted: list[EngineEvent] = []
    clock = Clock()
    fwd = EventForwarder(posted.append, max_rate=10, clock=clock)
    fwd.set_interval(0.0)
    assert fwd.interval == 0.1  # the max rate still caps it
    fwd.set_interval(0.5)
    for step in range(1, 21):  # 20 steps over 2 seconds
        clock.now = step * 0.1
        fwd(step_event(step, 20))
    assert [m.event.step for m in posted] == [1, 6, 11, 16]


def test_flush_if_due_waits_for_the_interval() -> None:
    posted: list[EngineEvent] = []
    clock = Clock()
    fwd = EventForwarder(posted.append, max_rate=10, clock=clock)
    fwd.set_interval(1.0)
    clock.now = 1.0
    fwd(step_event(1, 10))
    clock.now = 1.2
    fwd(step_event(2, 10))  # held back
    fwd.flush_if_due()
    assert [m.event.step for m in posted] == [1]
    clock.now = 2.0  # the engine paused after step 2: it is shown once its interval is up
    fwd.flush_if_due()
    assert [m.event.step for m in posted] == [1, 2]
    fwd.flush_if_due()
    assert len(posted) == 2


class Clocks:
    """Fake thread-CPU and wall clocks for RepaintBudget."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 100.0

    def budget(self, share: float = 0.01, slowest: float = 1.0) -> RepaintBudget:
        return RepaintBudget(share, slowest=slowest, cpu_clock=lambda: self.cpu, wall_clock=lambda: self.wall)


def test_repaint_budget_allows_full_rate_while_under_its_share() -> None:
    c = Clocks()
    budget = c.budget(share=0.01)
    assert budget.next_interval() == 0.0  # the first call only starts the clock
    for _ in range(20):
        c.wall += 0.25
        c.cpu += 0.002  # 0.8% of a core
        assert budget.next_interval() == 0.0


def test_repaint_budget_makes_updates_pay_back_an_overspend() -> None:
    c = Clocks()
    budget = c.budget(share=0.01, slowest=1.0)
    budget.next_interval()
    c.wall += 0.1
    c.cpu += 0.004  # 4% of a core over that interval: 3 ms over the share
    assert abs(budget.next_interval() - 0.3) < 1e-9
    c.wall += 0.3  # waited exactly that, spending nothing: paid back
    assert budget.next_interval() < 1e-9
    c.cpu += 0.5  # a huge repaint: the wait is capped so the screen never looks frozen
    c.wall += 0.1
    assert budget.next_interval() == 1.0


def test_repaint_budget_leaves_out_exempt_work_and_caps_idle_credit() -> None:
    c = Clocks()
    budget = c.budget(share=0.01)
    budget.next_interval(exempt=5.0)
    c.wall += 0.1
    c.cpu += 0.030  # 30 ms, of which 29.5 ms was the chart (budgeted on its own)
    assert budget.next_interval(exempt=5.0295) == 0.0
    c.wall += 3600.0  # an hour idle banks at most one second of share
    budget.next_interval(exempt=5.0295)
    assert budget.debt == -0.01
    c.cpu += 0.02
    c.wall += 0.1
    assert budget.next_interval(exempt=5.0295) > 0.0
