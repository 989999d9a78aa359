"""Suggested ranges are valid search spaces for the config they were made from."""

from __future__ import annotations

from tui_trainer.config.schema import config_from_dict
from tui_trainer.search.space import build_space
from tui_trainer.search.suggest import search_config, searchable_keys, suggested_range

DS = [{"name": "code", "path": "demo:python-code"}, {"name": "docs", "path": "demo:python-docs"}]


def test_every_offered_key_gives_a_space_the_study_accepts():
    cfg = config_from_dict({"data": {"datasets": DS}, "train": {"lr": 2e-4}, "lora": {"r": 16}})
    keys = list(searchable_keys(cfg))
    assert "data.datasets.docs.weight" in keys and "lora.r" in keys
    raw = search_config(cfg, keys, trials=5)
    params = build_space(raw, config_from_dict(raw))
    assert [p.key for p in params] == keys
    lr = suggested_range("train.lr", cfg)
    assert lr.log and (lr.low, lr.high) == (1e-5, 1e-2)  # wide around 2e-4
    wide = suggested_range("train.lr", config_from_dict({"data": {"datasets": DS}, "train": {"lr": 5e-2}}))
    assert abs(wide.low - 1e-5) < 1e-12 and abs(wide.high - 0.5) < 1e-12  # a decade above a high rate
    assert suggested_range("lora.r", cfg).choices == [4, 8, 16, 32]


def test_full_fine_tuning_offers_no_lora_keys():
    cfg = config_from_dict({"data": {"datasets": DS}, "lora": {"enabled": False}})
    assert not [k for k in searchable_keys(cfg) if k.startswith("lora.")]


def test_maximized_metrics_maximize():
    cfg = config_from_dict({"data": {"datasets": DS}})
    assert search_config(cfg, ["train.lr"], objective="macro_f1")["search"]["direction"] == "maximize"


def test_the_demo_study_starts_from_the_presets_values_and_its_space_is_valid():
    # README's demo figures compare the study's best with these values: they must stay the preset's.
    from pathlib import Path

    from tui_trainer.config.io import read_toml
    from tui_trainer.planning.presets import load_presets

    raw = read_toml(Path(__file__).resolve().parents[2] / "examples" / "search-demo.toml")
    cfg = config_from_dict(raw)
    level = load_presets()["demo-tiny"].levels["bestaccuracy"]
    assert (cfg.train.lr, cfg.train.warmup_ratio, cfg.train.weight_decay, cfg.train.lr_scheduler) == (
        level.lr, level.warmup_ratio, level.weight_decay, level.lr_scheduler)
    params = build_space(raw, cfg)
    assert [p.key for p in params] == ["train.lr", "train.warmup_ratio"] and cfg.search.baseline


def test_start_search_writes_the_set_up_screens_space_as_the_study_config(tmp_path, monkeypatch):
    import subprocess

    from tui_trainer.config.io import read_toml
    from tui_trainer.search import launch

    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=f"{tmp_path}/runs/x-search-1\n", stderr="")

    monkeypatch.setattr(launch.subprocess, "run", fake_run)
    raw = {"run": {"name": "x", "output_dir": str(tmp_path / "runs")}, "data": {"datasets": DS},
           "search": {"trials": 3, "sampler": "random", "pruner": "none",
                      "space": {"lora.r": {"choices": [4, 8]}, "train.warmup_ratio": {"low": 0.0, "high": 0.15}}}}
    study = launch.start_search(config_from_dict(raw))
    assert study == tmp_path / "runs" / "x-search-1" and calls[0][-2:] == [str(tmp_path / "runs" / "x-search.toml"), "--detach"]
    written = read_toml(tmp_path / "runs" / "x-search.toml")
    assert written["search"]["space"] == {"lora.r": {"choices": [4, 8], "log": False}, "train.warmup_ratio": {"low": 0.0, "high": 0.15, "log": False}}
    assert (written["search"]["trials"], written["search"]["sampler"]) == (3, "random")
    assert [p.key for p in build_space(written, config_from_dict(written))] == ["lora.r", "train.warmup_ratio"]
    # Without a space of its own, the config gets the default keys at their suggested ranges.
    del raw["search"]
    launch.start_search(config_from_dict(raw))
    assert set(read_toml(tmp_path / "runs" / "x-search.toml")["search"]["space"]) == {"train.lr", "lora.r"}
