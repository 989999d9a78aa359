"""Run controls: the events a UI, a signal handler or a STOP file use to steer a run.

Everything here only *sets* flags; the training thread checks them between optimizer
steps, so a stop never interrupts a step half-way and a checkpoint is never half-written
because of a signal.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


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
