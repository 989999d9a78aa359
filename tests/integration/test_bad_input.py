"""What a new user runs into: each bad input exits 2 naming the culprit, with no traceback,
and library chatter (deprecation warnings) stays off the console."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import demo_cfg, write_cfg
from tui_trainer.cli.main import main
from tui_trainer.config.schema import config_from_dict


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_step(tmp_path: Path, **run) -> Path:
    cfg = demo_cfg(tmp_path, max_steps=1, checkpoint={"every_steps": 0, "every_minutes": 0, "keep_last": 1})
    cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update=run)})
    return write_cfg(cfg, tmp_path / "run.toml")


@pytest.mark.parametrize("below", ["", "runs"])
def test_output_dir_that_is_a_file_exits_2_naming_it(tmp_path, capsys, below):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a directory\n")
    output_dir = blocker / below if below else blocker
    code, _, err = _run(capsys, "train", str(_one_step(tmp_path, output_dir=str(output_dir))))
    assert code == 2
    assert f"run.output_dir = {str(output_dir)!r}: {blocker} is a file, not a directory" in err
    assert "Traceback" not in err
    assert blocker.read_text() == "not a directory\n"


def test_dataset_file_that_cannot_be_opened_exits_2_naming_it(tmp_path, capsys, monkeypatch):
    data = tmp_path / "private.jsonl"
    data.write_text('{"text": "hello"}\n')
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self == data:  # root reads a chmod-000 file anyway, so the refusal is simulated
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    cfg = config_from_dict(
        {
            "run": {"output_dir": str(tmp_path / "runs")},
            "data": {"max_seq_len": 32, "datasets": [{"name": "mine", "path": str(data)}]},
            "train": {"max_steps": 1, "micro_batch_size": 1, "grad_accum": 1},
        }
    )
    code, _, err = _run(capsys, "train", str(write_cfg(cfg, tmp_path / "run.toml")))
    assert code == 2
    assert f"{data}: cannot open the file (Permission denied)" in err and f"chmod u+r {data}" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_library_deprecation_warnings_stay_off_the_console(tmp_path):
    # LoRA + gradient checkpointing: peft and transformers both warn about deprecated names.
    cfg = demo_cfg(
        tmp_path, lora=True, max_steps=1, gradient_checkpointing=True,
        checkpoint={"every_steps": 0, "every_minutes": 0, "keep_last": 1},
    )
    config = write_cfg(cfg, tmp_path / "run.toml")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, "-m", "tui_trainer", "train", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    console = result.stdout + result.stderr
    assert result.returncode == 0, console
    assert "Warning" not in console and "deprecated" not in console, console
    (events,) = (tmp_path / "runs").glob("*/events.jsonl")
    kept = [e for e in map(json.loads, events.read_text().splitlines()) if e["type"] == "library_warning"]
    assert any("is_gradient_checkpointing" in e["message"] for e in kept), kept  # the warning did happen
    assert all(e["category"] == "FutureWarning" and e["source"] for e in kept)
