"""End the process when its terminal hangs up, once the run it trains is saved.

When sshd drops a connection it closes the pty's master side. The engine then stops and
saves as for any SIGHUP, but restoring a terminal that no longer exists can block Textual's
driver forever (its writer queue fills and nothing drains it), and on a GPU box that orphan
keeps the CUDA context. The watchdog needs no cooperation from the driver: it sees the
hangup on the tty itself (POLLHUP), asks the run to stop, waits until the engine has
returned (checkpoint written, events closed), gives the normal exit a moment, then leaves
with ``os._exit``. Once the run has logged its end (its checkpoint is saved), what is left
(the HTML report, cleanup) gets ``FINISH_S``; a dead terminal must not hold a GPU longer.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

GRACE_S = 0.5
"""How long the normal shutdown gets after the engine has returned, before the hard exit."""
FINISH_S = 3.0
"""How long the engine gets, after it logged the run's end, to finish its report and cleanup."""

_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL


def terminal_hung_up(fd: int, timeout_s: float) -> bool:
    """True when the tty on ``fd`` has lost its other side (closed master, revoked line)."""
    poller = select.poll()
    poller.register(fd, _HANGUP)
    try:
        return any(mask & _HANGUP for _, mask in poller.poll(timeout_s * 1000))
    except InterruptedError:
        return False


class HangupWatchdog:
    """A daemon thread that turns a dead terminal into a saved run and a prompt exit."""

    def __init__(
        self,
        fd: int,
        *,
        request_stop: Callable[[], None],
        engine_busy: Callable[[], bool],
        exit_code: Callable[[], int],
        run_ended: Callable[[], bool] = lambda: False,
        before_exit: Callable[[], None] = lambda: None,
        grace_s: float = GRACE_S,
        finish_s: float = FINISH_S,
    ) -> None:
        self._fd = fd
        self._request_stop = request_stop
        self._engine_busy = engine_busy
        self._exit_code = exit_code
        self._grace_s = grace_s
        self._run_ended = run_ended
        self._before_exit = before_exit
        self._finish_s = finish_s
        self._done = threading.Event()
        self.hung_up = threading.Event()
        """Set once the terminal is gone."""
        self._thread = threading.Thread(target=self._watch, name="hangup-watchdog", daemon=True)

    def start(self) -> HangupWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        """The app ended on its own: nothing left to watch."""
        self._done.set()

    def _watch(self) -> None:
        while not self._done.is_set():
            if terminal_hung_up(self._fd, 0.25):
                break
        else:
            return
        self.hung_up.set()
        self._request_stop()
        ended_at = None
        while self._engine_busy():  # the save may take long on a big model; never cut it short
            if ended_at is None and self._run_ended():
                ended_at = time.monotonic()
            if ended_at is not None and time.monotonic() - ended_at > self._finish_s:
                break
            time.sleep(0.05)
        else:
            if self._done.wait(self._grace_s):
                return
        try:
            self._before_exit()
        finally:
            os._exit(self._exit_code())
