"""Unit-norm decoder rows (EleutherAI/sparsify): the parallel gradient is removed before the step,
the rows are renormalised after it, only for the optimizer that holds this SAE, defaults per architecture."""

from __future__ import annotations

import gc

import pytest
import torch
from torch.optim.optimizer import _global_optimizer_pre_hooks

from tui_trainer.config.schema import SaeSection
from tui_trainer.tasks.sae.decoder_norm import DecoderNormHooks, normalizes_decoder
from tui_trainer.tasks.sae.model import SparseAutoencoder

D_IN, D_SAE = 8, 32


def _sae(architecture: str = "topk") -> SparseAutoencoder:
    return SparseAutoencoder(D_IN, D_SAE, architecture, 4, generator=torch.Generator().manual_seed(0))


def _backward(sae: SparseAutoencoder) -> None:
    x = torch.randn(16, D_IN, generator=torch.Generator().manual_seed(1))
    out = sae(x)
    sae.loss(x, out, l1_coefficient=1.0, aux_k_coefficient=0.0, dead=None).total.backward()


def _row_norms(sae: SparseAutoencoder) -> torch.Tensor:
    return sae.W_dec.detach().norm(dim=1)


def test_the_parallel_gradient_component_is_removed():
    sae = _sae()
    _backward(sae)
    before = sae.W_dec.grad.clone()
    parallel = (before * sae.W_dec.detach()).sum(dim=1)
    assert parallel.abs().max() > 1e-3  # the raw gradient has a component along the rows
    sae.remove_parallel_decoder_grad()
    after = (sae.W_dec.grad * sae.W_dec.detach()).sum(dim=1)
    assert after.abs().max() < 1e-5 * parallel.abs().max()  # zero up to float32 rounding
    # Only the parallel part went: the rest of the gradient is untouched.
    rows = sae.W_dec.detach()
    assert torch.allclose(sae.W_dec.grad, before - parallel[:, None] * rows, atol=1e-6)


def test_rows_have_unit_norm_after_an_optimizer_step_and_the_step_saw_a_tangent_gradient():
    sae = _sae()
    hooks = DecoderNormHooks(sae)
    optimizer = torch.optim.SGD(sae.parameters(), lr=0.01)  # SGD: the update is the gradient, easy to check
    seen: list[torch.Tensor] = []
    optimizer.register_step_pre_hook(lambda *_: seen.append((sae.W_dec.grad.clone(), sae.W_dec.detach().clone())))
    for _ in range(3):
        _backward(sae)
        optimizer.step()
        optimizer.zero_grad()
        assert torch.allclose(_row_norms(sae), torch.ones(D_SAE), atol=1e-6)
    hooks.remove()
    # The instance pre-hook runs after the global one: the gradient the step used had no parallel part.
    assert seen and all(float((g * w).sum(dim=1).abs().max()) < 1e-5 * float(g.abs().max()) for g, w in seen)
    _backward(sae)
    optimizer.step()
    assert not torch.allclose(_row_norms(sae), torch.ones(D_SAE), atol=1e-4)  # removed: no longer renormalised


def test_another_optimizer_in_the_process_is_left_alone():
    sae = _sae()
    hooks = DecoderNormHooks(sae)
    other = torch.nn.Parameter(torch.full((4, 3), 2.0))
    optimizer = torch.optim.SGD([other], lr=0.1)
    other.grad = torch.ones_like(other)
    optimizer.step()
    assert torch.allclose(other.detach(), torch.full((4, 3), 1.9))
    hooks.remove()


def test_the_hooks_go_away_with_the_sae():
    before = len(_global_optimizer_pre_hooks)
    sae = _sae()
    DecoderNormHooks(sae)
    assert len(_global_optimizer_pre_hooks) == before + 1
    del sae
    gc.collect()
    assert len(_global_optimizer_pre_hooks) == before


@pytest.mark.parametrize(
    ("architecture", "setting", "expected"),
    [("topk", None, True), ("standard", None, False), ("standard", True, True), ("topk", False, False)],
)
def test_default_per_architecture_and_the_override(architecture, setting, expected):
    cfg = SaeSection(architecture=architecture, normalize_decoder=setting)
    assert normalizes_decoder(cfg) is expected
