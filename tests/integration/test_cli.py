"""The command line: every bad input exits 2 with a message naming the file/field/line and no traceback."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import demo_cfg, write_cfg
from tui_trainer.cli.main import main
from tui_trainer.config.schema import config_from_dict
from tui_trainer.config.io import save_config


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cfg_with_dataset(tmp_path, path, **spec):
    cfg = config_from_dict(
        {
            "run": {"output_dir": str(tmp_path / "runs")},
            "data": {"max_seq_len": 32, "datasets": [{"name": "mine", "path": str(path), **spec}]},
            "train": {"max_steps": 1, "micro_batch_size": 1, "grad_accum": 1},
        }
    )
    return write_cfg(cfg, tmp_path / "run.toml")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"text": "a"}\n{"text": "b"\n', "line 2"),
        ('{"text": "a"}\n[1, 2]\n', "line 2"),
        ("", "empty"),
    ],
)
def test_bad_jsonl_exits_2_naming_file_and_line(tmp_path, capsys, content, expected):
    data = tmp_path / "data.jsonl"
    data.write_text(content)
    code, _, err = _run(capsys, "train", str(_cfg_with_dataset(tmp_path, data)))
    assert code == 2
    assert "data.jsonl" in err and expected in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_missing_field_lists_existing_fields(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text('{"body": "a", "title": "t"}\n')
    code, _, err = _run(capsys, "train", str(_cfg_with_dataset(tmp_path, data, text_field="text")))
    assert code == 2 and "'text'" in err and "body" in err and "title" in err and "Traceback" not in err


def test_unknown_key_exits_2(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nlerning_rate = 1\n')
    code, _, err = _run(capsys, "train", str(path))
    assert code == 2 and "unknown key 'train.lerning_rate'" in err and str(path) in err


def test_zero_weights_exit_2(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text(
        '[[data.datasets]]\nname = "a"\npath = "a.jsonl"\nweight = 0\n[[data.datasets]]\nname = "b"\npath = "b.jsonl"\nweight = 0\n'
    )
    code, _, err = _run(capsys, "train", str(path))
    assert code == 2 and "weight" in err and "Traceback" not in err


def test_overlapping_sequential_ranges_exit_2(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text(
        '[data]\nstrategy = "sequential"\n'
        '[[data.datasets]]\nname = "a"\npath = "a.jsonl"\nstart_step = 0\nend_step = 10\n'
        '[[data.datasets]]\nname = "b"\npath = "b.jsonl"\nstart_step = 5\nend_step = 20\n'
        '[train]\nmax_steps = 20\n'
    )
    code, _, err = _run(capsys, "train", str(path))
    assert code == 2 and "overlap" in err and "(b)" in err


def test_unknown_model_path_exits_2(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello"}\n')
    cfg = _cfg_with_dataset(tmp_path, data)
    code, _, err = _run(capsys, "train", str(cfg), "--set", f"model.name_or_path={tmp_path / 'no-such-model'}")
    assert code == 2 and "model.name_or_path" in err and "no-such-model" in err


def test_offline_hub_model_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello"}\n')
    code, _, err = _run(capsys, "train", str(_cfg_with_dataset(tmp_path, data)), "--set", "model.name_or_path=Qwen/Qwen2.5-0.5B")
    assert code == 2 and "hub is offline" in err


def test_bad_resume_target_exits_2(tmp_path, capsys):
    cfg = write_cfg(demo_cfg(tmp_path), tmp_path / "run.toml")
    code, _, err = _run(capsys, "train", str(cfg), "--resume", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere" in err


def test_missing_config_file_exits_2(tmp_path, capsys):
    code, _, err = _run(capsys, "train", str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in err and "not found" in err


def test_runs_lists_runs_and_invalid_checkpoints(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    run = tmp_path / "runs" / "x-20260101-000000"
    (run / "checkpoints" / "step-00000005").mkdir(parents=True)
    (run / "events.jsonl").write_text(
        json.dumps({"type": "run_started", "time": 1, "step": 0, "total_steps": 10}) + "\n"
    )
    code, out, _ = _run(capsys, "runs", str(tmp_path / "runs"))
    assert code == 0 and "x-20260101-000000  [failed]" in out and "no: no manifest.json" in out
