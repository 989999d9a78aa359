"""Mixing sampler speed: global batches per second, and seeking to step 10^6 against skipping.

The baseline is what trainers that resume by skipping do: draw and discard every batch
up to the resume step. It is timed over ``--baseline-steps`` steps in this same run and
extrapolated linearly to the seek target (the cost per discarded batch is constant: the
same arithmetic and row gathering each step), which the JSON states.

    python benchmarks/sampler.py [--datasets 5] [--batch 64] [--steps 20000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from tui_trainer.data.mixing.sampler import MixingSampler, MixSource


def build(n_datasets: int, batch: int, rows: int, strategy: str) -> MixingSampler:
    sources = [
        MixSource(
            f"d{i}",
            rows + 997 * i,
            weight=round(1.0 + 0.37 * i, 2),
            order=i * 3 // n_datasets,
            start_step=i * 10**5,
            end_step=(i + 1) * 10**5 if i + 1 < n_datasets else 2 * 10**6,
        )
        for i in range(n_datasets)
    ]
    return MixingSampler(sources, strategy=strategy, global_batch_size=batch, total_steps=2 * 10**6, seed=1234)


def batches_per_second(sampler: MixingSampler, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        sampler.next_batch()
    return steps / (time.perf_counter() - start)


def seek_seconds(sampler: MixingSampler, target: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        sampler.seek(0)
        start = time.perf_counter()
        sampler.seek(target)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64, help="global batch size (rows per step)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the smallest dataset")
    parser.add_argument("--steps", type=int, default=20_000, help="steps timed for batches per second")
    parser.add_argument("--baseline-steps", type=int, default=10_000, help="steps actually skipped for the baseline")
    parser.add_argument("--target", type=int, default=10**6, help="step to seek to")
    args = parser.parse_args()

    results = {}
    for strategy in ("weighted", "uniform", "curriculum", "sequential"):
        sampler = build(args.datasets, args.batch, args.rows, strategy)
        rate = batches_per_second(sampler, args.steps)

        skipper = build(args.datasets, args.batch, args.rows, strategy)
        start = time.perf_counter()
        for _ in range(args.baseline_steps):
            skipper.next_batch()
        measured = time.perf_counter() - start
        baseline = measured * args.target / args.baseline_steps

        seeker = build(args.datasets, args.batch, args.rows, strategy)
        seek = seek_seconds(seeker, args.target, repeats=50)
        seeker.seek(args.target)
        start = time.perf_counter()
        first = seeker.next_batch()  # includes building the current epoch's permutations
        first_batch = time.perf_counter() - start

        # The seek lands where skipping would: same cursors, same next batch.
        skipper.seek(args.baseline_steps)
        check = build(args.datasets, args.batch, args.rows, strategy)
        for _ in range(args.baseline_steps):
            check.next_batch()
        assert check.state_dict() == skipper.state_dict()
        assert first.step == args.target

        results[strategy] = {
            "batches_per_s": round(rate, 1),
            "rows_per_s": round(rate * args.batch),
            "seek_s": seek,
            "first_batch_after_seek_s": round(first_batch, 6),
            "skip_baseline_measured_steps": args.baseline_steps,
            "skip_baseline_measured_s": round(measured, 3),
            "skip_baseline_s": round(baseline, 2),
            "speedup_seek_vs_skip": round(baseline / seek),
            "speedup_seek_plus_first_batch_vs_skip": round(baseline / (seek + first_batch)),
        }

    print(
        json.dumps(
            {
                "benchmark": "sampler",
                "datasets": args.datasets,
                "global_batch_size": args.batch,
                "rows_smallest_dataset": args.rows,
                "seek_target_step": args.target,
                "baseline": (
                    f"iterate and discard batches: {args.baseline_steps} steps timed, "
                    f"extrapolated linearly to {args.target} steps"
                ),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
