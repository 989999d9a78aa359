"""Fault injection, so tests can provoke the failures the engine must survive on a CPU box.

Set ``TUI_TRAINER_FAULTS`` (for a subprocess) or pass ``faults=`` to ``train()``. The
value is a comma-separated list of ``KIND@STEP[xCOUNT]``:

- ``oom@5``       raise ``torch.OutOfMemoryError`` in the forward pass of step 5 once
  (``oom@5x3``: three times, so the micro-batch is halved three times)
- ``save@10``     the checkpoint save at step 10 fails with ``OSError(ENOSPC)`` (disk full)
- ``nan@7``       the loss of step 7 is replaced by NaN
- ``spike@7``     the loss of step 7 is multiplied by SPIKE_FACTOR (a loss spike; list several
  steps, ``spike@7,spike@8,...``, for a divergence)
- ``crash@4``     raise ``RuntimeError`` at step 4 (a bug: exit code 1)
- ``hang@6``      block before step 6 until the process is killed (for kill -9 tests)
- ``holdsave@4``  the save at step 4 waits, inside its tmp dir, until the process gets a
  stop signal (``holdsave@4x2``: two), so a test lands signals during a save; it writes
  ``holdsave: waiting`` to stderr once it listens (main thread only)
- ``slowsave@4x6`` the save at step 4 takes 6 s longer (only rank 0 writes, so under torchrun
  the other ranks wait that long in their next collective: ``train.dist_timeout_s``)

Steps are 0-based optimizer steps (the step being computed). Without the variable
nothing is injected and the checks cost a dictionary lookup per step.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections import Counter

import torch

from tui_trainer.errors import ConfigError

KINDS = ("oom", "save", "nan", "spike", "crash", "hang", "holdsave", "slowsave")
SPIKE_FACTOR = 50.0


class Faults:
    def __init__(self, spec: str = "") -> None:
        self._left: Counter[tuple[str, int]] = Counter()
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kind, _, rest = item.partition("@")
            step_text, _, count_text = rest.partition("x")
            if kind not in KINDS or not step_text.isdigit() or (count_text and not count_text.isdigit()):
                raise ConfigError(
                    f"TUI_TRAINER_FAULTS: bad item {item!r}; expected KIND@STEP[xCOUNT] with KIND in {', '.join(KINDS)}"
                )
            self._left[(kind, int(step_text))] += int(count_text or 1)

    @classmethod
    def from_env(cls) -> Faults:
        return cls(os.environ.get("TUI_TRAINER_FAULTS", ""))

    def __bool__(self) -> bool:
        return bool(+self._left)

    def _take(self, kind: str, step: int) -> bool:
        key = (kind, step)
        if self._left[key] > 0:
            self._left[key] -= 1
            return True
        return False

    def before_step(self, step: int) -> None:
        if self._take("hang", step):
            while True:  # only a signal-less kill ends this; that is the point
                time.sleep(3600)

    def before_forward(self, step: int) -> None:
        if self._take("oom", step):
            raise torch.OutOfMemoryError(f"injected OOM at step {step} (TUI_TRAINER_FAULTS)")
        if self._take("crash", step):
            raise RuntimeError(f"injected crash at step {step} (TUI_TRAINER_FAULTS)")

    def corrupt_loss(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        if self._take("nan", step):
            return loss * float("nan")
        if self._take("spike", step):
            return loss * SPIKE_FACTOR
        return loss

    def before_save(self, step: int) -> None:
        holds = self._left.pop(("holdsave", step), 0)
        if holds:
            _wait_for_signals(holds)
        delay = self._left.pop(("slowsave", step), 0)
        if delay:
            time.sleep(delay)
        if self._take("save", step):
            raise OSError(errno.ENOSPC, f"No space left on device (injected at step {step})")


def _wait_for_signals(count: int) -> None:
    """Block until ``count`` stop signals arrived, each still handled by the handler in place."""
    from tui_trainer.engine.signals import STOP_SIGNALS

    seen: list[int] = []
    originals = {}

    def counting(signum: int, frame) -> None:
        seen.append(signum)
        original = originals[signum]
        if callable(original):
            original(signum, frame)

    for sig in STOP_SIGNALS:
        originals[sig] = signal.signal(sig, counting)
    try:
        os.write(2, f"holdsave: waiting for {count} signal(s)\n".encode())
        while len(seen) < count:  # gated on the signals themselves, not on a duration
            time.sleep(0.01)
    finally:
        for sig, original in originals.items():
            signal.signal(sig, original)
