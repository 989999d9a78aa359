"""The ``causal_lm`` task: next-token prediction on packed documents (DESIGN §2.1).

Rows come from data/prep (tokenize, pack, Arrow cache) with ``position_ids`` that restart
at every document. The model gets ``position_ids`` and no attention mask: transformers
then builds a block-causal mask from them for packed rows (masking_utils,
find_packed_sequence_indices, used only when attention_mask is None and there is no KV
cache, hence ``use_cache=False``) and keeps the plain
causal path for rows of one document; right padding needs no mask because causal
attention never lets a real token see the padding after it. The target of position t is
token t+1 unless that token starts a document (position 0) or is unlabelled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from tui_trainer.config.schema import RunConfig
from tui_trainer.data.prep.tokenize import IGNORE_INDEX
from tui_trainer.tasks.base import Batch, EvalAccumulator, EvalReport, LossMemory, Task
from tui_trainer.tasks.cross_entropy import CHUNK_POSITIONS, cross_entropy_sum


def shifted_targets(labels: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """[rows, seq] targets aligned with the logits: label t+1 at t, IGNORE_INDEX past the end and at document starts."""
    nxt = labels[:, 1:].masked_fill(position_ids[:, 1:] == 0, IGNORE_INDEX)
    return torch.nn.functional.pad(nxt, (0, 1), value=IGNORE_INDEX)


def loss_sum_of(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed next-token loss of one micro-batch; the logits are dropped before this returns."""
    # No KV cache: training never reuses it, and with one transformers ignores the packed position_ids.
    logits = model(input_ids=tensors["input_ids"], position_ids=tensors["position_ids"], use_cache=False).logits
    targets = shifted_targets(tensors["labels"], tensors["position_ids"])
    return cross_entropy_sum(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


class CausalLMTask(Task):
    name = "causal_lm"

    def __init__(self) -> None:
        self.tokenizer: Any = None

    def setup(self, cfg: RunConfig, model_path: str) -> None:
        from tui_trainer.tasks.tokenizer import check_seq_len, load_tokenizer

        check_seq_len(cfg, model_path)
        self.tokenizer = load_tokenizer(cfg, model_path)

    def prepare(self, cfg: RunConfig, *, on_prepared: Callable | None = None, cache_root: Path | None = None) -> list:
        from tui_trainer.data.prep.prepare import prepare_all

        return prepare_all(cfg, self.tokenizer, cache_root=cache_root, on_prepared=on_prepared)

    def collate(self, prepared: Sequence, items: Sequence[tuple[int, int]], split: str = "train") -> Batch:
        from tui_trainer.data.batches import fetch_batch

        t = fetch_batch(prepared, items, self.tokenizer.pad_token_id, split=split)
        lengths = t["attention_mask"].sum(dim=1)
        tensors = {"input_ids": t["input_ids"], "labels": t["labels"], "position_ids": t["position_ids"]}
        return Batch(tensors, n_targets=t["n_targets"], work=lengths, lengths=lengths)

    def build_model(
        self, cfg: RunConfig, model_path: str, load_dtype: torch.dtype, device: torch.device
    ) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        from tui_trainer.tasks.hf_model import apply_lora, load_pretrained

        model = load_pretrained(AutoModelForCausalLM, cfg, model_path, load_dtype, device, what="a causal LM")
        return apply_lora(cfg, model, "CAUSAL_LM") if cfg.lora.enabled else model

    def loss_sum(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        return loss_sum_of(model, dict(batch.tensors)), int(batch.n_targets.sum())

    def evaluator(self, cfg: RunConfig) -> EvalAccumulator:
        return _LossPerDataset(len(cfg.data.datasets))

    def export(self, model: torch.nn.Module, target: Path, *, merge: bool) -> None:
        from tui_trainer.tasks.hf_model import save_pretrained

        save_pretrained(model, self.tokenizer, target, merge=merge, lora=hasattr(model, "peft_config"))

    def loss_memory(self) -> LossMemory:
        return LossMemory(head="lm", chunk_positions=CHUNK_POSITIONS)


class _LossPerDataset(EvalAccumulator):
    """Summed token loss and target count per dataset; eval_loss and perplexity from their totals."""

    def __init__(self, n_datasets: int) -> None:
        self.n = n_datasets
        self.sums: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None

    def add(self, model: torch.nn.Module, batch: Batch, dataset_index: int) -> None:
        loss = loss_sum_of(model, dict(batch.tensors))
        if self.sums is None:
            self.sums = torch.zeros(self.n, dtype=torch.float64, device=loss.device)
            self.counts = torch.zeros(self.n, dtype=torch.float64, device=loss.device)
        self.sums[dataset_index] += loss.double()
        self.counts[dataset_index] += float(batch.n_targets.sum())

    def totals(self) -> dict[str, torch.Tensor]:
        if self.sums is None:  # this process evaluated nothing; the reduction still needs its zeros
            return {"sums": torch.zeros(self.n, dtype=torch.float64), "counts": torch.zeros(self.n, dtype=torch.float64)}
        return {"sums": self.sums, "counts": self.counts}

    def finish(self, totals: dict[str, torch.Tensor], dataset_names: Sequence[str]) -> EvalReport | None:
        sums, counts = totals["sums"].tolist(), totals["counts"].tolist()
        if sum(counts) == 0:
            return None
        per_dataset = {name: s / c for name, s, c in zip(dataset_names, sums, counts, strict=True) if c > 0}
        per_dataset_ppl = {name: {"perplexity": _perplexity(v)} for name, v in per_dataset.items()}
        overall = sum(sums) / sum(counts)
        metrics = {"eval_loss": overall, "perplexity": _perplexity(overall)}
        return EvalReport(overall, per_dataset, metrics, per_dataset_ppl)


def _perplexity(loss: float) -> float:
    import math

    return math.exp(loss) if loss < 700 else float("inf")
