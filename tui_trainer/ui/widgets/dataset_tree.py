"""A DirectoryTree that lists only what tui-trainer can read as a dataset."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.widgets import DirectoryTree

DATASET_SUFFIXES = frozenset({".jsonl", ".json", ".csv", ".parquet", ".txt"})
"""File types the data loader accepts (DESIGN §3)."""


def is_saved_dataset(path: Path) -> bool:
    """A directory written by ``datasets.Dataset.save_to_disk``."""
    return (path / "dataset_info.json").is_file() or (path / "state.json").is_file()


class DatasetTree(DirectoryTree):
    """Directories (not hidden) and supported data files only."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                if path.is_dir() or path.suffix.lower() in DATASET_SUFFIXES:
                    yield path
            except OSError:
                continue
