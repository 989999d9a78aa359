"""What the wizard needs to know of the base model without loading its weights (worker thread).

The SAE rows show the layer count; the check itself is the sae task's own (a layer past the
model's depth, k > d_sae, a base that is not a causal LM), so the wizard refuses exactly what
training would, a second after the edit instead of after the data is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import UserError


@dataclass(frozen=True)
class ModelShape:
    """The base model's architecture facts, read from its config."""

    name: str
    """``model.name_or_path`` as the form had it."""
    layers: int | None
    """Decoder layers (config.num_hidden_layers); None when the config could not be read."""
    width: int | None
    """Hidden size (d_in of a resid_post SAE); None when unknown."""
    problem: str | None
    """Why the config could not be read, or why the task refuses these values; None when fine."""


def read_model_shape(cfg: RunConfig) -> ModelShape:
    """Resolve the model (a demo model is built, a GGUF converted, once) and read its config."""
    from transformers import AutoConfig

    from tui_trainer.engine.model import resolve_model_path

    name = cfg.model.name_or_path
    try:
        path = resolve_model_path(name, gguf_file=cfg.model.gguf_file)
        config = AutoConfig.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
    except UserError as err:
        return ModelShape(name, None, None, str(err))
    except (OSError, ValueError) as err:
        return ModelShape(name, None, None, f"model.name_or_path: cannot read a model config from {name}: {err}")
    layers, width = getattr(config, "num_hidden_layers", None), getattr(config, "hidden_size", None)
    problem = None
    if cfg.run.task == "sae":
        from tui_trainer.tasks.sae.task import _check_base  # the task's own rule, not a copy

        try:
            _check_base(cfg, path)
        except UserError as err:
            problem = str(err)
    return ModelShape(name, layers, width, problem)
