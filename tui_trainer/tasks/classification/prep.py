"""Classification datasets into the Arrow cache: split, cap, then tokens or pixels per row.

The eval split is drawn first, per class, from all of a dataset's records; the cap
(``max_samples_per_class``) then applies to the training side only. So capped and full
runs of the same data are scored on the same held-out rows, and their metrics compare.

Images are stored resized but not normalized, as uint8 (a quarter of float32's size);
:mod:`collate` applies the processor's rescale and mean/std when a batch is built.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.config.schema import DatasetSpec, RunConfig
from tui_trainer.data.prep import cache
from tui_trainer.data.prep.prepare import PreparedDataset, PrepStats
from tui_trainer.errors import DataError
from tui_trainer.tasks.classification.data import LabeledRecords, encode_labels, read_labeled
from tui_trainer.tasks.classification.images import pixel_values
from tui_trainer.tasks.classification.split import ClassCounts, cap_per_class, class_counts, label_order, stratified_split

IMAGE_BATCH = 256
"""Images decoded and resized at a time: bounded memory on FER2013-sized folders."""


@dataclass(frozen=True)
class Encoder:
    """What turns one dataset's inputs into row columns: a tokenizer or an image processor."""

    kind: str
    """text | image."""
    fingerprint: str
    """Changes whenever the rows it produces would change."""
    tokenizer: Any = None
    """text: the model's tokenizer."""
    processor: Any = None
    """image: resize-only processor (rescale and normalize happen at collate time)."""
    max_seq_len: int = 512
    """text: truncation length."""


def read_all(cfg: RunConfig) -> list[LabeledRecords]:
    section = cfg.classification or ClassificationSection()
    return [
        read_labeled(
            spec.path,
            text_field=spec.text_field or "text",
            label_field=section.label_field,
            image_field=section.image_field,
        )
        for spec in cfg.data.datasets
    ]


def resolve_labels(cfg: RunConfig, records: Sequence[LabeledRecords]) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """The label order of the whole run and every dataset's class ids in it."""
    section = cfg.classification or ClassificationSection()
    seen = [label for r in records for label in r.labels]
    order = label_order(seen, section.labels)
    ids = [encode_labels(r, order) for r in records]
    present = sorted({int(i) for a in ids for i in np.unique(a)})
    if len(present) < 2:
        only = order[present[0]] if present else "(none)"
        raise DataError(
            f"data.datasets: every record has the label {only!r}; classification needs at least two classes"
        )
    missing = [order[c] for c in range(len(order)) if c not in present]
    if missing:
        raise DataError(
            f"classification.labels lists {', '.join(map(repr, missing))} but no record has it; "
            "remove it from classification.labels or add records with it"
        )
    return order, ids


def _key(spec: DatasetSpec, cfg: RunConfig, order: Sequence[str], encoder: Encoder, records: LabeledRecords) -> str:
    section = cfg.classification or ClassificationSection()
    digest = hashlib.sha256()
    if records.column is not None:
        digest.update(records.column.fingerprint().encode())
    for value, label in zip(records.inputs, records.labels, strict=True):
        digest.update(value.encode("utf-8", "surrogatepass") + b"\0" + label.encode() + b"\0")
        if records.kind == "image" and records.column is None:
            st = Path(value).stat()
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    parts = {
        "task": "classification-3",
        "version": cache.FORMAT_VERSION,
        "records": digest.hexdigest(),
        "labels": list(order),
        "encoder": encoder.fingerprint,
        "cap": section.max_samples_per_class,
        "eval_fraction": cfg.data.eval_fraction,
        "seed": cfg.run.seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def prepare_one(
    spec: DatasetSpec, cfg: RunConfig, records: LabeledRecords, ids: np.ndarray, order: Sequence[str],
    encoder: Encoder, cache_root: Path,
) -> tuple[PreparedDataset, ClassCounts]:
    start = time.perf_counter()
    if records.kind != encoder.kind:
        raise DataError(
            f"dataset {spec.name!r} ({spec.path}) holds {records.kind} but model.name_or_path is a "
            f"{encoder.kind} model; use an {'image' if records.kind == 'image' else 'text'} classification model"
        )
    section = cfg.classification or ClassificationSection()
    key = _key(spec, cfg, order, encoder, records)
    entry = cache.entry_dir(cache_root, spec.name, key)
    meta = cache.read_entry(entry, key)
    cached = meta is not None
    if meta is None:
        train_rows, eval_rows = stratified_split(ids, cfg.data.eval_fraction, cfg.run.seed)
        # Shuffled, so that the prefix train.eval_max_rows evaluates is a sample of every class, not of the first files.
        eval_rows = np.random.default_rng(cfg.run.seed + 2).permutation(eval_rows)
        kept = cap_per_class(ids, train_rows, section.max_samples_per_class, cfg.run.seed)
        n = len(order)
        counts = ClassCounts(
            tuple(order), class_counts(ids, train_rows, n), class_counts(ids, kept, n), class_counts(ids, eval_rows, n)
        )
        with cache.building(entry, key) as tmp:
            train_work = _write(tmp / cache.TRAIN_FILE, records, ids, kept, encoder)
            eval_work = _write(tmp / cache.EVAL_FILE, records, ids, eval_rows, encoder)
            meta = {
                "key": key, "version": cache.FORMAT_VERSION, "source": str(spec.path), "kind": records.kind,
                "records": len(ids), "train_rows": len(kept), "eval_rows": len(eval_rows),
                "train_work": train_work, "eval_work": eval_work, "classes": counts.to_dict(),
            }
            cache.write_meta(tmp, meta)
        gc.collect()
    classes = meta["classes"]
    counts = ClassCounts(
        tuple(classes["labels"]),
        tuple(classes["train_before_cap"].values()),
        tuple(classes["train_after_cap"].values()),
        tuple(classes["eval"].values()),
    )
    stats = PrepStats(
        name=spec.name, source=meta["source"], shape=f"{meta['kind']}_classification", rows=meta["records"],
        tokens=meta["train_work"], loss_tokens=meta["train_rows"], packed_rows=meta["train_rows"], efficiency=1.0,
        eval_rows=meta["eval_rows"], cache_path=str(entry), seconds=time.perf_counter() - start, cached=cached,
        records=meta["records"], eval_tokens=meta["eval_work"], max_seq_len=encoder.max_seq_len, packing=False,
    )
    train = datasets.Dataset.from_file(str(entry / cache.TRAIN_FILE))
    held = datasets.Dataset.from_file(str(entry / cache.EVAL_FILE))
    return PreparedDataset(spec.name, train, held, stats), counts


def _write(path: Path, records: LabeledRecords, ids: np.ndarray, rows: np.ndarray, encoder: Encoder) -> int:
    """Write ``rows`` (in order) to an Arrow stream file; returns their work (tokens, or images)."""
    labels = pa.array(ids[rows], type=pa.int64())
    # One target per row: the engine's loss count (see task.py on the class weights).
    ones = pa.array(np.ones(len(rows), dtype=np.int64))
    if encoder.kind == "text":
        texts = [records.inputs[int(r)] for r in rows]
        encoded = encoder.tokenizer(texts, truncation=True, max_length=encoder.max_seq_len)["input_ids"] if texts else []
        table = pa.table({"input_ids": pa.array(encoded, type=pa.list_(pa.int32())), "label": labels, "n_targets": ones})
        work = sum(len(e) for e in encoded)
    else:
        chunks = []
        for start in range(0, len(rows), IMAGE_BATCH):
            paths = records.image_sources(rows[start : start + IMAGE_BATCH])
            pixels = np.clip(np.rint(pixel_values(paths, encoder.processor, do_rescale=False, do_normalize=False)), 0, 255).astype(np.uint8)
            chunks.append(pixels.reshape(len(paths), -1))
        flat = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.uint8)
        column = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), type=pa.uint8()), flat.shape[1] or 1)
        table = pa.table({"pixels": column, "label": labels, "n_targets": ones})
        work = len(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return int(work)
