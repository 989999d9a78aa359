"""SIGINT / SIGTERM / SIGHUP / SIGUSR1 -> a graceful, checkpointed stop.

Handlers only set the stop event; the training thread finishes its current step and
saves. A dropped SSH connection sends SIGHUP, a scheduler's preemption SIGTERM, and SLURM
SIGUSR1 ahead of it when asked (``--signal=USR1@90``), so the save fits the warning. A third
signal means the user really wants out: checkpoints are atomic, so exiting at once
cannot leave a half-written one visible.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tui_trainer.engine.control import Controls

STOP_SIGNALS = tuple(
    s
    for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None), getattr(signal, "SIGUSR1", None))
    if s is not None
)
FORCE_AFTER = 3


@contextmanager
def graceful_signals(controls: Controls, notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Install the stop handlers for the duration of a run (main thread only)."""
    received = 0

    def handler(signum: int, _frame) -> None:
        nonlocal received
        received += 1
        name = signal.Signals(signum).name
        if received >= FORCE_AFTER:
            os.write(2, f"\n{name} again: exiting now; the newest complete checkpoint is kept\n".encode())
            os._exit(130)
        controls.request_stop("signal")
        if notify is not None:
            try:
                notify(
                    f"{name}: finishing the current step and saving a checkpoint"
                    if received == 1
                    else f"{name}: still saving; send it once more to exit at once"
                )
            except Exception:  # the terminal may be gone (SIGHUP): never fail in a handler
                pass

    previous = {}
    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stderr_notify(message: str) -> None:
    try:
        sys.stderr.write(f"\n{message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
