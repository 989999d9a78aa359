"""Labeled records from a dataset spec: text records or images, each with its label and origin.

Text comes from records (``text_field`` + ``label_field``) in JSONL/JSON/CSV/Parquet files;
images from a folder of class subfolders or from records whose ``image_field`` is a path
(relative to the records file). Every record keeps ``file:line`` so a bad one is named.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tui_trainer.errors import DataError
from tui_trainer.tasks.classification.image_column import ImageColumn, is_image_column_source, read_image_column
from tui_trainer.tasks.classification.images import EncodedImage, is_image_folder, scan_image_folder


@dataclass(frozen=True)
class LabeledRecords:
    """One dataset's records, before splitting."""

    kind: str
    """text | image."""
    inputs: tuple[str, ...]
    """The texts, or the image file paths."""
    labels: tuple[str, ...]
    """Raw labels as strings (integers are written in decimal)."""
    origins: tuple[str, ...]
    """``file:line`` (or the image path, or ``file row N``) per record, for error messages."""
    column: ImageColumn | None = None
    """Images held in a dataset column (parquet, save_to_disk): ``inputs`` are then ``file#row`` references."""

    def image_sources(self, rows: Sequence[int]) -> list[Path | EncodedImage]:
        """The images of ``rows``, in order: files, or encoded bytes read from the column."""
        if self.column is not None:
            return self.column.sources(rows)
        return [Path(self.inputs[int(r)]) for r in rows]


def resolve_path(path: str) -> Path:
    """A local path, or a ``demo:`` classification dataset built on first use."""
    if path.startswith("demo:"):
        from tui_trainer.demo.classification_demos import classification_demo_path

        return classification_demo_path(path)
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DataError(f"{resolved}: not found; check data.datasets[].path (relative paths start where you run)")
    return resolved


def read_labeled(path: str, *, text_field: str, label_field: str, image_field: str) -> LabeledRecords:
    root = resolve_path(path)
    if is_image_column_source(root, image_field):
        column, labels, origins = read_image_column(root, label_field=label_field, image_field=image_field)
        refs = tuple(f"{column.path}#{row}" for row in range(len(labels)))
        return LabeledRecords("image", refs, tuple(labels), tuple(origins), column)
    if is_image_folder(root):
        pairs = scan_image_folder(root)
        return LabeledRecords("image", tuple(str(p) for p, _ in pairs), tuple(c for _, c in pairs), tuple(str(p) for p, _ in pairs))
    kind = None
    inputs, labels, origins = [], [], []
    for file, line, record in _records(root):
        where = f"{file}:{line}"
        label = record.get(label_field)
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(
                f"{where}: record has no label in field {label_field!r}; add one or set classification.label_field"
            )
        if kind is None:
            kind = "text" if text_field in record else "image" if image_field in record else None
            if kind is None:
                raise DataError(
                    f"{where}: record has neither a text field {text_field!r} nor an image field {image_field!r} "
                    f"(fields: {', '.join(sorted(record))}); set data.datasets[].text_field or classification.image_field"
                )
        value = record.get(text_field if kind == "text" else image_field)
        if not isinstance(value, str) or not value.strip():
            field = text_field if kind == "text" else image_field
            raise DataError(f"{where}: field {field!r} is missing or empty")
        inputs.append(value if kind == "text" else str((file.parent / value).resolve()))
        labels.append(str(label).strip())
        origins.append(where)
    if not inputs:
        raise DataError(f"{root}: no records found; a classification dataset needs labeled records")
    return LabeledRecords(kind, tuple(inputs), tuple(labels), tuple(origins))


def _records(root: Path) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    from tui_trainer.data.formats import DATA_EXTENSIONS
    from tui_trainer.data.sources import iter_records

    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix.lower() in DATA_EXTENSIONS)
    if not files:
        raise DataError(
            f"{root}: neither a data file ({', '.join(DATA_EXTENSIONS)}) nor a folder of class subfolders with images"
        )
    for file in files:
        if file.suffix.lower() not in DATA_EXTENSIONS:
            raise DataError(f"{file}: unsupported file type; supported: {', '.join(DATA_EXTENSIONS)}")
        for line, record in iter_records(file):
            yield file, line, record


def encode_labels(records: LabeledRecords, order: Sequence[str]) -> np.ndarray:
    """Class ids in ``order``; a label outside it is a DataError naming the record."""
    index = {name: i for i, name in enumerate(order)}
    ids = np.empty(len(records.labels), dtype=np.int64)
    for row, label in enumerate(records.labels):
        found = index.get(label)
        if found is None:
            raise DataError(
                f"{records.origins[row]}: label {label!r} is not in classification.labels "
                f"({', '.join(order)}); add it there or fix the record"
            )
        ids[row] = found
    return ids
