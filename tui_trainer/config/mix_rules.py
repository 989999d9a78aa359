"""Validation of a dataset mix (strategy, weights, orders, step ranges).

Static checks run when the config is validated (no row counts yet, and ``max_steps``
may still be derived from epochs); the runtime check repeats them with the run's real
number of steps and adds what needs the prepared row counts. Every message starts with
the field path (``data.datasets[1] (docs).weight``) and says what to do. The problem
lists are public so the UI can show them live, without raising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol, get_args

from tui_trainer.errors import ConfigError

Strategy = Literal["uniform", "weighted", "curriculum", "sequential"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
WEIGHT_SUM_TOLERANCE = 1e-6


class MixEntry(Protocol):
    """What the static rules read of one dataset: a ``config.schema.DatasetSpec`` or the
    sampler's ``MixSource`` (a protocol, so the rules sit below both)."""

    @property
    def name(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def order(self) -> int | None: ...
    @property
    def start_step(self) -> int | None: ...
    @property
    def end_step(self) -> int | None: ...


class DatasetSpec(MixEntry, Protocol):
    """The fields of ``config.schema.DatasetSpec`` the runtime rules also read."""

    @property
    def path(self) -> str: ...
    @property
    def max_samples(self) -> int: ...


class MixSection(Protocol):
    """What the static rules read of a mix: ``config.schema.DataSection`` or the sampler's own view."""

    @property
    def strategy(self) -> str: ...
    @property
    def normalize_weights(self) -> bool: ...
    @property
    def datasets(self) -> Sequence[MixEntry]: ...


class DataSection(MixSection, Protocol):
    """The fields of ``config.schema.DataSection`` the runtime rules read."""

    @property
    def datasets(self) -> Sequence[DatasetSpec]: ...


def usable_rows(rows: int, max_samples: int) -> int:
    """Rows the sampler draws from: all of them, or the first ``max_samples`` (subset mode)."""
    return min(rows, max_samples) if max_samples > 0 else rows


def _where(i: int, ds: MixEntry, field: str) -> str:
    return f"data.datasets[{i}] ({ds.name}).{field}"


def _steps(a: int, b: int) -> str:
    return f"step {a}" if b - a == 1 else f"steps {a}..{b - 1}"


def mix_problems(data: MixSection, max_steps: int | None) -> list[str]:
    """Everything wrong with the mix that the config alone shows, one message per problem.

    This is the one copy of the static rules: the config validator, the UI's live
    checks and the sampler (through ``build_schedule``) all call it, so a mix the config
    accepts is one the schedule can build.
    """
    if data.strategy not in STRATEGIES:
        return [f"data.strategy: unknown strategy {data.strategy!r}; expected one of {', '.join(STRATEGIES)}"]
    problems = _name_problems(data) + _weight_problems(data)
    if data.strategy == "curriculum":
        problems += _curriculum_problems(data)
    elif data.strategy == "sequential":
        problems += _sequential_problems(data, max_steps)
    return problems


def _name_problems(data: MixSection) -> list[str]:
    problems = []
    first: dict[str, int] = {}
    for i, ds in enumerate(data.datasets):
        if ds.name in first:
            j = first[ds.name]
            problems.append(f"{_where(i, ds, 'name')} duplicates data.datasets[{j}]; give every dataset a unique name")
        else:
            first[ds.name] = i
    return problems


def _weight_problems(data: MixSection) -> list[str]:
    problems = []
    for i, ds in enumerate(data.datasets):
        if not math.isfinite(ds.weight) or ds.weight < 0:
            problems.append(f"{_where(i, ds, 'weight')} must be a finite number >= 0, got {ds.weight}; use 0 to leave the dataset out")
    if problems or not data.datasets or data.strategy not in ("weighted", "curriculum"):
        return problems
    if all(ds.weight == 0 for ds in data.datasets):
        problems.append(
            f"data.datasets[].weight is 0 on every dataset, so the {data.strategy} strategy has nothing to draw from; "
            "give at least one dataset a weight > 0"
        )
    elif not data.normalize_weights:
        total = math.fsum(ds.weight for ds in data.datasets)
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            terms = " + ".join(f"{ds.name} {ds.weight:g}" for ds in data.datasets)
            problems.append(
                f"data.normalize_weights is false but the weights sum to {total:.6g} ({terms}); "
                "make them sum to 1 or set data.normalize_weights = true"
            )
    return problems


def _curriculum_problems(data: MixSection) -> list[str]:
    problems = [
        f"{_where(i, ds, 'order')} is missing; the curriculum strategy needs an order (the phase it joins, 0..n-1) on every dataset"
        for i, ds in enumerate(data.datasets)
        if ds.order is None
    ]
    if problems or not data.datasets:
        return problems
    distinct = sorted({ds.order for ds in data.datasets})  # type: ignore[type-var]
    m = len(distinct)
    if distinct != list(range(m)):
        used = ", ".join(map(str, distinct))
        for i, ds in enumerate(data.datasets):
            if ds.order >= m:  # type: ignore[operator]
                problems.append(
                    f"{_where(i, ds, 'order')} is {ds.order}, but the distinct orders must be exactly 0..{m - 1} "
                    f"without gaps (found {used}); renumber the phases from 0"
                )
        return problems
    first_phase = [(i, ds) for i, ds in enumerate(data.datasets) if ds.order == 0]
    if all(ds.weight == 0 for _, ds in first_phase) and any(ds.weight > 0 for ds in data.datasets):
        i, ds = first_phase[0]
        others = "it is the only order-0 dataset" if len(first_phase) == 1 else "so are all other order-0 datasets"
        problems.append(
            f"{_where(i, ds, 'weight')} is 0 and {others}, so curriculum phase 0 has nothing to draw from; "
            "give an order-0 dataset a weight > 0"
        )
    return problems


def _sequential_problems(data: MixSection, max_steps: int | None) -> list[str]:
    problems = []
    for i, ds in enumerate(data.datasets):
        for field in ("start_step", "end_step"):
            if getattr(ds, field) is None:
                problems.append(
                    f"{_where(i, ds, field)} is missing; the sequential strategy needs start_step and end_step "
                    "(the range [start_step, end_step) of steps it is trained on) on every dataset"
                )
    if problems:
        return problems
    for i, ds in enumerate(data.datasets):
        if ds.start_step >= ds.end_step:  # type: ignore[operator]
            problems.append(f"{_where(i, ds, 'end_step')} is {ds.end_step} but must be greater than start_step {ds.start_step}")
    if problems or not data.datasets:
        return problems
    ranked = sorted(enumerate(data.datasets), key=lambda t: (t[1].start_step, t[0]))
    i, ds = ranked[0]
    if ds.start_step != 0:
        problems.append(f"{_where(i, ds, 'start_step')} is {ds.start_step} but the first range must start at step 0; set it to 0")
    j, prev = ranked[0]  # the range reaching furthest so far: overlaps and gaps are judged against it
    for i, ds in ranked[1:]:
        start, end = ds.start_step, prev.end_step
        if start < end:  # type: ignore[operator]
            problems.append(
                f"{_where(i, ds, 'start_step')} {start} overlaps data.datasets[{j}] ({prev.name}), which runs to step {end}; "
                f"exactly one dataset must be active at each step: start it at {end} or end {prev.name} at {start}"
            )
        elif start > end:  # type: ignore[operator]
            problems.append(
                f"{_where(i, ds, 'start_step')} {start} leaves {_steps(end, start)} without a dataset after "  # type: ignore[arg-type]
                f"data.datasets[{j}] ({prev.name}) ends at {end}; start it at {end}"
            )
        if ds.end_step > prev.end_step:  # type: ignore[operator]
            j, prev = i, ds
    last_i, last = max(enumerate(data.datasets), key=lambda t: (t[1].end_step, t[0]))
    if max_steps is not None and last.end_step < max_steps:  # type: ignore[operator]
        problems.append(
            f"{_where(last_i, last, 'end_step')} is {last.end_step}, before the run ends at step {max_steps} (train.max_steps): "
            f"{_steps(last.end_step, max_steps)} have no dataset; set end_step = {max_steps} or lower train.max_steps"  # type: ignore[arg-type]
        )
    return problems


def runtime_mix_problems(data: DataSection, rows: Sequence[int], total_steps: int) -> list[str]:
    """The static problems for a run of ``total_steps`` steps, plus those the prepared row counts show."""
    if len(rows) != len(data.datasets):
        raise ValueError(f"got {len(rows)} row counts for {len(data.datasets)} datasets")
    problems = mix_problems(data, total_steps)
    for i, (ds, n) in enumerate(zip(data.datasets, rows)):
        if usable_rows(n, ds.max_samples) > 0:
            continue
        if data.strategy in ("weighted", "curriculum") and ds.weight > 0:
            problems.append(
                f"{_where(i, ds, 'weight')} is {ds.weight:g} but the dataset has no usable training rows "
                f"(0 after preparation of {ds.path}); add data to it, or set its weight to 0"
            )
        elif data.strategy == "uniform":
            problems.append(
                f"{_where(i, ds, 'path')} {ds.path} gives no usable training rows, but the uniform strategy draws "
                "from every dataset; add data to it or remove the dataset"
            )
        elif data.strategy == "sequential" and ds.start_step is not None and ds.end_step is not None:
            problems.append(
                f"{_where(i, ds, 'path')} {ds.path} gives no usable training rows, but it is the only dataset for "
                f"{_steps(ds.start_step, ds.end_step)}; add data to it or give its steps to another dataset"
            )
    if data.strategy == "curriculum" and not problems and data.datasets:
        phases = len({ds.order for ds in data.datasets})
        if total_steps < phases:
            problems.append(
                f"train.max_steps: the run has {total_steps} steps but the curriculum has {phases} phases "
                f"(orders 0..{phases - 1}), so some phases would get no step; train for at least {phases} steps or use fewer orders"
            )
    return problems


def check_mix_static(data: MixSection, max_steps: int | None) -> None:
    """Raise ValueError (pydantic turns it into a ConfigError naming the field)."""
    problems = mix_problems(data, max_steps)
    if problems:
        raise ValueError("\n  ".join(problems))


def check_mix_runtime(data: DataSection, rows: Sequence[int], total_steps: int) -> None:
    """Raise ConfigError when the prepared data cannot support the configured mix."""
    problems = runtime_mix_problems(data, rows, total_steps)
    if problems:
        raise ConfigError("\n".join(problems))
