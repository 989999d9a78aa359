"""Small engine pieces: RNG capture, fingerprints, fault specs, events, event log, controls."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from tui_trainer.config.schema import config_from_dict
from tui_trainer.engine import events as ev
from tui_trainer.engine.control import Controls
from tui_trainer.engine.eventlog import EventLog
from tui_trainer.engine.faults import Faults
from tui_trainer.engine.checkpoint.fingerprint import config_fingerprint, fingerprint_diff
from tui_trainer.engine.rng import capture_rng, restore_rng
from tui_trainer.errors import ConfigError


def test_rng_roundtrip_all_streams_and_weights_only(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = capture_rng()
    torch.save({"rng": state}, tmp_path / "rng.pt")
    first = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


def test_rng_restore_rejects_missing_keys():
    state = capture_rng()
    del state["numpy"]
    with pytest.raises(KeyError, match="missing"):
        restore_rng(state)


def _cfg(**train):
    return config_from_dict({"data": {"datasets": [{"name": "a", "path": "a.jsonl"}]}, "train": train})


def test_fingerprint_safe_and_unsafe_changes():
    base = config_fingerprint(_cfg(micro_batch_size=8, grad_accum=4), {"a": "abc"})
    safe = config_fingerprint(_cfg(micro_batch_size=4, grad_accum=8, eval_every=7, max_steps=999), {"a": "abc"})
    assert fingerprint_diff(base, safe) == []
    unsafe = config_fingerprint(_cfg(micro_batch_size=4, grad_accum=4, lr=1e-3), {"a": "abc"})
    diffs = fingerprint_diff(base, unsafe)
    assert any(d.startswith("effective_batch: 32 -> 16") for d in diffs)
    assert any(d.startswith("train.lr:") for d in diffs)
    data_changed = config_fingerprint(_cfg(micro_batch_size=8, grad_accum=4), {"a": "zzz"})
    assert fingerprint_diff(base, data_changed) == ["prepared[a]: 'abc' -> 'zzz'"]


def test_fault_spec_parsing():
    faults = Faults("oom@3x2, save@5,nan@1")
    assert faults
    faults.before_forward(2)  # nothing at step 2
    with pytest.raises(torch.OutOfMemoryError):
        faults.before_forward(3)
    with pytest.raises(torch.OutOfMemoryError):
        faults.before_forward(3)
    faults.before_forward(3)  # used up
    with pytest.raises(OSError, match="No space left"):
        faults.before_save(5)
    assert torch.isnan(faults.corrupt_loss(1, torch.tensor(1.0)))
    assert not Faults("")
    with pytest.raises(ConfigError, match="TUI_TRAINER_FAULTS"):
        Faults("explode@3")


def test_event_roundtrip_through_json():
    event = ev.StepMetrics(4, loss=1.5, lr=1e-4, grad_norm=0.3, tokens_per_s=1000.0, samples_per_dataset={"a": 8})
    data = json.loads(json.dumps(event.to_dict()))
    assert data["type"] == "step" and data["step"] == 4 and "time" in data
    assert ev.event_from_dict(data) == event
    assert ev.event_from_dict({"type": "nope", "step": 1, "time": 0}) is None


def test_every_event_field_is_documented():
    import ast
    import inspect

    source = inspect.getsource(ev)
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            body = node.body
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.AnnAssign) and not (
                    isinstance(stmt.annotation, ast.Subscript) and getattr(stmt.annotation.value, "id", "") == "ClassVar"
                ):
                    nxt = body[i + 1] if i + 1 < len(body) else None
                    assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), (node.name, stmt.target.id)


def test_event_log_buffers_until_open_and_survives_bad_callback(tmp_path):
    seen = []

    def bad(_event):
        raise RuntimeError("ui broke")

    log = EventLog([seen.append, bad])
    log.emit(ev.Warning_(0, message="early"))
    log.open(tmp_path / "events.jsonl")
    log.emit(ev.Warning_(1, message="late"))
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [line["message"] for line in lines] == ["early", "late"]
    assert len(seen) == 2


def test_controls_first_reason_wins():
    controls = Controls()
    controls.request_stop("signal")
    controls.request_stop("user")
    assert controls.stop.is_set() and controls.reason == "signal"
