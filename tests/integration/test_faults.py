"""Faults the engine must survive: corrupt checkpoints, config drift, full disk, OOM, NaN, STOP file."""

from __future__ import annotations

import gc
import shutil
import weakref

import psutil
import pytest
import torch

from tests.integration.conftest import demo_cfg, final_weights
from tui_trainer.api import train
from tui_trainer.errors import CheckpointError, ResumeError

pytestmark = pytest.mark.slow


def _events(kind):
    seen = []
    return seen, (lambda e: seen.append(e) if e.TYPE == kind else None)


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory):
    """One 8-step run with checkpoints at 2, 4, 6 and 8; each damage case corrupts its own copy."""
    base = tmp_path_factory.mktemp("corrupt-base")
    first = train(demo_cfg(base, max_steps=8, checkpoint={"every_steps": 2, "every_minutes": 0, "keep_last": 5}))
    assert first.status == "finished"
    return first.run_dir


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_corrupt_newest_checkpoint_is_skipped_for_the_previous(tmp_path, damage, checkpointed_run):
    run_dir = tmp_path / "runs" / checkpointed_run.name
    shutil.copytree(checkpointed_run, run_dir)
    (run_dir / "run.pid").unlink(missing_ok=True)
    ckpts = run_dir / "checkpoints"
    newest = ckpts / "step-00000008"
    target = newest / "optimizer.pt"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        (newest / "manifest.json").unlink()
    warnings, hook = _events("warning")
    started, hook2 = _events("run_started")
    resumed = train(demo_cfg(tmp_path, max_steps=10), resume=run_dir, on_event=lambda e: (hook(e), hook2(e)))
    assert started[0].resumed_from.endswith("step-00000006")
    assert any("step-00000008" in w.message for w in warnings)
    assert resumed.final_step == 10


def test_fingerprint_mismatch_refuses_and_lists_keys(tmp_path):
    first = train(demo_cfg(tmp_path, max_steps=4))
    with pytest.raises(ResumeError) as info:
        train(demo_cfg(tmp_path, max_steps=6, lr=5e-4), resume="auto")
    assert "train.lr: 0.002 -> 0.0005" in str(info.value)
    # A safe change: smaller micro-batch with the same effective batch, longer max_steps.
    ok = train(demo_cfg(tmp_path, max_steps=6, micro_batch_size=2, grad_accum=4), resume=first.run_dir)
    assert ok.final_step == 6 and ok.run_dir == first.run_dir


def test_failed_save_warns_keeps_earlier_and_continues(tmp_path):
    warnings, hook = _events("warning")
    result = train(demo_cfg(tmp_path, max_steps=8, checkpoint={"every_steps": 2, "every_minutes": 0}), on_event=hook, faults="save@4")
    assert result.status == "finished"
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    assert "step-00000004" not in names and "step-00000002" in names
    assert not list((result.run_dir / "checkpoints").glob("*.tmp"))
    assert any("No space left" in w.message for w in warnings)


def test_three_failed_saves_in_a_row_stop_with_a_user_error(tmp_path):
    with pytest.raises(CheckpointError, match="3 checkpoint saves in a row failed"):
        train(
            demo_cfg(tmp_path, max_steps=12, checkpoint={"every_steps": 2, "every_minutes": 0}),
            faults="save@2,save@4,save@6",
        )


def test_oom_recovery_gives_the_same_weights(tmp_path):
    clean = train(demo_cfg(tmp_path / "a", max_steps=4))
    ooms, hook = _events("oom_recovered")
    recovered = train(demo_cfg(tmp_path / "b", max_steps=4), on_event=hook, faults="oom@2")
    assert [(e.micro_batch_size, e.grad_accum) for e in ooms] == [(2, 4)]
    a, b = final_weights(clean.run_dir), final_weights(recovered.run_dir)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_oom_at_micro_batch_one_stops_with_advice(tmp_path):
    result = train(demo_cfg(tmp_path, max_steps=4, micro_batch_size=2, grad_accum=4), faults="oom@1x2")
    assert result.status == "stopped" and result.stop_reason == "oom" and result.exit_code == 75
    assert "gradient_checkpointing" in result.message and "max_seq_len" in result.message
    assert result.checkpoint is not None and result.checkpoint.name == "step-00000001"


def test_nan_loss_skips_then_stops(tmp_path):
    warnings, hook = _events("warning")
    one = train(demo_cfg(tmp_path / "a", max_steps=4), on_event=hook, faults="nan@1")
    assert one.status == "finished" and any("update skipped" in w.message for w in warnings)
    many = train(demo_cfg(tmp_path / "b", max_steps=8), faults="nan@4,nan@5,nan@6")
    assert many.status == "stopped" and many.stop_reason == "nan"
    assert many.checkpoint.name == "step-00000004"


def test_stop_file_stops_gracefully(tmp_path):
    def hook(event):
        if event.TYPE == "step" and event.step == 3:
            (run_dir,) = (tmp_path / "runs").iterdir()
            (run_dir / "STOP").write_text("stop")

    result = train(demo_cfg(tmp_path, max_steps=50), on_event=hook)
    assert result.stop_reason == "stop_file" and result.final_step == 3 and result.exit_code == 75
    assert result.checkpoint is not None and result.checkpoint.name == "step-00000003"
    # The request stays until the next start clears it, so a monitor still sees what was asked.
    assert (result.run_dir / "STOP").read_text() == "stop"
    resumed = train(demo_cfg(tmp_path, max_steps=5), resume="auto")
    assert resumed.run_dir == result.run_dir
    assert resumed.status == "finished" and resumed.final_step == 5
    assert not (result.run_dir / "STOP").exists()


def test_early_stopping_ends_normally_and_keeps_best(tmp_path, monkeypatch):
    from tui_trainer.engine import evaluation

    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])

    def fake_evaluate(*args, **kwargs):
        value = next(losses)
        return evaluation.EvalLosses(value, {"code": value})

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    result = train(
        demo_cfg(tmp_path, max_steps=12, eval_every=1, early_stopping_patience=2, checkpoint={"every_steps": 0, "every_minutes": 0, "keep_last": 1})
    )
    assert result.status == "finished" and result.final_step == 4
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    assert "step-00000002" in names  # the best eval, kept although keep_last = 1
    assert result.metrics["best_eval_loss"] == 2.0


def test_five_runs_release_models_and_memory(tmp_path, monkeypatch):
    from tui_trainer.tasks.causal_lm import CausalLMTask

    refs = []
    original = CausalLMTask.build_model

    def tracking_build_model(self, *args, **kwargs):
        model = original(self, *args, **kwargs)
        refs.append(weakref.ref(model))
        return model

    monkeypatch.setattr(CausalLMTask, "build_model", tracking_build_model)
    rss = []
    for index in range(5):
        # Each run minimal (one step, a one-row final eval, no checkpoints); it still builds, trains and saves a model.
        train(demo_cfg(tmp_path / str(index), max_steps=1, eval_max_rows=1, checkpoint={"every_steps": 0, "every_minutes": 0, "keep_last": 1}))
        gc.collect()
        assert refs[-1]() is None, f"run {index}: the model is still referenced after train() returned"
        rss.append(psutil.Process().memory_info().rss)
    growth = rss[-1] - rss[1]
    assert growth < 64 * 2**20, f"RSS grew {growth / 2**20:.0f} MiB over runs 2..5: {rss}"


@pytest.mark.gpu
def test_cuda_memory_returns_to_baseline(tmp_path):
    baseline = torch.cuda.memory_allocated()
    for index in range(10):
        train(demo_cfg(tmp_path / str(index), max_steps=2))
        assert torch.cuda.memory_allocated() - baseline < 100 * 2**20
