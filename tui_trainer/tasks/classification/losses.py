"""Class weights and the classification loss, written once and used by the training step and by eval.

The engine divides the summed loss of a global batch by a global count. For a weighted
loss that count is the sum of the weights of the batch's targets, not the number of rows:
that is what ``torch.nn.functional.cross_entropy(weight=w, reduction="mean")`` divides by,
so a batch's loss stays a weighted *mean* (comparable across batches with different class
mixes) and equals torch's own reduction when the whole batch is one micro-batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

WEIGHTINGS = ("none", "balanced", "sqrt_balanced")
LOSSES = ("cross_entropy", "focal")


def class_weights(counts: Sequence[int], mode: str) -> np.ndarray:
    """Per-class weights from the training label counts (index = class id).

    ``balanced`` is scikit-learn's n / (n_classes x count_c); ``sqrt_balanced`` is its square
    root, a milder correction that keeps rare classes from dominating when the ratio is large.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if mode == "none":
        return np.ones(len(counts), dtype=np.float64)
    if mode not in WEIGHTINGS:
        raise ValueError(f"unknown class weighting {mode!r}; expected one of {WEIGHTINGS}")
    if (counts <= 0).any():
        # compute_class_weight rejects classes absent from y; callers check that earlier with a DataError.
        raise ValueError("every class needs at least one training row to get a weight")
    classes = np.arange(len(counts))
    balanced = compute_class_weight("balanced", classes=classes, y=np.repeat(classes, counts))
    return np.sqrt(balanced) if mode == "sqrt_balanced" else balanced


@dataclass(frozen=True)
class LossSpec:
    """How a batch's logits and targets become a loss sum and its count."""

    kind: str
    """cross_entropy | focal."""
    weights: tuple[float, ...] | None
    """Per-class weights (focal: alpha); None = all ones."""
    gamma: float = 2.0
    """Focal focusing parameter; 0 makes focal equal to cross-entropy."""


def loss_sum_and_count(logits: torch.Tensor, targets: torch.Tensor, spec: LossSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed loss, summed target weight) of one micro-batch; their global ratio is the batch loss.

    Focal loss is (1 - p_t)^gamma x CE per row, times the class weight of the row's target,
    the multi-class form of Lin et al. with the class weights as alpha.
    """
    logits = logits.float()
    weight = None if spec.weights is None else torch.tensor(spec.weights, dtype=torch.float32, device=logits.device)
    row_weight = torch.ones_like(targets, dtype=torch.float32) if weight is None else weight[targets]
    if spec.kind == "cross_entropy":
        total = F.cross_entropy(logits, targets, weight=weight, reduction="sum")
    elif spec.kind == "focal":
        ce = F.cross_entropy(logits, targets, reduction="none")
        p_t = torch.exp(-ce)
        total = ((1.0 - p_t).pow(spec.gamma) * ce * row_weight).sum()
    else:
        raise ValueError(f"unknown loss {spec.kind!r}; expected one of {LOSSES}")
    return total, row_weight.sum()
