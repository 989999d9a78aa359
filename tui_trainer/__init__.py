"""tui-trainer: fine-tune transformer models from the terminal."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["ConfigError", "RunConfig", "__version__", "load_config", "train"]


def __getattr__(name: str):
    # Lazy so `import tui_trainer` stays cheap (the CLI's --help must not import torch).
    if name in ("load_config", "RunConfig"):
        from tui_trainer import config

        return getattr(config, name)
    if name == "ConfigError":
        from tui_trainer.errors import ConfigError

        return ConfigError
    if name == "train":
        from tui_trainer.engine.api import train

        return train
    raise AttributeError(name)
