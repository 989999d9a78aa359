"""Exact resume: N straight == N/2, kill -9, resume, N/2 more (bitwise), plus the edge cases."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.integration.conftest import assert_bitwise_equal, demo_cfg, final_weights, popen, write_cfg, cli
from tui_trainer.api import train

pytestmark = pytest.mark.slow


def _losses(run_dir):
    out = {}
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        item = json.loads(line)
        if item["type"] == "step":
            out[item["step"]] = item["loss"]
    return out


def _stop_at(step):
    """on_event hook that requests a stop once ``step`` steps are done."""
    state = {}

    def hook(event):
        if event.TYPE == "step" and event.step >= step:
            state["stop"].set()

    return state, hook


def _run_stopped_then_resumed(cfg, stop_after, monkeypatch=None):
    import threading

    stop = threading.Event()
    state, hook = _stop_at(stop_after)
    state["stop"] = stop
    first = train(cfg, on_event=hook, stop=stop)
    assert first.status == "stopped" and first.final_step == stop_after
    return first, train(cfg, resume="auto")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    result = train(demo_cfg(tmp))
    return result


def test_kill9_then_resume_is_bitwise_equal(tmp_path, straight):
    cfg_path = write_cfg(demo_cfg(tmp_path), tmp_path / "run.toml")
    # hang@6: the child blocks before step 6, after the step-4 checkpoint, until we SIGKILL it.
    proc = popen("train", str(cfg_path), env={"TUI_TRAINER_FAULTS": "hang@6"})
    events = None
    deadline = time.time() + 240
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("it-*/events.jsonl"))
        if found and any(json.loads(l).get("step") == 6 and json.loads(l)["type"] == "step" for l in found[0].read_text().splitlines()):
            events = found[0]
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert events is not None, "the child never reached step 6"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_dir = events.parent
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000004"]
    resumed = cli("train", str(cfg_path), "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr
    assert_bitwise_equal(final_weights(straight.run_dir), final_weights(run_dir))
    straight_losses, resumed_losses = _losses(straight.run_dir), _losses(run_dir)
    # Steps 5 and 6 ran twice in the killed run's log (before the kill and after the resume); the last write wins.
    assert resumed_losses == straight_losses


@pytest.mark.parametrize("stop_after", [0, 4, 5])
def test_stop_and_resume_at_edges_is_bitwise_equal(tmp_path, straight, stop_after):
    # 0: before any step; 4: right after the interval checkpoint; 5: between checkpoints.
    if stop_after == 0:
        import threading

        stop = threading.Event()
        stop.set()
        first = train(demo_cfg(tmp_path), stop=stop)
        assert first.final_step == 0 and first.checkpoint.name == "step-00000000"
        second = train(demo_cfg(tmp_path), resume="auto")
    else:
        first, second = _run_stopped_then_resumed(demo_cfg(tmp_path), stop_after)
    assert second.run_dir == first.run_dir and second.final_step == 8
    assert_bitwise_equal(final_weights(straight.run_dir), final_weights(second.run_dir))


def test_resume_across_dataset_epoch_boundary(tmp_path):
    def cfg(path):
        c = demo_cfg(path)
        data = c.data.model_copy(
            update={"datasets": [c.data.datasets[0], c.data.datasets[1].model_copy(update={"max_samples": 7})]}
        )
        return c.model_copy(update={"data": data})

    epochs = []
    straight = train(cfg(tmp_path / "a"), on_event=lambda e: epochs.append(e.step) if e.TYPE == "dataset_epoch" else None)
    assert epochs, "the capped dataset never wrapped: the test would not cross an epoch boundary"
    stop_step = epochs[0] + 1
    _, resumed = _run_stopped_then_resumed(cfg(tmp_path / "b"), stop_step)
    assert_bitwise_equal(final_weights(straight.run_dir), final_weights(resumed.run_dir))


def test_negative_control_without_sampler_and_rng_state_differs(tmp_path, straight, monkeypatch):
    """Proves the bitwise test can fail: skipping the sampler/RNG restore changes the weights."""
    from tui_trainer.data.mixing import sampler as mixing
    from tui_trainer.engine import recipe_checkpoints as recipe  # where load_checkpoint restores the RNG

    monkeypatch.setattr(mixing.MixingSampler, "load_state_dict", lambda self, state: None)
    monkeypatch.setattr(recipe, "restore_rng", lambda state: None)
    _, resumed = _run_stopped_then_resumed(demo_cfg(tmp_path), 4)
    a, b = final_weights(straight.run_dir), final_weights(resumed.run_dir)
    assert any(not (a[k] == b[k]).all() for k in a)


def test_skipped_checkpoint_warning_carries_the_step_the_run_continues_from(tmp_path):
    first = train(demo_cfg(tmp_path, max_steps=6, checkpoint={"every_steps": 2, "every_minutes": 0, "keep_last": 5}))
    (first.run_dir / "checkpoints" / "step-00000006" / "manifest.json").unlink()
    warnings = []
    resumed = train(demo_cfg(tmp_path, max_steps=7), resume=first.run_dir,
                    on_event=lambda e: warnings.append(e) if e.TYPE == "warning" else None)  # fmt: skip
    (skipped,) = [w for w in warnings if "step-00000006" in w.message]
    assert skipped.step == 4 and resumed.final_step == 7
