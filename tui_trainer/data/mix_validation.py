"""Validation of a dataset mix (strategy, weights, orders, step ranges).

Static checks run when the config is validated; checks that need row counts or the
derived number of steps run again once the data is prepared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_trainer.config import DataSection


def check_mix_static(data: DataSection, max_steps: int | None) -> None:
    """Raise ValueError (pydantic turns it into a ConfigError naming the field)."""
    seen: set[str] = set()
    for i, ds in enumerate(data.datasets):
        if ds.name in seen:
            raise ValueError(f"data.datasets[{i}].name: duplicate dataset name {ds.name!r}; names must be unique")
        seen.add(ds.name)
