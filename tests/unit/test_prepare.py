"""Preparation: the Arrow cache (hit, invalidation), the eval split, events, errors and the prepare command."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.unit.data_fixtures import spec, tiny_tokenizer, write_jsonl  # noqa: F401
from tui_trainer.config.schema import DataSection, config_from_dict
from tui_trainer.data.prep import cache
from tui_trainer.data.prep.prepare import prepare_all, prepare_dataset, split_indices
from tui_trainer.data.prep.tokenize import IGNORE_INDEX
from tui_trainer.errors import DataError

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Two plus two is four.", "hello world"]


def corpus(path, n=60, offset=0):
    return write_jsonl(path, [{"text": SENTENCES[i % 3] + f" {i + offset}"} for i in range(n)])


def prep(path, tok, root, **data):
    data.setdefault("max_seq_len", 16)
    return prepare_dataset(spec(path, name="docs"), DataSection(**data), tok, seed=7, cache_root=root)


def test_second_run_loads_from_the_cache(tmp_path, tiny_tokenizer):
    p = corpus(tmp_path / "a.jsonl")
    first = prep(p, tiny_tokenizer, tmp_path / "cache")
    second = prep(p, tiny_tokenizer, tmp_path / "cache")
    assert (first.stats.cached, second.stats.cached) == (False, True)
    assert first.stats.cache_path == second.stats.cache_path
    assert second.train.to_dict() == first.train.to_dict() and second.eval.to_dict() == first.eval.to_dict()
    assert second.stats.packed_rows == len(second.train) == first.stats.packed_rows
    # memory-mapped from the cache entry, not held in RAM
    assert second.train.cache_files[0]["filename"].startswith(second.stats.cache_path)
    assert not (tmp_path / "cache" / "docs" / "work").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [os.path.basename(first.stats.cache_path)]


def test_cache_is_invalidated_when_the_file_changes(tmp_path, tiny_tokenizer):
    p = corpus(tmp_path / "a.jsonl")
    first = prep(p, tiny_tokenizer, tmp_path / "cache")
    corpus(p, n=61)
    second = prep(p, tiny_tokenizer, tmp_path / "cache")
    assert not second.stats.cached and second.stats.cache_path != first.stats.cache_path
    assert second.stats.rows == 61


def test_cache_is_invalidated_when_max_seq_len_or_packing_change(tmp_path, tiny_tokenizer):
    p = corpus(tmp_path / "a.jsonl")
    base = prep(p, tiny_tokenizer, tmp_path / "cache")
    longer = prep(p, tiny_tokenizer, tmp_path / "cache", max_seq_len=32)
    unpacked = prep(p, tiny_tokenizer, tmp_path / "cache", packing=False)
    assert not longer.stats.cached and not unpacked.stats.cached
    assert len({base.stats.cache_path, longer.stats.cache_path, unpacked.stats.cache_path}) == 3
    assert max(len(r) for r in longer.train["input_ids"]) == 32


def test_big_files_are_fingerprinted_by_size_and_mtime(tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(cache, "CONTENT_HASH_LIMIT", 10)
    p = corpus(tmp_path / "a.jsonl")
    prep(p, tiny_tokenizer, tmp_path / "cache")
    assert prep(p, tiny_tokenizer, tmp_path / "cache").stats.cached
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not prep(p, tiny_tokenizer, tmp_path / "cache").stats.cached


def test_stats_count_tokens_and_rows(tmp_path, tiny_tokenizer):
    p = corpus(tmp_path / "a.jsonl", n=40)
    out = prep(p, tiny_tokenizer, tmp_path / "cache", eval_fraction=0.1)
    s = out.stats
    train_tokens = sum(len(r) for r in out.train["input_ids"])
    assert s.tokens == train_tokens and s.packed_rows == len(out.train) and s.eval_rows == len(out.eval)
    assert s.loss_tokens == sum(sum(x != IGNORE_INDEX for x in r) for r in out.train["labels"])
    assert s.efficiency == pytest.approx(train_tokens / (len(out.train) * 16))
    assert (s.records, s.rows, s.shape) == (40, 40, "text")
    assert all(len(r) == 16 for r in out.train["input_ids"][:-1])


def test_eval_split_is_deterministic_and_at_least_one_document():
    tr, ev = split_indices(10, 0.01, seed=3)
    assert len(ev) == 1 and sorted(np.concatenate([tr, ev]).tolist()) == list(range(10))
    assert [a.tolist() for a in split_indices(10, 0.01, seed=3)] == [tr.tolist(), ev.tolist()]
    assert len(split_indices(100, 0.2, seed=1)[1]) == 20
    assert len(split_indices(1, 0.5, seed=1)[1]) == 0 and len(split_indices(50, 0.0, seed=1)[1]) == 0
    assert split_indices(100, 0.2, seed=1)[1].tolist() != split_indices(100, 0.2, seed=2)[1].tolist()


def test_eval_rows_hold_the_held_out_documents(tmp_path, tiny_tokenizer):
    p = corpus(tmp_path / "a.jsonl", n=20)
    out = prep(p, tiny_tokenizer, tmp_path / "cache", eval_fraction=0.1, packing=False, max_seq_len=64)
    _, held = split_indices(20, 0.1, seed=7)
    texts = [tiny_tokenizer.decode(r[:-1]) for r in out.eval["input_ids"]]
    assert texts == [SENTENCES[i % 3] + f" {i}" for i in held.tolist()]
    assert len(out.train) == 18


def test_zero_usable_rows_names_the_dataset(tmp_path, tiny_tokenizer):
    p = write_jsonl(tmp_path / "blank.jsonl", [{"text": ""}, {"text": "   "}])
    with pytest.raises(DataError, match=r"dataset 'docs' \(.*blank.jsonl\): zero usable rows"):
        prep(p, tiny_tokenizer, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # the failed build left nothing behind


def test_pretokenized_out_of_vocabulary_fails_preparation(tmp_path, tiny_tokenizer):
    p = write_jsonl(tmp_path / "ids.jsonl", [{"input_ids": [1, 2, 3]}, {"input_ids": [4, 99999]}])
    with pytest.raises(DataError, match=r"ids.jsonl record 2: input_ids holds id 99999"):
        prep(p, tiny_tokenizer, tmp_path / "cache")


def test_missing_field_fails_preparation(tmp_path, tiny_tokenizer):
    p = write_jsonl(tmp_path / "a.jsonl", [{"body": "x"}])
    with pytest.raises(DataError, match="field 'text' not found.*fields: body"):
        prepare_dataset(spec(p, text_field="text"), DataSection(), tiny_tokenizer, seed=1, cache_root=tmp_path)


def test_an_entry_installed_by_another_process_is_kept(tmp_path, tiny_tokenizer):
    p = corpus(tmp_path / "a.jsonl")
    first = prep(p, tiny_tokenizer, tmp_path / "cache")
    entry = Path(first.stats.cache_path)
    key = json.loads((entry / cache.META).read_text())["key"]
    assert cache.read_entry(entry, key) is not None
    # a racing build of the same entry finishes second: its rename fails and the first one stays
    with cache.building(entry, key) as tmp:
        (tmp / "marker").write_text("second build")
    assert not (entry / "marker").exists() and not list(entry.parent.glob(".tmp-*"))
    assert prep(p, tiny_tokenizer, tmp_path / "cache").stats.cached


def test_prepare_all_reports_each_dataset_as_it_is_ready(tmp_path, tiny_tokenizer):
    a, b = corpus(tmp_path / "a.jsonl"), corpus(tmp_path / "b.jsonl", n=30, offset=5)
    cfg = config_from_dict({
        "data": {"max_seq_len": 16, "datasets": [
            {"name": "a", "path": str(a)}, {"name": "b", "path": str(b)},
        ]},
    })
    reported = []
    out = prepare_all(cfg, tiny_tokenizer, on_prepared=reported.append, cache_root=tmp_path / "cache")
    assert [d.name for d in out] == ["a", "b"]
    assert reported == [d.stats for d in out] and not any(s.cached for s in reported)
    assert all(s.packed_rows > 0 and s.tokens > 0 for s in reported)
    again = []
    prepare_all(cfg, tiny_tokenizer, on_prepared=again.append, cache_root=tmp_path / "cache")
    assert [s.cached for s in again] == [True, True]


def test_prepare_command_prints_a_table(tmp_path, tiny_tokenizer, capsys, monkeypatch):
    from tui_trainer.cli.main import main

    model = tmp_path / "model"
    tiny_tokenizer.save_pretrained(model)
    data = corpus(tmp_path / "a.jsonl")
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f'[model]\nname_or_path = "{model}"\n[data]\nmax_seq_len = 16\n'
        f'[[data.datasets]]\nname = "mydocs"\npath = "{data}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TUI_TRAINER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["prepare", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"mydocs +text +60 +[\d,]+ +[\d,]+ +\d+ +\d+ +[\d.]+% +[\d.]+s +no", out), out
    assert "peak RSS" in out and "mydocs: cache " + str(tmp_path / "home" / "datasets") in out
    assert main(["prepare", str(cfg), "--set", "data.max_seq_len=32"]) == 0
    assert re.search(r"mydocs .* no\n", capsys.readouterr().out)
    assert main(["prepare", str(cfg), "--set", "data.max_seq_len=32"]) == 0
    assert re.search(r"mydocs .* yes\n", capsys.readouterr().out)


def test_prepare_command_reports_bad_data_with_exit_2(tmp_path, tiny_tokenizer, capsys, monkeypatch):
    from tui_trainer.cli.main import main

    model = tmp_path / "model"
    tiny_tokenizer.save_pretrained(model)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\nnot json\n', encoding="utf-8")
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f'[model]\nname_or_path = "{model}"\n[[data.datasets]]\nname = "b"\npath = "{bad}"\n', encoding="utf-8"
    )
    monkeypatch.setenv("TUI_TRAINER_HOME", str(tmp_path / "home"))
    assert main(["prepare", str(cfg)]) == 2
    assert f"{bad} line 2: malformed JSON" in capsys.readouterr().err


def test_hub_id_offline_without_a_cache_entry(tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="someone/data: is not a local file and the hub is offline"):
        prepare_dataset(spec("someone/data"), DataSection(), tiny_tokenizer, seed=1, cache_root=tmp_path)


def test_rows_without_any_label_mean_zero_usable_rows(tmp_path, tiny_tokenizer):
    p = write_jsonl(tmp_path / "ids.jsonl", [{"input_ids": [5] * 20, "labels": [-100] * 20}] * 3)
    with pytest.raises(DataError, match=r"dataset 'docs' .*zero usable rows: no training row has a token to learn"):
        prep(p, tiny_tokenizer, tmp_path / "cache")
