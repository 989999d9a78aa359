"""Images stored in a dataset column: a parquet file or a ``save_to_disk`` directory, read through ``datasets``.

The column may hold what ``datasets`` writes for its ``Image`` feature (``{"bytes", "path"}``),
raw encoded bytes, or a path (relative to the dataset). The column is read as
stored (the arrow format: ``datasets`` decodes nothing) and decoded here with Pillow, one batch of rows at a time, so a
corrupt image is named by file and row (exit 2) instead of failing deep inside
``datasets``, and the whole column never sits decoded in memory. Labels may be strings,
ints or a ``ClassLabel`` (its names are the labels).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.data.formats import is_saved_dataset
from tui_trainer.errors import DataError
from tui_trainer.tasks.classification.images import EncodedImage


@dataclass(frozen=True)
class ImageColumn:
    """Where a dataset's images are: the file or directory and the column."""

    path: str
    """The parquet file or the save_to_disk directory."""
    field: str
    """The image column (classification.image_field)."""

    def where(self, row: int) -> str:
        return f"{self.path} row {row}"

    def sources(self, rows: Sequence[int]) -> list[Path | EncodedImage]:
        """Each row's image as encoded bytes (or the file a path value names), in order."""
        # The arrow format hands the column over as stored: nothing is decoded by datasets.
        table = _open(self.path).with_format("arrow")[[int(r) for r in rows]]
        column = table[self.field].to_pylist()
        return [self._source(int(row), value) for row, value in zip(rows, column, strict=True)]

    def _source(self, row: int, value: Any) -> Path | EncodedImage:
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data, path = bytes(value), None
        elif isinstance(value, str):
            data, path = None, value
        else:
            data, path = None, None
        if data:
            return EncodedImage(bytes(data), self.where(row))
        if path:
            resolved = Path(path) if Path(path).is_absolute() else _base_dir(self.path) / path
            if resolved.is_file():
                return resolved
            raise DataError(f"{self.where(row)}: image file {path!r} not found; fix the {self.field!r} value")
        raise DataError(f"{self.where(row)}: column {self.field!r} holds no image; add one or remove the row")

    def fingerprint(self) -> str:
        """Sizes and mtimes of the dataset's files: the cache key changes when any of them does."""
        root = Path(self.path)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        digest = hashlib.sha256(self.field.encode())
        for f in files:
            st = f.stat()
            digest.update(f"{f.relative_to(root) if f != root else f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return digest.hexdigest()


def _base_dir(path: str) -> Path:
    p = Path(path)
    return p if p.is_dir() else p.parent


def is_image_column_source(root: Path, image_field: str) -> bool:
    """A saved dataset with the image column, or a parquet file whose image column is not plain path strings."""
    if root.is_dir():
        return is_saved_dataset(root) and image_field in _open(str(root)).column_names
    if root.suffix.lower() != ".parquet":
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(root)
    except (OSError, pa.ArrowException):
        return False  # the record reader names the unreadable file
    if image_field not in schema.names:
        return False
    kind = schema.field(image_field).type
    return not (pa.types.is_string(kind) or pa.types.is_large_string(kind))


def read_image_column(root: Path, *, label_field: str, image_field: str) -> tuple[ImageColumn, list[str], list[str]]:
    """(the column, each row's label as a string, each row's origin); a row without a label is named."""
    ds = _open(str(root))
    if image_field not in ds.column_names:
        raise DataError(
            f"{root}: no image column {image_field!r} (columns: {', '.join(ds.column_names)}); "
            "set classification.image_field"
        )
    if label_field not in ds.column_names:
        raise DataError(
            f"{root}: no label column {label_field!r} (columns: {', '.join(ds.column_names)}); "
            "set classification.label_field"
        )
    names = getattr(ds.features[label_field], "names", None)  # a ClassLabel's names are the labels
    column = ImageColumn(str(root), image_field)
    labels = []
    for row, label in enumerate(ds[label_field]):
        if label is None or (isinstance(label, str) and not label.strip()) or (names and label < 0):
            raise DataError(
                f"{column.where(row)}: no label in column {label_field!r}; add one or remove the row"
            )
        labels.append(names[label] if names else str(label).strip())
    if not labels:
        raise DataError(f"{root}: no rows; a classification dataset needs labeled records")
    return column, labels, [column.where(row) for row in range(len(labels))]


@functools.lru_cache(maxsize=4)
def _open_cached(path: str, mtime_ns: int) -> Any:
    import datasets

    from tui_trainer.data.sources import load_saved, parquet_error

    if Path(path).is_dir():
        return load_saved(Path(path))
    try:
        return datasets.Dataset.from_parquet(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError or ValueError for a bad file
        raise parquet_error(Path(path), err) from None


def _open(path: str) -> Any:
    """The dataset, memory-mapped; reopened only when the file (or the directory) changes."""
    return _open_cached(path, Path(path).stat().st_mtime_ns)
