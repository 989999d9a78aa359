"""``run.task`` -> the Task that trains it. Registering a task is one line in ``_TASKS``.

This module imports nothing of the config (config/schema.py reads :data:`TASK_NAMES` to
validate ``run.task``), not even tasks.base (the config must not reach the data layer
through it), and each task module is imported only when its task is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from tui_trainer.errors import ConfigError

_TASKS: dict[str, str] = {
    "causal_lm": "tui_trainer.tasks.causal_lm:CausalLMTask",
    "sae": "tui_trainer.tasks.sae:SaeTask",
    "classification": "tui_trainer.tasks.classification:ClassificationTask",
}
"""Task name -> "module:class"."""

TASK_NAMES: tuple[str, ...] = tuple(_TASKS)


def get_task(cfg: Any) -> Any:
    """A fresh :class:`tui_trainer.tasks.base.Task` for ``cfg.run.task``; an unknown name is a ConfigError (exit 2)."""
    return task_by_name(cfg.run.task)


def task_by_name(name: str) -> Any:
    target = _TASKS.get(name)
    if target is None:
        raise ConfigError(f"run.task = {name!r} is not a known task; choose one of: {', '.join(TASK_NAMES)}")
    module_name, cls = target.split(":")
    try:
        module = importlib.import_module(module_name)
        task_cls = getattr(module, cls)
    except (ImportError, AttributeError) as err:
        if getattr(err, "name", None) not in (module_name, cls):
            raise
        raise ConfigError(
            f"run.task = {name!r} is not available in this installation ({target} is missing); "
            f"choose one of: {', '.join(TASK_NAMES)}"
        ) from None
    return task_cls()
