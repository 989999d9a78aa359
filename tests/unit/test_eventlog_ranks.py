"""A muted event log (torchrun's ranks 1..) keeps nothing and calls nobody; rank 0's writes all."""

from __future__ import annotations

import json

from tui_trainer.engine.eventlog import EventLog
from tui_trainer.engine.events import Cleanup


def test_muted_log_buffers_nothing_and_runs_no_callbacks(tmp_path):
    seen = []
    log = EventLog([seen.append])
    log.mute()
    for step in range(1000):
        log.emit(Cleanup(step, cuda_allocated_before=0, cuda_allocated_after=0))
    log.open(tmp_path / "events.jsonl")
    log.close()
    assert seen == [] and (tmp_path / "events.jsonl").read_text() == ""


def test_rank_0_log_writes_what_came_before_it_opened(tmp_path):
    seen = []
    log = EventLog([seen.append])
    log.emit(Cleanup(0, cuda_allocated_before=0, cuda_allocated_after=0))
    log.open(tmp_path / "events.jsonl")
    log.emit(Cleanup(1, cuda_allocated_before=0, cuda_allocated_after=0))
    log.close()
    lines = [json.loads(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [0, 1] and len(seen) == 2
