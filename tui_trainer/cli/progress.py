"""Headless progress display for ``tui-trainer train`` and ``demo``.

A rich progress bar on a terminal; plain, grep-able lines when stdout is a pipe or a
file (cluster logs), so a log never fills with carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tui_trainer.engine import events as ev

PLAIN_EVERY_SECONDS = 5.0


class ProgressDisplay:
    def __init__(self, stream: TextIO | None = None, *, force_plain: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, stderr=False)
        self.plain = force_plain or not self.stream.isatty()
        self._progress: Progress | None = None
        self._task = None
        self._last_plain = 0.0
        self.first_eval: float | None = None
        self.last_eval: float | None = None
        self.findings: list[ev.Anomaly] = []

    def __enter__(self) -> ProgressDisplay:
        if not self.plain:
            self._progress = Progress(
                TextColumn("[bold]step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("loss {task.fields[loss]}  {task.fields[tps]} tok/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=None, loss="-", tps="-")
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self.findings:
            try:
                # report.html is not written after a signal stop, so point at what always has them.
                print(f"findings ({len(self.findings)}; in events.jsonl, and with the curves in report.html):", file=self.stream)
                for a in self.findings:
                    print(f"  step {a.step}: {a.kind} ({a.metric}) -> {a.recommendation}", file=self.stream, flush=True)
            except OSError:
                pass  # the terminal went away; events.jsonl has them

    def _line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics):
            self._on_step(event)
        elif isinstance(event, ev.RunStarted):
            resumed = f", resumed from {event.resumed_from}" if event.resumed_from else ""
            self._line(
                f"run {event.run_dir} on {event.device} ({event.precision}, {event.trainable_params:,} of "
                f"{event.total_params:,} params trainable, {event.total_steps} steps{resumed})"
            )
            if event.plan:
                self._line(event.plan)
            if self._progress is not None:
                self._progress.update(self._task, total=event.total_steps, completed=event.step)
        elif isinstance(event, ev.DatasetPrepared):
            source = "cache" if event.cached else "prepared"
            self._line(f"dataset {event.name}: {event.rows:,} rows, {event.tokens:,} tokens ({source}, {event.seconds:.1f}s)")
        elif isinstance(event, ev.EvalResult):
            if self.first_eval is None:
                self.first_eval = event.eval_loss
            self.last_eval = event.eval_loss
            per = ", ".join(f"{k} {v:.3f}" for k, v in event.per_dataset.items())
            self._line(f"eval @ {event.step}: loss {event.eval_loss:.4f}{' (best)' if event.best else ''}  [{per}]")
        elif isinstance(event, ev.CheckpointSaved):
            self._line(f"checkpoint @ {event.step} ({event.reason}): {event.path}")
        elif isinstance(event, ev.Warning_):
            self._line(f"warning: {event.message}")
        elif isinstance(event, ev.OomRecovered):
            self._line(
                f"out of memory at step {event.step}: retrying with micro-batch {event.micro_batch_size} "
                f"x {event.grad_accum} accumulation (same effective batch)"
            )
        elif isinstance(event, ev.Anomaly):
            self.findings.append(event)
            self._line(f"finding: {event.message}; {event.recommendation}")
        elif isinstance(event, ev.Recovery):
            self._line(
                f"recovery: back to {event.checkpoint} (step {event.step}), learning rate x {event.lr_factor:g}, "
                f"{event.skipped_steps} batches of the bad window skipped"
            )
        elif isinstance(event, ev.DatasetEpoch):
            self._line(f"dataset {event.name}: epoch {event.epoch} begins (reshuffled)")

    def _on_step(self, event: ev.StepMetrics) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=event.step,
                total=event.total_steps or None,
                loss=f"{event.loss:.4f}",
                tps=f"{event.tokens_per_s:,.0f}",
            )
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_SECONDS or event.step == event.total_steps:
            self._last_plain = now
            self._line(
                f"step {event.step}/{event.total_steps}  loss {event.loss:.4f}  lr {event.lr:.3g}  "
                f"grad {event.grad_norm:.3f}  {event.tokens_per_s:,.0f} tok/s"
            )
