"""Library warnings during a run become events, once per text, and never reach the console."""

from __future__ import annotations

import logging
import threading
import warnings

from tui_trainer.engine import events as ev
from tui_trainer.engine.library_warnings import library_warnings_as_events


def _routed(body, step=lambda: 3):
    got: list[ev.Event] = []
    with library_warnings_as_events(got.append, step):
        body()
    return got


def test_a_warning_becomes_an_event_with_its_step_and_is_not_printed(capfd):
    def body():
        warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)

    got = _routed(body)
    assert [(type(e), e.step, e.category, e.message) for e in got] == [
        (ev.LibraryWarning, 3, "FutureWarning", "`is_gradient_checkpointing` is deprecated")
    ]
    assert got[0].source.endswith(f"{__file__.rsplit('/', 1)[-1]}:{body.__code__.co_firstlineno + 1}")
    out, err = capfd.readouterr()
    assert "deprecated" not in out + err


def test_library_log_records_become_events_and_are_not_printed(capfd):
    logger = logging.getLogger("transformers.modeling_utils")
    root = logging.getLogger("transformers")
    before = list(root.handlers)
    # The library's own verbosity decides what it emits; an earlier test in the session may have lowered it.
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        got = _routed(lambda: (logger.warning("`torch_dtype` is deprecated! Use `dtype` instead!"), logger.info("not a warning")))
    finally:
        root.setLevel(level)
    assert [(e.category, e.message, e.source) for e in got] == [
        ("WARNING", "`torch_dtype` is deprecated! Use `dtype` instead!", "transformers.modeling_utils")
    ]
    out, err = capfd.readouterr()
    assert "deprecated" not in out + err
    assert logging.getLogger("transformers").handlers == before


def test_each_text_is_kept_once():
    def body():
        for _ in range(3):
            warnings.warn("same", UserWarning, stacklevel=1)
            warnings.warn("same", UserWarning, stacklevel=2)
        warnings.warn("other", UserWarning, stacklevel=1)

    assert [e.message for e in _routed(body)] == ["same", "other"]


def test_the_step_is_read_when_the_warning_happens():
    step = [0]

    def body():
        warnings.warn("first", UserWarning, stacklevel=1)
        step[0] = 7
        warnings.warn("second", UserWarning, stacklevel=1)

    assert [(e.message, e.step) for e in _routed(body, step=lambda: step[0])] == [("first", 0), ("second", 7)]


def test_other_threads_keep_their_warnings():
    def other_thread():
        warnings.warn("from the UI thread", UserWarning, stacklevel=1)
        logging.getLogger("transformers").warning("also from the UI thread")

    def body():
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        got = _routed(body)
    assert got == []
    assert [str(w.message) for w in shown] == ["from the UI thread"]


def test_error_filters_still_raise():
    def body():
        warnings.warn("strict", RuntimeWarning, stacklevel=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            _routed(body)
        except RuntimeWarning as err:
            assert str(err) == "strict"
        else:
            raise AssertionError("an 'error' filter must keep raising")
