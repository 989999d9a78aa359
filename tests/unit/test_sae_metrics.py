"""SAE metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from tui_trainer.tasks.sae import metrics as m


def test_l0_counts_nonzero_features_per_token():
    acts = torch.tensor([[0.0, 1.0, 2.0, 0.0], [3.0, 0.0, 0.0, 0.0]])
    assert m.l0(acts) == 1.5


def test_explained_variance_pooled_by_hand():
    x = torch.tensor([[1.0, 0.0], [3.0, 4.0]])  # mean (2, 2); sum ||x - mean||^2 = (1+4) + (1+4) = 10
    recon = torch.tensor([[1.0, 1.0], [2.0, 4.0]])  # sum ||x - recon||^2 = 1 + 1 = 2
    assert m.explained_variance(x, recon) == pytest.approx(1 - 2 / 10)
    assert m.explained_variance(x, x) == 1.0


def test_mse_is_mean_over_tokens_and_dims():
    x = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    recon = torch.tensor([[1.0, 1.0], [2.0, 4.0]])
    assert m.mse(x, recon) == pytest.approx(2 / 4)


def test_dead_features_counts_the_window():
    since = torch.tensor([0, 5, 10, 11])
    assert m.dead_features(since, 10) == 2


def test_ce_loss_score_by_hand():
    assert m.ce_loss_score(ce_clean=2.0, ce_sae=2.5, ce_zero=7.0) == pytest.approx(4.5 / 5.0)
    assert math.isnan(m.ce_loss_score(2.0, 2.0, 2.0))


def test_sums_over_batches_equal_the_metrics_of_the_whole():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g) + 3.0
    recon = x + 0.3 * torch.randn(50, 6, generator=g)
    acts = torch.relu(torch.randn(50, 9, generator=g))
    sums = m.new_sums(6, torch.device("cpu"))
    for part in (slice(0, 13), slice(13, 40), slice(40, 50)):
        m.add_reconstruction(sums, x[part], recon[part], acts[part])
    m.add_ce(sums, torch.tensor(20.0), torch.tensor(25.0), torch.tensor(70.0), count=10)
    got = m.metrics_from_sums(sums)
    assert got["explained_variance"] == pytest.approx(m.explained_variance(x, recon), rel=1e-9)
    assert got["mse"] == pytest.approx(m.mse(x, recon), rel=1e-9)
    assert got["l0"] == pytest.approx(m.l0(acts))
    assert got["ce_clean"] == 2.0 and got["ce_with_sae"] == 2.5 and got["ce_zero_ablation"] == 7.0
    assert got["ce_loss_score"] == pytest.approx(0.9)
