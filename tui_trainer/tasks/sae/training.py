"""What the engine trains for the sae task: the SAE, fed by the frozen base through the window buffer.

The engine sees an ordinary module whose parameters are the SAE's. The frozen base model
is held outside the module's registry, so the optimizer, the checkpoints and
``state_dict`` hold only the SAE and its counters; the base is reloaded from
``model.name_or_path`` on resume like any base model.

The task calls :meth:`begin_step` when the engine collates a step's training rows (once per
optimizer step, OOM retries included); after a resume or a rollback the restored ``step``
buffer carries on from the checkpoint. The counters that must survive a resume (the step, the rows of the
last W steps, the dead-feature clock, firing counts) are buffers, so they travel in the
checkpoint's weights file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tui_trainer.config.schema import SaeSection
from tui_trainer.tasks.sae.activations import Site, kept_positions, site_activations
from tui_trainer.tasks.sae.buffer import ActivationWindow
from tui_trainer.tasks.sae.decoder_norm import DecoderNormHooks, normalizes_decoder
from tui_trainer.tasks.sae.model import SparseAutoencoder

WEIGHTS_FILE = "model.safetensors"
"""The checkpoint's weights file: the name the engine's full-model loader looks for."""


@dataclass(frozen=True)
class SaeSchedule:
    """The run-level numbers the loss needs."""

    total_steps: int
    """Steps of the run (the L1 warm-up is a fraction of them)."""
    window: int
    """W: steps of rows the shuffle buffer spans."""
    slots: int
    """Rows per step (the row slots of the window)."""
    seed: int
    """run.seed: seeds every buffer permutation."""


class _Holder:
    """Keeps the base out of ``nn.Module`` registration (no parameters, no state_dict, no .train())."""

    def __init__(self, base: nn.Module) -> None:
        self.base = base


class SaeTrainingModule(nn.Module):
    def __init__(
        self,
        base: nn.Module,
        site: Site,
        sae: SparseAutoencoder,
        cfg: SaeSection,
        schedule: SaeSchedule,
        *,
        bos_id: int | None,
        fetch_rows: Callable[[Sequence[tuple[int, int]]], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        super().__init__()
        base.eval()
        base.requires_grad_(False)
        self._base = _Holder(base)
        self.site = site
        self.sae = sae
        self.cfg = cfg
        self.schedule = schedule
        self.bos_id = bos_id if cfg.drop_bos else None
        self.fetch_rows = fetch_rows
        self.window = ActivationWindow(schedule.window, schedule.seed)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        """Training steps begun (1-based during a step)."""
        self.register_buffer("window_items", torch.full((schedule.window, schedule.slots, 2), -1, dtype=torch.int64))
        """(dataset, row) of every slot of the last W steps, at index step % W: what a resume recomputes."""
        self.register_buffer("fire_counts", torch.zeros(sae.d_sae, dtype=torch.int64))
        """Training tokens on which each feature fired (the exported feature density)."""
        self.register_buffer("train_tokens", torch.zeros((), dtype=torch.int64))
        """Training tokens the SAE has seen."""
        self._pending: tuple[torch.Tensor, int] | None = None
        self._decoder_hooks = DecoderNormHooks(sae) if normalizes_decoder(cfg) else None
        # Loaded counters (a resume, a rollback) make every cached activation stale.
        self.register_load_state_dict_post_hook(lambda module, _keys: module.window.clear())

    @property
    def base(self) -> nn.Module:
        return self._base.base

    @property
    def config(self):
        """The base model's config (what the engine reports about the model it runs)."""
        return self.base.config

    def _apply(self, fn, recurse=True):
        # .to(device) / .half() on the module reach the hidden base too.
        self._base.base._apply(fn, recurse)
        return super()._apply(fn, recurse)

    # -------------------------------------------------------------- steps
    def begin_step(self, items: Sequence[tuple[int, int]]) -> None:
        """The next training step starts with these rows (this process's shard, in slot order)."""
        self.commit_pending()
        self.step += 1
        step = int(self.step)
        ring = self.window_items[step % self.schedule.window]
        ring.fill_(-1)
        if items:
            ring[: len(items)] = torch.tensor([[int(d), int(r)] for d, r in items], dtype=torch.int64)
        self.window.drop_before(step - self.schedule.window + 1)

    @torch.no_grad()
    def commit_pending(self) -> None:
        """Apply the finished step's firing to the dead-feature clock (held back so an OOM retry counts once)."""
        if self._pending is not None:
            fired, tokens = self._pending
            self.sae.record_firing(fired > 0, tokens)
            self.fire_counts += fired.to(self.fire_counts.device)
            self.train_tokens += tokens
            self._pending = None

    def l1_coefficient(self) -> float:
        warmup = self.cfg.l1_warmup_fraction * self.schedule.total_steps
        ramp = min(1.0, int(self.step) / warmup) if warmup > 0 else 1.0
        return self.cfg.l1_coefficient * ramp

    # -------------------------------------------------------------- forward
    def raw_activations(self, rows: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Kept (non-pad, non-BOS) activations of each row, [n_i, d_in] each, in float32."""
        device = self.sae.W_enc.device
        ids = rows["input_ids"].to(device)
        acts = site_activations(self.base, self.site, {"input_ids": ids, "position_ids": rows["position_ids"].to(device)})
        keep = kept_positions(ids, rows["lengths"], self.bos_id)
        acts = acts.float()
        return [acts[i][keep[i]] for i in range(acts.size(0))]

    def _fill(self, step: int, slots: list[int]) -> None:
        """Recompute missing window entries of earlier steps (only after a resume) in the original grouping."""
        for j in sorted({j for slot in slots for j in self.window.missing(step, slot) if j != step}):
            items = self.window_items[j % self.schedule.window][slots].tolist()
            rows = self.fetch_rows([tuple(item) for item in items])
            for slot, acts in zip(slots, self.raw_activations(rows), strict=True):
                self.window.put(j, slot, acts)

    def _init_from_step(self, step: int, group: int) -> None:
        """b_dec and the input scale from all of the first step's rows (SAELens estimates them from a first fill)."""
        items = [tuple(i) for i in self.window_items[step % self.schedule.window].tolist() if i[0] >= 0]
        parts = []
        for start in range(0, len(items), group):
            parts += self.raw_activations(self.fetch_rows(items[start : start + group]))
        self.sae.init_from_data(torch.cat(parts), normalize=self.cfg.normalize_activations == "expected_norm")

    def forward(self, rows: dict[str, torch.Tensor]):
        """(loss terms, target count) for these rows' slots at the current step; ``rows`` as the task collates them."""
        step = int(self.step)
        slots = rows["slot"].tolist()
        own = self.raw_activations(rows)
        for s, acts in zip(slots, own, strict=True):
            self.window.put(step, s, acts)
        if not bool(self.sae.initialized):
            self._init_from_step(step, len(slots))
        self._fill(step, slots)
        batches = [self.window.batch(step, s) for s in slots]
        x_raw = torch.cat(batches)
        # Each slot's tokens stand for its own row: weight n_i / |S_i| with the row's target count n_i
        # (what the engine divides by) keeps the step's loss a per-token mean whatever the micro-batching.
        counts = rows["n_targets"].to(device=x_raw.device, dtype=torch.float32)
        sizes = torch.tensor([b.size(0) for b in batches], device=x_raw.device)
        weights = torch.repeat_interleave(counts / sizes.clamp_min(1), sizes)
        x = self.sae.scale(x_raw)
        out = self.sae(x)
        dead = self.sae.dead_mask(self.cfg.dead_feature_window_tokens)
        loss = self.sae.loss(
            x,
            out,
            l1_coefficient=self.l1_coefficient(),
            aux_k_coefficient=self.cfg.aux_k_coefficient,
            dead=dead,
            weights=weights,
        )
        self._note_firing(out.acts, first_slot=0 in slots)
        return loss, int(counts.sum())

    @torch.no_grad()
    def _note_firing(self, acts: torch.Tensor, first_slot: bool) -> None:
        fired = (acts != 0).sum(dim=0).to(torch.int64)
        if first_slot or self._pending is None:  # slot 0 starts the step's first (or a retried) pass
            self._pending = (fired, acts.size(0))
        else:
            prev, tokens = self._pending
            self._pending = (prev + fired, tokens + acts.size(0))

    # -------------------------------------------------------------- saving
    def save_pretrained(self, directory: Path) -> None:
        """The checkpoint's weights: the SAE and its counters (the engine's full-model loader reads them back)."""
        from safetensors.torch import save_file

        self.commit_pending()
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(Path(directory) / WEIGHTS_FILE))

    def release(self) -> None:
        """Drop the base and the buffer (end of a run)."""
        self.window.clear()
        self._base.base = None
        if self._decoder_hooks is not None:
            self._decoder_hooks.remove()
