"""Documents -> training rows of at most ``max_seq_len`` tokens, written to an Arrow file.

With packing, documents (each already ending with EOS) are concatenated and cut into
rows of exactly ``max_seq_len`` tokens; the final partial row is kept and padded at
collate time, so no token is lost or duplicated. Without packing, each document is its
own row, and a document longer than ``max_seq_len`` is split into consecutive rows.
Every row also stores ``position_ids`` that restart at 0 where a document (or the row)
starts, which is what lets the model keep packed documents apart (transformers derives a
block-causal mask from them), and ``n_targets``: the tokens the shifted loss reads, i.e.
labelled tokens that do not start a document or the row (the first token of a document is
never predicted from the previous document). Counting them once here saves recounting
labels at every step. Rows without a single target teach nothing and make a batch's mean
loss NaN, so they are dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa

from tui_trainer.data.prep.tokenize import IGNORE_INDEX, TOKEN_LIST

_READ_BATCH = 2048
PACKED_ROW_SCHEMA = pa.schema(
    [("input_ids", TOKEN_LIST), ("labels", TOKEN_LIST), ("position_ids", TOKEN_LIST), ("n_targets", pa.int32())]
)
"""Columns of the rows in the cache (documents before packing have only input_ids and labels)."""


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
    """Rows dropped because they have no target (see the module docstring)."""
    dropped_tokens: int
    """Tokens in the dropped rows."""


class Packer:
    """Streams flat, aligned token arrays in (ids, labels, ...) and full ``max_seq_len`` rows out.

    ``finish`` returns the rest. Any number of aligned streams may be packed together;
    the first call fixes how many.
    """

    def __init__(self, max_seq_len: int) -> None:
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        self.max_seq_len = max_seq_len
        self._rest: list[np.ndarray] = [np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)]

    def add(self, ids: np.ndarray, labels: np.ndarray, *more: np.ndarray) -> tuple[np.ndarray, ...]:
        """Append tokens; return the rows completed so far as (n, max_seq_len) arrays, one per stream."""
        new = [np.asarray(a, dtype=np.int32) for a in (ids, labels, *more)]
        if len(new) != len(self._rest):
            self._rest = self._rest[:2] + [np.empty(0, dtype=np.int32) for _ in more]
        streams = [np.concatenate([old, a]) for old, a in zip(self._rest, new, strict=True)]
        if any(s.shape != streams[0].shape for s in streams):
            raise ValueError(f"ids and labels differ in length: {[s.shape for s in streams]}")
        full = len(streams[0]) // self.max_seq_len * self.max_seq_len
        self._rest = [s[full:] for s in streams]
        return tuple(s[:full].reshape(-1, self.max_seq_len) for s in streams)

    def finish(self) -> tuple[np.ndarray, ...]:
        """The final partial row (possibly empty), one array per stream."""
        rest = tuple(self._rest)
        self._rest = [r[:0] for r in self._rest]
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


def _starts(lengths: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def positions_within(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ... restarting at every segment of ``lengths`` (flat, int32)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    flat = np.arange(int(lengths.sum()), dtype=np.int64)
    return (flat - np.repeat(_starts(lengths), lengths)).astype(np.int32)


class _RowWriter:
    """Writes (values, lengths) row batches with their targets counted, dropping rows without any."""

    def __init__(self, path: Path) -> None:
        self.writer = pa.ipc.new_stream(str(path), PACKED_ROW_SCHEMA)
        self.rows = self.tokens = self.loss_tokens = self.dropped_rows = self.dropped_tokens = 0

    def write(self, ids: np.ndarray, labels: np.ndarray, positions: np.ndarray, lengths: np.ndarray) -> None:
        if not len(lengths):
            return
        starts = _starts(lengths)  # rows are never empty
        labelled = labels != IGNORE_INDEX
        loss = np.add.reduceat(labelled.astype(np.int64), starts)
        # Token t is predicted from tokens < t of its own document, so a document's (and the row's) first
        # token is never a target: its position is 0.
        targets = np.add.reduceat((labelled & (positions != 0)).astype(np.int64), starts)
        keep = targets > 0
        if not keep.all():
            token_keep = np.repeat(keep, lengths)
            self.dropped_rows += int((~keep).sum())
            self.dropped_tokens += int(lengths[~keep].sum())
            ids, labels, positions = ids[token_keep], labels[token_keep], positions[token_keep]
            lengths, loss, targets = lengths[keep], loss[keep], targets[keep]
        if not len(lengths):
            return
        columns = [_list_array(a, lengths) for a in (ids, labels, positions)]
        columns.append(pa.array(targets.astype(np.int32), type=pa.int32()))
        self.writer.write_batch(pa.record_batch(columns, schema=PACKED_ROW_SCHEMA))
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


def _row_positions(doc_positions: np.ndarray) -> np.ndarray:
    """Positions in packed (n, max_seq_len) rows: a document carried over from the previous row restarts at 0."""
    return np.minimum(doc_positions, np.arange(doc_positions.shape[-1], dtype=np.int32))


def write_rows(docs: datasets.Dataset, path: Path, max_seq_len: int, packing: bool) -> RowStats:
    """Pack (or split) the documents of ``docs`` into rows written to the Arrow stream file ``path``."""
    out = _RowWriter(path)
    packer = Packer(max_seq_len)
    for ids, labels, lengths in _doc_batches(docs):
        if packing:
            rows_ids, rows_labels, rows_pos = packer.add(ids, labels, positions_within(lengths))
            n = len(rows_ids)
            lengths_out = np.full(n, max_seq_len, dtype=np.int64)
            out.write(rows_ids.reshape(-1), rows_labels.reshape(-1), _row_positions(rows_pos).reshape(-1), lengths_out)
        else:
            row_lengths = split_long(lengths, max_seq_len)
            out.write(ids, labels, positions_within(row_lengths), row_lengths)
    tail_ids, tail_labels, *tail_pos = packer.finish()
    if len(tail_ids):
        out.write(tail_ids, tail_labels, _row_positions(tail_pos[0]), np.array([len(tail_ids)], dtype=np.int64))
    return out.close()
