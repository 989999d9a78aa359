"""Class weights and the classification loss against hand-computed values."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.tasks.classification.losses import LossSpec, class_weights, loss_sum_and_count


def test_balanced_weights_are_n_over_classes_times_count():
    # 10 rows: 6 / 3 / 1 -> 10 / (3 x count)
    np.testing.assert_allclose(class_weights([6, 3, 1], "balanced"), [10 / 18, 10 / 9, 10 / 3])


def test_sqrt_balanced_is_the_square_root_and_none_is_ones():
    np.testing.assert_allclose(class_weights([6, 3, 1], "sqrt_balanced"), np.sqrt([10 / 18, 10 / 9, 10 / 3]))
    np.testing.assert_array_equal(class_weights([6, 3, 1], "none"), [1, 1, 1])


def test_a_class_without_training_rows_has_no_weight():
    with pytest.raises(ValueError):
        class_weights([4, 0], "balanced")


def test_weighted_cross_entropy_sum_over_weight_sum_is_torch_weighted_mean():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [-1.0, 0.0, 3.0], [0.0, 1.0, 0.0]])
    targets = torch.tensor([0, 1, 2, 2])
    w = (0.5, 1.0, 3.0)
    total, count = loss_sum_and_count(logits, targets, LossSpec("cross_entropy", w))
    assert count.item() == pytest.approx(0.5 + 1.0 + 3.0 + 3.0)
    expected = F.cross_entropy(logits, targets, weight=torch.tensor(w), reduction="mean")
    assert (total / count).item() == pytest.approx(expected.item(), rel=1e-6)


def test_focal_loss_by_hand():
    # Two classes, logits (0, 0): p_t = 0.5, CE = ln 2, focal = 0.5^2 x ln 2, times alpha of the target.
    logits = torch.zeros(2, 2)
    targets = torch.tensor([0, 1])
    total, count = loss_sum_and_count(logits, targets, LossSpec("focal", (1.0, 4.0), gamma=2.0))
    assert total.item() == pytest.approx(0.25 * math.log(2) * (1.0 + 4.0), rel=1e-6)
    assert count.item() == pytest.approx(5.0)


def test_focal_down_weights_easy_rows():
    # A confident correct row (p_t ~ 0.95): (0.05)^2 of its CE survives.
    logits = torch.tensor([[3.0, 0.0]])
    targets = torch.tensor([0])
    ce = F.cross_entropy(logits, targets).item()
    p_t = math.exp(-ce)
    total, _ = loss_sum_and_count(logits, targets, LossSpec("focal", None, gamma=2.0))
    assert total.item() == pytest.approx((1 - p_t) ** 2 * ce, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 2), min_size=1, max_size=12),
    st.floats(0.1, 5.0),
    st.integers(0, 2**16),
)
def test_focal_with_gamma_zero_is_weighted_cross_entropy(targets, w2, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(targets), 3, generator=gen)
    t = torch.tensor(targets)
    w = (1.0, 0.5, w2)
    focal, c1 = loss_sum_and_count(logits, t, LossSpec("focal", w, gamma=0.0))
    ce, c2 = loss_sum_and_count(logits, t, LossSpec("cross_entropy", w))
    assert focal.item() == pytest.approx(ce.item(), rel=1e-5, abs=1e-6)
    assert c1.item() == pytest.approx(c2.item())
