"""The sampler's checkpoint state: a small JSON dict, and its strict reading back.

The state records the step and, per dataset, the rows drawn so far (as epoch and
position too, for people reading a checkpoint). The sampler could recompute the cursors
from the step alone; recording them lets a resume detect data that changed underneath
it, and continue a run whose plan changed (a curriculum whose max_steps grew).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STATE_VERSION = 1
_STATE_KEYS = frozenset({"version", "step", "strategy", "global_batch_size", "seed", "total_steps", "datasets", "carry"})
_DATASET_KEYS = frozenset({"name", "rows", "samples", "epoch", "position"})


def build_state(
    *,
    step: int,
    strategy: str,
    global_batch_size: int,
    seed: int,
    total_steps: int,
    names: Sequence[str],
    rows: Sequence[int],
    cursors: Sequence[int],
    carry: Sequence[float],
) -> dict[str, Any]:
    """The state dict: ints, floats, strings and lists only."""
    datasets = []
    for name, n, c in zip(names, rows, cursors):
        epoch, position = divmod(c, n) if n else (0, 0)
        datasets.append({"name": name, "rows": n, "samples": c, "epoch": epoch, "position": position})
    return {
        "version": STATE_VERSION,
        "step": step,
        "strategy": strategy,
        "global_batch_size": global_batch_size,
        "seed": seed,
        "total_steps": total_steps,
        "datasets": datasets,
        # Derived from the step (kept for inspection): rows given minus the exact target.
        "carry": list(carry),
    }


def read_state(
    state: Any, *, strategy: str, global_batch_size: int, seed: int, names: Sequence[str], rows: Sequence[int]
) -> tuple[int, list[int]]:
    """(step, rows drawn per dataset) from ``state``; ValueError if it belongs to another mix."""
    if not isinstance(state, dict):
        raise ValueError(f"sampler state must be a dict, got {type(state).__name__}")
    _check_keys(state, _STATE_KEYS, "sampler state")
    if state["version"] != STATE_VERSION:
        raise ValueError(f"sampler state version {state['version']!r} is not supported (expected {STATE_VERSION})")
    for key, mine in (("strategy", strategy), ("global_batch_size", global_batch_size), ("seed", seed)):
        if state[key] != mine:
            raise ValueError(f"sampler state mismatch: {key} is {state[key]!r} in the state but {mine!r} now")
    step = state["step"]
    if not _count(step):
        raise ValueError(f"sampler state: step must be an integer >= 0, got {step!r}")
    saved = state["datasets"]
    if not isinstance(saved, list) or len(saved) != len(names):
        got = len(saved) if isinstance(saved, list) else type(saved).__name__
        raise ValueError(f"sampler state mismatch: {got} datasets in the state but {len(names)} now")
    cursors = [_read_dataset(i, entry, names[i], rows[i]) for i, entry in enumerate(saved)]
    carry = state["carry"]
    if not isinstance(carry, list) or len(carry) != len(names):
        raise ValueError("sampler state: carry must be a list with one number per dataset")
    return step, cursors


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_dataset(i: int, entry: Any, name: str, n: int) -> int:
    if not isinstance(entry, dict):
        raise ValueError(f"sampler state: datasets[{i}] must be a dict, got {type(entry).__name__}")
    _check_keys(entry, _DATASET_KEYS, f"sampler state datasets[{i}]")
    if entry["name"] != name:
        raise ValueError(f"sampler state mismatch: dataset {i} is {entry['name']!r} in the state but {name!r} now")
    if entry["rows"] != n:
        raise ValueError(
            f"sampler state mismatch: dataset {name!r} had {entry['rows']} usable rows but has {n} now; "
            "the data or max_samples changed"
        )
    for key in ("samples", "epoch", "position"):
        if not _count(entry[key]):
            raise ValueError(f"sampler state: datasets[{i}] ({name}) {key} must be an integer >= 0, got {entry[key]!r}")
    samples = entry["samples"]
    if n and entry["epoch"] * n + entry["position"] != samples:
        raise ValueError(f"sampler state: datasets[{i}] ({name}) epoch/position do not match samples {samples}")
    return samples


def _check_keys(state: dict[str, Any], expected: frozenset[str], what: str) -> None:
    missing = sorted(expected - state.keys())
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise ValueError(f"{what}: {' and '.join(parts)}")
