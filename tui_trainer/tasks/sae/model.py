"""The sparse autoencoder: TopK (+ AuxK on dead features) or standard (ReLU + decoder-norm-scaled L1).

Shapes and formulas follow SAELens v6 so that the exported files load there unchanged:
``acts = act((x - b_dec) @ W_enc + b_enc)``, ``x_hat = acts @ W_dec + b_dec``, with
``W_enc`` [d_in, d_sae] and ``W_dec`` [d_sae, d_in]. During training the inputs are
scaled by ``input_scale`` (``expected_norm``); :meth:`folded_weights` moves that scale into
the weights so the saved SAE works on raw activations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SaeForward:
    """One SAE pass over a batch of (already scaled) activations."""

    pre: torch.Tensor
    """Pre-activations (x - b_dec) @ W_enc + b_enc, [tokens, d_sae]."""
    acts: torch.Tensor
    """Feature activations after TopK/ReLU, [tokens, d_sae]."""
    recon: torch.Tensor
    """Reconstruction acts @ W_dec + b_dec, [tokens, d_in]."""


@dataclass(frozen=True)
class SaeLoss:
    """The per-token loss terms, each summed over the batch's tokens (the engine divides by the count)."""

    total: torch.Tensor
    """mse + sparsity + aux: what is backpropagated."""
    mse: torch.Tensor
    """Squared reconstruction error summed over dimensions and tokens (SAELens' mse_loss x tokens)."""
    sparsity: torch.Tensor
    """standard: the L1 penalty (coefficient applied); topk: 0."""
    aux: torch.Tensor
    """topk: the AuxK loss (coefficient applied); standard: 0."""


def topk_relu(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep each row's k largest pre-activations, ReLU them, zero the rest (SAELens' TopK)."""
    top = pre.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, top.indices, top.values.relu())


class SparseAutoencoder(nn.Module):
    def __init__(self, d_in: int, d_sae: int, architecture: str, k: int, *, generator: torch.Generator | None = None):
        super().__init__()
        if architecture not in ("topk", "standard"):
            raise ValueError(f"unknown SAE architecture {architecture!r}")
        self.d_in, self.d_sae, self.architecture, self.k = d_in, d_sae, architecture, k
        w_dec = torch.empty(d_sae, d_in)
        bound = math.sqrt(6.0 / d_in)  # kaiming_uniform_ on a [d_sae, d_in] matrix, drawn from our generator
        w_dec.uniform_(-bound, bound, generator=generator)
        # Unit-norm decoder rows at init (Gao et al.), and the encoder tied to it at init only.
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        self.W_enc = nn.Parameter(w_dec.T.clone().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("input_scale", torch.ones((), dtype=torch.float64))
        """Multiplies raw activations during training (expected_norm); 1 until :meth:`init_from_data`."""
        self.register_buffer("tokens_since_fired", torch.zeros(d_sae, dtype=torch.int64))
        """Training tokens since each feature last had a nonzero activation (the dead-feature clock)."""
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        """Whether b_dec and input_scale have been set from the first activations (saved, so a resume keeps them)."""

    @torch.no_grad()
    def init_from_data(self, raw: torch.Tensor, normalize: bool) -> None:
        """Set input_scale so E||x|| = sqrt(d_in) (when ``normalize``) and b_dec to the scaled data mean."""
        raw = raw.double()
        if normalize:
            self.input_scale.fill_(math.sqrt(self.d_in) / float(raw.norm(dim=1).mean().clamp_min(1e-12)))
        self.b_dec.copy_((raw * self.input_scale).mean(dim=0).to(self.b_dec.dtype))
        self.initialized.fill_(True)

    def scale(self, raw: torch.Tensor) -> torch.Tensor:
        return raw * self.input_scale.to(raw.dtype)

    def forward(self, x: torch.Tensor) -> SaeForward:
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        acts = topk_relu(pre, self.k) if self.architecture == "topk" else pre.relu()
        return SaeForward(pre, acts, acts @ self.W_dec + self.b_dec)

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Drop the part of each decoder row's gradient along the row (sparsify's
        remove_gradient_parallel_to_decoder_directions): with unit rows, that part only
        changes the row's norm, which the renormalisation after the step undoes anyway, and
        leaving it in Adam's moments would distort the tangent update."""
        grad = self.W_dec.grad
        if grad is None:
            return
        rows = self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp_min(torch.finfo(self.W_dec.dtype).eps)
        grad -= (grad * rows).sum(dim=1, keepdim=True) * rows

    @torch.no_grad()
    def normalize_decoder_rows(self) -> None:
        """Every decoder row back to unit norm (sparsify's set_decoder_norm_to_unit_norm)."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(torch.finfo(self.W_dec.dtype).eps)

    def dead_mask(self, window_tokens: int) -> torch.Tensor:
        return self.tokens_since_fired >= window_tokens

    @torch.no_grad()
    def record_firing(self, fired: torch.Tensor, tokens: int) -> None:
        """Advance the dead-feature clock by ``tokens`` and reset it for features in ``fired`` (bool [d_sae])."""
        self.tokens_since_fired += tokens
        self.tokens_since_fired[fired] = 0

    def loss(
        self,
        x: torch.Tensor,
        out: SaeForward,
        *,
        l1_coefficient: float,
        aux_k_coefficient: float,
        dead: torch.Tensor | None,
        weights: torch.Tensor | None = None,
    ) -> SaeLoss:
        """Each term per token, then summed over tokens (weighted by ``weights`` when given)."""

        def total(per_token: torch.Tensor) -> torch.Tensor:
            return per_token.sum() if weights is None else (per_token * weights).sum()

        mse = total((out.recon - x).pow(2).sum(dim=-1))
        zero = mse.new_zeros(())
        if self.architecture == "standard":
            sparsity = l1_coefficient * total((out.acts * self.W_dec.norm(dim=1)).sum(dim=-1))
            return SaeLoss(mse + sparsity, mse, sparsity, zero)
        aux = aux_k_coefficient * total(self.auxk_per_token(x, out, dead)) if aux_k_coefficient else zero
        return SaeLoss(mse + aux, mse, zero, aux)

    def auxk_sum(self, x: torch.Tensor, out: SaeForward, dead: torch.Tensor | None) -> torch.Tensor:
        return self.auxk_per_token(x, out, dead).sum()

    def auxk_per_token(self, x: torch.Tensor, out: SaeForward, dead: torch.Tensor | None) -> torch.Tensor:
        """AuxK (Gao et al. B.1, as SAELens/sparsify): the top dead latents reconstruct the live ones' residual.

        The dead latents' reconstruction carries no b_dec: the residual x - x_hat already
        has it, as in EleutherAI/sparsify.
        """
        n_dead = int(dead.sum()) if dead is not None else 0
        if n_dead == 0:
            return out.recon.new_zeros(out.recon.size(0))
        k_aux = self.d_in // 2
        scale = min(n_dead / k_aux, 1.0)
        residual = (x - out.recon).detach()
        masked = torch.where(dead[None], out.pre, -torch.inf)
        top = masked.topk(min(k_aux, n_dead), dim=-1, sorted=False)
        aux_acts = torch.zeros_like(out.pre).scatter_(-1, top.indices, top.values.relu())
        return scale * (aux_acts @ self.W_dec - residual).pow(2).sum(dim=-1)

    @torch.no_grad()
    def folded_weights(self) -> dict[str, torch.Tensor]:
        """W_enc, b_enc, W_dec, b_dec for raw activations: the input scale s folded in.

        Trained on x' = s x: pre = (s x - b) W + c = (x - b/s)(s W) + c, and x_hat = x_hat' / s
        = acts (W_dec / s) + b_dec / s (SAELens' fold_activation_norm_scaling_factor).
        """
        s = float(self.input_scale)
        return {
            "W_enc": (self.W_enc * s).contiguous(),
            "b_enc": self.b_enc.clone(),
            "W_dec": (self.W_dec / s).contiguous(),
            "b_dec": (self.b_dec / s).contiguous(),
        }
