"""Label order, the stratified eval split and the per-class cap: pure functions of labels and a seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassCounts:
    """Rows per class of the training split, before and after ``max_samples_per_class``."""

    labels: tuple[str, ...]
    """Class names in id order."""
    before: tuple[int, ...]
    """Training rows per class before capping."""
    after: tuple[int, ...]
    """Training rows per class after capping (equal to ``before`` when the cap is 0)."""
    eval: tuple[int, ...]
    """Held-out rows per class."""

    @property
    def imbalance_before(self) -> float:
        """Largest over smallest class count before capping."""
        return imbalance_ratio(self.before)

    @property
    def imbalance_after(self) -> float:
        """Largest over smallest class count after capping (what the loss sees)."""
        return imbalance_ratio(self.after)

    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "train_before_cap": dict(zip(self.labels, self.before, strict=True)),
            "train_after_cap": dict(zip(self.labels, self.after, strict=True)),
            "eval": dict(zip(self.labels, self.eval, strict=True)),
            "imbalance_before_cap": round(self.imbalance_before, 3),
            "imbalance_after_cap": round(self.imbalance_after, 3),
        }


def imbalance_ratio(counts: Sequence[int]) -> float:
    """Largest over smallest nonzero class count (0 when no class has rows)."""
    positive = [c for c in counts if c > 0]
    return max(positive) / min(positive) if positive else 0.0


def label_order(raw_labels: Sequence[str], fixed: Sequence[str]) -> tuple[str, ...]:
    """``fixed`` when given, else the sorted distinct labels (numerically when they all are integers)."""
    if fixed:
        return tuple(fixed)
    distinct = set(raw_labels)
    if all(_is_int(v) for v in distinct):
        return tuple(sorted(distinct, key=int))
    return tuple(sorted(distinct))


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


def stratified_split(label_ids: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, eval) row indices with round(fraction x n_c) eval rows per class.

    Every class with at least two rows gets at least one eval row and keeps at least one
    training row, so a rare class is never missing from either side.
    """
    ids = np.asarray(label_ids, dtype=np.int64)
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(ids):
        rows = rng.permutation(np.flatnonzero(ids == c))
        n_eval = int(round(fraction * len(rows))) if fraction > 0 else 0
        if fraction > 0 and len(rows) >= 2:
            n_eval = min(max(n_eval, 1), len(rows) - 1)
        else:
            n_eval = 0
        held.append(rows[:n_eval])
        train.append(rows[n_eval:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held)) if held else np.empty(0, np.int64)


def cap_per_class(label_ids: Sequence[int], rows: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most ``cap`` of ``rows`` per class (a seeded random choice); 0 keeps them all."""
    if cap <= 0:
        return np.asarray(rows, dtype=np.int64)
    ids = np.asarray(label_ids, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    rng = np.random.default_rng(seed + 1)  # another stream than the split's
    kept = [rng.permutation(rows[ids[rows] == c])[:cap] for c in np.unique(ids[rows])]
    return np.sort(np.concatenate(kept)) if kept else rows


def class_counts(label_ids: Sequence[int], rows: np.ndarray, n_classes: int) -> tuple[int, ...]:
    ids = np.asarray(label_ids, dtype=np.int64)[np.asarray(rows, dtype=np.int64)]
    return tuple(int(v) for v in np.bincount(ids, minlength=n_classes))
