"""Snapshot tests of every screen at a fixed size with deterministic data.

Update the stored SVGs after an intended change with
``pytest tests/functional/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest

from tests.functional.scenes import SCENES, SIZE, prepare_scratch


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    prepare_scratch(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", sorted(SCENES))
def test_screen_snapshot(name, scratch, snap_compare) -> None:
    scene = SCENES[name]
    app = scene.make_app()
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=scene.run_before)
    finally:
        # A gated fake engine must not outlive the test.
        if app.controls is not None:
            app.controls.request_stop("user")
        if app.services.train.__class__.__name__ == "FakeEngine":
            app.services.train.gate.set()
