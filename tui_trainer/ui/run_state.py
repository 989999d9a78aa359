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
    gpu_util_pct: float | None = None
    """The run's own GPU utilization, from the newest step event that carried one (CUDA runs
    sample it about once a second); what the monitor shows for a run on another machine."""
    gpu_memory_bytes: int | None = None
    """GPU memory the run's device had in use at that same step."""
    gpu_sampled_step: int | None = None
    """The step of that reading (None until a step event carries one)."""
    samples_per_dataset: dict[str, int] = field(default_factory=dict)
    train_points: list[tuple[int, float]] = field(default_factory=list)
    """(step, loss) for the chart."""
    eval_points: list[tuple[int, float]] = field(default_factory=list)
    """(step, eval loss) for the chart."""
    lr_points: list[tuple[int, float]] = field(default_factory=list)
    """(step, learning rate), for the chart's learning-rate view."""
    grad_points: list[tuple[int, float]] = field(default_factory=list)
    """(step, gradient norm before clipping), for the chart's grad-norm view."""
    findings: list[ev.Anomaly] = field(default_factory=list)
    """The detectors' findings (``anomaly`` events), oldest first."""
    recoveries: list[ev.Recovery] = field(default_factory=list)
    """Rollbacks of the recovery policy, oldest first."""
    task: str = "causal_lm"
    """The run's task (run.task of the run_started config): which metrics panel the monitor shows."""
    evals: list[ev.EvalResult] = field(default_factory=list)
    """Every eval of the run, oldest first, for the task's metrics panel."""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    """Human-readable lines: checkpoints, warnings, findings, epochs, OOM recoveries, the end."""
    final_message: str = ""
    log_total: int = 0
    """Lines ever appended to ``log`` (the deque drops old ones); widgets track what they showed."""
    started_at: float | None = None
    """Time of the first event seen; log lines show time elapsed since then."""
    paused_seconds: float = 0.0
    """Time spent paused so far; left out of the step rate so a pause does not inflate the ETA."""
    paused_since: float | None = None
    """When the current pause began (None while training)."""
    _recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=SPEED_WINDOW))

    def apply(self, event: ev.Event) -> None:
        handler = getattr(self, f"_on_{event.TYPE}", None)
        if handler is not None:
            handler(event)

    def apply_history(self, event: ev.Event) -> None:
        """An earlier event of a run this one resumes: only its curve points, for the chart."""
        if isinstance(event, ev.StepMetrics):
            self._add_curve_points(event)
        elif isinstance(event, ev.Anomaly):
            self.findings.append(event)
        elif isinstance(event, ev.EvalResult):
            self.eval_points.append((event.step, event.eval_loss))
            self.evals.append(event)
            if self.best_eval is None or event.eval_loss < self.best_eval:
                self.best_eval = event.eval_loss

    def mark_paused(self, now: float) -> None:
        if self.paused_since is None:
            self.paused_since = now

    def mark_resumed(self, now: float) -> None:
        if self.paused_since is not None:
            self.paused_seconds += max(0.0, now - self.paused_since)
            self.paused_since = None

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
        self.task = (e.config.get("run") or {}).get("task") or self.task
        self.total_steps = e.total_steps or self.total_steps
        self.step = e.step
        if self.status == "starting":  # a pause or stop asked for while starting stays shown
            self.status = "training"
        where = f"resumed from {Path(e.resumed_from).name}" if e.resumed_from else "started"
        self._log(e, f"run {where} on {e.device}, {e.total_steps} steps")
        for line in e.plan.splitlines():
            self._log(e, "plan: " + line.strip())

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
        if e.gpu_utilization_pct is not None:
            self.gpu_util_pct, self.gpu_memory_bytes, self.gpu_sampled_step = e.gpu_utilization_pct, e.gpu_memory_bytes, e.step
        self.samples_per_dataset = dict(e.samples_per_dataset)
        if self.train_points and self.train_points[-1][0] >= e.step:
            # A resumed (or rolled back) run repeats no step, but its history may reach past the checkpoint.
            self.train_points = [p for p in self.train_points if p[0] < e.step]
            self.lr_points = [p for p in self.lr_points if p[0] < e.step]
            self.grad_points = [p for p in self.grad_points if p[0] < e.step]
        self._add_curve_points(e)
        self._recent.append((e.time - self.paused_seconds, e.step))

    def _add_curve_points(self, e: ev.StepMetrics) -> None:
        self.train_points.append((e.step, e.loss))
        self.lr_points.append((e.step, e.lr))
        self.grad_points.append((e.step, e.grad_norm))

    def _on_anomaly(self, e: ev.Anomaly) -> None:
        self.findings.append(e)
        self._log(e, f"FINDING {e.kind} ({e.metric}): {e.message}. Recommendation: {e.recommendation}")

    def _on_recovery(self, e: ev.Recovery) -> None:
        self.recoveries.append(e)
        self._log(
            e,
            f"recovery: rolled back from step {e.from_step} to {Path(e.checkpoint).name}, "
            f"lr x{e.lr_factor:g}, {e.skipped_steps} batches skipped",
        )

    def _on_eval(self, e: ev.EvalResult) -> None:
        self.eval_points.append((e.step, e.eval_loss))
        # A resumed run's history may hold evals past its checkpoint: the new ones replace them.
        self.evals = [x for x in self.evals if x.step < e.step] + [e]
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
