"""Packing: no token lost or duplicated, labels stay aligned, the final partial row is kept."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.data.prep.packing import Packer, pack, split_long, write_rows
from tui_trainer.data.prep.tokenize import FEATURES, IGNORE_INDEX


def doc(start: int, n: int, masked: int = 0) -> tuple[list[int], list[int]]:
    ids = list(range(start, start + n))
    return ids, [IGNORE_INDEX] * masked + ids[masked:]


def flat(rows, part: int) -> list[int]:
    return [t for row in rows for t in row[part]]


def test_packed_rows_are_full_except_the_last():
    docs = [doc(0, 5), doc(100, 7, masked=2), doc(200, 3)]
    rows = pack(docs, 4)
    assert [len(ids) for ids, _ in rows] == [4, 4, 4, 3]
    assert flat(rows, 0) == flat(docs, 0) and flat(rows, 1) == flat(docs, 1)
    assert rows[1] == ([4, 100, 101, 102], [4, IGNORE_INDEX, IGNORE_INDEX, 102])


def test_without_packing_each_document_is_its_own_row_and_long_ones_split():
    rows = pack([doc(0, 5), doc(100, 2)], 4, packing=False)
    assert [ids for ids, _ in rows] == [[0, 1, 2, 3], [4], [100, 101]]


def test_split_long_lengths():
    assert split_long(np.array([5, 4, 9, 1]), 4).tolist() == [4, 1, 4, 4, 4, 1, 1]
    assert split_long(np.array([], dtype=np.int64), 4).tolist() == []


def test_packer_streams_across_calls():
    p = Packer(3)
    a, _ = p.add(np.arange(2), np.arange(2))
    b, _ = p.add(np.arange(2, 7), np.arange(2, 7))
    tail, _ = p.finish()
    assert a.shape == (0, 3) and b.tolist() == [[0, 1, 2], [3, 4, 5]] and tail.tolist() == [6]
    assert p.finish()[0].tolist() == []


docs_strategy = st.lists(
    st.tuples(st.integers(1, 40), st.integers(0, 40)), min_size=0, max_size=25
)


@settings(max_examples=150, deadline=None)
@given(docs_strategy, st.integers(1, 33), st.booleans())
def test_property_no_token_lost_or_duplicated_and_labels_aligned(spec, max_seq_len, packing):
    docs, start = [], 0
    for n, masked in spec:
        docs.append(doc(start, n, masked=min(masked, n)))
        start += n  # every token id is unique, so a duplicate or a loss would show
    rows = pack(docs, max_seq_len, packing=packing)
    assert flat(rows, 0) == flat(docs, 0)
    assert flat(rows, 1) == flat(docs, 1)
    assert all(1 <= len(ids) <= max_seq_len and len(ids) == len(labels) for ids, labels in rows)
    # every label is either masked or the id at its own position
    assert all(lab in (IGNORE_INDEX, t) for ids, labels in rows for t, lab in zip(ids, labels))
    if packing:
        assert all(len(ids) == max_seq_len for ids, _ in rows[:-1])
    else:
        assert len(rows) == sum(-(-n // max_seq_len) for n, _ in spec)


def _docs_dataset(docs) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"input_ids": [d[0] for d in docs], "labels": [d[1] for d in docs]}, features=FEATURES
    )


@pytest.mark.parametrize("packing", [True, False])
def test_write_rows_matches_pack_and_reports_stats(tmp_path, packing):
    docs = [doc(i * 50, 3 + i % 11, masked=i % 3) for i in range(300)]
    stats = write_rows(_docs_dataset(docs), tmp_path / "rows.arrow", 16, packing)
    out = datasets.Dataset.from_file(str(tmp_path / "rows.arrow"))
    expected = pack(docs, 16, packing=packing)
    assert list(zip(out["input_ids"], out["labels"])) == [(list(a), list(b)) for a, b in expected]
    assert stats.rows == len(expected) and stats.tokens == sum(len(d[0]) for d in docs)
    assert stats.loss_tokens == sum(lab != IGNORE_INDEX for d in docs for lab in d[1])
    assert stats.dropped_rows == 0


def test_rows_without_loss_tokens_are_dropped_and_counted(tmp_path):
    docs = [doc(0, 10, masked=10), doc(100, 4)]  # first row (8 tokens) is all prompt
    stats = write_rows(_docs_dataset(docs), tmp_path / "rows.arrow", 8, True)
    out = datasets.Dataset.from_file(str(tmp_path / "rows.arrow"))
    assert out["input_ids"] == [[8, 9, 100, 101, 102, 103]]
    assert (stats.rows, stats.dropped_rows, stats.dropped_tokens, stats.tokens) == (1, 1, 8, 6)


def test_a_row_whose_only_label_is_its_first_token_is_dropped(tmp_path):
    # the shifted loss never reads position 0, so [8, -100, -100, -100] has nothing to learn
    docs = [doc(0, 9, masked=8), doc(100, 3, masked=3)]
    stats = write_rows(_docs_dataset(docs), tmp_path / "rows.arrow", 8, True)
    assert (stats.rows, stats.dropped_rows, stats.dropped_tokens) == (0, 2, 12)


def test_empty_document_set_writes_an_empty_file(tmp_path):
    stats = write_rows(_docs_dataset([]), tmp_path / "rows.arrow", 8, True)
    assert stats.rows == 0 and len(datasets.Dataset.from_file(str(tmp_path / "rows.arrow"))) == 0


def _doc_of(token: int, docs) -> int:
    return next(i for i, (ids, _) in enumerate(docs) if token in ids)


@settings(max_examples=80, deadline=None)
@given(docs_strategy, st.integers(2, 33), st.booleans())
def test_property_positions_restart_per_document_and_row_and_targets_are_counted(tmp_path_factory, spec, max_seq_len, packing):
    docs, start = [], 0
    for n, masked in spec:
        docs.append(doc(start, n, masked=min(masked, n)))
        start += n
    path = tmp_path_factory.mktemp("rows") / "rows.arrow"
    write_rows(_docs_dataset(docs), path, max_seq_len, packing)
    out = datasets.Dataset.from_file(str(path))
    for ids, labels, positions, n_targets in zip(out["input_ids"], out["labels"], out["position_ids"], out["n_targets"]):
        assert positions[0] == 0
        for j in range(1, len(ids)):
            same_doc = _doc_of(ids[j], docs) == _doc_of(ids[j - 1], docs)
            assert positions[j] == (positions[j - 1] + 1 if same_doc else 0)
        assert n_targets == sum(lab != IGNORE_INDEX and pos != 0 for lab, pos in zip(labels, positions)) > 0


def test_the_first_token_of_a_packed_document_is_no_target(tmp_path):
    # rows of 8: [0..4] + [100, 101, 102]; 100 starts a document, so it is not predicted from 4
    write_rows(_docs_dataset([doc(0, 5), doc(100, 3)]), tmp_path / "rows.arrow", 8, True)
    out = datasets.Dataset.from_file(str(tmp_path / "rows.arrow"))
    assert out["position_ids"] == [[0, 1, 2, 3, 4, 0, 1, 2]]
    assert out["n_targets"] == [4 + 2]
