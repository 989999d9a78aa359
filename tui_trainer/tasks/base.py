"""The Task seam (DESIGN §2.1): what the engine asks of a training objective.

A task turns a dataset's records into rows, rows into batches, a batch into a summed loss
and a target count, and a model into eval metrics. The engine calls these and nothing
else; it never learns what a token, a label or an activation is, and a task never calls
the engine. Precision, devices, micro-batching, gradient accumulation, DDP, checkpoints
and events stay on the engine's side.

Contract for ``loss_sum``: the engine divides the summed loss by the number of targets of
the *whole* global batch, read from :attr:`Batch.n_targets` before any forward pass (so no
collective is needed under several processes: every rank knows the global batch). A task
whose loss is not a sum over targets (an SAE's MSE, a focal loss) still returns a sum and
the count it is a mean over.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from tui_trainer.config.schema import RunConfig
    from tui_trainer.data.prep.prepare import PreparedDataset, PrepStats


@dataclass(frozen=True)
class Batch:
    """A collated set of rows, rows on dim 0 of every tensor, still on the CPU."""

    tensors: Mapping[str, torch.Tensor]
    """What the task's ``loss_sum`` reads (model inputs and targets), by name."""
    n_targets: torch.Tensor
    """Per row (int64): the targets it adds to the loss sum, counted when the rows were prepared."""
    work: torch.Tensor
    """Per row (int64): what throughput counts (real tokens for sequences; 1 per image or example)."""
    lengths: torch.Tensor | None = None
    """Per row (int64): real length along dim 1 of the sequence tensors, None for tasks without sequences."""

    @property
    def rows(self) -> int:
        return int(self.n_targets.size(0))

    def select(self, start: int, stop: int) -> Batch:
        """Rows ``[start, stop)``, with right padding beyond their longest row cut off."""
        tensors = {k: v[start:stop] for k, v in self.tensors.items()}
        lengths = None if self.lengths is None else self.lengths[start:stop]
        if lengths is not None and len(lengths):
            padded = max((v.size(1) for v in tensors.values() if v.dim() >= 2), default=0)
            longest = int(lengths.max())
            if longest < padded:
                tensors = {k: v[:, :longest] if v.dim() >= 2 and v.size(1) == padded else v for k, v in tensors.items()}
        return Batch(tensors, self.n_targets[start:stop], self.work[start:stop], lengths)

    def to(self, device: torch.device, *, pin: bool = False) -> Batch:
        """The tensors on ``device`` (through pinned memory when ``pin``, which makes the copy truly async)."""
        tensors = self.tensors
        if pin:
            # Pinning copies into a dense buffer, so a trimmed view is pinned after trimming, not before.
            tensors = {k: v.pin_memory() for k, v in tensors.items()}
        moved = {k: v.to(device, non_blocking=True) for k, v in tensors.items()}
        return Batch(moved, self.n_targets, self.work, self.lengths)


@dataclass(frozen=True)
class EvalReport:
    """What one eval pass measured."""

    eval_loss: float
    """Mean loss over every evaluated target of every dataset (the number early stopping and 'best' use)."""
    per_dataset: dict[str, float]
    """Mean eval loss per dataset name (datasets without eval rows are absent)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """The task's own metrics by name (e.g. perplexity, macro_f1), ``eval_loss`` included; JSON-serializable."""
    per_dataset_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The task's metrics per dataset name, where it computes them per dataset."""


@dataclass(frozen=True)
class ProbeMemory:
    """A trainable module reading one layer of a frozen base (the sae task), as the memory estimator needs it."""

    layers_run: int | None
    """Decoder layers the frozen base's forward runs (the hooked one and those below); None = all of them."""
    width_factor: int
    """The module's width (d_sae) as a multiple of the base's hidden size (d_in)."""
    buffer_tokens: int
    """Activations (d_in wide, fp32) kept between steps, in tokens."""
    sparse_k: int
    """Active features per token (TopK), 0 for a dense activation."""
    aux: bool
    """An auxiliary reconstruction from dead features (AuxK): two more d_sae-wide tensors per token."""
    eval_chunk_positions: int
    """Evals run the whole base to its logits (the CE loss score): positions whose fp32 loss scratch is alive at once."""


@dataclass(frozen=True)
class LossMemory:
    """What the memory estimator needs to know about a task's output head and loss."""

    head: str
    """``lm``: logits over the vocabulary at every position; ``pooled``: one logits row per example; ``none``."""
    chunk_positions: int
    """Positions whose fp32 loss buffers are alive at once (0 = all of the micro-batch)."""
    probe: ProbeMemory | None = None
    """Set when the trained module is a probe on a frozen base, not the model itself (the sae task)."""


class EvalAccumulator(abc.ABC):
    """Sums an eval pass batch by batch; the engine adds the sums across processes, then ``finish`` reads them."""

    @abc.abstractmethod
    def add(self, model: torch.nn.Module, batch: Batch, dataset_index: int) -> None:
        """Evaluate one batch (already on the device, under no_grad and autocast) of one dataset."""

    @abc.abstractmethod
    def totals(self) -> dict[str, torch.Tensor]:
        """Every running sum, as tensors on the device; the engine all-reduces them (sum) under several processes."""

    @abc.abstractmethod
    def finish(self, totals: dict[str, torch.Tensor], dataset_names: Sequence[str]) -> EvalReport | None:
        """The report from the (reduced) totals; None when nothing was evaluated."""


class Task(abc.ABC):
    """One training objective. An instance serves one run; ``setup`` is called first, once."""

    name: str = ""
    """The ``run.task`` value that selects this task."""
    collate_ahead: bool = True
    """Whether ``collate`` of training rows may run a step early on a background thread (False if it has side effects)."""

    @abc.abstractmethod
    def setup(self, cfg: RunConfig, model_path: str) -> None:
        """Load what preparation and collation need (tokenizer, processor) and check the config against the model.

        Raises a UserError (exit 2) for what the user can fix, e.g. a max_seq_len past the model's limit.
        """

    @abc.abstractmethod
    def prepare(
        self,
        cfg: RunConfig,
        *,
        on_prepared: Callable[[PrepStats], None] | None = None,
        cache_root: Path | None = None,
    ) -> list[PreparedDataset]:
        """Every dataset of ``cfg`` as rows in the Arrow cache, memory-mapped back, one dataset at a time."""

    @abc.abstractmethod
    def collate(
        self, prepared: Sequence[PreparedDataset], items: Sequence[tuple[int, int]], split: str = "train"
    ) -> Batch:
        """Rows ``[(dataset_index, row_index), ...]`` of ``split`` as one batch, in the order given."""

    @abc.abstractmethod
    def build_model(
        self, cfg: RunConfig, model_path: str, load_dtype: torch.dtype, device: torch.device
    ) -> torch.nn.Module:
        """The model to train (base + LoRA, or the full model), its weights in ``load_dtype``, not yet on ``device``."""

    @abc.abstractmethod
    def loss_sum(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        """(summed loss as a 0-d tensor on the batch's device, number of targets summed over)."""

    @abc.abstractmethod
    def evaluator(self, cfg: RunConfig) -> EvalAccumulator:
        """A fresh accumulator for one eval pass."""

    @abc.abstractmethod
    def export(self, model: torch.nn.Module, target: Path, *, merge: bool) -> None:
        """Write the trained result to ``target`` (``final/``), loadable without tui-trainer."""

    def best_metric(self) -> tuple[str, bool]:
        """(name in ``EvalReport.metrics``, higher is better): what picks the best checkpoint and drives early stopping."""
        return "eval_loss", False

    def plan_lines(self) -> list[str]:
        """Lines the run's plan adds after the mix (e.g. rows per class and the imbalance)."""
        return []

    def summary(self) -> dict[str, Any]:
        """Task facts for ``report.json``'s ``task`` key (e.g. rows per class); JSON-serializable."""
        return {}

    def loss_memory(self) -> LossMemory:
        """How the loss uses memory, for planning.memory_estimate."""
        return LossMemory(head="none", chunk_positions=0)

    def memory_facts(self, cfg: RunConfig) -> LossMemory:
        """What planning.memory_estimate needs of this task for ``cfg`` (called before ``setup``; reads no files)."""
        return self.loss_memory()
