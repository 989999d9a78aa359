"""Classification metrics, as scikit-learn defines them (never re-implemented here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

HIGHER_IS_BETTER = {"accuracy": True, "macro_f1": True, "balanced_accuracy": True, "eval_loss": False}
"""The metrics ``classification.metric_for_best`` may name, and their direction."""


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro_f1, balanced_accuracy, per-class precision/recall and the confusion matrix.

    Every class of ``labels`` is scored even when absent from this eval set (zero_division=0),
    so the per-class keys and the matrix shape never change between evals.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    ids = list(range(len(labels)))
    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    present = support > 0
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        # balanced_accuracy_score averages recall over the classes present in y_true only.
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)) if present.any() else 0.0,
        "precision": {name: float(p) for name, p in zip(labels, precision, strict=True)},
        "recall": {name: float(r) for name, r in zip(labels, recall, strict=True)},
        "support": {name: int(s) for name, s in zip(labels, support, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(labels),
    }
