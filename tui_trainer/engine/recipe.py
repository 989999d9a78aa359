"""The training run in recipe shape: setup, train, save_checkpoint, load_checkpoint, cleanup.

The recipe owns every heavy object of a run (model, optimizer, scheduler, accelerator,
prepared datasets) so that ``cleanup`` can drop them all, whatever way the run ended.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from tui_trainer.config.io import save_config
from tui_trainer.config.schema import RunConfig
from tui_trainer.engine import events as ev
from tui_trainer.engine.accelerators import check_world, new_accelerator
from tui_trainer.engine.checkpoint.store import CheckpointManager
from tui_trainer.engine.control import Controls, agree
from tui_trainer.analytics.session import AnalyticsSession
from tui_trainer.engine.eventlog import EventLog
from tui_trainer.engine.faults import Faults
from tui_trainer.engine.checkpoint.fingerprint import check_resumable, config_fingerprint
from tui_trainer.engine.compiling import maybe_compile
from tui_trainer.engine.memory import cuda_allocated, release_cuda_cache
from tui_trainer.engine.optim import make_optimizer, make_scheduler, plan_sampler
from tui_trainer.engine.progress_state import RunProgress
from tui_trainer.engine.rng import seed_everything
from tui_trainer.engine.checkpoint.rundir import STOP_FILE, ResumeTarget, mark_ended, mark_running, resolve_resume, shared_run_dir
from tui_trainer.engine.checkpoint.state import read_trainer_state_strict
from tui_trainer.engine.outcome import Outcome
from tui_trainer.engine.recipe_checkpoints import RecipeCheckpoints
from tui_trainer.engine.recipe_endings import RunEndings
from tui_trainer.engine.rollback import roll_back
from tui_trainer.engine.prefetch import BatchFeed
from tui_trainer.engine.step import MinimumMicroBatchOOM, StepRunner
from tui_trainer.errors import ConfigError

MAX_NAN_STREAK = 3


class TrainingRecipe(RecipeCheckpoints, RunEndings):
    def __init__(self, cfg: RunConfig, events: EventLog, controls: Controls, faults: Faults) -> None:
        self.cfg = cfg
        self.events = events
        self.controls = controls
        self.faults = faults
        self.run_dir: Path | None = None
        self._stop_file: Path | None = None
        self._agreed_save: str | None = None
        self.progress = RunProgress()
        self.session_started = time.monotonic()
        self.total_steps = 0
        self.last_checkpoint: Path | None = None
        self.final_dir: Path | None = None
        self.resume_target: ResumeTarget | None = None
        self.save_failures = 0
        self.analytics: AnalyticsSession | None = None
        self.model = self.optimizer = self.scheduler = self.accelerator = self.sampler = None
        self.runner: StepRunner | None = None
        self.feed: BatchFeed | None = None
        self.prepared: list = []
        self.task = None
        self.model_source: tuple[str, torch.dtype] | None = None
        """(resolved model path, load dtype): what an FSDP export rebuilds a plain copy from."""
        self._export_copy = None
        self._export_gathered = False

    @property
    def step(self) -> int:
        return self.progress.step

    # ------------------------------------------------------------------ setup
    def setup(self, resume: str | Path | None) -> None:
        from tui_trainer.data.mixing.plan import describe_plan
        from tui_trainer.engine.model import count_parameters, device_name, plan_precision, resolve_model_path
        from tui_trainer.tasks.registry import get_task

        cfg = self.cfg
        self.task = task = get_task(cfg)
        if not cfg.data.datasets:
            raise ConfigError("data.datasets is empty; add at least one [[data.datasets]] table with name and path")
        plan = plan_precision(cfg, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        check_world(cfg, int(os.environ.get("WORLD_SIZE", "1")), torch.cuda.is_available())
        # Before the process group exists: under it transformers' save_pretrained writes nothing on a
        # rank other than 0, and a rank 1 that built the demo model (or a GGUF conversion) into the
        # cache first installed a directory without weights.
        model_path = resolve_model_path(cfg.model.name_or_path, gguf_file=cfg.model.gguf_file)
        # Without cpu=True accelerate ignores torchrun's WORLD_SIZE on a CPU box (no gloo group).
        self.accelerator = acc = new_accelerator(plan.mixed_precision, cfg.train.distributed, cfg.train.dist_timeout_s)
        if not acc.is_main_process:
            self.events.mute()
        self.resume_target = resolve_resume(cfg, resume)
        seed_everything(cfg.run.seed)
        task.setup(cfg, model_path)
        with acc.main_process_first():  # rank 0 fills the cache; the others then read it
            self.prepared = task.prepare(cfg, on_prepared=self._on_prepared)
        self.sampler, self.total_steps = plan_sampler(cfg, self.prepared)
        self.feed = BatchFeed(task, self.prepared, rank=acc.process_index, world=acc.num_processes)
        fingerprint = config_fingerprint(cfg, {p.name: Path(p.stats.cache_path).name for p in self.prepared})
        saved_state = self._check_resume_target(fingerprint)
        if plan.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model_source = (model_path, plan.load_dtype)
        model = task.build_model(cfg, model_path, plan.load_dtype, acc.device)
        optimizer = make_optimizer(cfg, model, acc.device)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.scheduler = make_scheduler(cfg, self.optimizer, self.total_steps)
        self.runner = StepRunner(
            accelerator=acc,
            model=self.model,
            optimizer=self.optimizer,
            task=task,
            micro_batch_size=cfg.train.micro_batch_size,
            max_grad_norm=cfg.train.max_grad_norm,
            faults=self.faults,
            on_oom=self._on_oom,
        )
        self.run_dir = shared_run_dir(acc, cfg, self.resume_target)
        self._stop_file = self.run_dir / STOP_FILE
        self.checkpoints = CheckpointManager(
            self.run_dir / "checkpoints", keep_last=cfg.checkpoint.keep_last, keep_best=cfg.checkpoint.keep_best
        )
        self.fingerprint = fingerprint
        if acc.is_main_process:
            mark_running(self.run_dir)  # first: a refused second trainer must change nothing
            self.checkpoints.remove_partial()
            save_config(cfg, self.run_dir / "config.toml")
            self.events.open(self.run_dir / "events.jsonl")
        self.analytics = AnalyticsSession(cfg, self.events, self.run_dir, main_process=acc.is_main_process, device=acc.device)
        if self.resume_target is not None:
            self.load_checkpoint(self.resume_target.checkpoint, saved_state)
            # After loading, so that the warnings carry the step the run continues from.
            for record in self.resume_target.skipped:
                self.events.emit(ev.Warning_(self.step, message=f"skipped checkpoint {record.path.name}: {record.problem}"))
        trainable, total = count_parameters(self.model)
        unwrapped = acc.unwrap_model(self.model)
        self.events.emit(
            ev.RunStarted(
                self.step,
                config=cfg.to_dict(),
                run_dir=str(self.run_dir),
                world_size=acc.num_processes,
                device=device_name(acc.device),
                total_steps=self.total_steps,
                precision=plan.precision,
                tf32=plan.tf32,
                attn_implementation=str(getattr(unwrapped.config, "_attn_implementation", "eager")),
                pin_memory=self.runner.pin_memory,
                trainable_params=trainable,
                total_params=total,
                resumed_from=str(self.resume_target.checkpoint) if self.resume_target else None,
                plan="\n".join([describe_plan(self.sampler), *task.plan_lines()]),
            )
        )
        maybe_compile(cfg.train.compile, unwrapped, acc.device, lambda m: self.events.emit(ev.Warning_(self.step, message=m)))

    def _on_prepared(self, s) -> None:
        prepared = ev.DatasetPrepared(0, name=s.name, rows=s.packed_rows, tokens=s.tokens, cached=s.cached,
                                      eval_rows=s.eval_rows, seconds=round(s.seconds, 3))  # fmt: skip
        self.events.emit(prepared)

    def _check_resume_target(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        if self.resume_target is None:
            return None
        state = read_trainer_state_strict(self.resume_target.checkpoint)
        check_resumable(self.resume_target.checkpoint, state, fingerprint, self.total_steps)
        return state

    # ------------------------------------------------------------------ train
    def train(self) -> Outcome:
        cfg = self.cfg
        acc = self.accelerator
        names = [p.name for p in self.prepared]
        eval_every = cfg.train.eval_every
        every_steps = cfg.checkpoint.every_steps
        every_seconds = cfg.checkpoint.every_minutes * 60
        last_save = time.monotonic()
        nan_streak = 0
        if cfg.train.eval_at_start and self.step == 0 and self.progress.eval_loss is None:
            self._eval()
        self.model.train()
        while self.step < self.total_steps:
            reason = self._poll_controls(bool(every_seconds) and time.monotonic() - last_save >= every_seconds)
            if reason is not None:
                return self._stop(reason)
            self.faults.before_step(self.step)
            t0 = time.perf_counter()
            batch = self.sampler.next_batch()
            for ds_index, epoch in batch.new_epochs:
                self.events.emit(ev.DatasetEpoch(self.step, name=names[ds_index], epoch=epoch))
            fed = self.feed.take(batch, self.sampler)  # and starts collating the next step's rows
            try:
                result = self.runner.run(self.step, fed.rows, fed.dataset_ids, fed.global_targets)
            except MinimumMicroBatchOOM:
                return self._stop_oom()
            self.scheduler.step()
            lr = self.scheduler.get_last_lr()[0]
            self.progress.step += 1
            self.progress.add_tokens(
                {names[i]: count for i, count in result.tokens_per_dataset.items()}, result.tokens * acc.num_processes
            )
            if not result.finite:
                nan_streak += 1
                self.events.emit(
                    ev.Warning_(self.step, message=f"non-finite loss or gradient at step {self.step}; update skipped")
                )
                self.analytics.on_skipped_step(self.step, result.loss, result.grad_norm)
                if nan_streak >= MAX_NAN_STREAK:
                    if roll_back(self, self.analytics.detectors.nonfinite_onset(self.step)):
                        nan_streak = 0
                        continue
                    return self._stop_nan(nan_streak)
                continue
            nan_streak = 0
            self.progress.loss = result.loss
            elapsed = time.perf_counter() - t0
            self.events.emit(
                ev.StepMetrics(
                    self.step,
                    loss=result.loss,
                    lr=lr,
                    grad_norm=result.grad_norm,
                    tokens_per_s=result.tokens * acc.num_processes / max(elapsed, 1e-9),
                    samples_per_dataset=self.sampler.samples_per_dataset(),
                    total_steps=self.total_steps,
                    epoch=self._epoch(),
                    tokens_seen=self.progress.tokens_seen,
                    **self.analytics.gpu.fields(),
                )
            )
            onset = self.analytics.detectors.take_onset()
            if onset is not None and roll_back(self, onset):
                continue
            improved = False
            if (eval_every and self.step % eval_every == 0) or self.step == self.total_steps:
                improved, early_stop = self._eval()
                if early_stop:
                    self.events.emit(
                        ev.Warning_(
                            self.step,
                            message=f"early stopping: no eval improvement in {self.progress.evals_without_improvement} evals",
                        )
                    )
                    break
            if self.step == self.total_steps:
                break
            save_reason = self._agreed_save  # checkpoint-now or time: agreed by every rank before the step
            if save_reason is None and every_steps and self.step % every_steps == 0:
                save_reason = "interval"
            elif save_reason is None and improved and cfg.checkpoint.keep_best:
                save_reason = "best"
            if save_reason:
                self.save_checkpoint(save_reason)
                last_save = time.monotonic()
        return self._finish()

    def _epoch(self) -> float:
        epochs = self.sampler.epochs_per_dataset()
        return max(epochs.values()) if epochs else 0.0

    def _poll_controls(self, time_due: bool) -> str | None:
        run_dir = self.run_dir if self.accelerator.is_main_process else None  # other machines may not share it
        decision = agree(
            self.controls, self.accelerator, stop_file=self._stop_file, run_dir=run_dir, time_due=time_due,
            save_while_paused=lambda: self.save_checkpoint("user"),
        )
        self._agreed_save = decision.save
        return decision.stop

    def _on_oom(self, micro_batch_size: int, grad_accum: int) -> None:
        self.events.emit(ev.OomRecovered(self.step, micro_batch_size=micro_batch_size, grad_accum=grad_accum))

    def _eval(self) -> tuple[bool, bool]:
        from tui_trainer.engine.evaluation import evaluate

        report = evaluate(
            self.accelerator,
            self.model,
            self.task,
            self.task.evaluator(self.cfg),
            self.prepared,
            self.runner.micro_batch_size,
            self.cfg.train.eval_max_rows,
        )
        if report is None:
            return False, False
        name, higher_is_better = self.task.best_metric()
        improved = self.progress.record_eval(
            report.eval_loss, report.metrics.get(name), higher_is_better, name, metrics=report.metrics
        )
        self.events.emit(
            ev.EvalResult(
                self.step, eval_loss=report.eval_loss, per_dataset=report.per_dataset, best=improved,
                metrics=report.metrics, per_dataset_metrics=report.per_dataset_metrics, best_metric=name,
            )
        )
        patience = self.cfg.train.early_stopping_patience
        return improved, bool(patience and self.progress.evals_without_improvement >= patience)

    # ------------------------------------------------------------ cleanup
    def cleanup(self) -> None:
        """Drop every heavy reference and give CUDA memory back (runs in ``finally``)."""
        before = cuda_allocated()
        if self.run_dir is not None:
            mark_ended(self.run_dir)
        acc = self.accelerator
        if acc is not None:
            acc.free_memory()
        self.model = self.optimizer = self.scheduler = self.runner = self.feed = self._export_copy = None
        self.sampler = None
        self.prepared = []
        self.accelerator = None
        release_cuda_cache()
        self.events.emit(ev.Cleanup(self.step, cuda_allocated_before=before, cuda_allocated_after=cuda_allocated()))

