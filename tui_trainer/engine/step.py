"""One optimizer step on one global batch: split into micro-batches, accumulate, recover from OOM.

The loss is normalized by the number of targets in the *whole* global batch, not per
micro-batch, so the gradient does not depend on how the batch is split. That is what
lets OOM recovery (halve the micro-batch, double accumulation) and a resume on a smaller
GPU keep the exact optimization trajectory. The count comes from the prepared rows of the
global batch, which every process sees, so no collective runs before the forward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from tui_trainer.engine.faults import Faults
from tui_trainer.engine.memory import is_oom, release_cuda_cache
from tui_trainer.tasks.base import Batch, Task


@dataclass(frozen=True)
class StepResult:
    loss: float
    """Mean loss over the global batch's targets (NaN when the update was skipped)."""
    grad_norm: float
    """Gradient norm before clipping (NaN when the update was skipped)."""
    tokens: int
    """Work units (the task's: real tokens for sequences) this process computed."""
    tokens_per_dataset: dict[int, int]
    """Work units per dataset index (this process's shard)."""
    finite: bool
    """False when loss or gradients were NaN/inf and the update was skipped."""


class MinimumMicroBatchOOM(Exception):
    """Out of memory even at micro-batch 1: the run must stop (with a checkpoint)."""


class StepRunner:
    """Runs forward/backward for a global batch; owns the current micro-batch size."""

    def __init__(
        self,
        *,
        accelerator,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        task: Task,
        micro_batch_size: int,
        max_grad_norm: float,
        faults: Faults,
        on_oom: Callable[[int, int], None],
    ) -> None:
        self.accelerator = accelerator
        self.model = model
        self.optimizer = optimizer
        self.task = task
        self.micro_batch_size = micro_batch_size
        self.max_grad_norm = max_grad_norm
        self.faults = faults
        self.on_oom = on_oom
        self._params = [p for p in model.parameters() if p.requires_grad]
        self.pin_memory = accelerator.device.type == "cuda"
        """Micro-batches go through pinned host memory, which makes the non_blocking copy truly async."""

    def run(self, step: int, batch: Batch, dataset_ids: torch.Tensor, global_targets: int | None = None) -> StepResult:
        """Compute the update for ``batch`` (this process's shard) and apply it unless non-finite.

        ``global_targets`` is the target count of the whole global batch (all shards); it
        defaults to this shard's, which is the same thing on one process.
        """
        n_total = int(batch.n_targets.sum()) if global_targets is None else global_targets
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        while True:
            try:
                loss_sum = self._accumulate(step, batch, n_total)
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
                accum = -(-batch.rows // self.micro_batch_size)
                self.on_oom(self.micro_batch_size, accum)
                # Redo the same step from the same random state: dropout masks match a run without the OOM.
                torch.set_rng_state(rng)
                if cuda_rng is not None:
                    torch.cuda.set_rng_state_all(cuda_rng)
        per_ds = torch.bincount(dataset_ids, weights=batch.work.to(torch.float64))
        tokens_per_dataset = {i: int(v) for i, v in enumerate(per_ds.tolist()) if v}
        loss, grad_norm = self._loss_and_clip(loss_sum / max(n_total, 1))
        finite = math.isfinite(loss) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
        else:
            self._skip_update()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(loss, grad_norm, int(batch.work.sum()), tokens_per_dataset, finite)

    def _skip_update(self) -> None:
        """Keep an fp16 GradScaler consistent when the update is skipped.

        Clipping unscaled the gradients, which marks the scaler's per-optimizer state; without
        an ``update()`` the next step's unscale raises, and the scale that overflowed would
        never shrink. Backing the scale off as the scaler does after an overflow resets both.
        """
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is None or not scaler.is_enabled():
            return
        scaler.update(scaler.get_scale() * scaler.get_backoff_factor())

    def _accumulate(self, step: int, batch: Batch, n_total: int) -> torch.Tensor:
        acc = self.accelerator
        # DDP averages gradients over processes; scaling by world size turns that back into a global-target mean.
        scale = acc.num_processes / max(n_total, 1)
        starts = range(0, batch.rows, self.micro_batch_size)
        loss_sum = torch.zeros((), device=acc.device)
        for index, start in enumerate(starts):
            chunk = batch.select(start, start + self.micro_batch_size).to(acc.device, pin=self.pin_memory)
            last = index == len(starts) - 1
            sync = contextlib.nullcontext() if last or acc.num_processes == 1 else acc.no_sync(self.model)
            with sync:
                self.faults.before_forward(step)
                with acc.autocast():
                    part, _ = self.task.loss_sum(self.model, chunk)
                part = self.faults.corrupt_loss(step, part)
                acc.backward(part * scale)
            loss_sum += part.detach()
        if acc.num_processes > 1:
            loss_sum = acc.reduce(loss_sum, reduction="sum")
        return loss_sum

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
