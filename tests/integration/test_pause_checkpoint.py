"""'Checkpoint now' while paused saves at once (the engine is between steps), not after the pause."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.integration.conftest import demo_cfg
from tui_trainer.api import train
from tui_trainer.engine import events as ev
from tui_trainer.engine.control import Controls

pytestmark = pytest.mark.slow


def test_checkpoint_now_while_paused_saves_before_the_run_goes_on(tmp_path: Path) -> None:
    cfg = demo_cfg(tmp_path, max_steps=6)
    controls = Controls()
    saved_while_paused = threading.Event()
    seen: list[ev.Event] = []

    def on_event(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.StepMetrics) and event.step == 2:
            controls.pause.set()  # the UI's pause, then its checkpoint key, as a user would press them
            controls.checkpoint_now.set()
        if isinstance(event, ev.CheckpointSaved) and event.reason == "user" and controls.pause.is_set():
            saved_while_paused.set()

    worker = threading.Thread(target=lambda: seen.append(train(cfg, on_event=on_event, controls=controls)))
    worker.start()
    try:
        assert saved_while_paused.wait(120), "no checkpoint while paused"
        steps = [e.step for e in seen if isinstance(e, ev.StepMetrics)]
        assert steps == [1, 2]  # still paused: nothing trained past the save
    finally:
        controls.pause.clear()
        worker.join(300)
    saves = [e for e in seen if isinstance(e, ev.CheckpointSaved) and e.reason == "user"]
    assert [s.step for s in saves] == [2]
    assert seen[-1].status == "finished" and seen[-1].final_step == 6
