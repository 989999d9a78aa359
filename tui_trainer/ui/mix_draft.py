"""The dataset mix being edited on the datasets screen (no widgets here).

It only holds what the user typed; validation is the core's (``config_from_dict`` runs
the schema and the mix checks), so the inline message is exactly what ``tui-trainer
train`` would say about the same mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from tui_trainer.config.mix_rules import Strategy
from tui_trainer.data.formats import DATA_EXTENSIONS
from tui_trainer.config.schema import DataSection, config_from_dict
from tui_trainer.demo.catalog import DEMO_PREFIX
from tui_trainer.errors import ConfigError

STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass
class DraftDataset:
    """One dataset row as edited in the UI."""

    name: str
    path: str
    weight: float = 1.0
    start_step: int | None = None
    end_step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Spec fields the UI does not edit (field names, max_samples) kept from a loaded config."""
    preview: Any | None = None
    """data.inspect.DatasetPreview once inspected."""
    problem: str | None = None
    """Why the dataset could not be inspected (a DataError message)."""

    @property
    def inspected(self) -> bool:
        return self.preview is not None or self.problem is not None


def _stem(path: str) -> str:
    if path.startswith(DEMO_PREFIX):
        return path.removeprefix(DEMO_PREFIX)
    p = Path(path.rstrip("/"))
    return p.stem or p.name or "data"


@dataclass
class MixDraft:
    """Strategy + ordered datasets; row order is the curriculum phase order."""

    strategy: str = "weighted"
    datasets: list[DraftDataset] = field(default_factory=list)
    base: dict[str, Any] = field(default_factory=dict)
    """Other ``[data]`` keys (max_seq_len, packing, ...) carried through unchanged."""

    @classmethod
    def from_section(cls, data: DataSection) -> MixDraft:
        raw = data.model_dump(mode="json", exclude_none=True)
        specs = raw.pop("datasets")
        strategy = raw.pop("strategy")
        items = []
        for spec in sorted(specs, key=lambda s: s.get("order", 0)) if strategy == "curriculum" else specs:
            known = {k: spec.pop(k) for k in ("name", "path", "weight", "start_step", "end_step") if k in spec}
            spec.pop("order", None)
            items.append(DraftDataset(extra=spec, **known))
        return cls(strategy=strategy, datasets=items, base=raw)

    def unique_name(self, path: str) -> str:
        base = _stem(path)
        taken = {d.name for d in self.datasets}
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return name

    def add(self, path: str) -> DraftDataset:
        entry = DraftDataset(name=self.unique_name(path), path=path)
        if self.strategy == "sequential" and self.datasets and self.datasets[-1].end_step is not None:
            # A new stage naturally starts where the previous one ends; its end is the user's call.
            entry.start_step = self.datasets[-1].end_step
        self.datasets.append(entry)
        return entry

    def remove(self, index: int) -> None:
        del self.datasets[index]

    def move(self, index: int, delta: int) -> int:
        """Move a row up (-1) or down (+1); returns its new index."""
        new = index + delta
        if not 0 <= index < len(self.datasets) or not 0 <= new < len(self.datasets):
            return index
        self.datasets[index], self.datasets[new] = self.datasets[new], self.datasets[index]
        return new

    def normalized(self) -> list[tuple[str, float]]:
        """Each dataset's share of samples as the weighted sampler would draw them."""
        if not self.datasets:
            return []
        if self.strategy == "uniform":
            return [(d.name, 1 / len(self.datasets)) for d in self.datasets]
        total = sum(max(d.weight, 0.0) for d in self.datasets)
        return [(d.name, (max(d.weight, 0.0) / total) if total else 0.0) for d in self.datasets]

    def to_raw(self) -> dict[str, Any]:
        """The ``[data]`` table as a plain dict (what goes into the TOML)."""
        specs = []
        for i, d in enumerate(self.datasets):
            spec: dict[str, Any] = {"name": d.name, "path": d.path, **d.extra}
            if self.strategy in ("weighted", "curriculum"):
                spec["weight"] = d.weight
            if self.strategy == "curriculum":
                spec["order"] = i
            if self.strategy == "sequential":
                if d.start_step is not None:
                    spec["start_step"] = d.start_step
                if d.end_step is not None:
                    spec["end_step"] = d.end_step
            specs.append(spec)
        return {**self.base, "strategy": self.strategy, "datasets": specs}

    def validate(self) -> str | None:
        """The core's message for this mix, or None when it is valid and complete."""
        if not self.datasets:
            return "Add at least one dataset: browse on the left, type a path, or pick a demo corpus."
        for d in self.datasets:
            if d.problem:
                return f"Dataset {d.name!r} cannot be read: {d.problem} Fix the file or remove it (Delete)."
        try:
            config_from_dict({"data": self.to_raw()}, source="mix")
        except ConfigError as err:
            return str(err)
        return None

    def est_tokens(self) -> int | None:
        known = [getattr(d.preview, "est_tokens", None) for d in self.datasets]
        if not known or any(k is None for k in known):
            return None
        return int(sum(known))


def typed_path_problem(text: str) -> str | None:
    """Why a typed dataset path cannot be added, or None. A hub id (``owner/name``) passes:
    only the core can tell whether it exists online."""
    if text.startswith(DEMO_PREFIX):
        return None
    path = Path(text).expanduser()
    if path.exists():
        return None
    local = path.is_absolute() or text.startswith((".", "~")) or path.suffix.lower() in DATA_EXTENSIONS or "/" not in text
    if not local:
        return None
    where = path.parent if path.parent != Path("") else Path(".")
    hint = "its folder does not exist either" if not where.exists() else f"nothing by that name in {where}"
    return f"{text}: no such file or directory ({hint}); check the path, or pick the file in the browser below"
