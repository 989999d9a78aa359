"""``tui-trainer bench`` on the demo config: figures for a few steps, nothing kept, --compare runs both ABBA."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import demo_cfg, write_cfg
from tui_trainer.cli.main import main


def bench(capsys, *args: str) -> dict:
    assert main(["bench", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_bench_prints_the_figures_and_keeps_no_output(tmp_path, capsys):
    cfg = demo_cfg(tmp_path, lora=True)
    path = write_cfg(cfg, tmp_path / "run.toml")
    out = bench(capsys, str(path), "--steps", "3", "--warmup", "1")
    assert out["timed_steps"] == 3 and out["warmup_steps"] == 1 and out["warmup_s"] > 0
    for key in ("tokens_per_s", "samples_per_s", "step_median_s", "step_p90_s", "epoch_seconds"):
        assert out[key] > 0, key
    assert out["step_p90_s"] >= out["step_median_s"]
    assert out["samples_per_s"] == pytest.approx(cfg.effective_batch / out["step_median_s"], rel=0.5)
    assert out["epoch_seconds"] == pytest.approx(out["rows_per_epoch"] / out["samples_per_s"])
    assert out["memory_kind"] == "rss" and out["peak_memory_bytes"] > 50 * 2**20
    assert out["gpu_utilization_pct"] is None and out["gpu_memory_used_bytes"] is None  # no GPU here
    assert not (tmp_path / "runs").exists()  # the config's output_dir was never used


@pytest.mark.slow
def test_bench_text_output_says_n_a_without_a_gpu(tmp_path, capsys):
    path = write_cfg(demo_cfg(tmp_path, lora=True), tmp_path / "run.toml")
    assert main(["bench", str(path), "--steps", "1", "--warmup", "1"]) == 0
    text = capsys.readouterr().out
    assert "tokens/s" in text and "p90" in text and "one epoch" in text
    assert "utilization n/a" in text


def test_a_bad_compare_key_is_a_user_error(tmp_path, capsys):
    path = write_cfg(demo_cfg(tmp_path, lora=True), tmp_path / "run.toml")
    assert main(["bench", str(path), "--compare", "train.nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_runs_both_variants_abba_and_prints_the_ratio(tmp_path, capsys):
    path = write_cfg(demo_cfg(tmp_path, lora=True), tmp_path / "run.toml")
    out = bench(capsys, str(path), "--steps", "2", "--warmup", "1", "--compare", "data.packing=false", "--repeats", "2")
    assert out["compare"] == ["data.packing=false"]
    assert len(out["base"]) == 2 and len(out["variant"]) == 2
    base = sorted(f["tokens_per_s"] for f in out["base"])
    variant = sorted(f["tokens_per_s"] for f in out["variant"])
    assert out["tokens_per_s_ratio"] == pytest.approx((variant[0] + variant[1]) / (base[0] + base[1]))
    # Unpacked rows are one document each: more rows per epoch than packed ones.
    assert out["variant"][0]["rows_per_epoch"] > out["base"][0]["rows_per_epoch"]
