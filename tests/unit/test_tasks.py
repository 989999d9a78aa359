"""The Task seam: registry, Batch slicing, the causal_lm targets, the chunked loss and the fp16 scaler on skipped updates."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.errors import ConfigError
from tui_trainer.tasks.base import Batch
from tui_trainer.tasks.causal_lm import shifted_targets
from tui_trainer.tasks.cross_entropy import cross_entropy_sum
from tui_trainer.tasks.registry import TASK_NAMES, task_by_name


def test_unknown_task_names_run_task_and_the_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"run\.task = 'nope'.*causal_lm"):
        task_by_name("nope")
    from tui_trainer import load_config

    path = tmp_path / "run.toml"
    path.write_text('[run]\ntask = "nope"\n')
    with pytest.raises(ConfigError, match=r"run\.task.*causal_lm"):
        load_config(path)
    assert "causal_lm" in TASK_NAMES and task_by_name("causal_lm").name == "causal_lm"


def test_batch_select_trims_right_padding_and_keeps_per_row_counts():
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]])
    lengths = torch.tensor([4, 2, 1])
    batch = Batch({"input_ids": ids, "position_ids": ids.clone()}, n_targets=lengths - 1, work=lengths, lengths=lengths)
    tail = batch.select(1, 3)
    assert tail.tensors["input_ids"].tolist() == [[5, 6], [7, 0]] and tail.tensors["position_ids"].shape == (2, 2)
    assert tail.n_targets.tolist() == [1, 0] and tail.work.tolist() == [2, 1] and tail.rows == 2
    assert batch.select(0, 3).tensors["input_ids"].shape == (3, 4)


def test_shifted_targets_skip_document_starts_and_the_last_position():
    labels = torch.tensor([[10, 11, 12, 20, 21, -100]])
    positions = torch.tensor([[0, 1, 2, 0, 1, 2]])  # a second document starts at index 3
    assert shifted_targets(labels, positions).tolist() == [[11, 12, -100, 21, -100, -100]]


def _naive(logits, targets):
    return F.cross_entropy(logits.float(), targets, ignore_index=-100, reduction="sum")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.integers(2, 40), st.integers(1, 32), st.integers(0, 2**16))
def test_property_chunked_cross_entropy_matches_the_naive_one(n, vocab, chunk, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, vocab, generator=gen) * 4).requires_grad_()
    targets = torch.randint(0, vocab, (n,), generator=gen)
    targets[torch.rand(n, generator=gen) < 0.3] = -100
    got = cross_entropy_sum(logits, targets, chunk=chunk)
    (got * 0.37).backward()
    grad, logits.grad = logits.grad.clone(), None
    want = _naive(logits, targets)
    (want * 0.37).backward()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad, logits.grad, rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(cross_entropy_sum(logits, targets, chunk=chunk), want, rtol=1e-6, atol=1e-5)


def test_chunked_cross_entropy_keeps_a_16_bit_gradient_and_no_fp32_copy_of_all_logits():
    logits = torch.randn(4096, 512, dtype=torch.bfloat16).requires_grad_()
    targets = torch.randint(0, 512, (4096,))
    loss = cross_entropy_sum(logits, targets, chunk=1024)
    assert loss.dtype == torch.float32
    saved = [t for t in _saved_tensors(loss)]
    assert saved and all(t.dtype == torch.bfloat16 for t in saved)  # nothing fp32 of [4096, 512] kept
    loss.backward()
    assert logits.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss, _naive(logits, targets), rtol=1e-5, atol=1e-3)


def _saved_tensors(loss):
    node = loss.grad_fn
    return [getattr(node, "saved_tensors", ())][0]


class _ScalerAccelerator:
    """What StepRunner asks of accelerate under fp16, on the CPU with torch's own GradScaler."""

    num_processes = 1
    device = torch.device("cpu")

    def __init__(self, optimizer):
        self.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        self.optimizer = optimizer

    def autocast(self):
        return contextlib.nullcontext()

    def backward(self, loss):
        self.scaler.scale(loss).backward()

    def clip_grad_norm_(self, params, max_norm):
        self.scaler.unscale_(self.optimizer)
        return torch.nn.utils.clip_grad_norm_(params, max_norm)


class _ScaledOptimizer:
    """accelerate's AcceleratedOptimizer under fp16: step = scaler.step + scaler.update."""

    def __init__(self, inner, accelerator):
        self.inner, self.acc = inner, accelerator

    def step(self):
        self.acc.scaler.step(self.inner)
        self.acc.scaler.update()

    def zero_grad(self, set_to_none=True):
        self.inner.zero_grad(set_to_none=set_to_none)


class _SumTask:
    def loss_sum(self, model, batch):
        out = model(batch.tensors["x"]).sum()
        return out, int(batch.n_targets.sum())


def test_a_skipped_fp16_update_keeps_the_grad_scaler_consistent():
    from tui_trainer.engine.faults import Faults
    from tui_trainer.engine.step import StepRunner

    model = torch.nn.Linear(4, 1)
    inner = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = _ScalerAccelerator(inner)
    optimizer = _ScaledOptimizer(inner, acc)
    acc.optimizer = inner
    runner = StepRunner(accelerator=acc, model=model, optimizer=optimizer, task=_SumTask(), micro_batch_size=2,
                        max_grad_norm=1.0, faults=Faults("nan@0"), on_oom=lambda *_: None)  # fmt: skip
    ones = torch.ones(2, dtype=torch.long)
    batch = Batch({"x": torch.randn(2, 4)}, n_targets=ones, work=ones)
    ids = torch.zeros(2, dtype=torch.long)
    before = [p.detach().clone() for p in model.parameters()]
    skipped = runner.run(0, batch, ids)
    assert not skipped.finite
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert acc.scaler.get_scale() == 2.0**9  # backed off as after an overflow
    done = runner.run(1, batch, ids)  # would raise "unscale_() has already been called" without the reset
    assert done.finite and not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
