"""The wizard's and datasets screen's training-row estimate per dataset (ui/plan_preview.estimated_rows)."""

from __future__ import annotations

from tui_trainer.config.schema import config_from_dict
from tui_trainer.data.inspect import ClassDistribution, DatasetPreview
from tui_trainer.data.prep.shapes import RecordShape


def _cfg(**data):
    return config_from_dict(
        {
            "run": {"name": "x"},
            "data": {"max_seq_len": 100, "eval_fraction": 0.1, "datasets": [{"name": "a", "path": "a.jsonl"}], **data},
        }
    )


def _preview(rows: int, est_tokens: int = 0, classes: ClassDistribution | None = None) -> DatasetPreview:
    return DatasetPreview(
        path="a.jsonl", format="jsonl", shape=RecordShape("text", {}), rows=rows, est_tokens=est_tokens,
        preview=(), fields=(), classes=classes,
    )


def test_packed_rows_come_from_the_tokens_and_unpacked_from_the_records():
    from tui_trainer.ui.plan_preview import estimated_rows

    assert estimated_rows(_cfg(packing=True), [_preview(50, est_tokens=10_000)]) == [90]  # 100 rows, 10% held out
    assert estimated_rows(_cfg(packing=False), [_preview(50, est_tokens=10_000)]) == [45]
    assert estimated_rows(_cfg(), [_preview(50), None]) is None


def test_a_classification_preview_counts_the_rows_the_cap_keeps():
    from tui_trainer.ui.plan_preview import estimated_rows

    classes = ClassDistribution(
        labels=("a", "b"), counts=(900, 100), train=(810, 90), kept=(100, 90), cap=100, imbalance=9.0, imbalance_kept=1.11
    )
    # 1,000 records, but the split and the cap of 100 per class leave 190 training rows.
    assert estimated_rows(_cfg(packing=True), [_preview(1000, classes=classes)]) == [190]
