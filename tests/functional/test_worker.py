"""The worker glue: step events are coalesced, everything else is delivered in order."""

from __future__ import annotations

from tests.functional.fakes import step_event
from tui_trainer.engine import events as ev
from tui_trainer.ui.messages import EngineEvent
from tui_trainer.ui.worker import EventForwarder


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
