"""What analytics costs a run: the detectors per step, and report.html at the run's end.

    .venv/bin/python benchmarks/analytics_cost.py [--steps 200000] [--report-steps 2000] [--repeats 3] [--run-end]

Prints JSON: ``detector_us_per_step`` (every detector fed a clean, slowly falling noisy curve
through the engine's path, a ``step`` event to :class:`RunAnalytics`) against
``baseline_us_per_step`` (the same events to a callback that does nothing) and the findings
on that clean curve (goal: none); ``report_seconds`` (a fresh interpreter importing the
report module and writing report.html for a synthetic run directory of ``--report-steps``
steps with evals and two datasets), split into import and write, the minimum of
``--repeats`` runs. ``--run-end`` also trains a 6-step demo run in a fresh interpreter with
and without the report modules imported on a thread from the last step on (ABBA), and
prints the time ``write_report`` took at the run's end and from ``run_finished`` to
``train()`` returning (about a minute on a loaded 2-core box).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tui_trainer.analytics.monitor import RunAnalytics  # noqa: E402
from tui_trainer.config.schema import RunConfig  # noqa: E402
from tui_trainer.engine import events as ev  # noqa: E402

_TIME_REPORT = """
import sys, time
t0 = time.perf_counter()
from tui_trainer.analytics.report_html import write_run_report
t1 = time.perf_counter()
write_run_report(sys.argv[1])
t2 = time.perf_counter()
print(f"{t1 - t0} {t2 - t1}")
"""


_TIME_RUN_END = """
import sys, tempfile, time
from pathlib import Path
from tests.integration.conftest import demo_cfg
from tui_trainer.analytics import session
from tui_trainer.api import train
from tui_trainer.engine import events as ev
if sys.argv[1] == "off":
    session._import_report_modules = lambda: None
spent, marks = {}, {}
write = session.AnalyticsSession.write_report
def timed(self, run_dir):
    start = time.perf_counter()
    write(self, run_dir)
    spent["report"] = time.perf_counter() - start
session.AnalyticsSession.write_report = timed
def on_event(event):
    if isinstance(event, ev.RunFinished):
        marks["finished"] = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    train(demo_cfg(Path(tmp), max_steps=6, checkpoint={"every_steps": 0, "every_minutes": 0}), on_event=on_event)
    print(spent["report"], time.perf_counter() - marks["finished"])
"""


def run_end_cost() -> dict[str, float]:
    results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    for mode in ("off", "on", "on", "off"):
        out = subprocess.run([sys.executable, "-c", _TIME_RUN_END, mode], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        results[mode].append(tuple(float(x) for x in out.stdout.split()[-2:]))
    best = {mode: min(values) for mode, values in results.items()}
    return {
        "run_end_report_seconds": round(best["on"][0], 3),
        "run_end_report_seconds_without_import_thread": round(best["off"][0], 3),
        "run_finished_to_return_seconds": round(best["on"][1], 3),
        "run_finished_to_return_seconds_without_import_thread": round(best["off"][1], 3),
    }


def _curve(n: int, seed: int = 0) -> list[ev.StepMetrics]:
    rng = random.Random(seed)
    return [
        ev.StepMetrics(i + 1, time=float(i), loss=3.0 * math.exp(-i / max(n / 4, 1)) + 0.5 + rng.gauss(0, 0.02),
                       lr=1e-4, grad_norm=1.0 + rng.gauss(0, 0.05), tokens_per_s=1000.0 + rng.gauss(0, 20),
                       samples_per_dataset={"code": 6 * (i + 1), "docs": 2 * (i + 1)})
        for i in range(n)
    ]


def detector_cost(steps: int) -> dict[str, float]:
    events = _curve(steps)
    found: list[ev.Event] = []
    analytics = RunAnalytics.from_config(RunConfig(), found.append)

    def nothing(event: ev.Event) -> None:
        return None

    timings = {}
    for name, callback in (("baseline", nothing), ("detector", analytics)):
        start = time.perf_counter()
        for event in events:
            callback(event)
        timings[name] = (time.perf_counter() - start) / steps * 1e6
    return {"detector_us_per_step": round(timings["detector"] - timings["baseline"], 2),
            "baseline_us_per_step": round(timings["baseline"], 3), "clean_curve_findings": len(found)}


def _synthetic_run(root: Path, steps: int) -> Path:
    run = root / "bench-run"
    run.mkdir()
    with (run / "events.jsonl").open("w") as fh:
        config = {"data": {"datasets": [{"name": "code", "weight": 0.75}, {"name": "docs", "weight": 0.25}]}}
        fh.write(json.dumps(ev.RunStarted(0, time=0.0, config=config, run_dir=str(run), world_size=1, device="cpu",
                                          total_steps=steps).to_dict()) + "\n")
        for event in _curve(steps):
            fh.write(json.dumps(event.to_dict()) + "\n")
            if event.step % max(steps // 20, 1) == 0:
                loss = event.loss + 0.1
                fh.write(json.dumps(ev.EvalResult(event.step, time=event.time, eval_loss=loss,
                                                  per_dataset={"code": loss - 0.05, "docs": loss + 0.05},
                                                  metrics={"eval_loss": loss, "perplexity": math.exp(loss)}).to_dict()) + "\n")
        fh.write(json.dumps(ev.RunFinished(steps, time=float(steps)).to_dict()) + "\n")
    return run


def report_cost(steps: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        run = _synthetic_run(Path(tmp), steps)
        runs = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, "-c", _TIME_REPORT, str(run)], capture_output=True, text=True,
                                 check=True, cwd=ROOT)
            runs.append(tuple(float(x) for x in out.stdout.split()))
        size = (run / "report.html").stat().st_size
    imp, write = min(runs, key=sum)
    return {"report_seconds": round(imp + write, 3), "report_import_seconds": round(imp, 3),
            "report_write_seconds": round(write, 3), "report_steps": steps, "report_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--report-steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-end", action="store_true", help="also time the report at a real demo run's end")
    args = parser.parse_args()
    figures = {**detector_cost(args.steps), **report_cost(args.report_steps, args.repeats)}
    if args.run_end:
        figures.update(run_end_cost())
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
