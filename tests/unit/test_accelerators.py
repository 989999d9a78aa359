"""Two runs in one process may ask accelerate for different mixed precision (the TUI, a test session)."""

from __future__ import annotations

from tui_trainer.engine.accelerators import new_accelerator


def test_a_second_run_with_another_precision_gets_its_own_state():
    first = new_accelerator("bf16")  # accelerate allows bf16 autocast on a CPU
    assert first.mixed_precision == "bf16"
    second = new_accelerator("no")  # without the reset: "AcceleratorState has already been initialized"
    assert second.mixed_precision == "no"
