"""Why the TUI budgets its CPU: a second thread's Python work slows training; C work much less.

The app trains in a thread beside the UI's event loop. This measures training throughput on
the embedded demo model (plain thread, as in the app) while another thread burns the same
share of a core in bursts, two ways: pure Python (holds the GIL, as Textual's painting
does) and hashing a large buffer (hashlib releases the GIL). Baseline: the same run with no
second thread, interleaved with the others. Ratios are median(tokens/s with the burner) /
median(tokens/s without).

    .venv/bin/python benchmarks/gil_contention.py [--steps 40] [--repeats 3] [--burst-ms 5] [--period-ms 140]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import hashlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _common import demo_config, emit, machine, ratio, set_threads, stats, with_steps
from ui_overhead import run_plain


def python_work(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        sum(range(200))


_BUFFER = os.urandom(1 << 20)


def gil_free_work(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        hashlib.sha256(_BUFFER).digest()


class Burner:
    """A thread doing ``work`` for ``burst`` CPU seconds every ``period`` wall seconds."""

    def __init__(self, work: Callable[[float], None], burst: float, period: float) -> None:
        self._work, self._burst, self._period = work, burst, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="burner", daemon=True)
        self._cpu = 0.0
        self._wall = 0.0

    def _run(self) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        while not self._stop.is_set():
            self._work(self._burst)
            self._stop.wait(self._period)
        self._cpu, self._wall = time.thread_time() - cpu, time.perf_counter() - wall

    def __enter__(self) -> Burner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_pct(self) -> float:
        return 100 * self._cpu / self._wall if self._wall else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burst-ms", type=float, default=5.0)
    parser.add_argument("--period-ms", type=float, default=140.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    works = {"none": None, "python": python_work, "gil_free": gil_free_work}
    tokens: dict[str, list[float]] = {name: [] for name in works}
    burner_cpu: dict[str, list[float]] = {name: [] for name in works if name != "none"}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = demo_config(Path(tmp), lora=False, seq_len=128, micro_batch_size=4, grad_accum=1, steps=args.steps)
        run_plain(with_steps(cfg, 2))  # warm caches once
        for _ in range(args.repeats):
            for name, work in works.items():
                if work is None:
                    tokens[name].append(run_plain(cfg))
                    continue
                with Burner(work, args.burst_ms / 1000, args.period_ms / 1000) as burner:
                    tokens[name].append(run_plain(cfg))
                burner_cpu[name].append(burner.cpu_pct)
    base = statistics.median(tokens["none"])
    emit(
        {
            "benchmark": "gil_contention",
            "config": {"steps": args.steps, "burst_ms": args.burst_ms, "period_ms": args.period_ms, "threads": threads},
            "tokens_per_s": {name: stats(values) for name, values in tokens.items()},
            "burner_cpu_pct": {name: round(statistics.median(values), 2) for name, values in burner_cpu.items()},
            "ratio_python_burner": ratio(statistics.median(tokens["python"]), base),
            "ratio_gil_free_burner": ratio(statistics.median(tokens["gil_free"]), base),
            "machine": machine(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
