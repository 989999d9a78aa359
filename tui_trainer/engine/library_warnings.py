"""Library warnings raised during a run become ``library_warning`` events instead of console text.

A deprecation notice from transformers or peft (``is_gradient_checkpointing is
deprecated``) is meant for this project's developers, not for the person training: on the
terminal it tears through the progress display and the TUI and reads like a fault. The
run's ``events.jsonl`` keeps each one (once per text), with the step it happened at.

Both channels are covered: ``warnings.warn`` and the libraries' ``logging`` loggers
(transformers and accelerate log their advice at WARNING). Only the thread that runs the
training is redirected; warnings from any other thread (the UI's) go where they went.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tui_trainer.engine import events as ev

LIBRARY_LOGGERS = ("transformers", "peft", "accelerate", "datasets", "huggingface_hub", "torch", "safetensors")
"""Loggers whose WARNING records are routed to events while a run is set up and trains."""

Emit = Callable[[ev.Event], None]


class _Router:
    """Turns warnings and log records of one thread into events, each distinct text once."""

    def __init__(self, emit: Emit, step: Callable[[], int]) -> None:
        self._emit = emit
        self._step = step
        self._thread = threading.get_ident()
        self._seen: set[tuple[str, str]] = set()

    def mine(self) -> bool:
        return threading.get_ident() == self._thread

    def send(self, category: str, message: str, source: str) -> None:
        if (category, message) in self._seen:
            return
        self._seen.add((category, message))
        self._emit(ev.LibraryWarning(self._step(), category=category, message=message, source=source))


class _EventHandler(logging.Handler):
    def __init__(self, router: _Router, fallback: list[logging.Handler]) -> None:
        super().__init__(logging.WARNING)
        self._router = router
        self._fallback = fallback

    def emit(self, record: logging.LogRecord) -> None:
        if self._router.mine():
            self._router.send(record.levelname, record.getMessage(), record.name)
            return
        for handler in self._fallback:
            if record.levelno >= handler.level:
                handler.handle(record)


@contextmanager
def library_warnings_as_events(emit: Emit, step: Callable[[], int]) -> Iterator[None]:
    """While inside, this thread's library warnings are ``emit``-ted as events, never printed."""
    router = _Router(emit, step)
    saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 (warnings' signature)
            if router.mine():
                router.send(category.__name__, str(message), f"{filename}:{lineno}")
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            for name in LIBRARY_LOGGERS:
                logger = logging.getLogger(name)
                saved.append((logger, list(logger.handlers), logger.propagate))
                # Other threads' records go where they would have gone: the logger's own handlers, else the root's.
                fallback = list(logger.handlers) or list(logging.getLogger().handlers) or [logging.lastResort]
                logger.handlers = [_EventHandler(router, fallback)]
                logger.propagate = False
            yield
        finally:
            for logger, handlers, propagate in saved:
                logger.handlers = handlers
                logger.propagate = propagate
