"""The per-step decision (engine/control.agree) on one process: what each flag turns into."""

from __future__ import annotations

import threading

import pytest

from tui_trainer.engine.control import Controls, agree
from tui_trainer.errors import CheckpointError


def _agree(controls, tmp_path, *, time_due=False):
    return agree(controls, None, stop_file=tmp_path / "STOP", run_dir=tmp_path, time_due=time_due)


def test_nothing_set_trains_on(tmp_path):
    decision = _agree(Controls(), tmp_path)
    assert decision.stop is None and decision.save is None


def test_stop_file_stops(tmp_path):
    (tmp_path / "STOP").write_text("")
    controls = Controls()
    assert _agree(controls, tmp_path).stop == "stop_file"
    assert controls.reason == "stop_file"


def test_checkpoint_now_saves_once_and_time_saves(tmp_path):
    controls = Controls()
    controls.checkpoint_now.set()
    assert _agree(controls, tmp_path).save == "user"
    assert not controls.checkpoint_now.is_set()
    assert _agree(controls, tmp_path).save is None
    assert _agree(controls, tmp_path, time_due=True).save == "time"


def test_signal_ends_a_pause(tmp_path):
    controls = Controls()
    controls.pause.set()
    holding = threading.Thread(target=lambda: result.append(_agree(controls, tmp_path)))
    result: list = []
    holding.start()
    controls.request_stop("signal")
    holding.join(timeout=30)
    assert result and result[0].stop == "signal"


def test_deleted_run_dir_is_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(CheckpointError, match="deleted while the run was training"):
        agree(Controls(), None, stop_file=run_dir / "STOP", run_dir=run_dir, time_due=False)
