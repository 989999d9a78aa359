"""The next step's rows are fetched and collated on a background thread while this step computes.

Determinism: the sampler is only ever advanced on the training thread, exactly as without
prefetching, so its state (what checkpoints save) never runs ahead. The look-ahead draws
from a shallow copy of the sampler, and a prefetched batch is used only when its step and
rows equal what the real draw returned; after a resume or a rollback moved the sampler
the stale one is dropped and the rows are collated in line. Collation is a pure function
of the rows, so a prefetched batch is the same tensors an in-line one would be.

At most one batch is in flight (one step ahead): memory stays bounded at one extra batch.
The thread ends when the feed is closed or dropped (an idle executor's worker exits once
the executor is garbage-collected), so the recipe's cleanup only lets go of the feed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from tui_trainer.data.batches import targets_per_row
from tui_trainer.engine.step import shard
from tui_trainer.tasks.base import Batch, Task


@dataclass(frozen=True)
class StepRows:
    """What a training step needs from its global batch on this process."""

    rows: Batch
    """This process's shard, collated (on the CPU)."""
    dataset_ids: torch.Tensor
    """Dataset index of every row of the shard (int64), for the per-dataset token counts."""
    global_targets: int
    """Targets of the whole global batch (all shards): the loss normaliser."""


class BatchFeed:
    """Collates global batches for the training loop, one step ahead when the task allows it."""

    def __init__(
        self,
        task: Task,
        prepared: Sequence[Any],
        *,
        targets: Sequence[Any] | None = None,
        rank: int = 0,
        world: int = 1,
        ahead: bool = True,
    ) -> None:
        self.task = task
        self.prepared = prepared
        self.targets = targets_per_row(prepared) if targets is None else targets
        """Each dataset's per-row target counts: a global batch's loss normaliser is a lookup, no collective."""
        self.rank = rank
        self.world = world
        self.ahead = ahead and task.collate_ahead
        self.blocked_seconds = 0.0
        """Time the training thread spent waiting for or doing collation (the fetch cost a step still pays)."""
        self.hits = 0
        """Steps whose rows came from the look-ahead."""
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[int, tuple, Future] | None = None

    def _collate(self, items: Sequence[tuple[int, int]]) -> StepRows:
        mine = shard(items, self.rank, self.world)
        rows = self.task.collate(self.prepared, mine)
        dataset_ids = torch.tensor([d for d, _ in mine], dtype=torch.long)
        global_targets = sum(int(self.targets[d][r]) for d, r in items)
        return StepRows(rows, dataset_ids, global_targets)

    def take(self, batch, sampler=None) -> StepRows:
        """The collated rows of ``batch`` (just drawn from ``sampler``); starts on the next step's rows."""
        started = time.perf_counter()
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == batch.step and pending[1] == batch.items:
            out = pending[2].result()  # a collation error surfaces here, as it would in line
            self.hits += 1
        else:
            out = self._collate(batch.items)
        self.blocked_seconds += time.perf_counter() - started
        if self.ahead and sampler is not None and sampler.step < sampler.total_steps:
            self._start(copy.copy(sampler).next_batch())
        return out

    def _start(self, batch) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tui-trainer-prefetch")
        self._pending = (batch.step, batch.items, self._pool.submit(self._collate, batch.items))

    def close(self) -> None:
        """Drop the look-ahead and stop the thread (a collation still running finishes on its own)."""
        self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
