"""Suite-wide settings: offline, a repo-local tui-trainer home (demo model built once), no GPU stats noise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("TUI_TRAINER_HOME", str(ROOT / ".tui-trainer-home"))
# A developer's own presets in ~/.config must not change what the tests see.
os.environ["TUI_TRAINER_CONFIG_HOME"] = str(ROOT / ".tui-trainer-home" / "config")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as tui_trainer/__init__ does; before torch loads
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing is a set-up bug; let the tests themselves fail on it
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
