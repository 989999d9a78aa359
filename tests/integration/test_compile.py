"""train.compile on the demo model: the compiled run trains like the eager one; without a compiler it falls back."""

from __future__ import annotations

import pytest

from tests.integration.conftest import demo_cfg
from tui_trainer.api import train
from tui_trainer.engine import compiling
from tui_trainer.engine.events import StepMetrics, Warning_


def run(cfg):
    seen = []
    result = train(cfg, on_event=seen.append)
    assert result.status == "finished", result.message
    return seen, [e.loss for e in seen if isinstance(e, StepMetrics)]


def test_without_a_compiler_the_run_trains_eagerly_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    events, losses = run(demo_cfg(tmp_path, lora=True, max_steps=2, compile=True, checkpoint={"every_steps": 0, "every_minutes": 0}))
    warnings = [e.message for e in events if isinstance(e, Warning_)]
    assert any("train.compile" in m and "eagerly" in m for m in warnings), warnings
    assert len(losses) == 2


@pytest.mark.slow
def test_compiled_run_gives_the_eager_losses(tmp_path):
    # Two steps: the second runs on the weights the first compiled step updated. The data stays at
    # demo_cfg's seq 64, whose prepared cache the other integration runs share.
    common = dict(lora=True, max_steps=2, checkpoint={"every_steps": 0, "every_minutes": 0})
    _, eager = run(demo_cfg(tmp_path / "eager", **common))
    events, compiled = run(demo_cfg(tmp_path / "compiled", compile=True, **common))
    assert len(eager) == 2
    assert not [e for e in events if isinstance(e, Warning_) and "train.compile" in e.message]
    # Inductor fuses and reorders float sums, so equal to rounding, not bitwise.
    assert compiled == pytest.approx(eager, rel=1e-4)
