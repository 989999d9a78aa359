"""Prepared classification rows -> a Batch: padded token ids, or normalized pixels, and the labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import torch

from tui_trainer.tasks.base import Batch


def _columns(prepared: Sequence, items: Sequence[tuple[int, int]], split: str, column: str) -> tuple[list, list[int]]:
    tables: dict[int, pa.Table] = {}
    values, labels = [], []
    for d, r in items:
        d, r = int(d), int(r)
        table = tables.get(d)
        if table is None:
            table = tables[d] = getattr(prepared[d], split).data.table
        if not 0 <= r < table.num_rows:
            raise IndexError(f"row {r} is out of range for dataset {d} ({table.num_rows} {split} rows)")
        values.append(table.column(column)[r].values.to_numpy(zero_copy_only=False))
        labels.append(table.column("label")[r].as_py())
    return values, labels


def collate_text(prepared: Sequence, items: Sequence[tuple[int, int]], split: str, pad_id: int) -> Batch:
    rows, labels = _columns(prepared, items, split, "input_ids")
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
    width = int(lengths.max()) if len(rows) else 0
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.from_numpy(row.astype(np.int64))
        mask[i, : len(row)] = 1
    tensors = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor(labels, dtype=torch.long)}
    return Batch(tensors, n_targets=torch.ones(len(rows), dtype=torch.int64), work=lengths, lengths=lengths)


def collate_images(
    prepared: Sequence, items: Sequence[tuple[int, int]], split: str, norm: tuple[torch.Tensor, torch.Tensor]
) -> Batch:
    rows, labels = _columns(prepared, items, split, "pixels")
    scale, shift = norm
    channels = scale.size(0)
    pixels = torch.from_numpy(np.stack(rows)).float()
    side = int(round((pixels.size(1) / channels) ** 0.5))
    pixels = pixels.view(len(rows), channels, side, side) * scale + shift
    n = len(rows)
    tensors = {"pixel_values": pixels, "labels": torch.tensor(labels, dtype=torch.long)}
    return Batch(tensors, n_targets=torch.ones(n, dtype=torch.int64), work=torch.ones(n, dtype=torch.int64))
