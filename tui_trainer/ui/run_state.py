"""What the monitor knows about a run, rebuilt from engine events (no widgets here).

The monitor screen feeds every event to :meth:`RunState.apply` and then renders from
the state; the same code serves the local worker and a followed ``events.jsonl``. All
times come from the events, so the ETA and the log are reproducible in tests.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tui_trainer.engine import events as ev

SPEED_WINDOW = 20
"""Recent steps the ETA is averaged over."""
MAX_LOG_LINES = 200


@dataclass
class RunState:
    """Mutable accumulation of one run's events, oldest first."""

    run_dir: str = ""
    """Directory of the run (from run_started)."""
    name: str = ""
    """Run directory name, shown in the title."""
    status: str = "starting"
    """starting | training | paused | stopping | finished | stopped | failed."""
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    epoch: float = 0.0
    tokens_seen: int = 0
    best_eval: float | None = None
    samples_per_dataset: dict[str, int] = field(default_factory=dict)
    train_points: list[tuple[int, float]] = field(default_factory=list)
    """(step, loss) for the chart."""
    eval_points: list[tuple[int, float]] = field(default_factory=list)
    """(step, eval loss) for the chart."""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    """Human-readable lines: checkpoints, warnings, epochs, OOM recoveries, the end."""
    final_message: str = ""
    log_total: int = 0
    """Lines ever appended to ``log`` (the deque drops old ones); widgets track what they showed."""
    started_at: float | None = None
    """Time of the first event seen; log lines show time elapsed since then."""
    _recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=SPEED_WINDOW))

    def apply(self, event: ev.Event) -> None:
        handler = getattr(self, f"_on_{event.TYPE}", None)
        if handler is not None:
            handler(event)

    # -- derived values -------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.status in ("starting", "training", "paused", "stopping")

    def seconds_per_step(self) -> float | None:
        if len(self._recent) < 2:
            return None
        (t0, s0), (t1, s1) = self._recent[0], self._recent[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        return (t1 - t0) / (s1 - s0)

    def eta_seconds(self) -> float | None:
        per_step = self.seconds_per_step()
        if per_step is None or not self.total_steps:
            return None
        return max(0, self.total_steps - self.step) * per_step

    def shares(self) -> list[tuple[str, float]]:
        """Each dataset's share of the samples drawn so far."""
        total = sum(self.samples_per_dataset.values())
        if not total:
            return [(name, 0.0) for name in self.samples_per_dataset]
        return [(name, n / total) for name, n in self.samples_per_dataset.items()]

    # -- event handlers -------------------------------------------------------------
    def _log(self, event: ev.Event, text: str) -> None:
        # Elapsed time rather than wall-clock: readable across time zones and reproducible.
        if self.started_at is None:
            self.started_at = event.time
        stamp = format_duration(event.time - self.started_at)
        self.log.append(f"{stamp} step {event.step}: {text}")
        self.log_total += 1

    def _on_run_started(self, e: ev.RunStarted) -> None:
        self.run_dir = e.run_dir
        self.name = Path(e.run_dir).name
        self.total_steps = e.total_steps or self.total_steps
        self.step = e.step
        if self.status == "starting":  # a pause or stop asked for while starting stays shown
            self.status = "training"
        where = f"resumed from {Path(e.resumed_from).name}" if e.resumed_from else "started"
        self._log(e, f"run {where} on {e.device}, {e.total_steps} steps")

    def _on_dataset_prepared(self, e: ev.DatasetPrepared) -> None:
        origin = "cache" if e.cached else "prepared"
        self._log(e, f"dataset {e.name}: {e.rows:,} rows, {e.tokens:,} tokens ({origin})")

    def _on_step(self, e: ev.StepMetrics) -> None:
        if self.status == "starting":
            self.status = "training"
        if self.started_at is None:
            self.started_at = e.time
        self.step = e.step
        self.total_steps = e.total_steps or self.total_steps
        self.loss, self.lr, self.grad_norm, self.tokens_per_s = e.loss, e.lr, e.grad_norm, e.tokens_per_s
        self.epoch, self.tokens_seen = e.epoch, e.tokens_seen
        self.samples_per_dataset = dict(e.samples_per_dataset)
        self.train_points.append((e.step, e.loss))
        self._recent.append((e.time, e.step))

    def _on_eval(self, e: ev.EvalResult) -> None:
        self.eval_points.append((e.step, e.eval_loss))
        if self.best_eval is None or e.eval_loss < self.best_eval:
            self.best_eval = e.eval_loss
        parts = ", ".join(f"{k} {v:.3f}" for k, v in e.per_dataset.items())
        self._log(e, f"eval loss {e.eval_loss:.4f}" + (f" ({parts})" if parts else "") + (" best" if e.best else ""))

    def _on_checkpoint_saved(self, e: ev.CheckpointSaved) -> None:
        self._log(e, f"checkpoint {Path(e.path).name} saved ({e.reason})")

    def _on_dataset_epoch(self, e: ev.DatasetEpoch) -> None:
        self._log(e, f"dataset {e.name} starts epoch {e.epoch}")

    def _on_warning(self, e: ev.Warning_) -> None:
        self._log(e, f"warning: {e.message}")

    def _on_oom_recovered(self, e: ev.OomRecovered) -> None:
        self._log(e, f"out of memory: micro-batch {e.micro_batch_size}, grad accum {e.grad_accum}")

    def _on_run_finished(self, e: ev.RunFinished) -> None:
        self.status = "finished"
        self.step = max(self.step, e.step)
        self.final_message = f"finished at step {e.step}" + (f"; weights in {e.final_dir}" if e.final_dir else "")
        self._log(e, self.final_message)

    def _on_run_stopped(self, e: ev.RunStopped) -> None:
        self.status = "stopped"
        self.final_message = e.message or f"stopped ({e.reason})" + (
            f"; resumable from {Path(e.checkpoint).name}" if e.checkpoint else ""
        )
        self._log(e, self.final_message)

    def _on_run_failed(self, e: ev.RunFailed) -> None:
        self.status = "failed"
        self.final_message = f"failed: {e.error}"
        self._log(e, self.final_message)

    def _on_cleanup(self, e: ev.Cleanup) -> None:
        if e.cuda_allocated_before:
            mib = 1024 * 1024
            self._log(e, f"CUDA memory released: {e.cuda_allocated_before // mib} MiB -> {e.cuda_allocated_after // mib} MiB")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
