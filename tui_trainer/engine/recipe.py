"""The training run in recipe shape: setup, train, save_checkpoint, load_checkpoint, cleanup.

The recipe owns every heavy object of a run (model, optimizer, scheduler, accelerator,
prepared datasets) so that ``cleanup`` can drop them all, whatever way the run ended.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from tui_trainer.config import RunConfig, save_config
from tui_trainer.engine import events as ev
from tui_trainer.engine.checkpoints import CheckpointManager
from tui_trainer.engine.control import Controls
from tui_trainer.engine.eventlog import EventLog
from tui_trainer.engine.faults import Faults
from tui_trainer.engine.fingerprint import check_resumable, config_fingerprint
from tui_trainer.engine.memory import cuda_allocated, release_cuda_cache
from tui_trainer.engine.optim import make_optimizer, make_scheduler, plan_sampler
from tui_trainer.engine.progress_state import RunProgress
from tui_trainer.engine.report import write_report
from tui_trainer.engine.rng import restore_rng, seed_everything
from tui_trainer.engine.rundir import STOP_FILE, ResumeTarget, mark_ended, mark_running, resolve_resume, shared_run_dir
from tui_trainer.engine.state import (
    STATE_FORMAT,
    load_training_state,
    load_weights,
    read_trainer_state_strict,
    write_checkpoint_files,
)
from tui_trainer.engine.outcome import Outcome, nan_message, oom_message, stop_message
from tui_trainer.engine.step import MinimumMicroBatchOOM, StepRunner, shard
from tui_trainer.errors import CheckpointError, ConfigError, ResumeError

MAX_NAN_STREAK = 3
MAX_SAVE_FAILURES = 3


class TrainingRecipe:
    def __init__(self, cfg: RunConfig, events: EventLog, controls: Controls, faults: Faults) -> None:
        self.cfg = cfg
        self.events = events
        self.controls = controls
        self.faults = faults
        self.run_dir: Path | None = None
        self._stop_file: Path | None = None
        self.progress = RunProgress()
        self.session_started = time.monotonic()
        self.total_steps = 0
        self.last_checkpoint: Path | None = None
        self.final_dir: Path | None = None
        self.resume_target: ResumeTarget | None = None
        self.save_failures = 0
        self.model = self.optimizer = self.scheduler = self.accelerator = self.sampler = None
        self.runner: StepRunner | None = None
        self.prepared: list = []
        self.tokenizer = None

    @property
    def step(self) -> int:
        return self.progress.step

    # ------------------------------------------------------------------ setup
    def setup(self, resume: str | Path | None) -> None:
        from accelerate import Accelerator

        from tui_trainer.data.mixing import describe_plan
        from tui_trainer.data.prepare import prepare_all
        from tui_trainer.engine.model import (
            count_parameters,
            device_name,
            load_model,
            load_tokenizer,
            plan_precision,
            resolve_model_path,
        )

        cfg = self.cfg
        if not cfg.data.datasets:
            raise ConfigError("data.datasets is empty; add at least one [[data.datasets]] table with name and path")
        plan = plan_precision(cfg, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        self.accelerator = acc = Accelerator(mixed_precision=plan.mixed_precision)
        if cfg.effective_batch % acc.num_processes:
            raise ConfigError(
                f"train.micro_batch_size x train.grad_accum = {cfg.effective_batch} is not divisible by "
                f"{acc.num_processes} processes; change grad_accum"
            )
        self.resume_target = resolve_resume(cfg, resume)
        seed_everything(cfg.run.seed)
        model_path = resolve_model_path(cfg.model.name_or_path)
        self.tokenizer = load_tokenizer(cfg, model_path)
        with acc.main_process_first():  # rank 0 fills the cache; the others then read it
            self.prepared = prepare_all(cfg, self.tokenizer, on_event=self.events.emit)
        self.sampler, self.total_steps = plan_sampler(cfg, self.prepared)
        fingerprint = config_fingerprint(cfg, {p.name: Path(p.stats.cache_path).name for p in self.prepared})
        saved_state = self._check_resume_target(fingerprint)
        if plan.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        model = load_model(cfg, model_path, plan, acc.device)
        optimizer = make_optimizer(cfg, model, acc.device)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.scheduler = make_scheduler(cfg, self.optimizer, self.total_steps)
        self.runner = StepRunner(
            accelerator=acc,
            model=self.model,
            optimizer=self.optimizer,
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
            self.checkpoints.remove_partial()
            save_config(cfg, self.run_dir / "config.toml")
            self.events.open(self.run_dir / "events.jsonl")
            mark_running(self.run_dir)
        if self.resume_target is not None:
            for record in self.resume_target.skipped:
                self.events.emit(ev.Warning_(self.step, message=f"skipped checkpoint {record.path.name}: {record.problem}"))
            self.load_checkpoint(self.resume_target.checkpoint, saved_state)
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
                plan=describe_plan(self.sampler),
            )
        )

    def _check_resume_target(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        if self.resume_target is None:
            return None
        state = read_trainer_state_strict(self.resume_target.checkpoint)
        check_resumable(self.resume_target.checkpoint, state, fingerprint, self.total_steps)
        return state

    # ------------------------------------------------------------------ train
    def train(self) -> Outcome:
        from tui_trainer.data.collate import fetch_batch

        cfg = self.cfg
        acc = self.accelerator
        names = [p.name for p in self.prepared]
        pad_id = self.tokenizer.pad_token_id
        eval_every = cfg.train.eval_every
        every_steps = cfg.checkpoint.every_steps
        every_seconds = cfg.checkpoint.every_minutes * 60
        last_save = time.monotonic()
        nan_streak = 0
        if cfg.train.eval_at_start and self.step == 0 and self.progress.eval_loss is None:
            self._eval()
        self.model.train()
        while self.step < self.total_steps:
            reason = self._poll_controls()
            if reason is not None:
                return self._stop(reason)
            self.faults.before_step(self.step)
            t0 = time.perf_counter()
            batch = self.sampler.next_batch()
            for ds_index, epoch in batch.new_epochs:
                self.events.emit(ev.DatasetEpoch(self.step, name=names[ds_index], epoch=epoch))
            mine = shard(batch.items, acc.process_index, acc.num_processes)
            tensors = fetch_batch(self.prepared, mine, pad_id)
            dataset_ids = torch.tensor([d for d, _ in mine], dtype=torch.long)
            try:
                result = self.runner.run(self.step, tensors, dataset_ids)
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
                if nan_streak >= MAX_NAN_STREAK:
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
                )
            )
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
            save_reason = None
            if self.controls.checkpoint_now.is_set():
                self.controls.checkpoint_now.clear()
                save_reason = "user"
            elif every_steps and self.step % every_steps == 0:
                save_reason = "interval"
            elif every_seconds and time.monotonic() - last_save >= every_seconds:
                save_reason = "time"
            elif improved and cfg.checkpoint.keep_best:
                save_reason = "best"
            if save_reason:
                self.save_checkpoint(save_reason)
                last_save = time.monotonic()
        return self._finish()

    def _epoch(self) -> float:
        epochs = self.sampler.epochs_per_dataset()
        return max(epochs.values()) if epochs else 0.0

    def _poll_controls(self) -> str | None:
        if self._stop_file is not None and self._stop_file.exists():
            self.controls.request_stop("stop_file")
        while self.controls.pause.is_set() and not self.controls.stop.is_set():
            time.sleep(0.05)
        return self.controls.reason if self.controls.stop.is_set() else None

    def _on_oom(self, micro_batch_size: int, grad_accum: int) -> None:
        self.events.emit(ev.OomRecovered(self.step, micro_batch_size=micro_batch_size, grad_accum=grad_accum))

    def _eval(self) -> tuple[bool, bool]:
        from tui_trainer.engine.evaluation import evaluate

        losses = evaluate(
            self.accelerator,
            self.model,
            self.prepared,
            self.tokenizer.pad_token_id,
            self.runner.micro_batch_size,
            self.cfg.train.eval_max_rows,
        )
        if losses is None:
            return False, False
        improved = self.progress.record_eval(losses.overall)
        self.events.emit(ev.EvalResult(self.step, eval_loss=losses.overall, per_dataset=losses.per_dataset, best=improved))
        patience = self.cfg.train.early_stopping_patience
        return improved, bool(patience and self.progress.evals_without_improvement >= patience)

    # ------------------------------------------------------------ checkpoints
    def _trainer_state(self, reason: str) -> dict[str, Any]:
        return {
            **self.progress.to_state(self._session_seconds()),
            "format": STATE_FORMAT,
            "total_steps": self.total_steps,
            "epoch": self._epoch(),
            "sampler": self.sampler.state_dict(),
            "fingerprint": self.fingerprint,
            "micro_batch_size": self.runner.micro_batch_size,
            "grad_accum": -(-self.cfg.effective_batch // self.runner.micro_batch_size),
            "reason": reason,
            "time": time.time(),
            "lora": self.cfg.lora.enabled,
        }

    def save_checkpoint(self, reason: str) -> Path | None:
        """Save atomically; a failure is a warning until it happens MAX_SAVE_FAILURES times in a row."""
        acc = self.accelerator
        acc.wait_for_everyone()
        if not acc.is_main_process:
            return None
        started = time.perf_counter()
        state = self._trainer_state(reason)
        model = acc.unwrap_model(self.model)

        def write(directory: Path) -> None:
            self.faults.before_save(self.step)
            write_checkpoint_files(
                directory,
                model=model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                trainer_state=state,
            )

        try:
            path = self.checkpoints.save(self.step, write)
        except OSError as err:
            self.save_failures += 1
            self.events.emit(
                ev.Warning_(
                    self.step,
                    message=f"checkpoint at step {self.step} failed ({err}); earlier checkpoints are intact "
                    f"(failure {self.save_failures} of {MAX_SAVE_FAILURES})",
                )
            )
            if self.save_failures >= MAX_SAVE_FAILURES:
                raise CheckpointError(
                    f"{self.checkpoints.root}: {MAX_SAVE_FAILURES} checkpoint saves in a row failed (last: {err}); "
                    "free disk space or fix permissions, then resume with --resume auto"
                ) from None
            return None
        self.save_failures = 0
        self.last_checkpoint = path
        if self.progress.best_step == self.step:  # a "best" save always follows its eval
            self.checkpoints.best_step = self.step
        if reason == "final":
            self.checkpoints.final_step = self.step
        self.checkpoints.prune()
        self.events.emit(
            ev.CheckpointSaved(self.step, path=str(path), reason=reason, seconds=time.perf_counter() - started)
        )
        return path

    def load_checkpoint(self, path: Path, state: dict[str, Any] | None = None) -> None:
        state = state or read_trainer_state_strict(path)
        model = self.accelerator.unwrap_model(self.model)
        load_weights(path, model, lora=self.cfg.lora.enabled)
        rng_state = load_training_state(path, optimizer=self.optimizer, scheduler=self.scheduler)
        try:
            self.sampler.load_state_dict(state["sampler"])
        except ValueError as err:
            raise ResumeError(f"{path}: sampler state does not match this data mix ({err})") from None
        self.progress = RunProgress.from_state(state)
        self.session_started = time.monotonic()
        self.checkpoints.best_step = self.progress.best_step
        self.last_checkpoint = path
        restore_rng(rng_state)

    # ------------------------------------------------------------ endings
    def _stop(self, reason: str) -> Outcome:
        saved = self.save_checkpoint("signal" if reason == "signal" else "user")
        checkpoint = saved or self.last_checkpoint
        return self._stopped(reason, checkpoint, stop_message(self.step, reason, self.run_dir, checkpoint is not None))

    def _stop_oom(self) -> Outcome:
        checkpoint = self.save_checkpoint("user") or self.last_checkpoint
        return self._stopped("oom", checkpoint, oom_message(self.step, self.run_dir))

    def _stop_nan(self, streak: int) -> Outcome:
        # No new save: the last good checkpoint is the one to go back to with a lower learning rate.
        checkpoint = self.last_checkpoint
        return self._stopped("nan", checkpoint, nan_message(streak, self.step, checkpoint))

    def _stopped(self, reason: str, checkpoint: Path | None, message: str) -> Outcome:
        self.events.emit(ev.RunStopped(self.step, reason=reason, checkpoint=_str(checkpoint), message=message))
        self._write_report("stopped")
        return Outcome("stopped", reason, checkpoint, message)

    def _finish(self) -> Outcome:
        checkpoint = self.save_checkpoint("final")
        if self.accelerator.is_main_process:
            self.final_dir = self.run_dir / "final"
            self.export(self.final_dir, merge=False)
        self.events.emit(ev.RunFinished(self.step, final_dir=_str(self.final_dir), metrics=self.summary()))
        self._write_report("finished")
        return Outcome("finished", None, checkpoint, f"finished {self.step} steps; trained weights in {self.final_dir}")

    def export(self, target: Path, *, merge: bool) -> None:
        """Write HF-loadable weights (the adapter for LoRA) and the tokenizer to ``target``."""
        model = self.accelerator.unwrap_model(self.model)
        target.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(target)
        self.tokenizer.save_pretrained(target)
        if merge and self.cfg.lora.enabled:
            merged = model.merge_and_unload()
            merged.save_pretrained(target / "merged")
            self.tokenizer.save_pretrained(target / "merged")

    def _session_seconds(self) -> float:
        return time.monotonic() - self.session_started

    def summary(self) -> dict[str, Any]:
        return self.progress.summary(self.total_steps, self._session_seconds())

    def _write_report(self, status: str) -> None:
        if self.run_dir is not None and self.accelerator.is_main_process:
            write_report(self.run_dir, status, self.summary(), self.prepared, self.sampler, self.progress)

    # ------------------------------------------------------------ cleanup
    def cleanup(self) -> None:
        """Drop every heavy reference and give CUDA memory back (runs in ``finally``)."""
        before = cuda_allocated()
        if self.run_dir is not None:
            mark_ended(self.run_dir)
        acc = self.accelerator
        if acc is not None:
            acc.free_memory()
        self.model = self.optimizer = self.scheduler = self.runner = None
        self.sampler = None
        self.prepared = []
        self.accelerator = None
        release_cuda_cache()
        self.events.emit(ev.Cleanup(self.step, cuda_allocated_before=before, cuda_allocated_after=cuda_allocated()))


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None

