"""Rows -> padded tensors, and the hot-path fetch of a global batch's rows from the prepared datasets.

Rows are read as zero-copy views of the memory-mapped Arrow tables and padded with numpy,
so a batch costs no per-token Python work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from tui_trainer.data.tokenize import IGNORE_INDEX


def _tensors(ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    mask = np.arange(int(lengths.max())) < lengths[:, None]  # callers reject empty batches

    def padded(values: np.ndarray, fill: int) -> torch.Tensor:
        out = np.full(mask.shape, fill, dtype=np.int64)
        out[mask] = values
        return torch.from_numpy(out)

    return {
        "input_ids": padded(ids, pad_id),
        "labels": padded(labels, IGNORE_INDEX),
        "attention_mask": torch.from_numpy(mask.astype(np.int64)),
    }


def collate(rows: list[dict] | dict[str, list], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad rows to the longest: input_ids (pad_id), labels (-100), attention_mask (0 on padding)."""
    if isinstance(rows, dict):
        ids_rows, label_rows = list(rows["input_ids"]), list(rows.get("labels", rows["input_ids"]))
    else:
        ids_rows = [r["input_ids"] for r in rows]
        label_rows = [r.get("labels", r["input_ids"]) for r in rows]
    if not ids_rows:
        raise ValueError("collate needs at least one row")
    lengths = np.array([len(r) for r in ids_rows], dtype=np.int64)
    label_lengths = np.array([len(r) for r in label_rows], dtype=np.int64)
    if not np.array_equal(lengths, label_lengths):
        raise ValueError("every row needs as many labels as input_ids")
    ids = np.concatenate([np.asarray(r, dtype=np.int64) for r in ids_rows])
    labels = np.concatenate([np.asarray(r, dtype=np.int64) for r in label_rows])
    return _tensors(ids, labels, lengths, pad_id)


def _table(ds: Any) -> pa.Table:
    """The dataset's Arrow table when rows map 1:1 onto it (always so for prepared datasets)."""
    if getattr(ds, "_indices", None) is None:
        return ds.data.table
    return ds.with_format("arrow")[:]  # an indices mapping (select/shuffle): materialized per call


def fetch_batch(
    prepared: Sequence[Any], items: Sequence[tuple[int, int]], pad_id: int, split: str = "train"
) -> dict[str, torch.Tensor]:
    """Rows ``[(dataset_index, row_index), ...]`` as one padded batch, in the order given.

    Each row is a zero-copy view into the memory-mapped table (a chunk lookup, no ``take``),
    which measured 5-50x cheaper than gathering with ``take`` or ``ds[indices]``.
    """
    if not items:
        raise ValueError("fetch_batch needs at least one item")
    columns: dict[int, tuple[pa.ChunkedArray, pa.ChunkedArray, int]] = {}
    ids_rows, label_rows = [], []
    for d, r in items:
        d, r = int(d), int(r)
        cols = columns.get(d)
        if cols is None:
            table = _table(getattr(prepared[d], split))
            cols = columns[d] = (table.column("input_ids"), table.column("labels"), table.num_rows)
        if not 0 <= r < cols[2]:
            raise IndexError(f"row {r} is out of range for dataset {d} ({cols[2]} {split} rows)")
        ids_rows.append(cols[0][r].values.to_numpy(zero_copy_only=False))
        label_rows.append(cols[1][r].values.to_numpy(zero_copy_only=False))
    lengths = np.fromiter((len(x) for x in ids_rows), dtype=np.int64, count=len(ids_rows))
    return _tensors(np.concatenate(ids_rows), np.concatenate(label_rows), lengths, pad_id)
