"""A DirectoryTree that lists only what tui-trainer can read as a dataset."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.widgets import DirectoryTree

from tui_trainer.data.formats import DATA_EXTENSIONS


class DatasetTree(DirectoryTree):
    """Directories (not hidden) and supported data files only."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                if path.is_dir() or path.suffix.lower() in DATA_EXTENSIONS:
                    yield path
            except OSError:
                continue
