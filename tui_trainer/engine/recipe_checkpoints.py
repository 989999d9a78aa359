"""A run's checkpoints: what a save holds, writing it (atomically, on rank 0) and loading it back.

A mixin of :class:`tui_trainer.engine.recipe.TrainingRecipe` (split off to keep the recipe
under 400 lines); it uses the recipe's state. Under FSDP every rank takes part in a save
(the shards are gathered to rank 0 first, engine/checkpoint/sharded.py) and in a load.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tui_trainer.engine import events as ev
from tui_trainer.engine.checkpoint import sharded
from tui_trainer.engine.checkpoint.state import STATE_FORMAT, load_training_state, load_weights
from tui_trainer.engine.checkpoint.state import read_trainer_state_strict, write_checkpoint_files
from tui_trainer.engine.progress_state import RunProgress
from tui_trainer.engine.rng import restore_rng
from tui_trainer.errors import CheckpointError, ResumeError

MAX_SAVE_FAILURES = 3


class RecipeCheckpoints:
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
            "analytics": self.analytics.state_dict(),
        }

    def save_checkpoint(self, reason: str) -> Path | None:
        """Save atomically; a failure is a warning until it happens MAX_SAVE_FAILURES times in a row."""
        acc = self.accelerator
        acc.wait_for_everyone()
        started = time.perf_counter()
        model = acc.unwrap_model(self.model)
        gathered = None
        if sharded.is_sharded(model):  # FSDP: every rank takes part in gathering the full state
            gathered = (sharded.gather_trainable(model, rank=acc.process_index), sharded.gather_optimizer(model, self.optimizer))
        if not acc.is_main_process:
            return None
        state = self._trainer_state(reason)

        def write(directory: Path) -> None:
            self.faults.before_save(self.step)
            write_checkpoint_files(
                directory,
                model=model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                trainer_state=state,
                gathered=gathered,
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

    def load_checkpoint(self, path: Path, state: dict[str, Any] | None = None, *, rollback: bool = False) -> None:
        state = state or read_trainer_state_strict(path)
        model = self.accelerator.unwrap_model(self.model)
        load_weights(path, model, lora=self.cfg.lora.enabled)
        rng_state = load_training_state(path, optimizer=self.optimizer, scheduler=self.scheduler, model=model)
        try:
            self.sampler.load_state_dict(state["sampler"])
        except ValueError as err:
            raise ResumeError(f"{path}: sampler state does not match this data mix ({err})") from None
        self.progress = RunProgress.from_state(state)
        self.session_started = time.monotonic()
        self.checkpoints.best_step = self.progress.best_step
        self.last_checkpoint = path
        restore_rng(rng_state)
        self.analytics.load_state_dict(state.get("analytics"), rollback=rollback)
