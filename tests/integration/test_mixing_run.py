"""Multi-dataset runs end to end: realised shares in report.json match the configured weights."""

from __future__ import annotations

import json

import pytest

from tui_trainer.config.schema import config_from_dict
from tui_trainer.api import train

pytestmark = pytest.mark.slow


def _jsonl(path, prefix, n):
    path.write_text("\n".join(json.dumps({"text": f"{prefix} record {i}: " + "lorem ipsum " * (i % 7 + 3)}) for i in range(n)))
    return str(path)


def _cfg(tmp_path, datasets, strategy="weighted", steps=10, **data):
    return config_from_dict(
        {
            "run": {"name": "mix", "output_dir": str(tmp_path / "runs")},
            "model": {"name_or_path": "demo:tiny-llama"},
            "lora": {"enabled": False},
            "data": {"strategy": strategy, "max_seq_len": 32, "eval_fraction": 0.1, "datasets": datasets, **data},
            "train": {"max_steps": steps, "micro_batch_size": 4, "grad_accum": 2, "eval_every": 0, "eval_max_rows": 4},
            "checkpoint": {"every_steps": 0, "every_minutes": 0},
        }
    )


def test_three_weighted_datasets_report_matches_shares(tmp_path):
    datasets = [
        {"name": "code", "path": "demo:python-code", "weight": 0.5},
        {"name": "docs", "path": "demo:python-docs", "weight": 0.3},
        {"name": "notes", "path": _jsonl(tmp_path / "notes.jsonl", "note", 200), "weight": 0.2},
    ]
    starts = []
    result = train(_cfg(tmp_path, datasets, steps=10), on_event=lambda e: starts.append(e) if e.TYPE == "run_started" else None)
    report = json.loads((result.run_dir / "report.json").read_text())
    samples = {name: stats["samples"] for name, stats in report["datasets"].items()}
    assert sum(samples.values()) == 80
    for spec in datasets:
        assert abs(samples[spec["name"]] - 80 * spec["weight"]) <= 1, samples
        assert report["datasets"][spec["name"]]["tokens"] > 0
    assert starts[0].plan.startswith("3 datasets, weighted: code 50%")


def test_ten_datasets_sequential_ranges(tmp_path):
    datasets = [
        {"name": f"d{i}", "path": _jsonl(tmp_path / f"d{i}.jsonl", f"set{i}", 30), "start_step": i, "end_step": i + 1}
        for i in range(10)
    ]
    seen = []
    result = train(_cfg(tmp_path, datasets, strategy="sequential"), on_event=lambda e: seen.append(e) if e.TYPE == "step" else None)
    assert result.status == "finished"
    # Exactly one dataset is active per step: the cumulative counts grow by the whole batch in d{step-1}.
    for event in seen:
        assert event.samples_per_dataset[f"d{event.step - 1}"] == 8
    report = json.loads((result.run_dir / "report.json").read_text())
    assert all(report["datasets"][f"d{i}"]["samples"] == 8 for i in range(10))
