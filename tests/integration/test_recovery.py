"""Recovery by rollback (analytics.recovery = "rollback"), driven by fault injection."""

from __future__ import annotations

import json
import math

import pytest

from tests.integration.conftest import demo_cfg
from tui_trainer.api import train

pytestmark = pytest.mark.slow


def _with_analytics(cfg, **settings):
    return cfg.model_copy(update={"analytics": cfg.analytics.model_copy(update=settings)})


def _of(events, kind):
    return [e for e in events if e.TYPE == kind]


def test_divergence_rolls_back_lowers_lr_skips_the_window_and_finishes(tmp_path):
    cfg = _with_analytics(
        demo_cfg(tmp_path, max_steps=14, checkpoint={"every_steps": 4, "every_minutes": 0, "keep_last": 5}),
        spike_window=8,
        recovery="rollback",
    )
    events: list = []
    # Losses of steps 9..12 x50: half of the divergence median's window.
    result = train(cfg, on_event=events.append, faults="spike@8,spike@9,spike@10,spike@11")
    assert result.status == "finished" and result.final_step == 14
    [divergence] = [a for a in _of(events, "anomaly") if a.kind == "divergence"]
    [recovery] = _of(events, "recovery")
    assert recovery.checkpoint.endswith("step-00000008") and recovery.step == 8
    assert recovery.from_step == divergence.step and recovery.skipped_steps == divergence.step - 8
    assert recovery.lr_factor == 0.5
    after = _of(events[events.index(recovery) :], "step")
    before = {e.step: e for e in _of(events[: events.index(recovery)], "step")}
    assert [e.step for e in after] == list(range(9, 15))
    assert all(math.isfinite(e.loss) and e.loss < 3 * before[8].loss for e in after)
    assert after[0].lr == pytest.approx(0.5 * before[9].lr)
    # The sampler skipped the bad window: step 9's batch is the one step 9 + skipped would have drawn.
    assert sum(after[0].samples_per_dataset.values()) == (9 + recovery.skipped_steps) * cfg.effective_batch
    state = json.loads((result.run_dir / "checkpoints" / "step-00000014" / "trainer_state.json").read_text())
    assert state["analytics"]["recoveries"] == 1
    assert len(state["analytics"]["detectors"]["loss_spikes"]["values"]) == 8
    html = (result.run_dir / "report.html").read_text()
    assert "divergence" in html and "Recoveries" in html


def test_nan_streak_rolls_back_past_a_corrupt_newest_checkpoint(tmp_path):
    cfg = _with_analytics(
        demo_cfg(tmp_path, max_steps=10, checkpoint={"every_steps": 2, "every_minutes": 0, "keep_last": 5}),
        recovery="rollback",
    )
    events: list = []

    def hook(event):
        events.append(event)
        if event.TYPE == "checkpoint_saved" and event.step == 6:
            target = tmp_path.joinpath(event.path, "optimizer.pt")
            target.write_bytes(target.read_bytes()[:100])

    result = train(cfg, on_event=hook, faults="nan@6,nan@7,nan@8")
    assert result.status == "finished" and result.final_step == 10
    assert math.isfinite(result.metrics["final_loss"])
    assert [(a.kind, a.step) for a in _of(events, "anomaly")] == [("nonfinite", 7)]
    [recovery] = _of(events, "recovery")
    assert recovery.checkpoint.endswith("step-00000004") and recovery.skipped_steps == 9 - 4
    assert any("step-00000006" in w.message and "recovery skipped" in w.message for w in _of(events, "warning"))


def test_without_recovery_a_nan_streak_stops_as_before(tmp_path):
    events: list = []
    result = train(demo_cfg(tmp_path, max_steps=8), on_event=events.append, faults="nan@5,nan@6,nan@7")
    assert result.status == "stopped" and result.stop_reason == "nan"
    assert _of(events, "recovery") == []
    assert [a.kind for a in _of(events, "anomaly")] == ["nonfinite"]
    html = (result.run_dir / "report.html").read_text()
    assert "stopped" in html and "nonfinite" in html
