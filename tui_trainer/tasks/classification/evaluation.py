"""One eval pass: per dataset, the summed loss and the confusion matrix; metrics from scikit-learn.

The confusion matrix is a sum, so under several processes it all-reduces like the loss;
scikit-learn then scores the (true, predicted) pairs the matrix stands for, which gives
exactly the metrics of the whole eval set, never a mean of per-batch values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tui_trainer.tasks.base import Batch, EvalAccumulator, EvalReport
from tui_trainer.tasks.classification.losses import loss_sum_and_count
from tui_trainer.tasks.classification.metrics import classification_metrics


class ClassificationEval(EvalAccumulator):
    def __init__(self, task: Any, n_classes: int) -> None:
        self.task = task
        self.n = n_classes
        self.loss: dict[int, torch.Tensor] = {}
        self.rows: dict[int, torch.Tensor] = {}
        self.confusion: dict[int, torch.Tensor] = {}

    def add(self, model: torch.nn.Module, batch: Batch, dataset_index: int) -> None:
        logits = self.task.logits(model, batch)
        targets = batch.tensors["labels"]
        total, _ = loss_sum_and_count(logits, targets, self.task.loss_spec)
        pairs = targets * self.n + logits.argmax(dim=-1)
        cm = torch.bincount(pairs, minlength=self.n * self.n).view(self.n, self.n).double()
        if dataset_index not in self.loss:
            self.loss[dataset_index] = torch.zeros((), dtype=torch.float64, device=logits.device)
            self.rows[dataset_index] = torch.zeros((), dtype=torch.float64, device=logits.device)
            self.confusion[dataset_index] = torch.zeros_like(cm)
        self.loss[dataset_index] += total.double()
        self.rows[dataset_index] += float(targets.numel())
        self.confusion[dataset_index] += cm

    def totals(self) -> dict[str, torch.Tensor]:
        # Every process must send the same keys, so all datasets are present, zeros where none were seen.
        return {"confusion": self._stack(self.confusion, (self.n, self.n)), "loss": self._stack(self.loss, ()), "rows": self._stack(self.rows, ())}

    def _stack(self, values: dict[int, torch.Tensor], shape: tuple) -> torch.Tensor:
        count = max(self.task.n_datasets, max(values, default=-1) + 1)
        device = next(iter(values.values())).device if values else torch.device("cpu")
        out = torch.zeros((count, *shape), dtype=torch.float64, device=device)
        for i, v in values.items():
            out[i] = v
        return out

    def finish(self, totals: dict[str, torch.Tensor], dataset_names: Sequence[str]) -> EvalReport | None:
        rows = totals["rows"].cpu().numpy()
        if rows.sum() == 0:
            return None
        loss = totals["loss"].cpu().numpy()
        confusion = totals["confusion"].cpu().numpy().round().astype(np.int64)
        labels = self.task.labels
        per_dataset, per_metrics = {}, {}
        for i, name in enumerate(dataset_names):
            if rows[i] > 0:
                per_dataset[name] = float(loss[i] / rows[i])
                per_metrics[name] = _score(confusion[i], labels) | {"eval_loss": per_dataset[name]}
        eval_loss = float(loss.sum() / rows.sum())
        metrics = _score(confusion.sum(axis=0), labels) | {"eval_loss": eval_loss}
        self.task.last_eval = {"metrics": metrics, "per_dataset": per_metrics}
        return EvalReport(eval_loss, per_dataset, metrics, per_metrics)


def _score(confusion: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    n = len(labels)
    true = np.repeat(np.arange(n * n) // n, confusion.reshape(-1))
    pred = np.repeat(np.arange(n * n) % n, confusion.reshape(-1))
    return classification_metrics(true, pred, labels)
