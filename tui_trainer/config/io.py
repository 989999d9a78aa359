"""Run configs on disk: TOML read/write (every error names the file and line) and ``--set key=value`` overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.errors import ConfigError


def read_toml(path: Path, kind: str = "config") -> dict[str, Any]:
    """Parse a TOML file; every failure is a ConfigError naming the file (and line for syntax)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {kind} file not found; pass the path of a TOML {kind}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; pass the path of a TOML {kind}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the {kind} as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {kind} file: {err.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: TOML syntax error: {err}") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load and validate a TOML run config, applying ``key=value`` overrides first."""
    path = Path(path)
    raw = read_toml(path)
    for item in overrides or []:
        apply_override(raw, item)
    return config_from_dict(raw, str(path))


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(dumps_config(cfg), encoding="utf-8")


def dumps_config(cfg: RunConfig) -> str:
    return tomli_w.dumps(cfg.to_dict())


def loads_config(text: str, source: str = "<string>") -> RunConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: TOML syntax error: {err}") from None
    return config_from_dict(raw, source)


def _parse_value(text: str) -> Any:
    """Parse an override value as a TOML value, falling back to a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply ``train.lr=1e-4`` or ``data.datasets.0.weight=0.5`` (or ``data.datasets.code.weight``)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.lr=1e-4")
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = _list_item(node, part, key)
            continue
        if part not in node:
            if part not in _SECTION_NAMES and i == 0:
                raise ConfigError(f"--set {key}: unknown section {part!r}; sections are {', '.join(_SECTION_NAMES)}")
            node[part] = {}
        node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"--set {key}: {where} is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        idx = _list_index(node, last, key)
        node[idx] = _parse_value(value.strip())
    else:
        node[last] = _parse_value(value.strip())


_SECTION_NAMES = ("run", "model", "lora", "data", "train", "checkpoint")


def _list_index(items: list[Any], part: str, key: str) -> int:
    if part.isdigit():
        idx = int(part)
        if idx < len(items):
            return idx
        raise ConfigError(f"--set {key}: index {idx} is out of range ({len(items)} items)")
    for idx, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return idx
    raise ConfigError(f"--set {key}: no dataset named {part!r}")


def _list_item(items: list[Any], part: str, key: str) -> Any:
    return items[_list_index(items, part, key)]
