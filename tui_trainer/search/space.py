"""The search space: validated against the run config before anything runs, then sampled by optuna.

A key is accepted only if setting it on the config at both ends of its range (or at every
choice) still gives a valid config, through the same ``--set`` path a user would type;
so an unknown key, a value the schema refuses, or a key nothing can set (a whole
section) is an error naming ``search.space."<key>"`` before the first trial starts.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

from tui_trainer.config.io import apply_override
from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.config.search_section import ParamRange
from tui_trainer.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """One searched key and how optuna samples it."""

    key: str
    """Dotted config key, as ``--set`` takes it (``train.lr``, ``data.datasets.code.weight``)."""
    kind: str
    """``float``, ``int`` or ``categorical``."""
    low: float | None = None
    """Lower bound of a range."""
    high: float | None = None
    """Upper bound of a range."""
    log: bool = False
    """Sampled on a log scale."""
    step: float | None = None
    """Grid spacing of a range, if any."""
    choices: tuple[Any, ...] = ()
    """The values of a categorical key."""

    def suggest(self, trial: Any) -> Any:
        """The value optuna's ``trial`` picks for this key."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list[Any]:
        """Every value a grid visits (a range needs a step, except an integer one)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise ConfigError(
                f'search.space."{self.key}": the grid sampler needs a step or choices for a float range; '
                'add step = ... or use sampler = "tpe"'
            )
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


def _override_text(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_override_text(v) for v in value) + "]"
    return repr(value)


def apply_params(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of the raw config with each searched key set, through the ``--set`` rules."""
    out = copy.deepcopy(raw)
    for key, value in params.items():
        apply_override(out, f"{key}={_override_text(value)}")
    return out


def current_value(cfg: RunConfig, key: str) -> Any:
    """What the config sets for ``key`` now (the baseline trial's value)."""
    node: Any = cfg.to_dict()
    for part in key.split("."):
        if isinstance(node, list):
            node = next((d for d in node if isinstance(d, dict) and d.get("name") == part), None) if not part.isdigit() else node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _kind(key: str, spec: ParamRange, current: Any) -> str:
    if spec.choices is not None:
        return "categorical"
    whole = lambda v: v is not None and float(v).is_integer()  # noqa: E731
    if isinstance(current, int) and not isinstance(current, bool) and whole(spec.low) and whole(spec.high) and (spec.step is None or whole(spec.step)):
        return "int"
    return "float"


def build_space(raw: dict[str, Any], cfg: RunConfig) -> tuple[Param, ...]:
    """The searched parameters of ``cfg.search.space``, each checked against the config (ConfigError if not)."""
    search = cfg.search
    if search is None or not search.space:
        raise ConfigError(
            'search.space is empty; add keys to search, e.g. [search.space] "train.lr" = { low = 1e-5, high = 1e-3, log = true }'
        )
    base = {k: v for k, v in raw.items() if k != "search"}
    params = []
    for key, spec in search.space.items():
        where = f'search.space."{key}"'
        if key.split(".")[0] in ("search", "run") and key not in ("run.seed",):
            raise ConfigError(f"{where}: {key.split('.')[0]} keys cannot be searched (only run.seed of [run]); search a training key")
        current = current_value(cfg, key)
        if isinstance(current, (dict, list)):
            raise ConfigError(f"{where} names a whole section; search one of its keys, e.g. {key}.<name>")
        param = Param(key, _kind(key, spec, current), spec.low, spec.high, spec.log, spec.step, tuple(spec.choices or ()))
        probes = param.choices if param.kind == "categorical" else (param.low, param.high)
        for value in probes:
            value = int(value) if param.kind == "int" else value
            try:
                trial_raw = apply_params(base, {key: value})
                trial_cfg = config_from_dict(trial_raw, where)
            except ConfigError as err:
                raise ConfigError(f"{where} = {value!r} cannot be set: {err}") from None
            if current_value(trial_cfg, key) is None:
                raise ConfigError(f"{where}: no config value is set by this key; check the spelling (README 'Config reference')")
        params.append(param)
    return tuple(params)


def grid(params: tuple[Param, ...]) -> list[dict[str, Any]]:
    """Every point of the grid, in a fixed order (the grid sampler visits each once)."""
    keys = [p.key for p in params]
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(p.grid_values() for p in params))]


def baseline_params(cfg: RunConfig, params: tuple[Param, ...]) -> dict[str, Any]:
    """The config's own values for the searched keys (trial 0, the default to beat)."""
    return {p.key: current_value(cfg, p.key) for p in params}
