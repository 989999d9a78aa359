"""SAE metrics, defined once (SAELens' definitions, with the pooled explained variance of its PR #665).

Each metric is a function of plain tensors, and the eval pass builds them from running sums
(:class:`MetricSums`) so that several batches, datasets and processes add up exactly.
"""

from __future__ import annotations

import math

import torch

SUM_KEYS = ("tokens", "sq_err", "sum_x", "sum_sq_x", "nonzero", "ce_clean", "ce_sae", "ce_zero", "ce_count")
"""The running sums an eval pass keeps; ``sum_x`` is a vector [d_in], the rest are scalars."""


def l0(acts: torch.Tensor) -> float:
    """Mean over tokens of the number of nonzero features."""
    return float((acts != 0).sum(dim=-1).double().mean())


def explained_variance(x: torch.Tensor, recon: torch.Tensor) -> float:
    """1 - sum_t ||x_t - x_hat_t||^2 / sum_t ||x_t - mean(x)||^2, pooled over every token and dimension."""
    x, recon = x.double(), recon.double()
    return 1.0 - float((x - recon).pow(2).sum() / (x - x.mean(dim=0)).pow(2).sum())


def mse(x: torch.Tensor, recon: torch.Tensor) -> float:
    """Mean over tokens and dimensions of (x - x_hat)^2."""
    return float((x.double() - recon.double()).pow(2).mean())


def dead_features(tokens_since_fired: torch.Tensor, window_tokens: int) -> int:
    """Features that have not fired in the last ``window_tokens`` training tokens."""
    return int((tokens_since_fired >= window_tokens).sum())


def ce_loss_score(ce_clean: float, ce_sae: float, ce_zero: float) -> float:
    """(CE_zero_ablation - CE_with_sae) / (CE_zero_ablation - CE_clean): 1 = as good as the clean model."""
    gap = ce_zero - ce_clean
    return (ce_zero - ce_sae) / gap if gap else math.nan


def new_sums(d_in: int, device: torch.device) -> dict[str, torch.Tensor]:
    sums = {key: torch.zeros((), dtype=torch.float64, device=device) for key in SUM_KEYS}
    sums["sum_x"] = torch.zeros(d_in, dtype=torch.float64, device=device)
    return sums


def add_reconstruction(sums: dict[str, torch.Tensor], x: torch.Tensor, recon: torch.Tensor, acts: torch.Tensor) -> None:
    """Add one batch of raw activations, their reconstruction and the feature activations."""
    x, recon = x.double(), recon.double()
    sums["tokens"] += x.size(0)
    sums["sq_err"] += (x - recon).pow(2).sum()
    sums["sum_x"] += x.sum(dim=0)
    sums["sum_sq_x"] += x.pow(2).sum()
    sums["nonzero"] += (acts != 0).sum().double()


def add_ce(sums: dict[str, torch.Tensor], clean: torch.Tensor, with_sae: torch.Tensor, zero: torch.Tensor, count: int) -> None:
    """Add summed next-token CE of the clean, SAE-spliced and zero-ablated forwards over ``count`` targets."""
    sums["ce_clean"] += clean.double()
    sums["ce_sae"] += with_sae.double()
    sums["ce_zero"] += zero.double()
    sums["ce_count"] += count


def metrics_from_sums(sums: dict[str, torch.Tensor]) -> dict[str, float]:
    """The metrics of a whole eval pass; the total variance is taken around the pass's mean activation."""
    n = float(sums["tokens"])
    if n == 0:
        return {}
    d_in = sums["sum_x"].numel()
    total_var = float(sums["sum_sq_x"]) - float(sums["sum_x"].pow(2).sum()) / n
    out = {
        "l0": float(sums["nonzero"]) / n,
        "explained_variance": 1.0 - float(sums["sq_err"]) / total_var if total_var > 0 else math.nan,
        "mse": float(sums["sq_err"]) / (n * d_in),
    }
    count = float(sums["ce_count"])
    if count:
        clean, with_sae, zero = (float(sums[k]) / count for k in ("ce_clean", "ce_sae", "ce_zero"))
        out.update(ce_clean=clean, ce_with_sae=with_sae, ce_zero_ablation=zero, ce_loss_score=ce_loss_score(clean, with_sae, zero))
    return out
