"""Checkpoints of a model that FSDP shards across ranks (``train.distributed = "fsdp"``).

A checkpoint holds the FULL trainable weights and optimizer state, gathered to rank 0's
CPU memory and written there in the layout of a DDP run's (one store, sha256 manifest,
atomic rename; adapter or model loadable by peft / transformers). Why not sharded files
(torch.distributed.checkpoint, one per rank): every rank would have to write into one
shared filesystem, a resume at another world size (or under DDP, or on one process) would
have to reshard, and the manifest would have to list files other machines wrote. The
gathered state is what this tool trains (LoRA adapters; full fine-tunes of models that
fit a node's CPU memory), and it keeps one checkpoint format for every way of running.

The optimizer state is keyed by parameter name here (torch.distributed.checkpoint's
format) and by index in a DDP checkpoint. ``optimizer.load_state_dict`` maps either by
position, and the sharded loader maps an index-keyed state to names first, so a run
stopped under FSDP resumes under DDP or on one process, and the other way round. Every function that touches a
sharded model is a collective: all ranks call it, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from tui_trainer.errors import ResumeError

ADAPTER_NAME = "default"
"""peft's adapter name in the model's parameter names; its saved files drop it."""


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether FSDP (fully_shard) holds this model's parameters as DTensor shards."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def plain_copy(model: torch.nn.Module, build: Callable[[], torch.nn.Module], *, rank: int) -> torch.nn.Module | None:
    """On rank 0, an unsharded model (``build()``, on CPU) holding the sharded model's trainable
    weights, for the task's export (save_pretrained, merging a LoRA adapter); None elsewhere.

    Why not FSDP's own ``unshard()``: its all-gathered parameters are views whose storage
    peft's save_pretrained cannot read ("invalid python storage", torch 2.13).
    """
    weights = gather_trainable(model, rank=rank)  # collective
    if rank != 0:
        return None
    plain = build()
    result = plain.load_state_dict(weights, strict=False)
    if result.unexpected_keys:
        raise RuntimeError(f"the unsharded copy lacks parameters {result.unexpected_keys[:5]}")
    return plain


def _inner(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps the torch one


def trainable_names(model: torch.nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def gather_trainable(model: torch.nn.Module, *, rank: int) -> dict[str, torch.Tensor]:
    """The full trainable weights, by parameter name, on rank 0's CPU ({} on the others)."""
    from torch.distributed.tensor import DTensor

    out: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        full = param.full_tensor() if isinstance(param, DTensor) else param.detach()  # all-gather: every rank
        if rank == 0:
            out[name] = full.detach().to("cpu", copy=True)
    return out


def gather_optimizer(model: torch.nn.Module, optimizer) -> dict[str, Any]:
    """The full optimizer state keyed by parameter name, on rank 0's CPU ({} on the others)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(model, _inner(optimizer), options=options)


def adapter_weights_by_name(model: torch.nn.Module, saved: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Map a peft adapter file's keys (adapter name left out) back to the model's parameter names."""
    by_saved_key = {name.replace(f".{ADAPTER_NAME}.", "."): name for name in trainable_names(model)}
    unknown = sorted(set(saved) - set(by_saved_key))
    missing = sorted(set(by_saved_key) - set(saved))
    if unknown or missing:
        raise ResumeError(f"{source}: adapter keys do not match the model (missing {missing[:5]}, unexpected {unknown[:5]})")
    return {by_saved_key[key]: tensor for key, tensor in saved.items()}


def load_trainable(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load full weights (every rank holds them) into the sharded model; each rank keeps its shard."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    known = set(model.state_dict())
    unexpected = sorted(set(weights) - known)
    if unexpected:
        raise ResumeError(f"{source}: model weights do not match (unexpected {unexpected[:5]})")
    set_model_state_dict(model, dict(weights), options=StateDictOptions(full_state_dict=True, strict=False))


def _param_names_in_order(model: torch.nn.Module, optimizer) -> list[list[str]]:
    name_of = {id(p): name for name, p in model.named_parameters()}
    try:
        return [[name_of[id(p)] for p in group["params"]] for group in _inner(optimizer).param_groups]
    except KeyError:
        raise ResumeError("the optimizer holds a parameter the model does not name; cannot map its saved state") from None


def optimizer_state_by_name(state: dict[str, Any], model: torch.nn.Module, optimizer) -> dict[str, Any]:
    """An index-keyed (``optimizer.state_dict()``) state as torch.distributed.checkpoint's name-keyed one."""
    if not any(isinstance(key, int) for key in state.get("state", {})) and not _indexed_groups(state):
        return state
    names = _param_names_in_order(model, optimizer)
    flat = [name for group in names for name in group]
    _check_group_sizes(state, names)
    return {
        "state": {flat[index]: value for index, value in state["state"].items()},
        "param_groups": [{**group, "params": group_names} for group, group_names in zip(state["param_groups"], names)],
    }


def _indexed_groups(state: dict[str, Any]) -> bool | None:
    """True when the param groups list parameter indexes, False when names, None when there are none."""
    params = [p for group in state.get("param_groups", []) for p in group.get("params", [])]
    return None if not params else isinstance(params[0], int)


def _check_group_sizes(state: dict[str, Any], names: list[list[str]]) -> None:
    saved = [len(group.get("params", [])) for group in state.get("param_groups", [])]
    if saved != [len(group) for group in names]:
        raise ResumeError(f"the saved optimizer has parameter groups of sizes {saved}, this model {[len(g) for g in names]}")


def load_optimizer_sharded(model: torch.nn.Module, optimizer, state: dict[str, Any]) -> None:
    """Load a full optimizer state (every rank holds it) into the sharded optimizer."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    by_name = optimizer_state_by_name(state, model, optimizer)
    set_optimizer_state_dict(model, _inner(optimizer), by_name, options=StateDictOptions(full_state_dict=True))
