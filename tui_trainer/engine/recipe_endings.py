"""How a run ends: stopped (with a resumable checkpoint), or finished (final checkpoint, export, report).

A mixin of :class:`tui_trainer.engine.recipe.TrainingRecipe`, split off to keep the recipe's
setup and loop readable; it uses the recipe's state and its ``save_checkpoint``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from tui_trainer.engine import events as ev
from tui_trainer.engine.checkpoint import sharded
from tui_trainer.engine.outcome import Outcome, nan_message, oom_message, stop_message
from tui_trainer.engine.report import write_report


class RunEndings:
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
        self.final_dir = self.run_dir / "final"  # every rank: under FSDP they all take part in the export
        self.export(self.final_dir, merge=False)
        self.events.emit(ev.RunFinished(self.step, final_dir=_str(self.final_dir), metrics=self.summary()))
        self._write_report("finished")
        return Outcome("finished", None, checkpoint, f"finished {self.step} steps; trained weights in {self.final_dir}")

    def export(self, target: Path, *, merge: bool) -> None:
        """Write the task's loadable result (e.g. the adapter and tokenizer) to ``target``, on rank 0.

        Every rank calls it: an FSDP model's weights are first gathered into a plain copy on rank 0.
        """
        acc = self.accelerator
        model = acc.unwrap_model(self.model)
        if sharded.is_sharded(model):
            if not self._export_gathered:  # the same on every rank: the gather is a collective
                path, dtype = self.model_source
                build = lambda: self.task.build_model(self.cfg, path, dtype, torch.device("cpu"))  # noqa: E731
                self._export_copy = sharded.plain_copy(model, build, rank=acc.process_index)
                self._export_gathered = True
            model = self._export_copy
        if acc.is_main_process:
            self.task.export(model, target, merge=merge)
        acc.wait_for_everyone()

    def _session_seconds(self) -> float:
        return time.monotonic() - self.session_started

    def summary(self) -> dict[str, Any]:
        return self.progress.summary(self.total_steps, self._session_seconds())

    def _write_report(self, status: str) -> None:
        if self.run_dir is not None and self.accelerator.is_main_process:
            write_report(
                self.run_dir, status, self.summary(), self.prepared, self.sampler, self.progress, self.task.summary()
            )
            self.analytics.write_report(self.run_dir)


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
