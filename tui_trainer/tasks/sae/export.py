"""``final/sae/`` in SAELens' on-disk layout (cfg.json, sae_weights.safetensors, sparsity.safetensors).

The weights are for raw activations (the training-time input scale folded in), so
``acts = topk/relu((x - b_dec) @ W_enc + b_enc)`` and ``x_hat = acts @ W_dec + b_dec``
hold on the base model's own activations, and ``SAE.load_from_disk`` reads the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
SPARSITY_FILE = "sparsity.safetensors"
DENSITY_EPS = 1e-10
"""Added before log10 so a feature that never fired gets -10, as SAELens writes it."""


def sae_config(module, model_name: str, context_size: int) -> dict[str, Any]:
    sae = module.sae
    cfg: dict[str, Any] = {
        "architecture": sae.architecture,
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",  # folded into the weights
        "reshape_activations": "none",
        "metadata": {
            "model_name": model_name,
            "hook_name": module.site.hook_name,
            "hook_layer": module.site.layer,
            "context_size": context_size,
            "prepend_bos": module.bos_id is not None,
        },
    }
    if sae.architecture == "topk":
        cfg["k"] = sae.k
    return cfg


def log_feature_density(module) -> torch.Tensor:
    tokens = max(int(module.train_tokens), 1)
    return torch.log10(module.fire_counts.double().cpu() / tokens + DENSITY_EPS).float()


def export_sae(module, target: Path, *, model_name: str, context_size: int) -> Path:
    """Write the three files into ``target`` and return it."""
    from safetensors.torch import save_file

    module.commit_pending()
    target.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().float().cpu().contiguous() for k, v in module.sae.folded_weights().items()}
    save_file(weights, str(target / WEIGHTS_FILE))
    save_file({"sparsity": log_feature_density(module)}, str(target / SPARSITY_FILE))
    text = json.dumps(sae_config(module, model_name, context_size), indent=1)
    (target / CFG_FILE).write_text(text, encoding="utf-8")
    return target


def load_exported(target: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(cfg, weights) of an exported SAE, for checks that recompute metrics from the files."""
    from safetensors.torch import load_file

    return json.loads((target / CFG_FILE).read_text(encoding="utf-8")), load_file(str(target / WEIGHTS_FILE))


def encode_decode(cfg: dict[str, Any], weights: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(acts, x_hat) from the exported files' formula, on raw activations."""
    from tui_trainer.tasks.sae.model import topk_relu

    pre = (x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"]
    acts = topk_relu(pre, cfg["k"]) if cfg["architecture"] == "topk" else pre.relu()
    return acts, acts @ weights["W_dec"] + weights["b_dec"]
