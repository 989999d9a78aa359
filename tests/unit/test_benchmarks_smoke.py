"""The engine benchmarks run end to end at their smallest setting and print the promised JSON."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run_benchmark(name: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), "--quick", "--threads", "1", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_loop_overhead_quick_prints_both_throughputs_and_ratio():
    out = run_benchmark("loop_overhead.py")
    assert out["benchmark"] == "loop_overhead"
    assert positive(out["raw_tokens_per_s"]["median"]) and positive(out["engine_tokens_per_s"]["median"])
    expected = out["engine_tokens_per_s"]["median"] / out["raw_tokens_per_s"]["median"]
    assert out["ratio_engine_over_raw"] == pytest.approx(expected, rel=1e-3)
    assert positive(out["step_median"]["ratio_engine_over_raw"]) and positive(out["cpu_time"]["ratio_engine_over_raw"])
    # The raw loop must have trained on exactly the engine's batches, from the same weights.
    assert out["same_batches_check"]["tokens_equal"] is True
    assert out["same_batches_check"]["losses_equal"] is True
    assert out["timed_steps_per_run"] >= 1 and out["tokens_per_timed_run"] > 0
    assert out["torch_threads"] == {"both_sides": 1, "after_runs": 1}
    assert out["config"]["lora"] is True


def test_checkpoint_quick_prints_the_three_ratios():
    out = run_benchmark("checkpoint.py")
    assert out["benchmark"] == "checkpoint"
    ratios = out["ratios"]["lora"]
    for key in ("save_over_write_fsync", "load_over_read", "resume_first_step_over_fresh_first_step"):
        assert positive(ratios[key]), key
    variant = out["variants"]["lora"]
    files = variant["checkpoint_files"]
    assert {"adapter_model.safetensors", "optimizer.pt", "manifest.json", "trainer_state.json"} <= files.keys()
    assert variant["checkpoint_bytes"] == sum(files.values())
    seconds = variant["seconds"]
    assert positive(seconds["fresh_first_step"]["median"]) and positive(seconds["resume_first_step"]["median"])
    assert seconds["save"]["median"] >= seconds["save_parts_median"]["serialize"]
