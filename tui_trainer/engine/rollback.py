"""Recovery by rollback (``analytics.recovery = "rollback"``): back to the last good checkpoint.

The recipe calls :func:`roll_back` when the detectors report a divergence or a streak of
non-finite steps. It loads the newest checkpoint from before the bad window (a corrupt
one is skipped for the one before), scales the learning rate, moves the sampler past the
bad window's batches, and drops the abandoned branch's newer checkpoints, so that
``--resume auto`` can never pick one of them.
"""

from __future__ import annotations

import shutil

from tui_trainer.analytics.detectors import Onset
from tui_trainer.analytics.recovery import Candidate
from tui_trainer.engine import events as ev
from tui_trainer.engine.checkpoint.store import verify_checkpoint
from tui_trainer.errors import ResumeError


def _scale_lr(optimizer, scheduler, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    # The schedule multiplies base_lrs; scaling them keeps warm-up and decay in shape, and
    # they travel in scheduler.pt, so a resume after the rollback keeps the lower rate.
    scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]


def roll_back(recipe, onset: Onset) -> bool:
    """True when the run now continues from an earlier checkpoint; False when it cannot."""
    session = recipe.analytics
    policy = session.policy
    if not policy.allows():
        return False
    records = recipe.checkpoints.records(full=False)
    candidates = policy.candidates(onset, [Candidate(r.step, r.path) for r in records])
    loaded = None
    for candidate in candidates:
        problem = verify_checkpoint(candidate.path, full=True)
        if problem is None:
            try:
                sampler_step = _load(recipe, candidate)
            except ResumeError as err:
                problem = str(err)
            else:
                loaded = candidate
                break
        recipe.events.emit(
            ev.Warning_(recipe.step, message=f"recovery skipped checkpoint {candidate.path.name}: {problem}")
        )
    if loaded is None:
        return False
    factor = policy.record()
    _scale_lr(recipe.optimizer, recipe.scheduler, factor)
    skipped = policy.skipped(onset, loaded.step)
    recipe.sampler.seek(sampler_step + skipped)
    if recipe.accelerator.is_main_process:
        for record in records:
            if record.step > loaded.step:
                shutil.rmtree(record.path, ignore_errors=True)
    recipe.events.emit(
        ev.Recovery(
            recipe.step,
            from_step=onset.detected_step,
            checkpoint=str(loaded.path),
            lr_factor=policy.cumulative_factor,
            skipped_steps=skipped,
        )
    )
    return True


def _load(recipe, candidate: Candidate) -> int:
    recipe.load_checkpoint(candidate.path, rollback=True)
    return recipe.sampler.step
