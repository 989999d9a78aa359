"""The core's mix plan for a config being edited: run length, the plan text, each phase's shares.

The UI shows what the engine will do, so everything here comes from the core's sampler
(data/mixing): the same phases, shares and the same ``describe_plan`` text that
``tui-trainer prepare`` prints and the run logs. Only the row counts are estimates (from
the datasets' previews) until the data is prepared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui_trainer.config.schema import RunConfig
from tui_trainer.data.mixing.plan import describe_plan, total_steps_for
from tui_trainer.data.mixing.sampler import MixingSampler, sampler_from_config
from tui_trainer.errors import ConfigError


@dataclass(frozen=True)
class PhaseShares:
    """One stretch of steps with fixed dataset shares."""

    start: int
    """First step of the phase."""
    end: int
    """Step after the phase's last one, within the run (== start: the phase gets no step)."""
    shares: tuple[tuple[str, float], ...]
    """(dataset name, share of each batch) of the datasets drawn in this phase."""


@dataclass(frozen=True)
class PlanPreview:
    """What the run would do with this config and the estimated row counts."""

    total_steps: int
    """Optimizer steps of the run (``train.max_steps`` or derived from epochs and rows)."""
    phases: tuple[PhaseShares, ...]
    """One entry for uniform/weighted; one per curriculum phase or sequential range."""
    overall: tuple[tuple[str, float], ...]
    """(dataset name, share of all the run's rows) over the whole run."""
    text: str
    """The core's plan text: shares, samples, epochs, then the phase table."""
    problem: str | None
    """Why the run would not start or would waste a dataset, or None."""


def estimated_rows(cfg: RunConfig, previews: Sequence[Any]) -> list[int] | None:
    """Training rows per dataset from inspection previews (None while any is unknown).

    Packing fills every row with ``max_seq_len`` tokens; the eval share is held out. A
    classification preview already counts what training keeps (its split and per-class cap),
    so that count is used as it is."""
    rows = []
    for preview in previews:
        if preview is None:
            return None
        classes = getattr(preview, "classes", None)
        if classes is not None:
            rows.append(max(1, sum(classes.kept)))
            continue
        if cfg.data.packing and getattr(preview, "est_tokens", 0):
            n = math.ceil(preview.est_tokens / cfg.data.max_seq_len)
        else:
            n = int(preview.rows)
        rows.append(max(1, round(n * (1 - cfg.data.eval_fraction))))
    return rows


def _phases(sampler: MixingSampler) -> tuple[PhaseShares, ...]:
    out = []
    for phase in sampler.schedule.phases:
        end = sampler.total_steps if phase.end is None else min(phase.end, sampler.total_steps)
        shares = tuple((sampler.names[i], float(phase.share(i))) for i in sorted(phase.members))
        out.append(PhaseShares(min(phase.start, end), end, shares))
    return tuple(out)


def _unused(sampler: MixingSampler, cfg: RunConfig, total: int) -> str | None:
    expected = sampler.expected_samples()
    idle = [name for name in sampler.names if expected[name] == 0]
    if not idle:
        return None
    where = ", ".join(idle)
    if cfg.data.strategy == "sequential":
        fix = f"move their start_step below {total} or raise train.max_steps"
    else:
        fix = "raise their weight or train.max_steps"
    return f"{where} would get no samples in this run of {total} steps: {fix}"


def preview_plan(cfg: RunConfig, rows: Sequence[int] | None) -> PlanPreview | None:
    """The plan for ``cfg``; None when the run's length is unknown (rows unknown, no max_steps)."""
    if rows is None:
        if not cfg.train.max_steps:
            return None
        rows = [10**9] * len(cfg.data.datasets)  # only the schedule is shown: epochs are not known yet
        known = False
    else:
        known = True
    total = total_steps_for(cfg, rows)
    try:
        sampler = sampler_from_config(cfg.data, rows, global_batch_size=cfg.effective_batch, total_steps=total, seed=cfg.run.seed)
    except (ConfigError, ValueError) as err:
        return PlanPreview(total, (), (), "", str(err))
    text = describe_plan(sampler) if known else ""
    expected = sampler.expected_samples()
    drawn = sum(expected.values()) or 1
    overall = tuple((name, expected[name] / drawn) for name in sampler.names)
    return PlanPreview(total, _phases(sampler), overall, text, _unused(sampler, cfg, total))
