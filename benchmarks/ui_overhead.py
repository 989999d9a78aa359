"""UI overhead: training throughput with the live TUI attached against the same run without it.

Side A calls ``train()`` in a plain thread. Side B runs the Textual app headless (``App.run_test``:
the screens are composed and rendered every frame, only the terminal output is discarded),
starts the same run from the app's training worker and shows it on the monitor with the
real GPU/host sampling, event coalescing and chart throttling. Both sides train the
embedded demo model on the same config and thread count.

Timing window, both sides: from the first to the last ``StepMetrics`` event as the
engine emits it (a tee in the engine thread), which keeps set-up, data preparation, the
final eval and checkpoint out. Repeats alternate ABBA so load changes on a shared
machine hit both sides; the ratio is median(tokens/s with UI) / median(tokens/s without).
Target: ratio >= 0.98. ``ui_thread_cpu_pct`` is what the app's own thread spent in the same
window, as a share of one core (the monitor aims at about 1%: ui/worker.py RepaintBudget).

Two more figures separate the UI's cost from this machine's noise. On a shared 2-core VM the
same run's CPU time per token swings by up to 8% between repeats (measured 2026-12-02: 11.4 s
and 12.5 s of engine-thread CPU for the same 60 steps, both without the UI), which swamps a
1% effect in a ratio of medians. ``paired_ratio`` is the median over the ABBA neighbours
(each UI run against the plain run next to it in time). ``engine_busy_pct`` is the engine
thread's own CPU time over the window's wall time: what the UI can take from the engine is
GIL time, so ``busy_ratio`` (with UI / without) is the UI's cost with the machine's speed
factored out.

    .venv/bin/python benchmarks/ui_overhead.py [--steps 40] [--repeats 2] [--threads N]
"""

from __future__ import annotations

import _common  # noqa: F401  (sets offline env and sys.path before any HF import)

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import demo_config, emit, machine, ratio, set_threads, stats, with_steps


class StepClock:
    """on_event tee: wall time and tokens at every step event, and the CPU time of the UI
    thread when one is given (read from the engine thread through its CPU clock)."""

    def __init__(self, downstream: Any = None, ui_thread: int | None = None) -> None:
        self.downstream = downstream
        self.times: list[float] = []
        self.tokens: list[int] = []
        self._ui_clock = time.pthread_getcpuclockid(ui_thread) if ui_thread is not None else None
        self.ui_cpu: list[float] = []
        self.engine_cpu: list[float] = []

    def __call__(self, event: Any) -> None:
        from tui_trainer.engine.events import StepMetrics

        if isinstance(event, StepMetrics):
            self.times.append(time.perf_counter())
            self.tokens.append(event.tokens_seen)
            self.engine_cpu.append(time.thread_time())  # called in the engine's thread
            if self._ui_clock is not None:
                self.ui_cpu.append(time.clock_gettime(self._ui_clock))
        if self.downstream is not None:
            self.downstream(event)

    def ui_cpu_pct(self) -> float:
        """The UI thread's CPU over the timing window, as a percentage of one core."""
        return 100 * (self.ui_cpu[-1] - self.ui_cpu[0]) / (self.times[-1] - self.times[0])

    def engine_busy_pct(self) -> float:
        """The engine thread's CPU over the timing window, as a percentage of its wall time."""
        return 100 * (self.engine_cpu[-1] - self.engine_cpu[0]) / (self.times[-1] - self.times[0])

    def tokens_per_s(self) -> float:
        if len(self.times) < 2:
            raise RuntimeError("the run took fewer than 2 steps")
        return (self.tokens[-1] - self.tokens[0]) / (self.times[-1] - self.times[0])


def run_plain(cfg: Any) -> "StepClock":
    """``train()`` in a plain thread: the app's worker is a thread too, and on this machine
    torch trains at a very different speed in the main thread than in another one (measured
    up to 3x), which would swamp the UI's cost."""
    from tui_trainer.api import train

    clock = StepClock()
    errors: list[BaseException] = []

    def body() -> None:
        try:
            train(cfg, on_event=clock)
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
            errors.append(err)

    thread = threading.Thread(target=body, name="train-without-ui")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    clock.tokens_per_s()  # fewer than 2 steps is an error here, not later
    return clock


def run_with_ui(cfg: Any) -> tuple["StepClock", dict[str, Any]]:
    from tui_trainer.api import train
    from tui_trainer.ui.app import TrainerApp
    from tui_trainer.ui.services import Services

    clock = StepClock(ui_thread=threading.get_ident())

    def timed_train(cfg: Any, *, on_event: Any, **kwargs: Any) -> Any:
        clock.downstream = on_event
        return train(cfg, on_event=clock, **kwargs)

    app = TrainerApp(services=Services(train=timed_train), output_dir=Path(cfg.run.output_dir))
    info: dict[str, Any] = {}

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            app.start_training(cfg)
            while app.engine_busy.is_set():
                await asyncio.sleep(0.2)
            await pilot.pause()
            # Every second the UI thread spends is GIL time the training thread may wait for.
            info["ui_thread_cpu_pct"] = round(clock.ui_cpu_pct(), 2)
            assert app.last_result is not None and app.last_result.status == "finished", app.run_state.final_message
            forwarder = clock.downstream  # the app's EventForwarder: what coalescing let through
            info["engine_events"] = forwarder.received
            info["ui_messages"] = forwarder.posted

    asyncio.run(drive())
    clock.tokens_per_s()
    return clock, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side (ABBA order)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=4)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    runs: list[tuple[str, StepClock]] = []
    ui_info: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = demo_config(Path(tmp), lora=False, seq_len=args.seq_len, micro_batch_size=args.micro_batch, grad_accum=1, steps=args.steps)
        run_plain(with_steps(cfg, 2))  # warm caches once
        order = ["plain", "ui", "ui", "plain"] * ((args.repeats + 1) // 2)
        for side in order[: 2 * args.repeats]:
            if side == "plain":
                runs.append((side, run_plain(cfg)))
            else:
                clock, info = run_with_ui(cfg)
                runs.append((side, clock))
                ui_info.append(info)
    import statistics

    plain = [c.tokens_per_s() for side, c in runs if side == "plain"]
    ui = [c.tokens_per_s() for side, c in runs if side == "ui"]
    busy_plain = [c.engine_busy_pct() for side, c in runs if side == "plain"]
    busy_ui = [c.engine_busy_pct() for side, c in runs if side == "ui"]
    # ABBA neighbours: runs 0,1 / 2,3 / ... are one plain and one UI run next to each other in time.
    pairs = [(a, b) if a[0] == "ui" else (b, a) for a, b in zip(runs[0::2], runs[1::2])]
    paired = [u[1].tokens_per_s() / p[1].tokens_per_s() for u, p in pairs]

    emit(
        {
            "benchmark": "ui_overhead",
            "config": {"steps": args.steps, "seq_len": args.seq_len, "micro_batch_size": args.micro_batch, "threads": threads},
            "tokens_per_s_without_ui": stats(plain),
            "tokens_per_s_with_ui": stats(ui),
            "ratio": ratio(statistics.median(ui), statistics.median(plain)),
            "target": 0.98,
            "paired_ratio": {"median": round(statistics.median(paired), 4), "per_pair": [round(r, 4) for r in paired]},
            "engine_busy_pct_without_ui": stats(busy_plain),
            "engine_busy_pct_with_ui": stats(busy_ui),
            "busy_ratio": ratio(statistics.median(busy_ui), statistics.median(busy_plain)),
            "ui_runs": ui_info,
            "machine": machine(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
