"""``train.compile`` against eager: tokens/s of the demo run, and after how many steps compilation pays.

Both variants are the bench command's measurement (``tui_trainer.measure``): warm-up steps
(where torch.compile compiles), then timed steps, in a temporary directory, ABBA (eager,
compiled, compiled, eager, ...). Break-even = the compile time the warm-up added over the
time a compiled step saves; past that many steps a run is faster with ``train.compile``.

    .venv/bin/python benchmarks/compile.py [--config benchmarks/demo.toml] [--steps 10] [--warmup 3] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import statistics
from pathlib import Path

from _common import emit, machine, ratio, set_threads


def main() -> None:
    from tui_trainer.config.io import load_config
    from tui_trainer.measure import compare

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("demo.toml"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3, help="compiling happens in the first steps (and per new shape)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    result = compare(load_config(args.config), ["train.compile=true"], steps=args.steps, warmup=args.warmup, repeats=args.repeats)
    eager_step = statistics.median(f.step_median_s for f in result.base)
    compiled_step = statistics.median(f.step_median_s for f in result.variant)
    extra = statistics.median(f.warmup_s for f in result.variant) - statistics.median(f.warmup_s for f in result.base)
    saved = eager_step - compiled_step
    emit(
        {
            "benchmark": "compile",
            "ratio_compiled_over_eager_tokens_per_s": ratio(result.tokens_per_s_ratio, 1.0),
            "step_median_s": {"eager": round(eager_step, 6), "compiled": round(compiled_step, 6)},
            "warmup_s": {"eager": [round(f.warmup_s, 3) for f in result.base], "compiled": [round(f.warmup_s, 3) for f in result.variant]},
            "compile_seconds_added": round(extra, 3),
            "break_even_steps": round(extra / saved, 1) if saved > 0 else None,
            "tokens_per_s": {"eager": [round(f.tokens_per_s, 2) for f in result.base],
                             "compiled": [round(f.tokens_per_s, 2) for f in result.variant]},  # fmt: skip
            "config": {"file": str(args.config), "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats},
            "torch_threads": threads,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
