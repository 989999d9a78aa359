"""The dataset screen's cheap preview: format, shape, rows, token estimate, first records."""

from __future__ import annotations

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit.data_fixtures import spec, tiny_tokenizer, write_jsonl  # noqa: F401
from tui_trainer.data.inspect import inspect_dataset
from tui_trainer.data.prep.shapes import RecordShape
from tui_trainer.errors import DataError


def test_jsonl_preview(tmp_path):
    records = [{"text": f"line {i}\nsecond half", "id": i} for i in range(12)]
    p = write_jsonl(tmp_path / "a.jsonl", records)
    (tmp_path / "a.jsonl").write_text(p.read_text() + "\n\n", encoding="utf-8")  # trailing blank lines
    view = inspect_dataset(spec(p), max_preview=3)
    assert (view.path, view.format, view.rows, view.fields) == (str(p), "jsonl", 12, ("text", "id"))
    assert view.shape == RecordShape("text", {"text": "text"})
    assert view.preview == ("line 0 second half", "line 1 second half", "line 2 second half")
    chars = sum(len(r["text"]) for r in records)
    assert view.est_tokens == round(chars / 4)


def test_token_estimate_uses_the_tokenizer(tmp_path, tiny_tokenizer):
    p = write_jsonl(tmp_path / "a.jsonl", [{"text": "hello world"}] * 10)
    view = inspect_dataset(spec(p), tokenizer=tiny_tokenizer)
    per_doc = len(tiny_tokenizer("hello world", add_special_tokens=False)["input_ids"]) + 1
    assert view.est_tokens == 10 * per_doc


def test_pairs_chats_and_token_ids_get_readable_previews(tmp_path):
    pairs = write_jsonl(tmp_path / "p.jsonl", [{"question": "2+2?", "answer": "4"}])
    chats = write_jsonl(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                               {"role": "assistant", "content": "hello"}]}])
    ids = write_jsonl(tmp_path / "i.jsonl", [{"input_ids": [1, 2, 3]}] * 4)
    assert inspect_dataset(spec(pairs)).preview == ("2+2? → 4",)
    assert inspect_dataset(spec(chats)).preview == ("user: hi | assistant: hello",)
    view = inspect_dataset(spec(ids))
    assert view.shape.kind == "pretokenized" and view.preview[0] == "3 ids: 1 2 3" and view.est_tokens == 12


def test_other_formats(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b", "c"]}), tmp_path / "a.parquet")
    (tmp_path / "a.csv").write_text("prompt,completion\nx,y\nz,w\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("one\n\ntwo\n\nthree\n", encoding="utf-8")
    datasets.Dataset.from_dict({"text": ["s"] * 5}).save_to_disk(str(tmp_path / "saved"))
    d = tmp_path / "dir"
    d.mkdir()
    write_jsonl(d / "x.jsonl", [{"text": "q"}] * 2)
    write_jsonl(d / "y.jsonl", [{"text": "r"}] * 3)
    got = {name: inspect_dataset(spec(tmp_path / name)) for name in ("a.parquet", "a.csv", "a.txt", "saved", "dir")}
    assert {k: (v.format, v.rows, v.shape.kind) for k, v in got.items()} == {
        "a.parquet": ("parquet", 3, "text"),
        "a.csv": ("csv", 2, "prompt_completion"),
        "a.txt": ("txt", 3, "text"),
        "saved": ("saved dataset", 5, "text"),
        "dir": ("directory", 5, "text"),
    }


def test_errors_match_the_full_load(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        inspect_dataset(spec(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl line 2: malformed JSON"):
        inspect_dataset(spec(bad))
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="the file is empty"):
        inspect_dataset(spec(empty))
    p = write_jsonl(tmp_path / "a.jsonl", [{"body": "x"}])
    with pytest.raises(DataError, match="field 'text' not found.*fields: body"):
        inspect_dataset(spec(p, text_field="text"))
