"""Held-out evaluation: the task's accumulator over every dataset's eval rows, summed across processes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tui_trainer.tasks.base import EvalReport, Task

EvalLosses = EvalReport
"""The name this result had before the Task seam (eval_loss, per_dataset come first in both)."""


@torch.no_grad()
def evaluate(
    accelerator, model, task: Task, evaluator, prepared: Sequence, micro_batch_size: int, max_rows: int = 0
) -> EvalReport | None:
    """``max_rows`` caps the rows per dataset (0 = all): a stable estimate in seconds, not minutes.

    ``evaluator`` is a fresh accumulator from ``task.evaluator``; None comes back when no dataset has eval rows.
    """
    from tui_trainer.engine.checkpoint.sharded import is_sharded

    was_training = model.training
    model.eval()
    rank, world = accelerator.process_index, accelerator.num_processes
    # FSDP all-gathers weights inside every forward: each rank must run as many forwards as the
    # others, so a rank with fewer eval rows runs discarded ones on row 0 to keep in step.
    lockstep = world > 1 and is_sharded(accelerator.unwrap_model(model))
    try:
        for ds_index, dataset in enumerate(prepared):
            rows = min(len(dataset.eval), max_rows) if max_rows else len(dataset.eval)
            mine = list(range(rank, rows, world))
            batches = range(0, len(mine), micro_batch_size)
            for start in batches:
                items = [(ds_index, r) for r in mine[start : start + micro_batch_size]]
                batch = task.collate(prepared, items, split="eval").to(accelerator.device)
                with accelerator.autocast():
                    evaluator.add(model, batch, ds_index)
            busiest_rows = -(-rows // world)
            most = -(-busiest_rows // micro_batch_size)
            for _ in range(most - len(batches) if lockstep else 0):
                batch = task.collate(prepared, [(ds_index, 0)], split="eval").to(accelerator.device)
                with accelerator.autocast():
                    task.loss_sum(model, batch)
    finally:
        model.train(was_training)
    totals = {k: v.to(accelerator.device) for k, v in evaluator.totals().items()}
    if world > 1:
        totals = {k: accelerator.reduce(v, reduction="sum") for k, v in totals.items()}
    return evaluator.finish(totals, [p.name for p in prepared])
