"""What the data loader can read, without importing it (the UI's file browser asks too)."""

from __future__ import annotations

from pathlib import Path

DATA_EXTENSIONS = (".jsonl", ".json", ".csv", ".parquet", ".txt")
"""Data file types the loader accepts (DESIGN §3)."""


def is_saved_dataset(path: Path) -> bool:
    """A directory written by ``datasets`` ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return (path / "dataset_dict.json").is_file() or (
        (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    )
