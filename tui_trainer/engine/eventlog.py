"""Fan events out to callbacks and to the run's ``events.jsonl``.

Events emitted before the run directory exists (dataset preparation) are buffered and
written first once it does, so the log tells the whole story of the run. Under several
processes only rank 0 logs: the others are muted, so they neither buffer every step's event
for a file they never open nor run console callbacks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tui_trainer.engine.events import Event

log = logging.getLogger(__name__)

EventCallback = Callable[[Event], None]


class EventLog:
    def __init__(self, callbacks: list[EventCallback] | None = None) -> None:
        self._callbacks = [cb for cb in (callbacks or []) if cb is not None]
        self._pending: list[Event] = []
        self._file: IO[str] | None = None
        self._muted = False

    def add_callback(self, callback: EventCallback) -> None:
        """Also call ``callback`` with every event from now on (the engine's own listeners)."""
        self._callbacks.append(callback)

    def open(self, path: Path) -> None:
        """Start appending to ``path``; buffered events are written first."""
        self._file = path.open("a", encoding="utf-8")
        for event in self._pending:
            self._write(event)
        self._pending.clear()

    def mute(self) -> None:
        """This process is not the one that logs (a non-zero rank): drop everything from now on."""
        self._muted = True
        self._pending.clear()
        self._callbacks = []

    def emit(self, event: Event) -> None:
        if self._muted:
            return
        if self._file is None:
            self._pending.append(event)
        else:
            self._write(event)
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:  # a broken UI callback must never kill the training run
                log.exception("event callback failed for %s", event.TYPE)

    def _write(self, event: Event) -> None:
        assert self._file is not None
        try:
            self._file.write(json.dumps(event.to_dict(), default=str) + "\n")
            # Flushed per event so a monitor in another process (and a post-mortem) sees it at once.
            self._file.flush()
        except OSError:
            log.exception("could not append to events.jsonl")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
