"""Where tui-trainer keeps its own files (demo model, dataset cache, user presets)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root of tui-trainer's own files; ``TUI_TRAINER_HOME`` overrides the user cache dir."""
    override = os.environ.get("TUI_TRAINER_HOME")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tui-trainer"


def cache_dir() -> Path:
    """Arrow caches of prepared datasets."""
    return home() / "datasets"


def demo_dir() -> Path:
    """The embedded demo model and corpora, built once and reused."""
    return home() / "demo"


def user_config_dir() -> Path:
    """User presets (``presets/*.toml``) that extend or override the shipped ones."""
    override = os.environ.get("TUI_TRAINER_CONFIG_HOME")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tui-trainer"
