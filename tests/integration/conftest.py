"""Shared set-up for real training runs on the embedded demo model (two weighted demo corpora, packing on)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tui_trainer.config.schema import RunConfig, config_from_dict

from tui_trainer.config.io import save_config

ROOT = Path(__file__).resolve().parents[2]


def demo_cfg(tmp_path: Path, *, lora: bool = False, **train) -> RunConfig:
    """A few-second run: seq 64, effective batch 8, both demo corpora weighted 0.7/0.3, packing on."""
    train_section = {
        "max_steps": 8,
        "micro_batch_size": 4,
        "grad_accum": 2,
        "lr": 2e-3,
        "warmup_ratio": 0.0,
        "eval_every": 0,
        "eval_max_rows": 16,
        **train,
    }
    checkpoint = train_section.pop("checkpoint", {"every_steps": 4, "every_minutes": 0, "keep_last": 5})
    return config_from_dict(
        {
            "run": {"name": "it", "output_dir": str(tmp_path / "runs"), "seed": 7},
            "model": {"name_or_path": "demo:tiny-llama"},
            "lora": {"enabled": lora, "r": 8, "alpha": 16, "dropout": 0.0},
            "data": {
                "strategy": "weighted",
                "max_seq_len": 64,
                "packing": True,
                "eval_fraction": 0.01,
                "datasets": [
                    {"name": "code", "path": "demo:python-code", "weight": 0.7},
                    {"name": "docs", "path": "demo:python-docs", "weight": 0.3},
                ],
            },
            "train": train_section,
            "checkpoint": checkpoint,
        }
    )


def write_cfg(cfg: RunConfig, path: Path) -> Path:
    save_config(cfg, path)
    return path


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    final = Path(run_dir) / "final"
    files = sorted(final.glob("adapter_model.safetensors")) or sorted(final.glob("model*.safetensors"))
    assert files, f"no weights in {final}"
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(file))
    return weights


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tui_trainer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tui_trainer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def run_events(run_dir: Path) -> list[dict]:
    """Every event of a run, from its events.jsonl."""
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]


def wait_for_steps(launcher: subprocess.Popen, runs_dir: Path, steps: int, timeout: float = 300) -> None:
    """Wait until the run ``launcher`` started under ``runs_dir`` has logged ``steps`` step events.

    Fails at once, with the launcher's output, if it exits before that."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(Path(runs_dir).glob("it-*/events.jsonl"))
        if found and sum(e["type"] == "step" for e in run_events(found[0].parent)) >= steps:
            return
        assert launcher.poll() is None, launcher.communicate()
        time.sleep(0.1)
    raise AssertionError(f"no {steps} steps under {runs_dir} within {timeout} s")


def sigterm_after_steps(cfg_path: Path, runs_dir: Path, steps: int, *, nproc: int = 2, timeout: float = 120) -> tuple[int, str]:
    """Launch ``train cfg_path --nproc N``, SIGTERM the launcher after ``steps`` steps; its exit code and stderr."""
    launcher = popen("train", str(cfg_path), "--nproc", str(nproc))
    try:
        wait_for_steps(launcher, runs_dir, steps)
        launcher.send_signal(signal.SIGTERM)
        _, err = launcher.communicate(timeout=timeout)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    return launcher.returncode, err


@pytest.fixture(scope="session", autouse=True)
def _single_thread_determinism():
    # Bitwise comparisons need the same reduction order in every process of the test.
    torch.set_num_threads(2)
    os.environ["OMP_NUM_THREADS"] = "2"
