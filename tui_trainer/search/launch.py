"""Start a study from the TUI: the config with suggested ranges written next to its runs, then
``tui-trainer search FILE --detach`` (the same command a user types), which validates it in the
foreground and prints the study directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomli_w

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import ConfigError
from tui_trainer.search.suggest import search_config, searchable_keys

DEFAULT_KEYS = ("train.lr", "lora.r")
"""Searched when the user has not picked keys: the two that matter most for a LoRA run."""


def start_search(cfg: RunConfig, keys: list[str] | None = None, *, trials: int = 12) -> Path:
    """Write ``<output_dir>/<name>-search.toml`` and start the study detached; its directory.

    ``cfg.search`` (as the set-up screen fills it) is the study when it has a space; otherwise
    ``keys`` (or DEFAULT_KEYS) at their suggested ranges."""
    if cfg.search is not None and cfg.search.space and not keys:
        raw = cfg.to_dict()  # the set-up screen's keys, ranges, trials, sampler and pruner
    else:
        offered = searchable_keys(cfg)
        keys = keys or [k for k in DEFAULT_KEYS if k in offered]
        raw = search_config(cfg, keys, trials=trials)
    out = Path(cfg.run.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{cfg.run.name}-search.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tui_trainer", "search", str(path), "--detach"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise ConfigError(done.stderr.strip().removeprefix("tui-trainer: error: ") or f"search exited {done.returncode}")
    return Path(done.stdout.strip().splitlines()[-1])
