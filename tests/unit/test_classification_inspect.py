"""The datasets screen's look at a classification dataset: rows per label, split and capped as training does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.config.schema import DatasetSpec
from tui_trainer.errors import DataError
from tui_trainer.tasks.classification.inspect import inspect_classes
from tui_trainer.tasks.classification.split import cap_per_class, stratified_split


def _records(path: Path, counts: dict[str, int]) -> Path:
    rows = [{"text": f"{label} {i}", "label": label} for label, n in counts.items() for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_counts_imbalance_and_the_cap_match_what_training_keeps(tmp_path):
    path = _records(tmp_path / "d.jsonl", {"b": 30, "a": 6, "c": 12})
    preview = inspect_classes(DatasetSpec(name="d", path=str(path)), ClassificationSection(max_samples_per_class=8),
                              eval_fraction=0.2, seed=3)  # fmt: skip
    c = preview.classes
    assert c.labels == ("a", "b", "c") and c.counts == (6, 30, 12) and preview.rows == 48
    assert c.imbalance == pytest.approx(5.0)
    # The training split and the cap, recomputed with training's own functions on the same ids and seed.
    ids = np.repeat([1, 0, 2], [30, 6, 12])
    train, _ = stratified_split(ids, 0.2, 3)
    kept = cap_per_class(ids, train, 8, 3)
    assert c.train == tuple(int((ids[train] == k).sum()) for k in range(3)) == (5, 24, 10)
    assert c.kept == tuple(int((ids[kept] == k).sum()) for k in range(3)) == (5, 8, 8)
    assert c.imbalance_kept == pytest.approx(8 / 5)
    assert preview.shape.kind == "text_classification" and preview.est_tokens == 0


def test_fixed_labels_order_and_an_unknown_label_is_named(tmp_path):
    path = _records(tmp_path / "d.jsonl", {"x": 3, "y": 2})
    preview = inspect_classes(DatasetSpec(name="d", path=str(path)), ClassificationSection(labels=["y", "x"]),
                              eval_fraction=0.0, seed=0)  # fmt: skip
    assert preview.classes.labels == ("y", "x") and preview.classes.counts == (2, 3)
    assert preview.classes.kept == preview.classes.train == (2, 3)  # no cap, no eval split
    with pytest.raises(DataError, match=r"d\.jsonl:1: label 'x' is not in classification.labels"):
        inspect_classes(DatasetSpec(name="d", path=str(path)), ClassificationSection(labels=["y", "z"]),
                        eval_fraction=0.0, seed=0)  # fmt: skip
