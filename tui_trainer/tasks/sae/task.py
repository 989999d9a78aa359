"""The ``sae`` task (DESIGN §2.1): rows as for causal_lm, a frozen base + SAE as the model, SAE metrics.

Rows are prepared exactly as the causal_lm task prepares them (any causal-LM data, mixed
by the same sampler); the batch adds each row's slot (its index in the step's batch),
which the window buffer keys on.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from pathlib import Path

import torch

from tui_trainer.config.schema import RunConfig
from tui_trainer.errors import ConfigError, ModelError
from tui_trainer.tasks.base import Batch, EvalAccumulator, LossMemory, ProbeMemory
from tui_trainer.tasks.causal_lm import CausalLMTask
from tui_trainer.tasks.cross_entropy import CHUNK_POSITIONS
from tui_trainer.tasks.sae.buffer import window_steps
from tui_trainer.tasks.sae.training import SaeSchedule, SaeTrainingModule


class SaeTask(CausalLMTask):
    name = "sae"
    collate_ahead = False  # a training collate tells the activation buffer which step begins

    def __init__(self) -> None:
        super().__init__()
        self._prepared: Sequence = ()
        self._module: weakref.ref | None = None

    def prepare(self, cfg: RunConfig, **kwargs) -> list:
        self._prepared = super().prepare(cfg, **kwargs)
        return self._prepared

    def collate(self, prepared: Sequence, items: Sequence[tuple[int, int]], split: str = "train") -> Batch:
        """As causal_lm's, plus each row's slot; a training collate is the engine starting a step."""
        self._prepared = prepared
        batch = self._collate(prepared, items, split)
        module = self._module() if self._module is not None else None
        if split == "train" and module is not None:
            module.begin_step(items)
        return batch

    def _collate(self, prepared: Sequence, items: Sequence[tuple[int, int]], split: str) -> Batch:
        batch = super().collate(prepared, items, split)
        tensors = {**batch.tensors, "slot": torch.arange(batch.rows), "lengths": batch.lengths, "n_targets": batch.n_targets}
        return Batch(tensors, n_targets=batch.n_targets, work=batch.work, lengths=batch.lengths)

    def setup(self, cfg: RunConfig, model_path: str) -> None:
        assert cfg.sae is not None  # the schema fills in the defaults for run.task = "sae"
        _check_base(cfg, model_path)
        super().setup(cfg, model_path)
        self._model_name = cfg.model.name_or_path
        self._context_size = cfg.data.max_seq_len

    def _rows(self, items: Sequence[tuple[int, int]]) -> dict[str, torch.Tensor]:
        return dict(self._collate(self._prepared, items, "train").tensors)

    def build_model(self, cfg: RunConfig, model_path: str, load_dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        from tui_trainer.tasks.hf_model import load_pretrained
        from tui_trainer.tasks.sae.activations import resolve_site
        from tui_trainer.tasks.sae.model import SparseAutoencoder

        sae_cfg = cfg.sae
        # The base is only read: bf16 on a GPU that has it halves its memory (the SAE itself stays fp32).
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported() and cfg.model.dtype == "auto"
        base_dtype = torch.bfloat16 if bf16 else load_dtype
        base = load_pretrained(AutoModelForCausalLM, cfg, model_path, base_dtype, device, what="a causal LM")
        site = resolve_site(base, sae_cfg)
        d_in = _width(base, site, self.tokenizer.eos_token_id)
        d_sae = sae_cfg.expansion_factor * d_in
        if sae_cfg.architecture == "topk" and sae_cfg.k > d_sae:
            raise ConfigError(
                f"sae.k = {sae_cfg.k} is more than d_sae = {d_sae} (expansion_factor {sae_cfg.expansion_factor} x "
                f"d_in {d_in}); lower sae.k or raise sae.expansion_factor"
            )
        sae = SparseAutoencoder(
            d_in, d_sae, sae_cfg.architecture, sae_cfg.k, generator=torch.Generator().manual_seed(cfg.run.seed)
        )
        schedule = SaeSchedule(
            total_steps=_total_steps(cfg, self._prepared),
            window=window_steps(sae_cfg.buffer_tokens, cfg.effective_batch, cfg.data.max_seq_len),
            slots=cfg.effective_batch,
            seed=cfg.run.seed,
        )
        module = SaeTrainingModule(base, site, sae, sae_cfg, schedule, bos_id=self.tokenizer.bos_token_id, fetch_rows=self._rows)
        self._module = weakref.ref(module)  # weak: the engine's cleanup must be able to free it
        return module

    def loss_sum(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        loss, count = model(dict(batch.tensors))
        return loss.total, count

    def evaluator(self, cfg: RunConfig) -> EvalAccumulator:
        from tui_trainer.tasks.sae.evaluation import SaeEvaluator

        return SaeEvaluator(cfg)

    def export(self, model: torch.nn.Module, target: Path, *, merge: bool) -> None:
        from tui_trainer.tasks.sae.export import export_sae

        export_sae(_unwrap(model), target / "sae", model_name=self._model_name, context_size=self._context_size)

    def loss_memory(self) -> LossMemory:
        return LossMemory(head="none", chunk_positions=0)

    def memory_facts(self, cfg: RunConfig) -> LossMemory:
        """The SAE on the frozen base: its width, the buffer the window keeps (W whole steps of rows), TopK/AuxK."""
        sae = cfg.sae
        window = window_steps(sae.buffer_tokens, cfg.effective_batch, cfg.data.max_seq_len)
        probe = ProbeMemory(
            layers_run=None if sae.hook_module is not None else sae.layer + 1,
            width_factor=sae.expansion_factor,
            buffer_tokens=window * cfg.effective_batch * cfg.data.max_seq_len,
            sparse_k=sae.k if sae.architecture == "topk" else 0,
            aux=sae.architecture == "topk" and sae.aux_k_coefficient > 0,
            eval_chunk_positions=CHUNK_POSITIONS,
        )
        return LossMemory(head="none", chunk_positions=0, probe=probe)


def _check_base(cfg: RunConfig, model_path: str) -> None:
    """Refuse a base that is not a causal LM, a layer past its depth or k > d_sae in a second, before any data work."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"model.name_or_path: cannot read a model config from {model_path}: {err}") from None
    # BERT has a causal-LM class too (BertLMHeadModel), so the checkpoint's own architecture decides.
    trained_as = getattr(config, "architectures", None) or []
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (
        not trained_as or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in trained_as)
    )
    if not causal and not cfg.model.trust_remote_code:
        raise ModelError(
            f"model.name_or_path: {cfg.model.name_or_path!r} is a {config.model_type!r} model, not a causal LM; "
            "the sae task reads the activations of a causal language model (e.g. demo:tiny-llama)"
        )
    sae, layers, width = cfg.sae, getattr(config, "num_hidden_layers", None), getattr(config, "hidden_size", None)
    if sae.hook_module is None and layers is not None and sae.layer >= layers:
        raise ConfigError(f"sae.layer = {sae.layer} is beyond the model's {layers} decoder layers; use 0..{layers - 1}")
    if sae.hook_module is None and width and sae.architecture == "topk" and sae.k > sae.expansion_factor * width:
        raise ConfigError(
            f"sae.k = {sae.k} is more than d_sae = {sae.expansion_factor * width} (expansion_factor "
            f"{sae.expansion_factor} x d_in {width}); lower sae.k or raise sae.expansion_factor"
        )


def _unwrap(model: torch.nn.Module) -> SaeTrainingModule:
    inner = getattr(model, "module", model)  # DDP wraps the module
    if not isinstance(inner, SaeTrainingModule):
        raise TypeError(f"the sae task trains a SaeTrainingModule, got {type(inner).__name__}")
    return inner


def _width(base: torch.nn.Module, site, token_id: int) -> int:
    """d_in: the site's output width, measured on a one-token forward (any module, any architecture)."""
    from tui_trainer.tasks.sae.activations import site_activations

    probe = torch.tensor([[token_id]], device=next(base.parameters()).device)
    return int(site_activations(base, site, {"input_ids": probe, "position_ids": torch.zeros_like(probe)}).size(-1))


def _total_steps(cfg: RunConfig, prepared: Sequence) -> int:
    """The run's steps as the engine derives them (train.max_steps, or epochs over the capped rows)."""
    if cfg.train.max_steps:
        return cfg.train.max_steps
    caps = [spec.max_samples for spec in cfg.data.datasets]
    used = sum(min(len(p.train), c) if c else len(p.train) for p, c in zip(prepared, caps, strict=True))
    return max(1, math.ceil(cfg.train.epochs * used / cfg.effective_batch))
