"""Model-family presets: ``presets/*.toml`` (shipped) plus the user's own, validated like a config.

One file per model family holds the architecture facts the memory estimator needs, the
LoRA target modules, a chat-template note and three levels (``highspeed``, ``quality``,
``bestaccuracy``), each with adjustments for small, medium and large datasets.

User presets live in ``paths.user_config_dir() / "presets"``. A user file named like a
shipped one changes only the keys it sets; a file with a new name adds a family, and may
start from an existing one with ``extends = "qwen2.5-7b"``. Unknown keys and bad values
are :class:`ConfigError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tui_trainer.planning.preset_schema import (  # noqa: F401  (re-exported: the public preset API)
    FUSED_PROJECTION_TYPES,
    LARGE_DATA_FROM_TOKENS,
    LEVELS,
    SIZE_CLASSES,
    SMALL_DATA_BELOW_TOKENS,
    LevelSettings,
    ModelFacts,
    Preset,
    SizeAdjustment,
    _LoraTable,
    _PresetFile,
    size_class,
    unknown_level,
)
from tui_trainer import paths
from tui_trainer.paths import is_shipped, shipped_presets_dir  # noqa: F401  (part of the preset API)
from tui_trainer.config.io import read_toml
from tui_trainer.errors import ConfigError


def user_presets_dir() -> Path:
    return paths.user_config_dir() / "presets"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value (lists included) replaces the base value."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_MODELS_BY_SECTION: dict[str, type] = {"model": ModelFacts, "lora": _LoraTable}


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the table that ``loc`` (ending in the bad key) points into."""
    table = loc[:-1]
    if not table:
        return list(_PresetFile.model_fields)
    if table[0] in _MODELS_BY_SECTION and len(table) == 1:
        cls = _MODELS_BY_SECTION[table[0]]
        return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else list(cls.model_fields)
    if table[0] == "levels" and len(table) == 2:
        return [f.name for f in dataclasses.fields(LevelSettings)]
    if table[0] == "levels" and len(table) == 3:
        return [f.name for f in dataclasses.fields(SizeAdjustment)]
    return []


def _format_errors(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        key = ".".join(loc)
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            known = _known_keys(loc)
            hint = f"; valid keys here: {', '.join(known)}" if known else ""
            lines.append(f"{where}: unknown key {key!r}{hint}")
        elif e["type"] in ("missing", "missing_argument"):
            lines.append(f"{where}: {key} is required")
        else:
            text = e["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
            got = e.get("input")
            shown = "" if isinstance(got, (dict, list)) or key == "" or " got " in text else f", got {got!r}"
            lines.append(f"{where}: {key + ' ' if key else ''}{text}{shown}")
    return "\n".join(lines)


def _build(family: str, raw: dict[str, Any], files: tuple[Path, ...]) -> Preset:
    where = str(files[-1]) if len(files) == 1 else f"{files[-1]} (applied over {', '.join(map(str, files[:-1]))})"
    try:
        parsed = _PresetFile.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, where)) from None
    return Preset(
        family=family,
        facts=parsed.model,
        target_modules=tuple(parsed.lora.target_modules),
        chat_template_note=parsed.chat_template_note,
        levels={name: parsed.levels[name] for name in LEVELS},
        source=files[-1],
        description=parsed.description,
        lora_enabled=parsed.lora.enabled,
        merged_from=files,
    )


def _toml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def load_presets(user_dir: Path | None = None) -> dict[str, Preset]:
    """Shipped presets, then the user's (``user_dir`` or the user config dir) over them, by family name."""
    raws: dict[str, tuple[dict[str, Any], tuple[Path, ...]]] = {}
    for path in _toml_files(shipped_presets_dir()):
        raws[path.stem] = (read_toml(path, "preset"), (path,))
    shipped = set(raws)
    pending = {path.stem: (path, read_toml(path, "preset")) for path in _toml_files(user_dir or user_presets_dir())}
    # `extends` may name another user preset, so resolve in dependency order and catch cycles.
    def resolve(name: str, chain: tuple[str, ...]) -> None:
        path, raw = pending.pop(name)
        base_name = raw.get("extends")
        if base_name is None:
            base_raw, base_files = raws[name] if name in shipped else ({}, ())
        else:
            if not isinstance(base_name, str):
                raise ConfigError(f"{path}: extends must be a preset name (a string), got {base_name!r}")
            if base_name in chain or base_name == name:
                cycle = " -> ".join((*chain, name, base_name))
                raise ConfigError(f"{path}: extends = {base_name!r} makes a cycle ({cycle})")
            if base_name in pending:
                resolve(base_name, (*chain, name))
            if base_name not in raws:
                known = ", ".join(sorted(raws))
                raise ConfigError(f"{path}: extends = {base_name!r} is not a known preset; known presets: {known}")
            base_raw, base_files = raws[base_name]
        merged = _merge({k: v for k, v in base_raw.items() if k != "extends"}, raw)
        raws[name] = (merged, (*base_files, path))

    while pending:
        resolve(next(iter(pending)), ())
    return {name: _build(name, raw, files) for name, (raw, files) in sorted(raws.items())}


def get_preset(name: str, user_dir: Path | None = None) -> Preset:
    """The preset called ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    presets = load_presets(user_dir)
    if name not in presets:
        known = ", ".join(presets) or "(none found)"
        raise ConfigError(
            f"unknown preset {name!r}; known presets: {known}. "
            f"Add your own as {user_dir or user_presets_dir()}/{name}.toml"
        )
    return presets[name]


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(unknown_level(level))
    return level


def params_label(params: int) -> str:
    """4212992 -> "4.2M", 7615616512 -> "7.6B"."""
    if params >= 1e9:
        return f"{params / 1e9:.1f}B"
    if params >= 1e6:
        return f"{params / 1e6:.1f}M"
    return f"{params / 1e3:.0f}K" if params >= 1e3 else str(params)

