"""The SAE module: TopK sparsity, AuxK, the L1 term, initialisation and the folded normalization."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.tasks.sae.model import SparseAutoencoder, topk_relu


def _sae(arch="topk", d_in=8, d_sae=32, k=4, seed=0):
    return SparseAutoencoder(d_in, d_sae, arch, k, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 16), rows=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_topk_keeps_exactly_k_when_all_are_positive(k, rows, seed):
    pre = torch.rand(rows, 16, generator=torch.Generator().manual_seed(seed)) + 0.1
    acts = topk_relu(pre, k)
    assert ((acts != 0).sum(dim=1) == k).all()
    kept = acts != 0
    # The kept ones are the largest: every kept value >= every dropped value in its row.
    for r in range(rows):
        dropped = pre[r][~kept[r]]
        assert dropped.numel() == 0 or pre[r][kept[r]].min() >= dropped.max()


def test_topk_relu_never_keeps_negatives():
    pre = torch.tensor([[3.0, -1.0, -2.0, -0.5]])
    assert (topk_relu(pre, 3) == torch.tensor([[3.0, 0.0, 0.0, 0.0]])).all()


def test_init_ties_encoder_to_decoder_with_unit_rows():
    sae = _sae()
    assert torch.equal(sae.W_enc, sae.W_dec.T)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(32))


def test_init_from_data_sets_b_dec_to_the_mean_and_the_expected_norm():
    x = torch.randn(200, 8) * 5 + 2
    sae = _sae()
    sae.init_from_data(x, normalize=True)
    scaled = sae.scale(x)
    assert float(scaled.norm(dim=1).mean()) == pytest.approx(8**0.5, rel=1e-5)
    assert torch.allclose(sae.b_dec, scaled.mean(dim=0), atol=1e-5)


def test_auxk_is_zero_without_dead_features():
    sae = _sae()
    x = torch.randn(10, 8)
    out = sae(x)
    none_dead = torch.zeros(32, dtype=torch.bool)
    assert float(sae.auxk_sum(x, out, none_dead)) == 0.0
    loss = sae.loss(x, out, l1_coefficient=0.0, aux_k_coefficient=0.03, dead=none_dead)
    assert float(loss.aux) == 0.0 and torch.equal(loss.total, loss.mse)


def test_auxk_with_dead_features_is_positive_and_trains_only_through_dead_latents():
    sae = _sae()
    x = torch.randn(10, 8) * 3
    dead = torch.zeros(32, dtype=torch.bool)
    dead[:20] = True
    out = sae(x)
    aux = sae.auxk_sum(x, out, dead)
    assert float(aux.detach()) > 0
    aux.backward()
    assert sae.W_dec.grad[20:].abs().sum() == 0  # live decoder rows get no AuxK gradient
    assert sae.W_dec.grad[:20].abs().sum() > 0


def test_standard_l1_is_scaled_by_decoder_row_norms():
    sae = _sae("standard")
    with torch.no_grad():
        sae.W_dec.mul_(2.0)
    x = torch.randn(5, 8)
    out = sae(x)
    loss = sae.loss(x, out, l1_coefficient=0.5, aux_k_coefficient=0.0, dead=None)
    assert float(loss.sparsity) == pytest.approx(0.5 * 2.0 * float(out.acts.sum()), rel=1e-5)
    assert float(loss.aux) == 0.0


@pytest.mark.parametrize("arch", ["topk", "standard"])
def test_folded_normalization_gives_identical_outputs_on_raw_activations(arch):
    sae = _sae(arch)
    raw = torch.randn(64, 8, dtype=torch.float64) * 40 + 7
    sae = sae.double()
    sae.init_from_data(raw, normalize=True)
    with torch.no_grad():
        sae.b_enc.normal_()
    assert float(sae.input_scale) != pytest.approx(1.0)
    trained = sae(sae.scale(raw))
    w = sae.folded_weights()
    pre = (raw - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    acts = topk_relu(pre, sae.k) if arch == "topk" else pre.relu()
    recon = acts @ w["W_dec"] + w["b_dec"]
    assert torch.allclose(acts, trained.acts, atol=1e-9)
    assert torch.allclose(recon, trained.recon / sae.input_scale, atol=1e-9)


def test_dead_clock_counts_tokens_and_resets_on_firing():
    sae = _sae()
    fired = torch.zeros(32, dtype=torch.bool)
    fired[3] = True
    sae.record_firing(fired, 100)
    sae.record_firing(torch.zeros(32, dtype=torch.bool), 50)
    assert int(sae.tokens_since_fired[3]) == 50 and int(sae.tokens_since_fired[0]) == 150
    assert int(sae.dead_mask(150).sum()) == 31
