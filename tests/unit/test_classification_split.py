"""The stratified eval split, the per-class cap, label order and metrics."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.tasks.classification.metrics import classification_metrics
from tui_trainer.tasks.classification.split import (
    ClassCounts,
    cap_per_class,
    class_counts,
    label_order,
    stratified_split,
)

class_sizes = st.lists(st.integers(1, 40), min_size=2, max_size=8)


def _labels(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


@settings(max_examples=60, deadline=None)
@given(class_sizes, st.floats(0.01, 0.9), st.integers(0, 1000))
def test_stratified_split_keeps_every_class_on_both_sides(sizes, fraction, seed):
    ids = _labels(sizes)
    train, held = stratified_split(ids, fraction, seed)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(ids)))
    for c, n in enumerate(sizes):
        assert (ids[train] == c).sum() >= 1
        if n >= 2:
            assert (ids[held] == c).sum() >= 1
            assert abs((ids[held] == c).sum() - fraction * n) <= 1


def test_stratified_split_is_per_class_and_seeded():
    ids = _labels([100, 10])
    train, held = stratified_split(ids, 0.2, seed=3)
    assert (ids[held] == 0).sum() == 20 and (ids[held] == 1).sum() == 2
    again = stratified_split(ids, 0.2, seed=3)
    np.testing.assert_array_equal(held, again[1])


def test_zero_fraction_holds_nothing_out():
    train, held = stratified_split(_labels([3, 3]), 0.0, seed=0)
    assert len(held) == 0 and len(train) == 6


@settings(max_examples=60, deadline=None)
@given(class_sizes, st.integers(0, 30), st.integers(0, 1000))
def test_cap_keeps_at_most_n_per_class(sizes, cap, seed):
    ids = _labels(sizes)
    rows = np.arange(len(ids))
    kept = cap_per_class(ids, rows, cap, seed)
    counts = class_counts(ids, kept, len(sizes))
    for n, got in zip(sizes, counts, strict=True):
        assert got == (n if cap == 0 else min(n, cap))
    assert len(set(kept.tolist())) == len(kept)


def test_class_counts_report_the_imbalance_before_and_after():
    counts = ClassCounts(("a", "b"), before=(165, 10), after=(100, 10), eval=(20, 2))
    assert counts.imbalance_before == 16.5 and counts.imbalance_after == 10.0
    d = counts.to_dict()
    assert d["train_before_cap"] == {"a": 165, "b": 10} and d["imbalance_after_cap"] == 10.0


def test_label_order_sorts_integers_numerically_and_keeps_a_fixed_order():
    assert label_order(["10", "2", "1", "2"], []) == ("1", "2", "10")
    assert label_order(["b", "a"], []) == ("a", "b")
    assert label_order(["b", "a"], ["b", "a", "c"]) == ("b", "a", "c")


def test_metrics_are_scikit_learns():
    m = classification_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 0], ["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["recall"] == {"x": pytest.approx(2 / 3), "y": 1.0, "z": 0.0}
    assert m["precision"]["y"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    f1 = [2 * (2 / 3) * (2 / 3) / (4 / 3), 2 * (2 / 3) / (5 / 3), 0.0]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
