"""A cheap look at a dataset for the TUI's dataset screen: format, shape, size, first records.

Only the first records are parsed in full; rows are counted with a fast scan and tokens
are estimated from a sample. Errors are those of the full load (file not found, bad JSON
in the lines read, missing field...); problems further down a file surface at prepare.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tui_trainer.config.schema import DatasetSpec
from tui_trainer.data.prep.shapes import RecordShape, detect_shape
from tui_trainer.data.sources import (
    empty_file_error,
    iter_records,
    load_records,
    no_records_error,
    parquet_error,
    resolve_source,
)

SAMPLE = 200
_PREVIEW_CHARS = 160


@dataclass(frozen=True)
class ClassDistribution:
    """Rows per label of a labeled dataset, and what a per-class cap would keep of them."""

    labels: tuple[str, ...]
    """Labels in the run's order."""
    counts: tuple[int, ...]
    """All records per label."""
    train: tuple[int, ...]
    """Training records per label, after the stratified eval split (the cap applies to these)."""
    kept: tuple[int, ...]
    """Training records per label the cap keeps (``train`` when there is no cap)."""
    cap: int
    """classification.max_samples_per_class (0 = no cap)."""
    imbalance: float
    """Largest over smallest label count."""
    imbalance_kept: float
    """The same ratio over the rows the cap keeps (what the loss sees)."""


@dataclass(frozen=True)
class DatasetPreview:
    """What the dataset screen shows before anything is tokenized."""

    path: str
    """The path or hub id read (demo names resolved to their file)."""
    format: str
    """File extension, or demo / saved dataset / directory / hub."""
    shape: RecordShape
    """Detected (or configured) record shape."""
    rows: int
    """Number of records."""
    est_tokens: int
    """Estimated tokens over all records (tokenizer on a sample, else characters / 4)."""
    preview: tuple[str, ...]
    """The first records as one-line strings."""
    fields: tuple[str, ...]
    """Field names of the records."""
    classes: ClassDistribution | None = None
    """Rows per label (classification datasets); None for other data."""


def _count_and_sample(path: Path, k: int) -> tuple[int, list[dict[str, Any]]]:
    """Records in ``path`` and the first ``k`` of them, parsing the file once."""
    if path.stat().st_size == 0:
        raise empty_file_error(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".parquet"):  # counted without parsing records
        if suffix == ".jsonl":
            with path.open("rb") as fh:
                n = sum(1 for line in fh if line.strip())
        else:
            try:
                n = pq.ParquetFile(path).metadata.num_rows
            except Exception as err:  # pyarrow raises ArrowInvalid or OSError for a non-Parquet file
                raise parquet_error(path, err) from None
        return n, [rec for _, rec in itertools.islice(iter_records(path), k)] if n else []
    n, sample = 0, []
    for n, (_, rec) in enumerate(iter_records(path), 1):
        if n <= k:
            sample.append(rec)
    return n, sample


def _sample_files(files: tuple[Path, ...]) -> tuple[int, list[dict[str, Any]]]:
    rows, sample = 0, []
    for path in files:
        n, first = _count_and_sample(path, SAMPLE - len(sample))
        if n == 0:
            raise no_records_error(path)
        rows += n
        sample.extend(first)
    return rows, sample


def _one_line(text: str, limit: int = _PREVIEW_CHARS) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _chat(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    out = []
    for m in value:
        if isinstance(m, dict):
            role = m.get("role") or m.get("from") or "?"
            out.append((str(role), str(m.get("content") or m.get("value") or "")))
    return out


def _record_text(rec: dict[str, Any], shape: RecordShape) -> str:
    f = shape.fields
    if shape.kind == "text":
        return str(rec.get(f["text"]) or "")
    if shape.kind == "prompt_completion":
        return f"{rec.get(f['prompt']) or ''}\n{rec.get(f['completion']) or ''}"
    if shape.kind == "messages":
        return "\n".join(content for _, content in _chat(rec.get(f["messages"])))
    return ""


def _preview_line(rec: dict[str, Any], shape: RecordShape) -> str:
    f = shape.fields
    if shape.kind == "prompt_completion":
        return _one_line(f"{rec.get(f['prompt']) or ''} → {rec.get(f['completion']) or ''}")
    if shape.kind == "messages":
        return _one_line(" | ".join(f"{role}: {content}" for role, content in _chat(rec.get(f["messages"]))))
    if shape.kind == "pretokenized":
        ids = rec.get(f["input_ids"]) or []
        return _one_line(f"{len(ids)} ids: " + " ".join(map(str, ids[:24])))
    return _one_line(_record_text(rec, shape))


def _estimate(sample: list[dict[str, Any]], shape: RecordShape, rows: int, tokenizer: Any) -> int:
    if not sample:
        return 0
    if shape.kind == "pretokenized":
        per_record = sum(len(r.get(shape.fields["input_ids"]) or []) for r in sample) / len(sample)
    elif tokenizer is not None:
        texts = [_record_text(r, shape) for r in sample]
        ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        per_record = sum(len(i) + 1 for i in ids) / len(sample)  # +1: the EOS closing each document
    else:
        per_record = sum(len(_record_text(r, shape)) for r in sample) / 4 / len(sample)
    return round(per_record * rows)


def inspect_dataset(spec: DatasetSpec, tokenizer: Any = None, max_preview: int = 5) -> DatasetPreview:
    """Format, shape, record count, token estimate and the first records of ``spec``'s dataset."""
    source = resolve_source(spec)
    if source.kind in ("saved", "hub"):
        ds = load_records(spec)
        rows = len(ds)
        sample = ds.select(range(min(rows, SAMPLE))).to_list()
        fields = tuple(ds.column_names)
    else:
        rows, sample = _sample_files(source.files)
        fields = tuple(dict.fromkeys(k for r in sample for k in r))
    shape = detect_shape(fields, spec, source.path)
    preview = tuple(_preview_line(r, shape) for r in sample[:max_preview])
    return DatasetPreview(
        path=source.path,
        format=source.format,
        shape=shape,
        rows=rows,
        est_tokens=_estimate(sample, shape, rows, tokenizer),
        preview=preview,
        fields=fields,
    )
