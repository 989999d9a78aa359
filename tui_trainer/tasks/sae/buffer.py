"""The activation shuffle buffer, as a window over the last W steps that any step can rebuild.

SAELens keeps a buffer of ~82k shuffled tokens and refills half of it at a time, so its
content depends on the whole run and is lost on resume. Here the buffer is a sliding
window instead: the kept tokens of row slot ``i`` at step ``j`` are shuffled by a
permutation seeded from (seed, j, i) and dealt into W chunks; the SAE batch of slot ``i``
at step ``k`` is chunk ``k - j`` of each step ``j`` in ``(k - W, k]``. Every token is used
once, each batch mixes W steps' worth of rows, and the content at step ``k`` is a pure
function of (seed, the rows of the last W steps): a resume recomputes the W - 1 previous
steps' activations (once) instead of saving them.
"""

from __future__ import annotations

import math

import torch

_MIX = (1 << 61) - 1


def window_steps(buffer_tokens: int, rows_per_step: int, max_seq_len: int) -> int:
    """W: how many steps of rows fill ``buffer_tokens`` (at least 1)."""
    return max(1, math.ceil(buffer_tokens / max(1, rows_per_step * max_seq_len)))


def entry_seed(seed: int, step: int, slot: int) -> int:
    return ((seed * 1_000_003 + step) * 1_000_033 + slot) % _MIX


class ActivationWindow:
    """Kept activations per (step, slot), each with its chunk permutation; older than W steps are dropped."""

    def __init__(self, steps: int, seed: int) -> None:
        self.steps = steps
        self.seed = seed
        self._entries: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def has(self, step: int, slot: int) -> bool:
        return (step, slot) in self._entries

    def put(self, step: int, slot: int, acts: torch.Tensor) -> None:
        g = torch.Generator().manual_seed(entry_seed(self.seed, step, slot))
        perm = torch.randperm(acts.size(0), generator=g).to(acts.device)
        self._entries[(step, slot)] = (acts, perm)

    def drop_before(self, step: int) -> None:
        """Forget every entry older than ``step`` (the oldest step a batch from now on can use)."""
        for key in [key for key in self._entries if key[0] < step]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()

    def missing(self, step: int, slot: int) -> list[int]:
        """Steps in the window of (step, slot) whose entries are not here (after a resume)."""
        return [j for j in self.sources(step) if (j, slot) not in self._entries]

    def sources(self, step: int) -> range:
        """The steps (1-based) whose tokens feed ``step``'s batch."""
        return range(max(1, step - self.steps + 1), step + 1)

    def batch(self, step: int, slot: int) -> torch.Tensor:
        """The SAE tokens of ``slot`` at ``step``: chunk (step - j) of each step j in the window."""
        parts = []
        for j in self.sources(step):
            acts, perm = self._entries[(j, slot)]
            parts.append(acts[perm[step - j :: self.steps]])
        return torch.cat(parts)
