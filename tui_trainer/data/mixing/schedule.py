"""How many rows each dataset contributes to each step, as a closed-form function of the step.

Every strategy is a list of phases (weighted and uniform: one phase; curriculum: one per
order; sequential: one per step range). Inside a phase the datasets are interleaved into
one endless sequence of rows, and step k takes the next ``batch`` of them. The
interleaving is a merge of due times, the divisor-method ("stride scheduling") sequence:
datasets with the same weight form a class that is served round robin, and the J-th row
of a class with share P is due at (J - 1/2) / P; rows are taken in order of due time
(ties to the higher weight). Counting the rows of each dataset among the first x of the
sequence is O(classes) integer arithmetic, so a dataset's cursor at any step is
arithmetic (``seek`` is not a replay), counts never go backwards, and a weight too small
to earn one row per batch still gets its share (0.95/0.05 with a batch of 8 draws the
second dataset two steps in five).

Accuracy, from the start of a phase and over any window of rows, for a dataset with
share p in a phase whose weights take c distinct values (uniform: c = 1):
c <= 2: realised count within one row of the target over any window (strictly below one
from the start of the phase); c >= 3: within 1 + p * (c - 2) rows over any window and
1 + p * (c - 2) / 2 from the start. (No rule can keep every window within one row for
three or more arbitrary weights.)

Shares are exact fractions (weights are read as the decimals the user wrote, so 0.7/0.3
is exactly 7:3) and all arithmetic is on integers, so every process on every platform
computes the same counts.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from tui_trainer.config.mix_rules import STRATEGIES, check_mix_static, usable_rows  # noqa: F401  (STRATEGIES, usable_rows: part of the schedule API)


@dataclass(frozen=True)
class ScheduleSource:
    """What the schedule needs to know about one dataset."""

    name: str
    """Unique name (the static rules name the dataset in their messages)."""
    weight: float
    """Mixing weight (weighted/curriculum shares; ranks the remainder under uniform)."""
    order: int | None = None
    """Curriculum phase in which the dataset joins."""
    start_step: int | None = None
    """Sequential: first step of the dataset's range."""
    end_step: int | None = None
    """Sequential: end of the range (exclusive)."""


@dataclass(frozen=True)
class Phase:
    """A stretch of steps during which the same datasets share each batch in fixed proportions."""

    start: int
    """First step of the phase."""
    end: int | None
    """Step after the last one; None for the last phase, which runs on past total_steps."""
    members: tuple[int, ...]
    """Dataset indices drawn from, ranked (highest weight first, then config order): the
    rank orders a class's round robin and breaks ties between equal due times."""
    numerators: tuple[int, ...]
    """Integer weights aligned with ``members``; shares are numerator / denominator."""
    denominator: int
    """Sum of ``numerators``."""

    def share(self, dataset: int) -> Fraction:
        """Exact share of each batch that ``dataset`` gets in this phase (0 when not a member)."""
        if dataset not in self.members:
            return Fraction(0)
        return Fraction(self.numerators[self.members.index(dataset)], self.denominator)

    @cached_property
    def _classes(self) -> tuple[tuple[int, tuple[int, ...]], ...]:
        """(class numerator, member positions in rank order) per distinct weight, highest first."""
        groups: list[list[int]] = []
        for pos, num in enumerate(self.numerators):
            if groups and self.numerators[groups[-1][0]] == num:
                groups[-1].append(pos)
            else:
                groups.append([pos])
        return tuple((self.numerators[g[0]] * len(g), tuple(g)) for g in groups)

    def counts(self, rows: int) -> list[int]:
        """How many of the phase's first ``rows`` rows each member gives (aligned with members)."""
        out = [0] * len(self.members)
        if rows <= 0:
            return out
        classes = self._classes
        c, den = len(classes), self.denominator
        # Class g (share s_g / den) has its J-th row due at (J - 1/2) * den / s_g; comparing
        # (2J - 1) / s_g orders the same. Fewer than ``rows`` rows are due by (2 rows - c - 1) / den
        # and more by (2 rows + c + 1) / den, so the ``rows``-th due time lies between the two
        # and only about 2c candidates need sorting.
        lo_num = 2 * rows - c - 1
        hi_num = 2 * rows + c + 1
        taken = [max(0, (lo_num * s + den) // (2 * den)) for s, _ in classes]
        need = rows - sum(taken)
        candidates = []
        for g, (s, _) in enumerate(classes):
            j = taken[g] + 1
            while (2 * j - 1) * den <= hi_num * s:
                candidates.append((Fraction(2 * j - 1, s), g))
                j += 1
        candidates.sort()  # equal due times: the class with the higher weight (lower g) first
        for _, g in candidates[:need]:
            taken[g] += 1
        for (_, positions), got in zip(classes, taken):
            m = len(positions)
            for r, pos in enumerate(positions):
                # Round robin inside the class: rank r gets rows r, r + m, r + 2m, ...
                out[pos] = (got - r + m - 1) // m
        return out

    def cumulative(self, steps: int, batch: int) -> list[int]:
        """Rows each member has given after ``steps`` steps of this phase (aligned with members)."""
        return self.counts(steps * batch)

    def carry(self, steps: int, batch: int) -> list[float]:
        """Rounding error each member carries after ``steps`` steps (given - exact target)."""
        given = self.cumulative(steps, batch)
        total = steps * batch
        return [(g * self.denominator - total * num) / self.denominator for g, num in zip(given, self.numerators)]


class Schedule:
    """Cumulative rows per dataset at any step, for a list of phases covering [0, inf)."""

    def __init__(self, phases: Sequence[Phase], n_datasets: int, batch: int) -> None:
        if not phases or phases[0].start != 0:
            raise ValueError("the first phase must start at step 0")
        self.phases = tuple(phases)
        self.n_datasets = n_datasets
        self.batch = batch
        self._starts = [p.start for p in self.phases]
        # Rows given by each dataset before each phase starts: summed once so any step is O(datasets).
        self._base: list[list[int]] = []
        running = [0] * n_datasets
        for phase in self.phases:
            self._base.append(list(running))
            if phase.end is not None:
                for i, c in zip(phase.members, phase.cumulative(phase.end - phase.start, batch)):
                    running[i] += c

    def phase_index(self, step: int) -> int:
        """The phase that step ``step`` belongs to (the last phase for steps past the plan)."""
        return bisect.bisect_right(self._starts, step) - 1

    def _phase_ending(self, step: int) -> int:
        # Rows drawn during step k are cumulative(k + 1) - cumulative(k); the step that
        # *ends* a phase must still use that phase's rounding, so look up step - 1.
        return self.phase_index(step - 1) if step > 0 else 0

    def cumulative(self, step: int) -> list[int]:
        """Rows given by each dataset during steps [0, step)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        p = self._phase_ending(step)
        phase = self.phases[p]
        out = list(self._base[p])
        for i, c in zip(phase.members, phase.cumulative(step - phase.start, self.batch)):
            out[i] += c
        return out

    def carry(self, step: int) -> list[float]:
        """Rounding error each dataset carries into ``step`` within its current phase."""
        out = [0.0] * self.n_datasets
        phase = self.phases[self._phase_ending(step)]
        for i, c in zip(phase.members, phase.carry(step - phase.start, self.batch)):
            out[i] = c
        return out

    def active(self, step: int) -> tuple[int, ...]:
        """Datasets with a share of the batch at ``step``, in dataset order."""
        return tuple(sorted(self.phases[self.phase_index(step)].members))


def _exact(weight: float) -> Fraction:
    # repr() is the shortest decimal that round-trips, i.e. what the user typed: 0.7 -> 7/10.
    return Fraction(repr(float(weight)))


def _phase(start: int, end: int | None, weights: dict[int, float], ranked_by: Sequence[float]) -> Phase:
    """A phase whose members share batches in proportion to ``weights`` (all > 0)."""
    members = sorted(weights, key=lambda i: (-ranked_by[i], i))
    fracs = [_exact(weights[i]) for i in members]
    lcm = math.lcm(*(f.denominator for f in fracs))
    nums = [int(f * lcm) for f in fracs]
    g = math.gcd(*nums)
    nums = [n // g for n in nums]
    return Phase(start, end, tuple(members), tuple(nums), sum(nums))


@dataclass(frozen=True)
class _Mix:
    """The schedule's sources seen as a mix section, so the static rules can judge them."""

    strategy: str
    """Mixing strategy."""
    normalize_weights: bool
    """False: weighted/curriculum weights must already sum to 1."""
    datasets: Sequence[ScheduleSource]
    """The sources, in dataset order."""


def build_schedule(
    sources: Sequence[ScheduleSource], strategy: str, batch: int, total_steps: int, *, normalize_weights: bool = True
) -> Schedule:
    """The phases of ``strategy`` over ``sources``; raises ValueError on an inconsistent mix.

    Consistency is judged by :func:`tui_trainer.config.mix_rules.mix_problems` (the one copy
    of the static rules); past that check every strategy below can be built without a
    further test. Coverage of ``total_steps`` is not required: the last phase runs on.
    """
    if not sources:
        raise ValueError("a mix needs at least one dataset")
    check_mix_static(_Mix(strategy, normalize_weights, sources), max_steps=None)
    weights = [s.weight for s in sources]
    n = len(sources)
    if strategy == "uniform":
        phases = [_phase(0, None, {i: 1.0 for i in range(n)}, weights)]
    elif strategy == "weighted":
        phases = [_phase(0, None, {i: w for i, w in enumerate(weights) if w > 0}, weights)]
    elif strategy == "curriculum":
        phases = _curriculum(sources, weights, total_steps)
    else:
        phases = _sequential(sources, weights)
    return Schedule(phases, n, batch)


def curriculum_bounds(n_phases: int, total_steps: int) -> list[int]:
    """First step of each curriculum phase: step k < total_steps is in phase floor(k * n / total)."""
    return [-(-p * total_steps // n_phases) for p in range(n_phases)]


def _curriculum(sources: Sequence[ScheduleSource], weights: list[float], total_steps: int) -> list[Phase]:
    # The rules guarantee orders 0..m-1 and a positive weight in phase 0, which every later phase keeps.
    orders = [s.order for s in sources]
    starts = curriculum_bounds(len(set(orders)), total_steps)
    phases = []
    for p, start in enumerate(starts):
        end = starts[p + 1] if p + 1 < len(starts) else None
        active = {i: w for i, (o, w) in enumerate(zip(orders, weights)) if o <= p and w > 0}  # type: ignore[operator]
        phases.append(_phase(start, end, active, weights))
    return phases


def _sequential(sources: Sequence[ScheduleSource], weights: list[float]) -> list[Phase]:
    # The rules guarantee ranges that tile [0, last end) without gaps or overlaps.
    ranked = sorted(range(len(sources)), key=lambda i: sources[i].start_step)  # type: ignore[arg-type, return-value]
    return [
        _phase(sources[i].start_step, sources[i].end_step if k + 1 < len(ranked) else None, {i: 1.0}, weights)  # type: ignore[arg-type]
        for k, i in enumerate(ranked)
    ]
