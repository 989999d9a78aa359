"""Overlap: the share of a step spent fetching and collating rows, with the prefetch thread off and on.

The engine (``train()``) runs the demo model twice per repeat, once collating each step's
rows in line (``BatchFeed(ahead=False)``, the engine before the overlap) and once with the
next step's rows collated on the prefetch thread while this step computes (the default).
The fetch share is the time the training thread spent in ``BatchFeed.take`` (collating, or
waiting for the look-ahead) over the timing window (end of step 1 to end of step N, from
StepMetrics events). Repeats are ABBA (off, on, on, off, ...). Both variants train on the
same batches, so their losses must be equal (the overlap changes no result).

    .venv/bin/python benchmarks/overlap.py [--steps 30] [--repeats 4] [--threads 1] [--quick]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import demo_config, emit, machine, ratio, set_threads, stats, with_steps


def run(cfg, ahead: bool) -> dict:
    """One engine run; (tokens/s, fetch share, losses) over the window."""
    from tui_trainer.api import train
    from tui_trainer.engine import recipe
    from tui_trainer.engine.events import StepMetrics
    from tui_trainer.engine.prefetch import BatchFeed

    feeds: list[BatchFeed] = []

    def make_feed(*args, **kwargs) -> BatchFeed:
        feeds.append(BatchFeed(*args, **kwargs, ahead=ahead))
        return feeds[-1]

    marks: list[tuple[float, float, int, float]] = []

    def on_event(event) -> None:
        if isinstance(event, StepMetrics):
            marks.append((time.perf_counter(), feeds[0].blocked_seconds, event.tokens_seen, event.loss))

    original = recipe.BatchFeed
    recipe.BatchFeed = make_feed  # the recipe builds its feed through this name
    try:
        result = train(cfg, on_event=on_event)
    finally:
        recipe.BatchFeed = original
    if result.status != "finished" or len(marks) != cfg.train.max_steps:
        raise RuntimeError(f"engine run ended {result.status} after {len(marks)} steps: {result.message}")
    seconds = marks[-1][0] - marks[0][0]
    return {
        "tokens_per_s": (marks[-1][2] - marks[0][2]) / seconds,
        "fetch_share": (marks[-1][1] - marks[0][1]) / seconds,
        "fetch_ms_per_step": 1000 * (marks[-1][1] - marks[0][1]) / (len(marks) - 1),
        "hits": feeds[0].hits,
        "losses": [m[3] for m in marks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke setting: 3 steps, 1 repeat, seq 32")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.seq_len, args.micro_batch, args.grad_accum = 3, 1, 32, 2, 2
    threads = set_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-overlap-") as tmp:
        cfg = demo_config(
            Path(tmp) / "runs", lora=True, seq_len=args.seq_len,
            micro_batch_size=args.micro_batch, grad_accum=args.grad_accum, steps=args.steps,
        )  # fmt: skip
        run(with_steps(cfg, 2), False)
        run(with_steps(cfg, 2), True)
        runs: dict[str, list[dict]] = {"inline": [], "prefetch": []}
        for i in range(args.repeats):
            for name in (["inline", "prefetch"] if i % 2 == 0 else ["prefetch", "inline"]):
                runs[name].append(run(cfg, ahead=name == "prefetch"))

    share = {k: [r["fetch_share"] for r in v] for k, v in runs.items()}
    tps = {k: [r["tokens_per_s"] for r in v] for k, v in runs.items()}
    emit(
        {
            "benchmark": "overlap",
            "fetch_share_of_step": {"inline": stats(share["inline"]), "prefetch": stats(share["prefetch"])},
            "fetch_ms_per_step": {k: round(statistics.median(r["fetch_ms_per_step"] for r in v), 4) for k, v in runs.items()},
            "ratio_prefetch_over_inline_tokens_per_s": ratio(statistics.median(tps["prefetch"]), statistics.median(tps["inline"])),
            "tokens_per_s": {"inline": stats(tps["inline"]), "prefetch": stats(tps["prefetch"])},
            "look_ahead_hits": {k: [r["hits"] for r in v] for k, v in runs.items()},
            "losses_equal": all(a["losses"] == b["losses"] for a, b in zip(runs["inline"], runs["prefetch"])),
            "config": {"model": "demo:tiny-llama", "lora": True, "seq_len": args.seq_len, "micro_batch_size": args.micro_batch,
                       "grad_accum": args.grad_accum, "steps": args.steps, "repeats": args.repeats},  # fmt: skip
            "torch_threads": threads,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
