"""The ``classification`` Task: the engine's seam (tasks/base.py) over data, loss, metrics and models.

The loss count is the number of rows, and class weights are scaled to a mean of 1 over
the training rows. The engine needs an integer count known before the forward pass
(tasks/base.py); with mean-1 weights, summed weighted loss / rows is an unbiased estimate
of the weighted mean torch's ``cross_entropy(weight=w)`` reports, and it does not change
with how the rare classes happen to fall into one batch. scikit-learn's ``balanced``
weights already have mean 1 over the training rows; ``sqrt_balanced`` is rescaled to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tui_trainer import paths
from tui_trainer.config.classification_section import ClassificationSection
from tui_trainer.config.schema import RunConfig
from tui_trainer.tasks.base import Batch, EvalAccumulator, LossMemory, Task
from tui_trainer.tasks.classification import models
from tui_trainer.tasks.classification.evaluation import ClassificationEval
from tui_trainer.tasks.classification.images import image_processor
from tui_trainer.tasks.classification.losses import LossSpec, class_weights, loss_sum_and_count
from tui_trainer.tasks.classification.metrics import HIGHER_IS_BETTER
from tui_trainer.tasks.classification.prep import Encoder, prepare_one, read_all, resolve_labels
from tui_trainer.tasks.classification.split import ClassCounts


class ClassificationTask(Task):
    name = "classification"

    def __init__(self) -> None:
        self.section = ClassificationSection()
        self.vision = False
        self.tokenizer: Any = None
        self.processor: Any = None
        self.labels: tuple[str, ...] = ()
        self.class_counts: dict[str, ClassCounts] = {}
        self.loss_spec = LossSpec("cross_entropy", None)
        self._norm: tuple[torch.Tensor, torch.Tensor] | None = None
        self.n_datasets = 0
        self.last_eval: dict[str, Any] | None = None

    # ------------------------------------------------------------------ data
    def setup(self, cfg: RunConfig, model_path: str) -> None:
        self.section = cfg.classification or ClassificationSection()
        self.vision = models.is_vision_config(model_path, cfg.model.trust_remote_code)
        if self.vision:
            from transformers import AutoConfig

            size = self.section.image_size or int(AutoConfig.from_pretrained(model_path).image_size)
            self.processor = image_processor(model_path, size)
            self._norm = _normalization(self.processor)
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=cfg.model.trust_remote_code)

    def _encoder(self, cfg: RunConfig) -> Encoder:
        if self.vision:
            return Encoder("image", json_fingerprint(self.processor.to_dict()), processor=self.processor)
        from tui_trainer.data.prep.cache import tokenizer_fingerprint

        return Encoder("text", tokenizer_fingerprint(self.tokenizer), tokenizer=self.tokenizer, max_seq_len=cfg.data.max_seq_len)

    def prepare(self, cfg: RunConfig, *, on_prepared: Callable | None = None, cache_root: Path | None = None) -> list:
        root = Path(cache_root) if cache_root is not None else paths.cache_dir()
        records = read_all(cfg)
        self.labels, ids = resolve_labels(cfg, records)
        self.n_datasets = len(records)
        encoder = self._encoder(cfg)
        prepared = []
        for spec, recs, class_ids in zip(cfg.data.datasets, records, ids, strict=True):
            ds, counts = prepare_one(spec, cfg, recs, class_ids, self.labels, encoder, root)
            prepared.append(ds)
            self.class_counts[spec.name] = counts
            if on_prepared is not None:
                on_prepared(ds.stats)
        totals = np.sum([c.after for c in self.class_counts.values()], axis=0)
        self.loss_spec = LossSpec(self.section.loss, _mean_one(totals, self.section.class_weighting), self.section.focal_gamma)
        return prepared

    def collate(self, prepared: Sequence, items: Sequence[tuple[int, int]], split: str = "train") -> Batch:
        from tui_trainer.tasks.classification.collate import collate_images, collate_text

        if self.vision:
            return collate_images(prepared, items, split, self._norm)
        return collate_text(prepared, items, split, self.tokenizer.pad_token_id or 0)

    # ------------------------------------------------------------------ model
    def build_model(self, cfg: RunConfig, model_path: str, load_dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
        return models.build(cfg, model_path, self.labels, self.vision, load_dtype)

    def logits(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        inputs = {k: v for k, v in batch.tensors.items() if k != "labels"}
        return model(**inputs).logits

    def loss_sum(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        total, _ = loss_sum_and_count(self.logits(model, batch), batch.tensors["labels"], self.loss_spec)
        return total, batch.rows

    def evaluator(self, cfg: RunConfig) -> EvalAccumulator:
        return ClassificationEval(self, len(self.labels))

    def best_metric(self) -> tuple[str, bool]:
        """(metric name in EvalReport.metrics, higher is better): what picks 'best' and drives early stopping."""
        name = self.section.metric_for_best
        return name, HIGHER_IS_BETTER[name]

    def export(self, model: torch.nn.Module, target: Path, *, merge: bool) -> None:
        models.export(model, target, self.processor if self.vision else self.tokenizer)

    def loss_memory(self) -> LossMemory:
        return LossMemory(head="pooled", chunk_positions=0)

    def summary(self) -> dict[str, Any]:
        """For report.json: the labels, rows per class before/after capping, the imbalance, the loss."""
        return {
            "labels": list(self.labels),
            "class_weighting": self.section.class_weighting,
            "class_weights": list(self.loss_spec.weights) if self.loss_spec.weights else None,
            "loss": self.section.loss,
            "max_samples_per_class": self.section.max_samples_per_class,
            "datasets": {name: c.to_dict() for name, c in self.class_counts.items()},
            "last_eval": self.last_eval,
        }

    def plan_lines(self) -> list[str]:
        """One line per dataset for the run's plan: rows per class before -> after the cap, and the imbalance."""
        lines = []
        for name, c in self.class_counts.items():
            per_class = ", ".join(
                f"{label} {b}" + (f"->{a}" if a != b else "") for label, b, a in zip(c.labels, c.before, c.after, strict=True)
            )
            lines.append(
                f"{name}: {per_class} train rows per class; imbalance {c.imbalance_before:.1f}:1"
                + (f" -> {c.imbalance_after:.1f}:1 capped" if c.after != c.before else "")
                + f"; {sum(c.eval)} eval rows (stratified)"
            )
        return lines


def _mean_one(counts: np.ndarray, mode: str) -> tuple[float, ...] | None:
    if mode == "none":
        return None
    w = class_weights(counts, mode)
    w = w * counts.sum() / float((w * counts).sum())  # mean 1 over the training rows (see the module docstring)
    return tuple(float(x) for x in w)


def _normalization(processor: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) per channel so that pixels_uint8 x scale + shift is what the processor would output."""
    rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0
    if getattr(processor, "do_normalize", True):
        mean = torch.tensor(processor.image_mean, dtype=torch.float32)
        std = torch.tensor(processor.image_std, dtype=torch.float32)
    else:
        mean, std = torch.zeros(3), torch.ones(3)
    return (rescale / std).view(-1, 1, 1), (-mean / std).view(-1, 1, 1)


def json_fingerprint(value: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
