"""``tui-trainer demo --task sae``: an SAE on the demo model's layer 1, on both demo corpora mixed 70/30."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.demo.catalog import DEMO_MODEL, SMOLLM2_MODEL, demo_run_config
from tui_trainer.errors import ConfigError

SUMMARY_METRICS = ("explained_variance", "l0", "dead_fraction", "ce_loss_score")


def sae_demo_config(steps: int | None = None, output_dir: str = "runs", model: str = "tiny") -> RunConfig:
    """The demo mix and eval cadence, with run.task = "sae" on the tiny model (or SmolLM2-135M's layer 15).

    The sizes are the CPU's: d_sae = 4 x 256 and a buffer of 8 steps' rows, so 60 steps
    take a few minutes on 2 cores and the explained variance clearly rises.
    """
    steps = 60 if steps is None else steps
    if steps < 1:
        raise ConfigError(f"demo: --steps must be >= 1, got {steps}")
    raw = demo_run_config(steps=steps, output_dir=output_dir).to_dict()
    small = model == "tiny"
    raw["run"].update(name="demo-sae", task="sae")
    raw["model"]["name_or_path"] = DEMO_MODEL if small else SMOLLM2_MODEL
    raw["train"].update(lr=4e-3, lr_scheduler="constant", warmup_ratio=0.0, eval_at_start=True, eval_max_rows=16)
    raw["sae"] = {
        "layer": 1 if small else 15,
        "site": "resid_post",
        "architecture": "topk",
        "expansion_factor": 4 if small else 8,
        "k": 16 if small else 32,
        "buffer_tokens": 8 * raw["train"]["micro_batch_size"] * raw["data"]["max_seq_len"],
        "dead_feature_window_tokens": 20 * raw["train"]["micro_batch_size"] * raw["data"]["max_seq_len"],
    }
    return config_from_dict(raw, source="sae_demo_config()")


def eval_metrics(run_dir: Path) -> list[dict]:
    """The ``metrics`` of every eval event of a run, in order."""
    out = []
    for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("type") == "eval" and event.get("metrics"):
            out.append(event["metrics"])
    return out


def summary_line(run_dir: Path) -> str:
    evals = eval_metrics(run_dir)
    if not evals:
        return f"demo: no eval ran; the SAE is in {run_dir / 'final' / 'sae'}"
    first, last = evals[0], evals[-1]

    def fmt(name: str) -> str:
        value = last.get(name, math.nan)
        return f"{name} {value:.3f}" if isinstance(value, float) else f"{name} {value}"

    ev = f"explained variance {first.get('explained_variance', math.nan):.3f} -> {last.get('explained_variance', math.nan):.3f}"
    rest = ", ".join(fmt(n) for n in SUMMARY_METRICS[1:])
    return f"demo: {ev}, {rest}; the SAE (SAELens layout) is in {run_dir / 'final' / 'sae'}"


def print_summary(result) -> None:
    if result.run_dir is not None:
        print(summary_line(Path(result.run_dir)), flush=True)
