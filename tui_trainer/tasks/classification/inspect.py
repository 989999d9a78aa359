"""A classification dataset as the datasets screen shows it: rows per label, the imbalance, the cap.

The labels are read as training reads them (data.read_labeled: the same fields, the same
errors), but nothing is decoded or tokenized; the split and the cap are the training
ones (split.stratified_split, split.cap_per_class), so "keeps N" is what the run keeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.config.schema import DatasetSpec
from tui_trainer.data.inspect import ClassDistribution, DatasetPreview
from tui_trainer.data.prep.shapes import RecordShape
from tui_trainer.tasks.classification.data import LabeledRecords, encode_labels, read_labeled
from tui_trainer.tasks.classification.split import cap_per_class, class_counts, imbalance_ratio, label_order, stratified_split

PREVIEW_ROWS = 5


def inspect_classes(spec: DatasetSpec, section: ClassificationSection, *, eval_fraction: float, seed: int) -> DatasetPreview:
    """Rows per label of ``spec``'s dataset, split and capped as training would; bad input is a DataError."""
    records = read_labeled(
        spec.path, text_field=spec.text_field or "text", label_field=section.label_field, image_field=section.image_field
    )
    order = label_order(records.labels, section.labels)
    ids = encode_labels(records, order)
    n = len(order)
    train, _ = stratified_split(ids, eval_fraction, seed)
    kept = cap_per_class(ids, train, section.max_samples_per_class, seed)
    counts = class_counts(ids, np.arange(len(ids)), n)
    kept_counts = class_counts(ids, kept, n)
    classes = ClassDistribution(
        labels=order,
        counts=counts,
        train=class_counts(ids, train, n),
        kept=kept_counts,
        cap=section.max_samples_per_class,
        imbalance=imbalance_ratio(counts),
        imbalance_kept=imbalance_ratio(kept_counts),
    )
    field = "image" if records.kind == "image" else "text"
    value_field = section.image_field if records.kind == "image" else spec.text_field or "text"
    return DatasetPreview(
        path=str(spec.path),
        format=_format(records, Path(spec.path)),
        shape=RecordShape(f"{records.kind}_classification", {field: value_field, "label": section.label_field}),
        rows=len(ids),
        est_tokens=0,
        preview=tuple(_line(records, i) for i in range(min(PREVIEW_ROWS, len(ids)))),
        fields=(value_field, section.label_field),
        classes=classes,
    )


def _format(records: LabeledRecords, path: Path) -> str:
    if str(path).startswith("demo:"):
        return "demo"
    if records.column is not None:
        return "parquet" if path.suffix.lower() == ".parquet" else "saved dataset"
    if records.kind == "image" and path.is_dir() and records.origins and records.origins[0] == records.inputs[0]:
        return "image folder"
    return path.suffix.lstrip(".") or "directory"


def _line(records: LabeledRecords, row: int) -> str:
    shown = records.origins[row] if records.kind == "image" else " ".join(records.inputs[row].split())[:120]
    return f"{records.labels[row]}: {shown}"
