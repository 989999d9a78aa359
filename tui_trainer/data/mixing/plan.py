"""The mix plan in words: the one line logged at the start of a run, and the phase table.

``3 datasets, weighted: code 40% (~128,000 samples, 2.1 epochs), docs 40% (...), books 20% (...)``
followed, for curriculum and sequential, by one line per phase.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_trainer.config.schema import RunConfig
    from tui_trainer.data.mixing.sampler import MixingSampler


def total_steps_for(cfg: RunConfig, rows: Sequence[int]) -> int:
    """``train.max_steps``, or enough steps for ``train.epochs`` passes over the (capped) rows.

    Here rather than in the engine so the wizard can show the run's length without torch."""
    if cfg.train.max_steps:
        return cfg.train.max_steps
    caps = [spec.max_samples for spec in cfg.data.datasets]
    used = sum(min(r, c) if c else r for r, c in zip(rows, caps, strict=True))
    return max(1, math.ceil(cfg.train.epochs * used / cfg.effective_batch))


def _pct(value: float) -> str:
    return f"{value:.3g}%"


def _count(value: float) -> str:
    return f"{value:.3g}"


def plan_summary(sampler: MixingSampler) -> str:
    """One line: each dataset's share of the run's rows, expected rows and epochs."""
    expected = sampler.expected_samples()
    epochs = sampler.expected_epochs()
    total = sum(expected.values())
    n = len(sampler.names)
    parts = []
    for name in sampler.names:
        got = expected[name]
        if got == 0:
            parts.append(f"{name} 0% (unused)")
            continue
        parts.append(f"{name} {_pct(100 * got / total)} (~{got:,} samples, {_count(epochs[name])} epochs)")
    noun = "dataset" if n == 1 else "datasets"
    return f"{n} {noun}, {sampler.strategy}: " + ", ".join(parts)


def phase_table(sampler: MixingSampler) -> list[str]:
    """One line per curriculum phase or sequential range (empty for uniform/weighted)."""
    if sampler.strategy not in ("curriculum", "sequential"):
        return []
    lines = []
    for p, phase in enumerate(sampler.schedule.phases):
        label = f"phase {p}, " if sampler.strategy == "curriculum" else ""
        members = ", ".join(
            f"{sampler.names[i]} {_pct(float(100 * phase.share(i)))}" if len(phase.members) > 1 else sampler.names[i]
            for i in phase.members
        )
        # The run's own steps only: the last phase also covers any steps a resumed run adds.
        end = sampler.total_steps if phase.end is None else min(phase.end, sampler.total_steps)
        if phase.end is not None and phase.end == phase.start:
            span = "no steps (the run is shorter than its number of phases)"
        elif end <= phase.start:
            span = f"from step {phase.start}, after the run's last step"
        else:
            span = f"steps {phase.start}-{end - 1}"
        lines.append(f"  {label}{span}: {members}")
    return lines


def describe_plan(sampler: MixingSampler) -> str:
    """The plan summary, then the phase table lines (curriculum/sequential), newline-separated."""
    return "\n".join([plan_summary(sampler), *phase_table(sampler)])
