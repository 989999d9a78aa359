"""The core never imports Textual (DESIGN §2): proven in a clean subprocess."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "tui_trainer.config",
    "tui_trainer.runs",
    "tui_trainer.engine.api",
    "tui_trainer.engine.recipe",
    "tui_trainer.data.mixing",
    "tui_trainer.data.prepare",
    "tui_trainer.presets",
    "tui_trainer.hardware",
    "tui_trainer.cli",
]


def test_core_imports_without_textual():
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
