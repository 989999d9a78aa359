"""``tui-trainer demo --task classification``: the tiny ViT on the imbalanced digits, recall per class before/after."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_trainer.demo.classification_demos import classification_run_config


def classification_demo(steps: int | None, output_dir: str) -> tuple[Any, Callable[[Any], None]]:
    """The run config and the summary printed after it finishes."""
    import torch

    # A 70k-parameter ViT only loses time to a second thread's synchronization; one is fastest.
    torch.set_num_threads(1)
    cfg = classification_run_config(steps=steps or 300, output_dir=output_dir)
    return cfg, print_summary


def recall_table(run_dir: Path) -> list[str]:
    """Per-class recall at the first and the last eval, the rare classes marked, plus macro-F1."""
    evals = [e for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines()) if e["type"] == "eval"]
    if not evals:
        return ["no eval ran"]
    first, last = evals[0]["metrics"], evals[-1]["metrics"]
    report = json.loads((run_dir / "report.json").read_text())
    counts = next(iter(report["task"]["datasets"].values()))["train_after_cap"]
    rarest = min(counts, key=counts.get)
    lines = [f"per-class recall, step {evals[0]['step']} -> step {evals[-1]['step']} "
             f"(class weighting: {report['task']['class_weighting']}):"]
    for label in first["labels"]:
        mark = "  <- rarest" if label == rarest else ""
        lines.append(f"  {label:>12}  {counts[label]:>5} train rows  {first['recall'][label]:.2f} -> {last['recall'][label]:.2f}{mark}")
    lines.append(f"macro-F1 {first['macro_f1']:.3f} -> {last['macro_f1']:.3f}, accuracy {first['accuracy']:.3f} -> {last['accuracy']:.3f}, "
                 f"balanced accuracy {first['balanced_accuracy']:.3f} -> {last['balanced_accuracy']:.3f}")
    return lines


def print_summary(result: Any) -> None:
    print("\n".join(recall_table(Path(result.run_dir))), flush=True)
