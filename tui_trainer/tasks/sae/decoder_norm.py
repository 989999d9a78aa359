"""Unit-norm decoder rows, kept unit around every optimizer step (EleutherAI/sparsify).

Before each step the gradient component parallel to each decoder row is removed; after
it, the rows are renormalised. The engine knows nothing of this: the SAE registers
torch's global optimizer step hooks, which act only on an optimizer that holds its own
``W_dec`` (so another run's optimizer in the same process is untouched), and the hooks
hold the SAE by weak reference and are removed when the run releases it. The pre-hook runs
after the engine's gradient clipping and only on steps the engine applies (a skipped,
non-finite step calls no ``step()``), so a skipped step leaves the rows as they were.

Defaults follow the anchors: ``topk`` normalises (sparsify, TopK only, ``normalize_decoder
= True``); ``standard`` does not (SAELens' standard SAE leaves the row norms free and
scales its L1 penalty by them, which a unit norm would make moot).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

if TYPE_CHECKING:
    from tui_trainer.config.schema import SaeSection
    from tui_trainer.tasks.sae.model import SparseAutoencoder


def normalizes_decoder(cfg: SaeSection) -> bool:
    """``sae.normalize_decoder``, or the architecture's default when unset."""
    if cfg.normalize_decoder is not None:
        return cfg.normalize_decoder
    return cfg.architecture == "topk"


class DecoderNormHooks:
    """The two global step hooks of one SAE; ``remove`` (or the SAE being freed) takes them out."""

    def __init__(self, sae: SparseAutoencoder) -> None:
        self._sae = weakref.ref(sae)
        self._handles = [
            register_optimizer_step_pre_hook(self._pre),
            register_optimizer_step_post_hook(self._post),
        ]
        # Freed with the SAE: ten runs in one process leave no hooks behind, release() or not.
        weakref.finalize(sae, _remove_all, self._handles)

    def _mine(self, optimizer: torch.optim.Optimizer) -> SparseAutoencoder | None:
        sae = self._sae()
        if sae is None:
            return None
        if any(p is sae.W_dec for group in optimizer.param_groups for p in group["params"]):
            return sae
        return None

    def _pre(self, optimizer, _args, _kwargs) -> None:
        sae = self._mine(optimizer)
        if sae is not None:
            sae.remove_parallel_decoder_grad()

    def _post(self, optimizer, _args, _kwargs) -> None:
        sae = self._mine(optimizer)
        if sae is not None:
            sae.normalize_decoder_rows()

    def remove(self) -> None:
        _remove_all(self._handles)


def _remove_all(handles: list) -> None:
    for handle in handles:
        handle.remove()
    handles.clear()
