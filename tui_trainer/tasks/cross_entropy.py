"""Summed cross-entropy over many positions without an fp32 copy of all the logits.

With a 152k vocabulary and 16k positions per micro-batch, upcasting every logit to fp32
for ``F.cross_entropy`` costs ~10 GB, and its saved log-softmax as much again. Here the
logits are processed ``chunk`` positions at a time: each chunk is upcast, its loss summed
and its gradient (softmax minus one-hot) written straight into a buffer of the logits'
own dtype, which is all that stays alive until the backward. The work equals the plain
version's forward plus backward, so nothing is recomputed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
CHUNK_POSITIONS = 1024
"""Positions per chunk: 1024 x 152k fp32 logits is 0.6 GB of scratch per buffer."""


def _chunk_loss(x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed loss, logsumexp per position, target mask) of one fp32 chunk."""
    valid = t != IGNORE_INDEX
    safe = t.clamp(min=0)
    lse = torch.logsumexp(x, dim=-1)
    picked = x.gather(1, safe[:, None]).squeeze(1)
    return ((lse - picked) * valid).sum(), lse, valid


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
        grad = torch.empty_like(logits)
        total = torch.zeros((), dtype=torch.float32, device=logits.device)
        for start in range(0, logits.size(0), chunk):
            x = logits[start : start + chunk].float()
            t = targets[start : start + chunk]
            loss, lse, valid = _chunk_loss(x, t)
            total += loss
            g = grad[start : start + chunk]
            if g.dtype == torch.float32:  # write in place: no fp32 scratch beyond logsumexp's
                torch.sub(x, lse[:, None], out=g).exp_()
            else:
                g.copy_(torch.sub(x, lse[:, None]).exp_())
            rows = torch.arange(len(t), device=t.device)
            g[rows, t.clamp(min=0)] -= 1
            g[~valid] = 0  # rows without a target: no gradient (cheaper than a full multiply)
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_out.to(grad.dtype)), None, None


def cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor, chunk: int = CHUNK_POSITIONS) -> torch.Tensor:
    """Summed cross-entropy of ``logits`` [N, V] against ``targets`` [N] (IGNORE_INDEX skipped), in fp32.

    Equal to ``F.cross_entropy(logits.float(), targets, ignore_index=-100, reduction="sum")`` up to the
    order of the summation; its gradient is kept in the logits' dtype.
    """
    if not (torch.is_grad_enabled() and logits.requires_grad):
        if logits.size(0) <= chunk:
            return F.cross_entropy(logits.float(), targets, ignore_index=IGNORE_INDEX, reduction="sum")
        total = torch.zeros((), dtype=torch.float32, device=logits.device)
        for start in range(0, logits.size(0), chunk):
            total += _chunk_loss(logits[start : start + chunk].float(), targets[start : start + chunk])[0]
        return total
    return _ChunkedCrossEntropy.apply(logits, targets, chunk)
