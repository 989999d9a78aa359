"""tui-trainer: fine-tune transformer models from the terminal."""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting turn any competing process (the TUI's own render
# loop, a second job, a test runner) into a 10x slowdown of CPU steps: measured 2.6 s vs
# 0.16 s per demo step on a busy 2-core box. Passive waiting costs little when idle. It must
# be set before torch initializes OpenMP, hence here; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["ConfigError", "RunConfig", "__version__", "load_config", "train"]


def __getattr__(name: str):
    # Lazy so `import tui_trainer` stays cheap (the CLI's --help must not import torch).
    if name == "load_config":
        from tui_trainer.config.io import load_config

        return load_config
    if name == "RunConfig":
        from tui_trainer.config.schema import RunConfig

        return RunConfig
    if name == "ConfigError":
        from tui_trainer.errors import ConfigError

        return ConfigError
    if name == "train":
        from tui_trainer.api import train

        return train
    raise AttributeError(name)
