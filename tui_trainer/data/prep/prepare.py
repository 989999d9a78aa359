"""Preparation: one dataset at a time, records -> tokenized, split, packed rows in the Arrow cache.

Each dataset is loaded, tokenized and packed inside its own work directory, written to
the cache, and released before the next one starts; what is returned is memory-mapped
from the cache. Peak memory is therefore that of the largest dataset, not of the sum.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from tui_trainer import paths
from tui_trainer.config.schema import DataSection, DatasetSpec, RunConfig
from tui_trainer.data.prep import cache
from tui_trainer.data.prep.packing import write_rows
from tui_trainer.data.prep.shapes import detect_shape
from tui_trainer.data.sources import load_records, resolve_source
from tui_trainer.data.prep.tokenize import tokenize_dataset
from tui_trainer.errors import DataError


@dataclass(frozen=True)
class PrepStats:
    """What preparing one dataset produced."""

    name: str
    """Dataset name from the config."""
    source: str
    """The file, directory or hub id read (demo names resolved to their file)."""
    shape: str
    """Record shape: text | prompt_completion | messages | pretokenized."""
    rows: int
    """Raw records that became documents (train and eval)."""
    tokens: int
    """Real (non-padding) tokens in the training rows."""
    loss_tokens: int
    """Training tokens with a label (not -100)."""
    packed_rows: int
    """Training rows of at most max_seq_len tokens."""
    efficiency: float
    """tokens / (packed_rows * max_seq_len): 1.0 means no padding at all."""
    eval_rows: int
    """Rows held out for evaluation."""
    cache_path: str
    """The cache entry directory holding train.arrow and eval.arrow."""
    seconds: float
    """Time this call took (building, or loading from the cache)."""
    cached: bool
    """True when the rows came from the cache."""
    records: int = 0
    """Raw records read from the source."""
    skipped_records: int = 0
    """Records with nothing to train on (empty text or completion, chats without assistant turns)."""
    dropped_rows: int = 0
    """Rows dropped because none of their tokens carries loss (e.g. all prompt)."""
    eval_tokens: int = 0
    """Real tokens in the eval rows."""
    max_seq_len: int = 0
    """Row length used."""
    packing: bool = True
    """Whether documents were packed."""


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared dataset, memory-mapped from the cache."""

    name: str
    """Dataset name from the config."""
    train: datasets.Dataset
    """Training rows: input_ids, labels, position_ids (restarting per document) and n_targets."""
    eval: datasets.Dataset
    """Held-out rows (possibly none), same columns."""
    stats: PrepStats
    """Counts, efficiency and where the cache entry lives."""


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, eval) document indices, each sorted; eval gets >= 1 document when fraction > 0 and n >= 2."""
    n_eval = 0
    if fraction > 0 and n >= 2:
        n_eval = min(n - 1, max(1, round(n * fraction)))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """datasets' tqdm bars would scribble over the TUI; the caller reports progress itself."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _build(spec: DatasetSpec, source: str, data: DataSection, tokenizer: Any, seed: int, out: Path) -> dict:
    work = out / "work"
    records = load_records(spec, work_dir=work / "records")
    n_records = len(records)
    shape = detect_shape(records.column_names, spec, source)
    docs = tokenize_dataset(records, shape, tokenizer, source=source, cache_file=work / "tokens.arrow")
    del records
    n_docs = len(docs)
    if n_docs == 0:
        raise DataError(
            f"dataset {spec.name!r} ({source}): zero usable rows: all {n_records} records have empty "
            f"{' / '.join(shape.fields.values())} (or chats without an assistant turn)"
        )
    train_idx, eval_idx = split_indices(n_docs, data.eval_fraction, seed)
    train_docs = docs.select(train_idx) if len(eval_idx) else docs
    train = write_rows(train_docs, out / cache.TRAIN_FILE, data.max_seq_len, data.packing)
    held = write_rows(docs.select(eval_idx), out / cache.EVAL_FILE, data.max_seq_len, data.packing)
    del docs, train_docs
    gc.collect()  # unmap the work files before deleting them
    shutil.rmtree(work, ignore_errors=True)
    if train.rows == 0:
        raise DataError(
            f"dataset {spec.name!r} ({source}): zero usable rows: no training row has a token to learn from "
            f"({train.dropped_rows} rows were all prompt); raise data.max_seq_len or shorten the prompts"
        )
    return {
        "shape": shape.kind,
        "fields": shape.fields,
        "records": n_records,
        "rows": n_docs,
        "skipped_records": n_records - n_docs,
        "tokens": train.tokens,
        "loss_tokens": train.loss_tokens,
        "packed_rows": train.rows,
        "dropped_rows": train.dropped_rows + held.dropped_rows,
        "eval_rows": held.rows,
        "eval_tokens": held.tokens,
    }


def _load(
    spec: DatasetSpec, entry: Path, meta: dict, data: DataSection, seconds: float, cached: bool
) -> PreparedDataset:
    train = datasets.Dataset.from_file(str(entry / cache.TRAIN_FILE))
    held = datasets.Dataset.from_file(str(entry / cache.EVAL_FILE))
    capacity = meta["packed_rows"] * data.max_seq_len
    stats = PrepStats(
        name=spec.name,
        source=meta["source"],
        shape=meta["shape"],
        rows=meta["rows"],
        tokens=meta["tokens"],
        loss_tokens=meta["loss_tokens"],
        packed_rows=meta["packed_rows"],
        efficiency=meta["tokens"] / capacity if capacity else 0.0,
        eval_rows=meta["eval_rows"],
        cache_path=str(entry),
        seconds=seconds,
        cached=cached,
        records=meta["records"],
        skipped_records=meta["skipped_records"],
        dropped_rows=meta["dropped_rows"],
        eval_tokens=meta["eval_tokens"],
        max_seq_len=data.max_seq_len,
        packing=data.packing,
    )
    return PreparedDataset(name=spec.name, train=train, eval=held, stats=stats)


def prepare_dataset(
    spec: DatasetSpec, data: DataSection, tokenizer: Any, *, seed: int, cache_root: Path | None = None
) -> PreparedDataset:
    """Tokenize, split and pack one dataset into the cache (or load it from there)."""
    start = time.perf_counter()
    root = Path(cache_root) if cache_root is not None else paths.cache_dir()
    source = resolve_source(spec, offline_ok=True)
    key = cache.cache_key(source, spec, data, tokenizer, seed)
    entry = cache.entry_dir(root, spec.name, key)
    meta = cache.read_entry(entry, key)
    cached = meta is not None
    if meta is None:
        with _quiet_progress(), cache.building(entry, key) as tmp:
            meta = {"key": key, "version": cache.FORMAT_VERSION, "source": source.path}
            meta.update(_build(spec, source.path, data, tokenizer, seed, tmp))
            meta["build_seconds"] = round(time.perf_counter() - start, 3)
            cache.write_meta(tmp, meta)
    try:
        return _load(spec, entry, meta, data, time.perf_counter() - start, cached)
    except Exception:
        if not cached:
            raise
    # A cache entry that cannot be read (disk trouble, a partial copy): rebuild it once.
    shutil.rmtree(entry, ignore_errors=True)
    return prepare_dataset(spec, data, tokenizer, seed=seed, cache_root=cache_root)


def prepare_all(
    cfg: RunConfig, tokenizer: Any, *,
    cache_root: Path | None = None, on_prepared: Callable[[PrepStats], None] | None = None,
) -> list[PreparedDataset]:
    """Prepare the config's datasets one after another, handing each one's stats to
    ``on_prepared`` as it is ready (the engine turns them into ``dataset_prepared`` events)."""
    prepared = []
    for spec in cfg.data.datasets:
        ds = prepare_dataset(spec, cfg.data, tokenizer, seed=cfg.run.seed, cache_root=cache_root)
        prepared.append(ds)  # a fresh one's work buffers were collected inside prepare_dataset
        if on_prepared is not None:
            on_prepared(ds.stats)
    return prepared
