"""The step-indexed mixing sampler (DESIGN §3): step k -> the global batch of (dataset, row) pairs.

The batch for step k is a pure function of the seed, k and the datasets' sizes and
weights: how many rows each dataset gives comes from the closed-form schedule in
:mod:`tui_trainer.data.mixing.schedule`, and which rows from a permutation of the dataset that is fresh
for every dataset epoch and derived from (seed, dataset index, epoch). A dataset's
cursor at step k (rows drawn so far) is therefore arithmetic, which is what makes
``seek`` and ``load_state_dict`` O(datasets) instead of a replay, and the order
independent of micro-batch size and world size (the loop only splits the batch).

Rows are drawn without replacement inside a dataset epoch; when a dataset runs out it
is reshuffled and drawing continues, forever: the number of steps decides the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tui_trainer.config.mix_rules import check_mix_runtime
from tui_trainer.data.mixing.schedule import Schedule, ScheduleSource, build_schedule, usable_rows
from tui_trainer.data.mixing.state import build_state, read_state

if TYPE_CHECKING:
    from tui_trainer.config.schema import DataSection

__all__ = [
    "GlobalBatch",
    "MixSource",
    "MixingSampler",
    "sampler_from_config",
    "usable_rows",
]

# Distinct first words keep the row permutations and the batch shuffles independent streams.
_PERMUTATION_STREAM = 0x6D69785F70  # "mix_p"
_SHUFFLE_STREAM = 0x6D69785F73  # "mix_s"


@dataclass(frozen=True)
class MixSource:
    """One dataset as the sampler sees it."""

    name: str
    """Unique name (keys of the statistics dicts)."""
    rows: int
    """Training rows the dataset has; the sampler applies ``max_samples`` itself."""
    weight: float = 1.0
    """Mixing weight (weighted/curriculum shares; ranks the remainder under uniform)."""
    order: int | None = None
    """Curriculum phase in which the dataset joins."""
    start_step: int | None = None
    """Sequential: first step of [start_step, end_step)."""
    end_step: int | None = None
    """Sequential: end of the range (exclusive)."""
    max_samples: int = 0
    """0 = every row; N = only the first N rows (subset mode)."""

    @property
    def usable_rows(self) -> int:
        """Rows actually drawn from."""
        return usable_rows(self.rows, self.max_samples)


@dataclass(frozen=True)
class GlobalBatch:
    """The rows of one optimizer step, before the loop splits them into micro-batches."""

    step: int
    """The step this batch is for."""
    items: tuple[tuple[int, int], ...]
    """(dataset index, row index) pairs, ``global_batch_size`` of them."""
    new_epochs: tuple[tuple[int, int], ...]
    """(dataset index, epoch that starts) for each dataset that ran out and was reshuffled
    while drawing this batch; epoch 1 starts after the first full pass. A dataset smaller
    than a batch may start several epochs in one batch: only the latest is listed."""


class MixingSampler:
    """Global batches for steps 0, 1, 2, ... of a run mixing several datasets."""

    def __init__(
        self,
        sources: Sequence[MixSource],
        *,
        strategy: str,
        global_batch_size: int,
        total_steps: int,
        seed: int,
        normalize_weights: bool = True,
        shuffle_across_datasets: bool = True,
    ) -> None:
        if global_batch_size < 1:
            raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        seed = int(seed)
        for s in sources:
            if s.rows < 0 or s.max_samples < 0:
                raise ValueError(f"dataset {s.name!r}: rows and max_samples must be >= 0, got {s.rows} and {s.max_samples}")
        names = [s.name for s in sources]
        self.strategy = strategy
        self.global_batch_size = global_batch_size
        self.total_steps = total_steps
        self.seed = seed
        self.shuffle_across_datasets = shuffle_across_datasets
        self.names = tuple(names)
        self.rows = tuple(s.usable_rows for s in sources)
        self.schedule: Schedule = build_schedule(
            [ScheduleSource(s.name, s.weight, s.order, s.start_step, s.end_step) for s in sources],
            strategy,
            global_batch_size,
            total_steps,
            normalize_weights=normalize_weights,
        )
        for phase in self.schedule.phases:
            for i in phase.members:
                if self.rows[i] == 0:
                    raise ValueError(f"dataset {names[i]!r} has no usable rows but the {strategy} mix draws from it")
        # Rows drawn at ``step`` = schedule.cumulative(step) + offset. The offset is zero
        # unless a state saved under a different plan (e.g. a curriculum whose max_steps
        # was extended) was loaded: then the run continues from the saved cursors.
        self._offset = [0] * len(sources)
        self._anchor: int | None = None
        self._perms: dict[int, tuple[int, np.ndarray]] = {}
        self._step = 0
        self._cursor = [0] * len(sources)

    # -- position --------------------------------------------------------------------

    @property
    def step(self) -> int:
        """The next step to be drawn."""
        return self._step

    @property
    def anchor_step(self) -> int | None:
        """None while the sampler follows its own plan from step 0; otherwise the step at
        which a state saved under a different plan was joined (seek cannot go before it)."""
        return self._anchor

    def _cursors_at(self, step: int) -> list[int]:
        return [c + o for c, o in zip(self.schedule.cumulative(step), self._offset)]

    def seek(self, step: int) -> None:
        """Position the sampler so that the next batch is the one for ``step`` (arithmetic, no replay)."""
        if step < 0:
            raise ValueError(f"cannot seek to step {step}; steps start at 0")
        if self._anchor is not None and step < self._anchor:
            raise ValueError(f"cannot seek to step {step}, before step {self._anchor} where the loaded state was joined")
        self._step = step
        self._cursor = self._cursors_at(step)

    # -- drawing ---------------------------------------------------------------------

    def _permutation(self, dataset: int, epoch: int) -> np.ndarray:
        cached = self._perms.get(dataset)
        if cached is not None and cached[0] == epoch:
            return cached[1]
        n = self.rows[dataset]
        perm = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
        if n > 1:
            seq = np.random.SeedSequence([_PERMUTATION_STREAM, self.seed, dataset, epoch])
            np.random.Generator(np.random.PCG64(seq)).shuffle(perm)
        self._perms[dataset] = (epoch, perm)
        return perm

    def _draw(self, dataset: int, start: int, count: int) -> list[int]:
        """Rows at positions [start, start + count) of the dataset's endless epoch sequence."""
        n = self.rows[dataset]
        out: list[int] = []
        pos = start
        end = start + count
        while pos < end:
            epoch, offset = divmod(pos, n)
            take = min(end - pos, n - offset)
            out.extend(self._permutation(dataset, epoch)[offset : offset + take].tolist())
            pos += take
        return out

    def next_batch(self) -> GlobalBatch:
        """The batch for :attr:`step`; advances to the next step."""
        step = self._step
        after = self._cursors_at(step + 1)
        items: list[tuple[int, int]] = []
        new_epochs: list[tuple[int, int]] = []
        for i, (before, now) in enumerate(zip(self._cursor, after)):
            count = now - before
            if count <= 0:
                continue
            n = self.rows[i]
            items.extend((i, row) for row in self._draw(i, before, count))
            last_epoch = (now - 1) // n
            if last_epoch >= 1 and last_epoch * n >= before:
                new_epochs.append((i, last_epoch))
        if self.shuffle_across_datasets and len(items) > 1:
            seq = np.random.SeedSequence([_SHUFFLE_STREAM, self.seed, step])
            order = np.random.Generator(np.random.PCG64(seq)).permutation(len(items)).tolist()
            items = [items[t] for t in order]
        self._step = step + 1
        self._cursor = after
        return GlobalBatch(step=step, items=tuple(items), new_epochs=tuple(new_epochs))

    # -- statistics ------------------------------------------------------------------

    def samples_per_dataset(self) -> dict[str, int]:
        """Rows drawn from each dataset so far (steps before :attr:`step`)."""
        return dict(zip(self.names, self._cursor))

    def epochs_per_dataset(self) -> dict[str, float]:
        """Passes over each dataset so far (rows drawn / usable rows)."""
        return {name: (c / n if n else 0.0) for name, c, n in zip(self.names, self._cursor, self.rows)}

    def expected_samples(self, steps: int | None = None) -> dict[str, int]:
        """Rows each dataset will have given after ``steps`` steps (default: total_steps)."""
        steps = self.total_steps if steps is None else steps
        if self._anchor is not None and steps < self._anchor:
            steps = self._anchor
        return dict(zip(self.names, self._cursors_at(steps)))

    def expected_epochs(self, steps: int | None = None) -> dict[str, float]:
        """Passes over each dataset after ``steps`` steps (default: total_steps)."""
        return {name: (c / n if n else 0.0) for (name, c), n in zip(self.expected_samples(steps).items(), self.rows)}

    def active_datasets(self, step: int) -> tuple[int, ...]:
        """Indices of the datasets that have a share of the batch at ``step``."""
        return self.schedule.active(step)

    # -- state -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Small JSON-serializable state: the step, each dataset's cursor, the carried rounding."""
        return build_state(
            step=self._step,
            strategy=self.strategy,
            global_batch_size=self.global_batch_size,
            seed=self.seed,
            total_steps=self.total_steps,
            names=self.names,
            rows=self.rows,
            cursors=self._cursor,
            carry=self.schedule.carry(self._step),
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where ``state`` left off; ValueError if it belongs to another mix."""
        step, cursors = read_state(
            state,
            strategy=self.strategy,
            global_batch_size=self.global_batch_size,
            seed=self.seed,
            names=self.names,
            rows=self.rows,
        )
        planned = self.schedule.cumulative(step)
        self._offset = [c - p for c, p in zip(cursors, planned)]
        self._anchor = None if planned == cursors else step  # a state from another plan joins here
        self._step = step
        self._cursor = cursors


def sources_from_config(data: DataSection, rows: Sequence[int]) -> list[MixSource]:
    """MixSource for each configured dataset, given its prepared training rows (one count each)."""
    return [
        MixSource(
            name=ds.name,
            rows=int(n),
            weight=ds.weight,
            order=ds.order,
            start_step=ds.start_step,
            end_step=ds.end_step,
            max_samples=ds.max_samples,
        )
        for ds, n in zip(data.datasets, rows)
    ]


def sampler_from_config(
    data: DataSection, rows: Sequence[int], *, global_batch_size: int, total_steps: int, seed: int
) -> MixingSampler:
    """The run's sampler; raises ConfigError (naming the dataset and field) for a bad mix."""
    check_mix_runtime(data, rows, total_steps)
    return MixingSampler(
        sources_from_config(data, rows),
        strategy=data.strategy,
        global_batch_size=global_batch_size,
        total_steps=total_steps,
        seed=seed,
        normalize_weights=data.normalize_weights,
        shuffle_across_datasets=data.shuffle_across_datasets,
    )

