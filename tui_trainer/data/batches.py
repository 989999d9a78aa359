"""Rows -> padded tensors, and the hot-path fetch of a global batch's rows from the prepared datasets.

Rows are read as zero-copy views of the memory-mapped Arrow tables and padded with numpy,
so a batch costs no per-token Python work. Padding positions continue the last
document's positions: a right-padded row then needs no attention mask (causal attention
never lets a real token see the padding after it), and rows holding one document each
keep the plain causal fast path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from tui_trainer.data.prep.tokenize import IGNORE_INDEX


def _positions(flat: np.ndarray, lengths: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.empty(mask.shape, dtype=np.int64)
    out[mask] = flat
    last = out[np.arange(len(lengths)), lengths - 1]
    pad = last[:, None] + np.arange(1, mask.shape[1] + 1)[None, :] - lengths[:, None]
    return np.where(mask, out, pad)


def _targets(labels: np.ndarray, positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per row: labelled tokens that do not start a document (what the shifted loss reads)."""
    hits = ((labels != IGNORE_INDEX) & (positions != 0)).astype(np.int64)
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return np.add.reduceat(hits, starts)


def _tensors(
    ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, pad_id: int,
    positions: np.ndarray | None = None, n_targets: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    mask = np.arange(int(lengths.max())) < lengths[:, None]  # callers reject empty batches
    if positions is None:  # rows without stored positions are one document each
        positions = np.arange(mask.shape[1])[None, :].repeat(len(lengths), 0)[mask]
    if n_targets is None:
        n_targets = _targets(labels, positions, lengths)

    def padded(values: np.ndarray, fill: int) -> torch.Tensor:
        out = np.full(mask.shape, fill, dtype=np.int64)
        out[mask] = values
        return torch.from_numpy(out)

    return {
        "input_ids": padded(ids, pad_id),
        "labels": padded(labels, IGNORE_INDEX),
        "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        "position_ids": torch.from_numpy(_positions(positions, lengths, mask)),
        "n_targets": torch.from_numpy(np.asarray(n_targets, dtype=np.int64)),
    }


def collate(rows: list[dict] | dict[str, list], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad rows to the longest: input_ids (pad_id), labels (-100), attention_mask (0 on padding),
    position_ids (stored, or 0.. for rows without them) and n_targets per row."""
    if isinstance(rows, dict):
        ids_rows, label_rows = list(rows["input_ids"]), list(rows.get("labels", rows["input_ids"]))
        pos_rows = rows.get("position_ids")
    else:
        ids_rows = [r["input_ids"] for r in rows]
        label_rows = [r.get("labels", r["input_ids"]) for r in rows]
        pos_rows = [r["position_ids"] for r in rows] if rows and all("position_ids" in r for r in rows) else None
    if not ids_rows:
        raise ValueError("collate needs at least one row")
    lengths = np.array([len(r) for r in ids_rows], dtype=np.int64)
    label_lengths = np.array([len(r) for r in label_rows], dtype=np.int64)
    if not np.array_equal(lengths, label_lengths):
        raise ValueError("every row needs as many labels as input_ids")
    ids = np.concatenate([np.asarray(r, dtype=np.int64) for r in ids_rows])
    labels = np.concatenate([np.asarray(r, dtype=np.int64) for r in label_rows])
    positions = None if pos_rows is None else np.concatenate([np.asarray(r, dtype=np.int64) for r in pos_rows])
    return _tensors(ids, labels, lengths, pad_id, positions)


def _table(ds: Any) -> pa.Table:
    """The dataset's Arrow table when rows map 1:1 onto it (always so for prepared datasets)."""
    if getattr(ds, "_indices", None) is None:
        return ds.data.table
    return ds.with_format("arrow")[:]  # an indices mapping (select/shuffle): materialized per call


def _values(column: pa.ChunkedArray | None, r: int) -> np.ndarray | None:
    return None if column is None else column[r].values.to_numpy(zero_copy_only=False)


def fetch_batch(
    prepared: Sequence[Any], items: Sequence[tuple[int, int]], pad_id: int, split: str = "train"
) -> dict[str, torch.Tensor]:
    """Rows ``[(dataset_index, row_index), ...]`` as one padded batch, in the order given.

    Each row is a zero-copy view into the memory-mapped table (a chunk lookup, no ``take``),
    which measured 5-50x cheaper than gathering with ``take`` or ``ds[indices]``.
    """
    if not items:
        raise ValueError("fetch_batch needs at least one item")
    columns: dict[int, tuple] = {}
    ids_rows, label_rows, pos_rows, targets = [], [], [], []
    for d, r in items:
        d, r = int(d), int(r)
        cols = columns.get(d)
        if cols is None:
            table = _table(getattr(prepared[d], split))
            names = set(table.column_names)
            cols = columns[d] = tuple(
                table.column(n) if n in names else None for n in ("input_ids", "labels", "position_ids", "n_targets")
            ) + (table.num_rows,)
        if not 0 <= r < cols[4]:
            raise IndexError(f"row {r} is out of range for dataset {d} ({cols[4]} {split} rows)")
        ids_rows.append(_values(cols[0], r))
        label_rows.append(_values(cols[1], r))
        pos_rows.append(_values(cols[2], r))
        targets.append(None if cols[3] is None else cols[3][r].as_py())
    lengths = np.fromiter((len(x) for x in ids_rows), dtype=np.int64, count=len(ids_rows))
    positions = None if any(p is None for p in pos_rows) else np.concatenate(pos_rows)
    n_targets = None if positions is None or any(t is None for t in targets) else np.array(targets, dtype=np.int64)
    return _tensors(np.concatenate(ids_rows), np.concatenate(label_rows), lengths, pad_id, positions, n_targets)


def targets_per_row(prepared: Sequence[Any], split: str = "train") -> list[np.ndarray]:
    """Each dataset's ``n_targets`` column as an array, so a global batch's target count is a cheap lookup."""
    out = []
    for p in prepared:
        table = _table(getattr(p, split))
        out.append(table.column("n_targets").to_numpy().astype(np.int64))
    return out
