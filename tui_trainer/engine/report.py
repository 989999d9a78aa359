"""``report.json``: the run's summary with per-dataset statistics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui_trainer.engine.progress_state import RunProgress


def write_report(
    run_dir: Path, status: str, summary: dict[str, Any], prepared: Sequence, sampler, progress: RunProgress,
    task: dict[str, Any] | None = None,
) -> None:
    """``task``: the task's own facts (Task.summary), under the report's ``task`` key when not empty."""
    samples = sampler.samples_per_dataset()
    epochs = sampler.epochs_per_dataset()
    report = {
        "status": status,
        **summary,
        "datasets": {
            p.name: {
                "samples": samples.get(p.name, 0),
                "tokens": progress.tokens_per_dataset.get(p.name, 0),
                "epochs": epochs.get(p.name, 0.0),
                "train_rows": len(p.train),
                "eval_rows": len(p.eval),
            }
            for p in prepared
        },
    }
    if task:
        report["task"] = task
    tmp = run_dir / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    tmp.replace(run_dir / "report.json")
