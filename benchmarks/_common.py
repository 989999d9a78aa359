"""Shared set-up of the engine benchmarks: offline environment, the demo-model config, machine facts.

Importing this module first matters: the Hugging Face libraries read their offline
switches when they are imported, and the repository root must be importable when a
benchmark is run as ``python benchmarks/NAME.py``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Same home as the test suite, so the demo model and the prepared demo corpora are built once and shared.
os.environ.setdefault("TUI_TRAINER_HOME", str(ROOT / ".tui-trainer-home"))
for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_key] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def demo_config(
    output_dir: Path,
    *,
    lora: bool,
    seq_len: int,
    micro_batch_size: int,
    grad_accum: int,
    steps: int,
    seed: int = 7,
    every_steps: int = 0,
    keep_last: int = 3,
    name: str = "bench",
):
    """A run on the embedded demo model and both demo corpora (weighted 0.7/0.3, packing on).

    Periodic checkpoints and evals are off unless asked for; the engine still evaluates and
    saves once at the very end of a finished run, which the benchmarks keep out of their timings.
    """
    from tui_trainer.config.schema import config_from_dict

    return config_from_dict(
        {
            "run": {"name": name, "output_dir": str(output_dir), "seed": seed},
            "model": {"name_or_path": "demo:tiny-llama"},
            "lora": {"enabled": lora, "r": 8, "alpha": 16, "dropout": 0.0},
            "data": {
                "strategy": "weighted",
                "max_seq_len": seq_len,
                "packing": True,
                "eval_fraction": 0.01,
                "datasets": [
                    {"name": "code", "path": "demo:python-code", "weight": 0.7},
                    {"name": "docs", "path": "demo:python-docs", "weight": 0.3},
                ],
            },
            "train": {
                "max_steps": steps,
                "micro_batch_size": micro_batch_size,
                "grad_accum": grad_accum,
                "lr": 2e-3,
                "lr_scheduler": "cosine",
                "warmup_ratio": 0.1,
                "weight_decay": 0.01,
                "max_grad_norm": 1.0,
                "precision": "fp32",  # the raw loop mirrors fp32 exactly; no autocast or scaler to replicate
                "eval_every": 0,
                "eval_max_rows": 8,
            },
            "checkpoint": {"every_steps": every_steps, "every_minutes": 0, "keep_last": keep_last, "keep_best": False},
        },
        source="benchmark",
    )


def with_steps(cfg, steps: int):
    """The same config with ``train.max_steps`` changed (for warm-up runs)."""
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": steps})})


def set_threads(threads: int | None) -> int:
    """Pin torch's intra-op threads (the same for every side of a comparison); returns the count in use."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def stats(values: list[float]) -> dict[str, Any]:
    """Per-repeat values with their median, min and max (medians are what the ratios use)."""
    return {
        "per_repeat": [round(v, 6) for v in values],
        "median": round(statistics.median(values), 6),
        "min": round(min(values), 6),
        "max": round(max(values), 6),
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 4) if denominator > 0 else float("nan")


def machine() -> dict[str, Any]:
    import torch

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
        "loadavg_1_5_15": load,
        "note": "shared machines make timings noisy; compare medians of interleaved repeats, not single figures",
    }


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=1, sort_keys=False))


def add_loop_arguments(parser, *, steps: int) -> None:
    """The timing options every engine-versus-baseline loop benchmark shares."""
    parser.add_argument("--steps", type=int, default=steps, help="optimizer steps per timed run (>= 2)")
    parser.add_argument("--repeats", type=int, default=4, help="timed runs per side, interleaved ABBA (even is best)")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both sides (0 = torch default)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke setting: 3 steps, 1 repeat, seq 32")


def parse_loop_arguments(parser):
    """Parsed options, with --quick applied and the 2-step minimum (step 1 is outside the timing window) checked."""
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.seq_len, args.micro_batch, args.grad_accum = 3, 1, 32, 2, 2
    if args.steps < 2:
        parser.error("--steps must be at least 2 (step 1 is the warm-up outside the timing window)")
    return args
