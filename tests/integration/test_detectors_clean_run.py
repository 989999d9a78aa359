"""No false findings: a clean demo run, watched by detectors armed early (spike window 8 of its
24 steps, plateau after 2 evals without improvement), ends with no ``anomaly`` event."""

from __future__ import annotations

import pytest

from tests.integration.conftest import demo_cfg
from tui_trainer.api import train
from tui_trainer.engine import events as ev

pytestmark = pytest.mark.slow


def test_a_clean_demo_run_has_no_findings(tmp_path):
    cfg = demo_cfg(tmp_path, max_steps=24, eval_every=6, lr=1e-3, checkpoint={"every_steps": 0, "every_minutes": 0})
    cfg = cfg.model_copy(update={"analytics": cfg.analytics.model_copy(update={"spike_window": 8, "plateau_patience": 2})})
    events: list[ev.Event] = []
    result = train(cfg, on_event=events.append)
    assert result.status == "finished"
    steps = [e for e in events if isinstance(e, ev.StepMetrics)]
    assert len(steps) == 24 and len([e for e in events if isinstance(e, ev.EvalResult)]) == 4
    found = [(e.step, e.kind, e.message) for e in events if isinstance(e, ev.Anomaly)]
    assert found == [], found
