"""Rows -> padded tensors; fetch_batch keeps the requested order across datasets and splits."""

from __future__ import annotations

import datasets
import pytest
import torch

from tui_trainer.data.batches import collate, fetch_batch
from tui_trainer.data.prep.prepare import PreparedDataset
from tui_trainer.data.prep.tokenize import FEATURES

PAD = 0


def test_collate_right_pads_and_masks():
    out = collate([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}], PAD)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert all(t.dtype == torch.long for t in out.values())


def test_collate_accepts_columns_and_defaults_labels_to_ids():
    out = collate({"input_ids": [[1, 2], [3, 4]]}, PAD)
    assert out["labels"].tolist() == [[1, 2], [3, 4]] and out["attention_mask"].all()


def test_collate_rejects_misaligned_labels():
    with pytest.raises(ValueError, match="as many labels"):
        collate([{"input_ids": [1, 2], "labels": [1]}], PAD)


def _prepared(name: str, base: int, n: int) -> PreparedDataset:
    """Row i of a split holds the id base+i repeated 1-4 times (its label masks the first)."""

    def split(offset: int, count: int) -> datasets.Dataset:
        rows = [[base + offset + i] * (1 + i % 4) for i in range(count)]
        return datasets.Dataset.from_dict({"input_ids": rows, "labels": [[-100] + r[1:] for r in rows]}, features=FEATURES)

    return PreparedDataset(name=name, train=split(0, n), eval=split(500, 3), stats=None)


def test_fetch_batch_keeps_the_requested_order():
    prepared = [_prepared("a", 1000, 10), _prepared("b", 2000, 6)]
    items = [(1, 5), (0, 2), (1, 0), (0, 9), (0, 2)]
    out = fetch_batch(prepared, items, PAD)
    expected = collate([prepared[d].train[r] for d, r in items], PAD)
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(out[key], expected[key]), key
    assert out["input_ids"][:, 0].tolist() == [2005, 1002, 2000, 1009, 1002]


def test_fetch_batch_eval_split_and_selected_views():
    prepared = [_prepared("a", 1000, 10)]
    assert fetch_batch(prepared, [(0, 2), (0, 0)], PAD, split="eval")["input_ids"][:, 0].tolist() == [1502, 1500]
    shuffled = PreparedDataset("s", prepared[0].train.select([9, 8, 7]), prepared[0].eval, None)
    assert fetch_batch([shuffled], [(0, 0), (0, 2)], PAD)["input_ids"][:, 0].tolist() == [1009, 1007]


def test_fetch_batch_out_of_range_row():
    prepared = [_prepared("a", 1000, 4)]
    with pytest.raises(IndexError, match="row 4 is out of range"):
        fetch_batch(prepared, [(0, 4)], PAD)
