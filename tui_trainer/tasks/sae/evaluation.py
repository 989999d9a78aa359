"""The SAE's eval pass: reconstruction metrics on held-out rows and the CE loss score from spliced forwards.

Per batch the base runs three times: clean (its site output captured on the way), with
the SAE's reconstruction spliced in at the kept positions, and with zeros there (zero
ablation). BOS and padding positions keep their clean activations, as they are left out
of training too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from tui_trainer.config.schema import RunConfig
from tui_trainer.tasks.base import Batch, EvalAccumulator, EvalReport
from tui_trainer.tasks.causal_lm import shifted_targets
from tui_trainer.tasks.cross_entropy import IGNORE_INDEX, cross_entropy_sum
from tui_trainer.tasks.sae import metrics as sm
from tui_trainer.tasks.sae.activations import kept_positions, spliced


class SaeEvaluator(EvalAccumulator):
    def __init__(self, cfg: RunConfig) -> None:
        self.n = len(cfg.data.datasets)
        self.window_tokens = cfg.sae.dead_feature_window_tokens
        self.sums: list[dict[str, torch.Tensor]] | None = None
        self.d_in = 0
        self.dead = 0
        self.d_sae = 0

    def add(self, model: torch.nn.Module, batch: Batch, dataset_index: int) -> None:
        module = getattr(model, "module", model)
        module.commit_pending()
        sae, site, base = module.sae, module.site, module.base
        device = sae.W_enc.device
        if self.sums is None:
            self.d_in, self.d_sae = sae.d_in, sae.d_sae
            self.sums = [sm.new_sums(sae.d_in, device) for _ in range(self.n)]
            self.dead = sm.dead_features(sae.tokens_since_fired, self.window_tokens)
        t = batch.tensors
        inputs = {"input_ids": t["input_ids"], "position_ids": t["position_ids"]}
        keep = kept_positions(t["input_ids"], t["lengths"], module.bos_id)
        targets = shifted_targets(t["labels"], t["position_ids"]).reshape(-1)
        count = int((targets != IGNORE_INDEX).sum())

        def ce() -> torch.Tensor:
            logits = base(**inputs, use_cache=False).logits
            return cross_entropy_sum(logits.reshape(-1, logits.size(-1)), targets)

        with spliced(site, lambda o: o) as seen:
            clean = ce()
        x = seen[0][keep].float()
        out = sae(sae.scale(x))
        recon = out.recon / sae.input_scale.to(out.recon.dtype)
        sm.add_reconstruction(self.sums[dataset_index], x, recon, out.acts)

        def put(values: torch.Tensor | float):
            def replace(o: torch.Tensor) -> torch.Tensor:
                o = o.clone()
                o[keep] = values if isinstance(values, float) else values.to(o.dtype)
                return o

            return replace

        with spliced(site, put(recon)):
            with_sae = ce()
        with spliced(site, put(0.0)):
            zero = ce()
        sm.add_ce(self.sums[dataset_index], clean, with_sae, zero, count)

    def totals(self) -> dict[str, torch.Tensor]:
        if self.sums is None:
            return {}
        return {key: torch.stack([s[key] for s in self.sums]) for key in sm.SUM_KEYS}

    def finish(self, totals: dict[str, torch.Tensor], dataset_names: Sequence[str]) -> EvalReport | None:
        if not totals or float(totals["tokens"].sum()) == 0:
            return None
        overall = sm.metrics_from_sums({k: v.sum(dim=0) for k, v in totals.items()})
        per_dataset = {}
        per_dataset_metrics = {}
        for i, name in enumerate(dataset_names):
            if float(totals["tokens"][i]) > 0:
                metrics = sm.metrics_from_sums({k: v[i] for k, v in totals.items()})
                per_dataset[name] = self._eval_loss(metrics)
                per_dataset_metrics[name] = metrics
        eval_loss = self._eval_loss(overall)
        metrics = {
            "eval_loss": eval_loss,
            **overall,
            "dead_features": self.dead,
            "dead_fraction": self.dead / self.d_sae if self.d_sae else math.nan,
        }
        return EvalReport(eval_loss, per_dataset, metrics, per_dataset_metrics)

    @staticmethod
    def _eval_loss(metrics: dict[str, float]) -> float:
        """The fraction of variance unexplained, 1 - explained_variance: lower is better, and unlike the raw MSE
        it does not change with the input scale (which is 1 at a step-0 eval, before the first activations set it)."""
        return 1.0 - metrics["explained_variance"]
