"""Run controls: the events a UI, a signal handler or a STOP file use to steer a run, and
the decision all ranks agree on from them before every step.

Everything here only *sets* flags; the training thread checks them between optimizer
steps, so a stop never interrupts a step half-way and a checkpoint is never half-written
because of a signal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.errors import CheckpointError


@dataclass(frozen=True)
class Controls:
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to finish the current step, save a checkpoint and stop (resumable)."""
    pause: threading.Event = field(default_factory=threading.Event)
    """While set, training holds between steps; clear it to continue."""
    checkpoint_now: threading.Event = field(default_factory=threading.Event)
    """Set to save a checkpoint after the current step (cleared by the engine)."""
    stop_reason: list[str] = field(default_factory=list)
    """Why stop was set (``user``, ``signal``, ``stop_file``); first writer wins."""

    def request_stop(self, reason: str = "user") -> None:
        if not self.stop_reason:
            self.stop_reason.append(reason)
        self.stop.set()

    @property
    def reason(self) -> str:
        return self.stop_reason[0] if self.stop_reason else "user"


STOP_REASONS = ("signal", "stop_file", "user")
"""Stop reasons in the order an agreed decision prefers them (a signal means the scheduler
or the terminal is going away, so it names the stop whatever else asked for it)."""
PAUSE_POLL_S = 0.05


@dataclass(frozen=True)
class Decision:
    stop: str | None
    """Why every rank stops before this step (a STOP_REASONS item), or None to train on."""
    save: str | None
    """``user`` (checkpoint now) or ``time`` (checkpoint.every_minutes) when every rank saves after this step."""


def agree(
    controls: Controls, accelerator, *, stop_file: Path | None, run_dir: Path | None, time_due: bool,
    save_while_paused: Callable[[], Any] | None = None,
) -> Decision:
    """The one decision for all ranks before a step: stop, pause, checkpoint-now, STOP file.

    Each rank reads its own flags (only rank 0 has a UI; a signal may reach one rank first);
    one small MAX all-reduce makes them everyone's, so no rank waits in the save barrier
    while another waits in a training all-reduce. While any rank is paused, all hold here.
    """
    while True:
        if stop_file is not None and stop_file.exists():
            controls.request_stop("stop_file")
        if run_dir is not None and not run_dir.is_dir():
            raise CheckpointError(
                f"{run_dir}: the run directory was deleted while the run was training; it stopped without "
                "saving and recreated nothing. Start the run again (or resume from a copy of the directory)"
            )
        stopped = controls.stop.is_set()
        flags = [
            int(stopped and controls.reason == reason) for reason in STOP_REASONS
        ] + [int(controls.pause.is_set()), int(controls.checkpoint_now.is_set()), int(time_due)]
        if stopped and not any(flags[: len(STOP_REASONS)]):
            flags[STOP_REASONS.index("user")] = 1  # another reason (oom, ...): any stop is a stop
        agreed = _max_across_ranks(flags, accelerator)
        stop = next((r for r, flag in zip(STOP_REASONS, agreed) if flag), None)
        paused, checkpoint_now, time_due_any = agreed[len(STOP_REASONS) :]
        if stop is not None:
            controls.request_stop(stop)  # every rank reports the same reason
            return Decision(stop=stop, save=None)
        if not paused:
            if checkpoint_now:
                controls.checkpoint_now.clear()
            return Decision(stop=None, save="user" if checkpoint_now else "time" if time_due_any else None)
        if checkpoint_now and save_while_paused is not None:
            # Paused is between steps: the state is exactly what a save after the last step would hold.
            controls.checkpoint_now.clear()
            save_while_paused()
            continue
        time.sleep(PAUSE_POLL_S)


def _max_across_ranks(flags: list[int], accelerator) -> list[int]:
    if accelerator is None or accelerator.num_processes == 1:
        return flags
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(flags, dtype=torch.int32, device=accelerator.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [int(v) for v in tensor.tolist()]
