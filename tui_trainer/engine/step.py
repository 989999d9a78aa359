"""One optimizer step on one global batch: split into micro-batches, accumulate, recover from OOM.

The loss is normalized by the number of loss tokens in the *whole* global batch, not per
micro-batch, so the gradient does not depend on how the batch is split. That is what
lets OOM recovery (halve the micro-batch, double accumulation) and a resume on a smaller
GPU keep the exact optimization trajectory.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tui_trainer.engine.faults import Faults
from tui_trainer.engine.memory import is_oom, release_cuda_cache


@dataclass(frozen=True)
class StepResult:
    loss: float
    """Mean loss over the global batch's loss tokens (NaN when the update was skipped)."""
    grad_norm: float
    """Gradient norm before clipping (NaN when the update was skipped)."""
    tokens: int
    """Non-padding tokens this process computed."""
    tokens_per_dataset: dict[int, int]
    """Non-padding tokens per dataset index (this process's shard)."""
    finite: bool
    """False when loss or gradients were NaN/inf and the update was skipped."""


class MinimumMicroBatchOOM(Exception):
    """Out of memory even at micro-batch 1: the run must stop (with a checkpoint)."""


def causal_lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over positions whose label is not -100."""
    shifted = logits[:, :-1, :].reshape(-1, logits.size(-1)).float()
    targets = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shifted, targets, ignore_index=-100, reduction="sum")


def _trim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cut right padding down to the longest row of this micro-batch."""
    longest = int(batch["attention_mask"].sum(dim=1).max().item())
    if longest == batch["input_ids"].size(1):
        return batch
    return {k: v[:, :longest] for k, v in batch.items()}


class StepRunner:
    """Runs forward/backward for a global batch; owns the current micro-batch size."""

    def __init__(
        self,
        *,
        accelerator,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        micro_batch_size: int,
        max_grad_norm: float,
        faults: Faults,
        on_oom: Callable[[int, int], None],
    ) -> None:
        self.accelerator = accelerator
        self.model = model
        self.optimizer = optimizer
        self.micro_batch_size = micro_batch_size
        self.max_grad_norm = max_grad_norm
        self.faults = faults
        self.on_oom = on_oom
        self._params = [p for p in model.parameters() if p.requires_grad]
        self.pin_memory = accelerator.device.type == "cuda"
        """Micro-batches go through pinned host memory, which makes the non_blocking copy truly async."""

    def run(self, step: int, batch: dict[str, torch.Tensor], dataset_ids: torch.Tensor) -> StepResult:
        """Compute the update for ``batch`` (this process's shard) and apply it unless non-finite."""
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        while True:
            try:
                loss_sum, n_loss_tokens = self._accumulate(step, batch)
                break
            except Exception as err:
                if not is_oom(err):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                del err
                release_cuda_cache()
                if self.micro_batch_size <= 1:
                    raise MinimumMicroBatchOOM() from None
                self.micro_batch_size = max(1, self.micro_batch_size // 2)
                accum = -(-batch["input_ids"].size(0) // self.micro_batch_size)
                self.on_oom(self.micro_batch_size, accum)
                # Redo the same step from the same random state: dropout masks match a run without the OOM.
                torch.set_rng_state(rng)
                if cuda_rng is not None:
                    torch.cuda.set_rng_state_all(cuda_rng)
        tokens_per_row = batch["attention_mask"].sum(dim=1)
        per_ds = torch.bincount(dataset_ids, weights=tokens_per_row.to(torch.float64))
        tokens_per_dataset = {i: int(v) for i, v in enumerate(per_ds.tolist()) if v}
        loss, grad_norm = self._loss_and_clip(loss_sum / max(n_loss_tokens, 1))
        finite = math.isfinite(loss) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(loss, grad_norm, int(tokens_per_row.sum()), tokens_per_dataset, finite)

    def _accumulate(self, step: int, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        acc = self.accelerator
        n_local = int((batch["labels"][:, 1:] != -100).sum())
        n_total = n_local
        if acc.num_processes > 1:
            n_total = int(acc.reduce(torch.tensor(n_local, device=acc.device), reduction="sum").item())
        # DDP averages gradients over processes; scaling by world size turns that back into a global-token mean.
        scale = acc.num_processes / max(n_total, 1)
        rows = batch["input_ids"].size(0)
        starts = range(0, rows, self.micro_batch_size)
        loss_sum = torch.zeros((), device=acc.device)
        for index, start in enumerate(starts):
            chunk = _trim({k: v[start : start + self.micro_batch_size] for k, v in batch.items()})
            # Pinned after trimming: pinning copies into a dense buffer, while a trimmed view of an
            # already pinned batch is not dense, and the copy to the GPU would stage it unpinned.
            if self.pin_memory:
                chunk = {k: v.pin_memory() for k, v in chunk.items()}
            chunk = {k: v.to(acc.device, non_blocking=True) for k, v in chunk.items()}
            last = index == len(starts) - 1
            sync = contextlib.nullcontext() if last or acc.num_processes == 1 else acc.no_sync(self.model)
            with sync:
                self.faults.before_forward(step)
                with acc.autocast():
                    logits = self.model(input_ids=chunk["input_ids"], attention_mask=chunk["attention_mask"]).logits
                part = causal_lm_loss_sum(logits, chunk["labels"])
                part = self.faults.corrupt_loss(step, part)
                acc.backward(part * scale)
            loss_sum += part.detach()
        if acc.num_processes > 1:
            loss_sum = acc.reduce(loss_sum, reduction="sum")
        return loss_sum, n_total

    def _loss_and_clip(self, loss: torch.Tensor) -> tuple[float, float]:
        """The step's loss and gradient norm (after clipping) as floats, read in one device sync."""
        max_norm = self.max_grad_norm if self.max_grad_norm > 0 else float("inf")
        norm = self.accelerator.clip_grad_norm_(self._params, max_norm)
        if norm is None:
            return loss.item(), float("nan")
        values = torch.stack([loss.float(), norm.float().to(loss.device)]).tolist()
        return values[0], values[1]


def shard(items: Sequence[tuple[int, int]], rank: int, world: int) -> list[tuple[int, int]]:
    """This process's rows of the global batch (strided, so every rank sees every dataset)."""
    return list(items[rank::world])
