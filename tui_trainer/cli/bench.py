"""``tui-trainer bench FILE [--steps N] [--compare key=value ...] [--json]``: time a config on this machine."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from tui_trainer.errors import ConfigError


def _size(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _lines(f) -> list[str]:
    memory = "peak CUDA allocated" if f.memory_kind == "cuda_allocated" else "peak RSS"
    util = "n/a" if f.gpu_utilization_pct is None else f"{f.gpu_utilization_pct:.0f}%"
    return [
        f"  tokens/s        {f.tokens_per_s:,.0f}",
        f"  samples/s       {f.samples_per_s:,.2f}",
        f"  step time       median {f.step_median_s * 1000:.1f} ms, p90 {f.step_p90_s * 1000:.1f} ms ({f.timed_steps} steps after {f.warmup_steps} warm-up)",
        f"  memory          {memory} {_size(f.peak_memory_bytes)}",
        f"  GPU             utilization {util}, memory {_size(f.gpu_memory_used_bytes)}",
        f"  one epoch       {_duration(f.epoch_seconds)} ({f.rows_per_epoch:,} rows)",
        f"  warm-up         {_duration(f.warmup_s)} for {f.warmup_steps} steps (compilation, if any, is here)",
    ]


def _cmd_bench(args: argparse.Namespace) -> int:
    from tui_trainer.config.io import load_config
    from tui_trainer.measure import compare, measure

    if args.steps < 1 or args.warmup < 1:
        raise ConfigError(f"--steps {args.steps} --warmup {args.warmup}: both must be at least 1")
    cfg = load_config(args.file, args.set)
    if not args.compare:
        figures = measure(cfg, steps=args.steps, warmup=args.warmup)
        if args.json:
            print(json.dumps({"config": str(args.file), **asdict(figures)}, indent=1))
        else:
            print(f"{args.file}:")
            print("\n".join(_lines(figures)))
        return 0
    result = compare(cfg, args.compare, steps=args.steps, warmup=args.warmup, repeats=args.repeats)
    label = " ".join(args.compare)
    if args.json:
        out = {
            "config": str(args.file),
            "compare": list(result.overrides),
            "tokens_per_s_ratio": result.tokens_per_s_ratio,
            "samples_per_s_ratio": result.samples_per_s_ratio,
            "base": [asdict(f) for f in result.base],
            "variant": [asdict(f) for f in result.variant],
            "order": "ABBA: base, variant, variant, base, ...",
        }
        print(json.dumps(out, indent=1))
        return 0
    print(f"{args.file} (as given), last of {len(result.base)}:")
    print("\n".join(_lines(result.base[-1])))
    print(f"{args.file} with {label}, last of {len(result.variant)}:")
    print("\n".join(_lines(result.variant[-1])))
    print(
        f"ratio ({label} / as given, medians of {args.repeats} ABBA repeats): "
        f"tokens/s {result.tokens_per_s_ratio:.3f}, samples/s {result.samples_per_s_ratio:.3f}"
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="time a config here: tokens/s, step time, peak memory, GPU use, time per epoch")
    p.add_argument("file", type=Path, help="run config (TOML); nothing of the run is kept")
    p.add_argument("--steps", type=int, default=10, help="timed optimizer steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="steps before the timing starts (default 2)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key first")
    p.add_argument(
        "--compare", nargs="+", metavar="KEY=VALUE",
        help="also measure the config with these overrides, ABBA in this process, and print the ratio",
    )  # fmt: skip
    p.add_argument("--repeats", type=int, default=2, help="--compare: measurements per variant (default 2)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_cmd_bench)
