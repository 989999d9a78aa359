"""Every source format, and every bad input with the file (and line) named in the message."""

from __future__ import annotations

import json
import os

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit.data_fixtures import spec, write_jsonl
from tui_trainer.data import sources
from tui_trainer.data.prep import arrow_sink
from tui_trainer.data.sources import load_records, resolve_source
from tui_trainer.errors import DataError, UserError


def rows(ds: datasets.Dataset) -> list[dict]:
    return ds.to_list()


def load_error(path, **fields) -> str:
    with pytest.raises(DataError) as info:
        load_records(spec(path, **fields))
    assert isinstance(info.value, UserError)
    return str(info.value)


# --- formats ---------------------------------------------------------------------------------


def test_jsonl_skips_blank_lines_and_bom(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"text": "one"}\n\n   \n{"text": "two", "n": 2}\n')
    assert rows(load_records(spec(p))) == [{"text": "one", "n": None}, {"text": "two", "n": 2}]


def test_json_list_and_wrapped_list(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"text": "x"}, {"text": "y"}]))
    (tmp_path / "b.json").write_text(json.dumps({"version": 1, "data": [{"text": "z"}]}))
    assert [r["text"] for r in rows(load_records(spec(tmp_path / "a.json")))] == ["x", "y"]
    assert rows(load_records(spec(tmp_path / "b.json"))) == [{"text": "z"}]


def test_json_with_one_object_per_line_is_read_as_jsonl(tmp_path):
    p = write_jsonl(tmp_path / "lines.json", [{"text": "a"}, {"text": "b"}])
    assert [r["text"] for r in rows(load_records(spec(p)))] == ["a", "b"]


def test_csv_with_quoted_commas_and_newlines(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('prompt,completion\n"a, b",c\n"multi\nline",d\n', encoding="utf-8")
    assert rows(load_records(spec(p))) == [
        {"prompt": "a, b", "completion": "c"},
        {"prompt": "multi\nline", "completion": "d"},
    ]


def test_parquet(tmp_path):
    p = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["p", "q", "r"], "id": [1, 2, 3]}), p)
    assert rows(load_records(spec(p))) == [{"text": "p", "id": 1}, {"text": "q", "id": 2}, {"text": "r", "id": 3}]


def test_txt_one_document_per_blank_line_block(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("first para\nstill first\n\n\nsecond\n  \nthird\n", encoding="utf-8")
    assert [r["text"] for r in rows(load_records(spec(p)))] == ["first para\nstill first", "second", "third"]
    q = tmp_path / "b.txt"
    q.write_text("a single document\nwithout blank lines", encoding="utf-8")
    assert [r["text"] for r in rows(load_records(spec(q)))] == ["a single document\nwithout blank lines"]


def test_saved_dataset_and_dataset_dict(tmp_path):
    datasets.Dataset.from_dict({"text": ["s1", "s2"]}).save_to_disk(str(tmp_path / "single"))
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["t"]}),
        "test": datasets.Dataset.from_dict({"text": ["u"]}),
    })
    dd.save_to_disk(str(tmp_path / "dict"))
    assert resolve_source(spec(tmp_path / "single")).format == "saved dataset"
    assert [r["text"] for r in rows(load_records(spec(tmp_path / "single")))] == ["s1", "s2"]
    assert rows(load_records(spec(tmp_path / "dict"))) == [{"text": "t"}]


def test_saved_dataset_dict_without_train_split(tmp_path):
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict({"text": ["v"]})}).save_to_disk(str(tmp_path / "d"))
    msg = load_error(tmp_path / "d")
    assert msg.startswith(str(tmp_path / "d")) and "no 'train' split" in msg and "validation" in msg


def test_directory_of_data_files_is_concatenated_in_name_order(tmp_path):
    d = tmp_path / "data"
    (d / "sub").mkdir(parents=True)
    write_jsonl(d / "b.jsonl", [{"text": "from b"}])
    write_jsonl(d / "a.jsonl", [{"text": "from a"}])
    (d / "sub" / "c.txt").write_text("from c", encoding="utf-8")
    (d / ".hidden.jsonl").write_text("not json at all", encoding="utf-8")
    (d / "notes.md").write_text("# ignored", encoding="utf-8")
    source = resolve_source(spec(d))
    assert source.kind == "directory" and [p.name for p in source.files] == ["a.jsonl", "b.jsonl", "c.txt"]
    assert [r["text"] for r in rows(load_records(spec(d)))] == ["from a", "from b", "from c"]


def test_demo_name_loads_the_demo_corpus_file(tmp_path, monkeypatch):
    corpus = write_jsonl(tmp_path / "python-code.jsonl", [{"text": "import os"}])
    import tui_trainer.demo.catalog as demo

    monkeypatch.setattr(demo, "demo_corpus_path", lambda name: corpus if name == "demo:python-code" else None)
    source = resolve_source(spec("demo:python-code"))
    assert (source.kind, source.format, source.path) == ("demo", "demo", str(corpus))
    assert rows(load_records(spec("demo:python-code"))) == [{"text": "import os"}]


def test_unknown_demo_name_is_a_data_error():
    with pytest.raises(DataError, match="demo:nope"):
        load_records(spec("demo:nope"))


def test_field_whose_type_changes_between_batches_names_the_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(arrow_sink, "BATCH_ROWS", 2)
    p = write_jsonl(tmp_path / "drift.jsonl", [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}, {"n": "five"}])
    msg = load_error(p)
    assert msg.startswith(f"{p}: field 'n' is string in lines 5-5 but int64 in lines 1-4")


def test_field_that_changes_from_null_to_object_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(arrow_sink, "BATCH_ROWS", 2)
    recs = [{"text": f"t{i}", "meta": None if i < 3 else {"k": i}} for i in range(6)]
    p = write_jsonl(tmp_path / "drift.jsonl", recs)
    assert rows(load_records(spec(p))) == recs


def test_work_dir_receives_the_arrow_files(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    ds = load_records(spec(p), work_dir=tmp_path / "work")
    assert ds.cache_files and all(str(tmp_path / "work") in f["filename"] for f in ds.cache_files)


# --- bad inputs ------------------------------------------------------------------------------


def test_malformed_json_names_the_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n\n{"text": "broken"\n', encoding="utf-8")
    msg = load_error(p)
    assert msg.startswith(f"{p} line 3: malformed JSON")


def test_line_that_is_not_an_object(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n["a", "list"]\n', encoding="utf-8")
    assert load_error(p).startswith(f"{p} line 2 is not a JSON object (got list)")


def test_field_with_two_types_names_the_line(tmp_path):
    p = write_jsonl(tmp_path / "mixed.jsonl", [{"text": "a"}, {"text": "b"}, {"text": ["c"]}])
    msg = load_error(p)
    assert msg.startswith(f"{p} line 3: field 'text' is a list here but a string on line 1")


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv", "empty.txt", "empty.json", "empty.parquet"])
def test_empty_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"")
    assert load_error(p) == f"{p}: the file is empty; it needs at least one record"


@pytest.mark.parametrize(("name", "content"), [
    ("blank.jsonl", "\n  \n\n"), ("header.csv", "text,label\n"), ("blank.txt", "\n\n \n"), ("list.json", "[]"),
])
def test_zero_records(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    msg = load_error(p)
    assert msg.startswith(f"{p}: no records found")


@pytest.mark.parametrize(("name", "content", "line"), [
    ("bad.jsonl", b'{"text": "fine"}\n{"text": "caf\xe9"}\n', 2),
    ("bad.csv", b"text\nfine\ncaf\xe9\n", 3),
    ("bad.txt", b"fine\n\ncaf\xe9\n", 3),
    ("bad.json", b'[\n{"text": "fine"},\n{"text": "caf\xe9"}\n]\n', 3),
])
def test_undecodable_bytes_name_the_line(tmp_path, name, content, line):
    p = tmp_path / name
    p.write_bytes(content)
    msg = load_error(p)
    assert msg.startswith(f"{p} line {line}: undecodable bytes b'\\xe9") and "UTF-8" in msg


def test_csv_row_with_wrong_number_of_fields(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("prompt,completion\na,b\nc,d,e\n", encoding="utf-8")
    assert load_error(p).startswith(f"{p} line 3: 3 fields but the header has 2")


def test_json_object_without_a_record_list(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"a": 1, "b": "x"}), encoding="utf-8")
    msg = load_error(p)
    assert msg.startswith(f"{p}: expected a list of records") and "'a', 'b'" in msg


def test_json_list_item_not_an_object(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([{"text": "a"}, 5]), encoding="utf-8")
    assert load_error(p).startswith(f"{p}: item 1 of the list is not a JSON object")


def test_broken_parquet(tmp_path):
    p = tmp_path / "a.parquet"
    p.write_bytes(b"this is not parquet")
    assert load_error(p).startswith(f"{p}: not a readable Parquet file")


def test_unsupported_extension(tmp_path):
    p = tmp_path / "data.xlsx"
    p.write_bytes(b"PK")
    msg = load_error(p)
    assert msg.startswith(f"{p}: unsupported file type '.xlsx'") and ".jsonl" in msg and ".parquet" in msg


def test_directory_without_data_files(tmp_path):
    (tmp_path / "readme.md").write_text("hi")
    msg = load_error(tmp_path)
    assert msg.startswith(f"{tmp_path}: directory has no data files") and ".jsonl, .json, .csv, .parquet, .txt" in msg


def test_missing_file(tmp_path):
    p = tmp_path / "nope.jsonl"
    assert load_error(p).startswith(f"{p}: file not found")


def test_hub_id_while_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = load_error("someone/some-dataset")
    assert msg == (
        "someone/some-dataset: is not a local file and the hub is offline; "
        "download it on a connected machine or give a local path"
    )


def test_hub_offline_via_datasets_variable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert "hub is offline" in load_error("imdb")


def test_unreachable_hub_while_online_gives_the_offline_message(monkeypatch):
    monkeypatch.setattr(sources, "hub_offline", lambda: False)

    def refuse(*args, **kwargs):
        raise ConnectionError("Failed to establish a new connection")

    monkeypatch.setattr(datasets, "load_dataset", refuse)
    assert load_error("someone/some-dataset").endswith("the hub is offline; download it on a connected machine or give a local path")


def test_other_hub_failures_are_data_errors(monkeypatch):
    monkeypatch.setattr(sources, "hub_offline", lambda: False)

    def missing(*args, **kwargs):
        raise FileNotFoundError("Couldn't find a dataset script or data files")

    monkeypatch.setattr(datasets, "load_dataset", missing)
    msg = load_error("someone/some-dataset")
    assert msg.startswith("someone/some-dataset: is not a local file and could not be loaded from the hub")
    assert "FileNotFoundError" in msg


def test_type_error_in_a_directory_names_the_right_file(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "fine"}])
    write_jsonl(tmp_path / "b.jsonl", [{"text": ["not", "text"]}])
    msg = load_error(tmp_path)
    assert msg.startswith(f"{tmp_path}: field 'text' is list<item: string> in b.jsonl lines 1-1 but string in a.jsonl")


@pytest.mark.parametrize("name", ["bad.jsonl", "bad.json"])
def test_json_error_position_is_said_once(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b'{"text": "tab\there"}\n')  # a raw control character inside a JSON string
    msg = load_error(p)
    assert "(Invalid control character at column 14)" in msg
    assert "at at" not in msg


def _unopenable(monkeypatch, victim):
    real_open = type(victim).open

    def fake_open(self, *args, **kwargs):
        if self == victim:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(type(victim), "open", fake_open)


def test_a_file_that_cannot_be_opened_is_named(tmp_path, monkeypatch):
    p = write_jsonl(tmp_path / "locked.jsonl", [{"text": "a"}])
    _unopenable(monkeypatch, p)  # root ignores chmod 000, so the refusal is simulated
    with pytest.raises(DataError) as info:
        resolve_source(spec(p))
    assert str(info.value) == (
        f"{p}: cannot open the file (Permission denied); give your user read permission "
        f"(chmod u+r {p}) or copy the file somewhere readable"
    )


def test_an_unreadable_file_in_a_directory_is_named(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    write_jsonl(tmp_path / "d" / "a.jsonl", [{"text": "a"}])
    locked = write_jsonl(tmp_path / "d" / "b.jsonl", [{"text": "b"}])
    _unopenable(monkeypatch, locked)
    with pytest.raises(DataError, match=f"^{locked}: cannot open the file"):
        resolve_source(spec(tmp_path / "d"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_named(tmp_path):
    p = write_jsonl(tmp_path / "locked.jsonl", [{"text": "a"}])
    p.chmod(0)
    try:
        assert load_error(p).startswith(f"{p}: cannot open the file (Permission denied)")
    finally:
        p.chmod(0o644)
