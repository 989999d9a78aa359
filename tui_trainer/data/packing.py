"""Documents -> training rows of at most ``max_seq_len`` tokens, written to an Arrow file.

With packing, documents (each already ending with EOS) are concatenated and cut into
rows of exactly ``max_seq_len`` tokens; the final partial row is kept and padded at
collate time, so no token is lost or duplicated. Without packing, each document is its
own row, and a document longer than ``max_seq_len`` is split into consecutive rows.
Rows without a single usable loss token (labels past the first position, which the
shifted loss never reads) teach nothing and make a batch's mean loss NaN, so they are
dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa

from tui_trainer.data.tokenize import IGNORE_INDEX, ROW_SCHEMA
_READ_BATCH = 2048


@dataclass(frozen=True)
class RowStats:
    """What one split's rows hold."""

    rows: int
    """Rows written."""
    tokens: int
    """Real (non-padding) tokens in the rows written."""
    loss_tokens: int
    """Tokens whose label is not -100."""
    dropped_rows: int
    """Rows dropped because no token after their first carries loss."""
    dropped_tokens: int
    """Tokens in the dropped rows."""


class Packer:
    """Streams flat token arrays in and full ``max_seq_len`` rows out; ``finish`` returns the rest."""

    def __init__(self, max_seq_len: int) -> None:
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        self.max_seq_len = max_seq_len
        self._ids = np.empty(0, dtype=np.int32)
        self._labels = np.empty(0, dtype=np.int32)

    def add(self, ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append tokens; return the rows completed so far as two (n, max_seq_len) arrays."""
        ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int32)])
        labels = np.concatenate([self._labels, np.asarray(labels, dtype=np.int32)])
        if ids.shape != labels.shape:
            raise ValueError(f"ids and labels differ in length: {ids.shape} vs {labels.shape}")
        full = len(ids) // self.max_seq_len * self.max_seq_len
        self._ids, self._labels = ids[full:], labels[full:]
        shape = (-1, self.max_seq_len)
        return ids[:full].reshape(shape), labels[:full].reshape(shape)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The final partial row (possibly empty)."""
        rest = self._ids, self._labels
        self._ids = self._ids[:0]
        self._labels = self._labels[:0]
        return rest


def split_long(lengths: np.ndarray, max_seq_len: int) -> np.ndarray:
    """Row lengths when each document is its own row and long ones are cut every ``max_seq_len``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    full, rest = np.divmod(lengths, max_seq_len)
    counts = full + (rest > 0)
    out = np.full(int(counts.sum()), max_seq_len, dtype=np.int64)
    ends = np.cumsum(counts) - 1
    has_rest = rest > 0
    out[ends[has_rest]] = rest[has_rest]
    return out


def pack(
    docs: Iterable[tuple[list[int], list[int]]], max_seq_len: int, packing: bool = True
) -> list[tuple[list[int], list[int]]]:
    """Rows from (ids, labels) documents: the pure form of :func:`write_rows`, for tests and small inputs."""
    docs = [(np.asarray(i, dtype=np.int32), np.asarray(lab, dtype=np.int32)) for i, lab in docs]
    if not docs:
        return []
    ids = np.concatenate([d[0] for d in docs])
    labels = np.concatenate([d[1] for d in docs])
    lengths = np.array([len(d[0]) for d in docs], dtype=np.int64)
    return [(a.tolist(), b.tolist()) for a, b in _rows(ids, labels, lengths, max_seq_len, packing)]


def _rows(ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray, max_seq_len: int, packing: bool):
    if packing:
        packer = Packer(max_seq_len)
        rows = list(zip(*packer.add(ids, labels)))
        tail = packer.finish()
        return rows + ([tail] if len(tail[0]) else [])
    bounds = np.cumsum(split_long(lengths, max_seq_len))[:-1]
    return list(zip(np.split(ids, bounds), np.split(labels, bounds)))


def _list_array(values: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.int32()))


class _RowWriter:
    """Writes (values, lengths) row batches, dropping rows without loss tokens."""

    def __init__(self, path: Path) -> None:
        self.writer = pa.ipc.new_stream(str(path), ROW_SCHEMA)
        self.rows = self.tokens = self.loss_tokens = self.dropped_rows = self.dropped_tokens = 0

    def write(self, ids: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> None:
        if not len(lengths):
            return
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        has_loss = (labels != IGNORE_INDEX).astype(np.int64)
        loss = np.add.reduceat(has_loss, starts)  # rows are never empty
        # The model predicts token t from tokens < t, so a row's first label is never used.
        keep = loss - has_loss[starts] > 0
        if not keep.all():
            token_keep = np.repeat(keep, lengths)
            self.dropped_rows += int((~keep).sum())
            self.dropped_tokens += int(lengths[~keep].sum())
            ids, labels, lengths, loss = ids[token_keep], labels[token_keep], lengths[keep], loss[keep]
        if not len(lengths):
            return
        batch = pa.record_batch([_list_array(ids, lengths), _list_array(labels, lengths)], schema=ROW_SCHEMA)
        self.writer.write_batch(batch)
        self.rows += len(lengths)
        self.tokens += int(lengths.sum())
        self.loss_tokens += int(loss.sum())

    def close(self) -> RowStats:
        self.writer.close()
        return RowStats(self.rows, self.tokens, self.loss_tokens, self.dropped_rows, self.dropped_tokens)


def _doc_batches(docs: datasets.Dataset) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(flat ids, flat labels, document lengths) per batch, read zero-copy from Arrow."""
    for table in docs.with_format("arrow").iter(batch_size=_READ_BATCH):
        ids, labels = (table.column(name).combine_chunks() for name in ("input_ids", "labels"))
        flat = [arr.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False) for arr in (ids, labels)]
        lengths = ids.value_lengths().to_numpy(zero_copy_only=False)
        yield flat[0], flat[1], lengths.astype(np.int64)


def write_rows(docs: datasets.Dataset, path: Path, max_seq_len: int, packing: bool) -> RowStats:
    """Pack (or split) the documents of ``docs`` into rows written to the Arrow stream file ``path``."""
    out = _RowWriter(path)
    packer = Packer(max_seq_len)
    for ids, labels, lengths in _doc_batches(docs):
        if packing:
            rows_ids, rows_labels = packer.add(ids, labels)
            n = len(rows_ids)
            out.write(rows_ids.reshape(-1), rows_labels.reshape(-1), np.full(n, max_seq_len, dtype=np.int64))
        else:
            out.write(ids, labels, split_long(lengths, max_seq_len))
    tail_ids, tail_labels = packer.finish()
    out.write(tail_ids, tail_labels, np.array([len(tail_ids)] if len(tail_ids) else [], dtype=np.int64))
    return out.close()
