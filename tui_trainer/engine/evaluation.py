"""Held-out loss, overall and per dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tui_trainer.engine.step import causal_lm_loss_sum


@dataclass(frozen=True)
class EvalLosses:
    overall: float
    """Mean loss over all evaluated tokens of all datasets."""
    per_dataset: dict[str, float]
    """Mean loss per dataset name (datasets without eval rows are absent)."""


@torch.no_grad()
def evaluate(
    accelerator, model, prepared: Sequence, pad_id: int, micro_batch_size: int, max_rows: int = 0
) -> EvalLosses | None:
    """``max_rows`` caps the rows per dataset (0 = all): a stable estimate in seconds, not minutes."""
    from tui_trainer.data.collate import fetch_batch

    was_training = model.training
    model.eval()
    rank, world = accelerator.process_index, accelerator.num_processes
    sums = torch.zeros(len(prepared), dtype=torch.float64, device=accelerator.device)
    counts = torch.zeros(len(prepared), dtype=torch.float64, device=accelerator.device)
    try:
        for ds_index, dataset in enumerate(prepared):
            rows = min(len(dataset.eval), max_rows) if max_rows else len(dataset.eval)
            mine = list(range(rank, rows, world))
            for start in range(0, len(mine), micro_batch_size):
                items = [(ds_index, r) for r in mine[start : start + micro_batch_size]]
                batch = fetch_batch(prepared, items, pad_id, split="eval")
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                with accelerator.autocast():
                    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                sums[ds_index] += causal_lm_loss_sum(logits, batch["labels"]).double()
                counts[ds_index] += (batch["labels"][:, 1:] != -100).sum().double()
    finally:
        model.train(was_training)
    if world > 1:
        sums = accelerator.reduce(sums, reduction="sum")
        counts = accelerator.reduce(counts, reduction="sum")
    if counts.sum() == 0:
        return None
    per_dataset = {
        ds.name: float(s / c) for ds, s, c in zip(prepared, sums.tolist(), counts.tolist(), strict=True) if c > 0
    }
    return EvalLosses(float(sums.sum() / counts.sum()), per_dataset)
