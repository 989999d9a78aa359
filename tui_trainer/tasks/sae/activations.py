"""Reading (and replacing) one site's activations in a frozen Hugging Face causal LM.

The site is a module: the decoder layer itself (``resid_post``: its output hidden state),
its MLP (``mlp_out``), its attention block (``attn_out``), or any module named by
``sae.hook_module``. Training only needs the activations, so the forward is cut short by an
exception raised from the hook: nothing above the site is computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from tui_trainer.config.schema import SaeSection
from tui_trainer.errors import ConfigError

_SITE_CHILDREN = {"mlp_out": ("mlp", "feed_forward", "ffn"), "attn_out": ("self_attn", "attn", "attention")}


@dataclass(frozen=True)
class Site:
    """Where the SAE reads."""

    module: nn.Module
    """The module whose output is the activation."""
    hook_name: str
    """Its dotted path in the model (SAELens' hook name for this SAE)."""
    layer: int | None
    """The decoder layer (None for an explicit hook_module outside the layer stack)."""
    n_layers: int
    """Decoder layers the model has."""


class _StopForward(Exception):
    """Raised by the capture hook: the activation is in hand, the rest of the forward is waste."""


def decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's stack of decoder layers: the ModuleList as long as config.num_hidden_layers."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) and (n is None or len(module) == n):
            return name, module
    raise ConfigError(f"model.name_or_path: found no stack of decoder layers in {type(model).__name__}; set sae.hook_module")


def resolve_site(model: nn.Module, sae: SaeSection) -> Site:
    """The site that ``sae.layer`` + ``sae.site`` (or ``sae.hook_module``) names; a bad one is a ConfigError."""
    prefix, layers = decoder_layers(model)
    if sae.hook_module is not None:
        try:
            module = model.get_submodule(sae.hook_module)
        except AttributeError:
            raise ConfigError(
                f"sae.hook_module = {sae.hook_module!r} is not a module of the model; "
                f"layer modules look like {prefix}.0.mlp"
            ) from None
        layer = _layer_of(sae.hook_module, prefix)
        return Site(module, sae.hook_module, layer, len(layers))
    if sae.layer >= len(layers):
        raise ConfigError(
            f"sae.layer = {sae.layer} is beyond the model's {len(layers)} decoder layers; use 0..{len(layers) - 1}"
        )
    block = layers[sae.layer]
    name = f"{prefix}.{sae.layer}"
    if sae.site == "resid_post":
        return Site(block, name, sae.layer, len(layers))
    for child in _SITE_CHILDREN[sae.site]:
        if isinstance(getattr(block, child, None), nn.Module):
            return Site(getattr(block, child), f"{name}.{child}", sae.layer, len(layers))
    raise ConfigError(f"sae.site = {sae.site!r}: layer {name} has none of {_SITE_CHILDREN[sae.site]}; set sae.hook_module")


def _layer_of(path: str, prefix: str) -> int | None:
    rest = path.removeprefix(prefix + ".")
    head = rest.split(".", 1)[0]
    return int(head) if rest != path and head.isdigit() else None


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def site_activations(base: nn.Module, site: Site, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The site's output [rows, positions, d] for these rows (the base's keyword inputs); the forward stops at the site."""
    captured: list[torch.Tensor] = []

    def hook(_module, _args, output):
        captured.append(_first(output))
        raise _StopForward

    handle = site.module.register_forward_hook(hook)
    try:
        base(**inputs, use_cache=False)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"{site.hook_name} did not run in the forward pass")
    return captured[0]


@contextmanager
def spliced(site: Site, replace: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    """Within the block, the site's output is ``replace(output)``; yields the original outputs seen."""
    seen: list[torch.Tensor] = []

    def hook(_module, _args, output):
        original = _first(output)
        seen.append(original)
        new = replace(original).to(original.dtype)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = site.module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def kept_positions(input_ids: torch.Tensor, lengths: torch.Tensor, bos_id: int | None) -> torch.Tensor:
    """Bool [rows, positions]: real (not padding) tokens, without BOS when ``bos_id`` is given."""
    keep = torch.arange(input_ids.size(1), device=input_ids.device)[None, :] < lengths.to(input_ids.device)[:, None]
    if bos_id is not None:
        keep &= input_ids != bos_id
    return keep
