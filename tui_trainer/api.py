"""The Python API (DESIGN §4.5): ``train(cfg, on_event=..., stop=..., resume=...)``."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.config.schema import RunConfig
from tui_trainer.engine import events as ev
from tui_trainer.engine.accelerators import collective_failure
from tui_trainer.engine.checkpoint.rundir import check_output_dir
from tui_trainer.engine.control import Controls
from tui_trainer.engine.eventlog import EventLog
from tui_trainer.engine.faults import Faults
from tui_trainer.engine.library_warnings import library_warnings_as_events
from tui_trainer.engine.recipe import TrainingRecipe
from tui_trainer.errors import UserError

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_STOPPED = 0, 1, 2, 75


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path | None
    """The run directory (None if the run failed before creating it)."""
    final_step: int
    """Optimizer steps completed."""
    status: str
    """finished | stopped."""
    stop_reason: str | None
    """user | signal | stop_file | oom | nan when stopped early; None when finished."""
    checkpoint: Path | None
    """The newest valid checkpoint (the resume point)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Summary: steps, seconds, tokens/s, final and best eval loss."""
    exit_code: int = EXIT_OK
    """0 finished, 75 stopped with a resumable checkpoint."""
    message: str = ""
    """What happened, for people (with the resume command when stopped)."""


def train(
    cfg: RunConfig,
    on_event: Callable[[ev.Event], None] | None = None,
    stop: threading.Event | None = None,
    resume: str | Path | None = None,
    *,
    controls: Controls | None = None,
    max_steps: int | None = None,
    faults: Faults | str | None = None,
    merge: bool = False,
) -> TrainResult:
    """Run training to the end or to a stop; CUDA memory is released before returning.

    Raises :class:`~tui_trainer.errors.UserError` for bad input (config, data, model,
    resume target, repeated checkpoint failures); any other exception is a bug and is
    re-raised after a ``run_failed`` event. ``stop`` is a shortcut for ``controls.stop``.
    """
    if controls is None:
        controls = Controls(stop=stop or threading.Event())
    elif stop is not None and stop is not controls.stop:
        raise ValueError("pass either stop or controls, not both")
    if max_steps is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": max_steps})})
    if isinstance(faults, str):
        faults = Faults(faults)
    faults = faults if faults is not None else Faults.from_env()
    log = EventLog([on_event])
    recipe = TrainingRecipe(cfg, log, controls, faults)
    # Library deprecation notices are for developers: the run log keeps them, the console does not.
    with library_warnings_as_events(log.emit, lambda: recipe.step):
        try:
            check_output_dir(cfg)
            recipe.setup(resume)
            outcome = recipe.train()
            if merge and outcome.status == "finished" and recipe.final_dir is not None:
                recipe.export(recipe.final_dir, merge=True)
            return TrainResult(
                run_dir=recipe.run_dir,
                final_step=recipe.step,
                status=outcome.status,
                stop_reason=outcome.stop_reason,
                checkpoint=outcome.checkpoint,
                metrics=recipe.summary(),
                exit_code=EXIT_OK if outcome.status == "finished" else EXIT_STOPPED,
                message=outcome.message,
            )
        except UserError as err:
            log.emit(ev.RunFailed(recipe.step, error=f"{type(err).__name__}: {err}"))
            raise
        except BaseException as err:
            lost = collective_failure(err, cfg.train.dist_timeout_s)
            if lost is not None:
                log.emit(ev.RunFailed(recipe.step, error=f"DistributedError: {lost}"))
                raise lost from err
            log.emit(ev.RunFailed(recipe.step, error="".join(traceback.format_exception_only(err)).strip()))
            raise
        finally:
            try:
                recipe.cleanup()
            finally:
                log.close()
