"""Memory of a probe on a frozen base (the sae task): the parts memory_estimate adds up for it.

The engine trains only the SAE; the base runs without gradients. So, per device:

- the base's weights, all layers loaded (the forward stops at the hooked layer, the
  weights above it are still in memory), in their load dtype;
- the SAE's parameters, 2 x d_in x d_sae + d_sae + d_in, fp32, with one gradient each and
  Adam's two moments;
- the activation buffer: the window's W whole steps of rows, d_in fp32 values per token
  (tasks/sae/buffer.py keeps raw fp32 activations);
- at the step, the largest of three moments that never overlap: the base's no-grad forward
  to the hooked layer (one layer's transient tensors), the SAE step (d_sae-wide tensors per
  token saved for the backward), and an eval's spliced forwards, which run the whole base
  to its logits for the CE loss score.

The SAE step's tensors per token, counted from tasks/sae/model.py and checked against the
profiler's allocation trace on CPU (tests/integration/test_sae_memory.py): d_sae-wide, the
pre-activations and the activations, two more with AuxK (the dead-feature pre-activations
masked and their activations), plus one gradient of that width alive in the backward;
d_in-wide fp32, the window batch, its scaled copy, the centred input, the reconstruction
and its error (three more with AuxK: the residual, its reconstruction and error). TopK
keeps int64 indices of its k winners (and of AuxK's d_in / 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_trainer.planning.preset_schema import ModelFacts
    from tui_trainer.tasks.base import ProbeMemory

FP32 = 4
INT64 = 8


@dataclass(frozen=True)
class ProbeBytes:
    """Bytes of each part of a probe run on one device."""

    params: int
    """SAE parameters (d_sae x d_in twice, plus both biases)."""
    weights: int
    """The SAE's fp32 weights."""
    buffer: int
    """The activation window: W steps of rows, d_in fp32 values per token."""
    step: int
    """The SAE step's tensors saved for the backward, at its start."""
    base_forward: int
    """The frozen base's no-grad forward to the hooked layer: one layer's transient tensors."""
    eval_forward: int
    """An eval's forward of the whole base: logits and one chunk's fp32 loss scratch."""

    @property
    def peak(self) -> int:
        """The worst of the three moments that never overlap."""
        return max(self.step, self.base_forward, self.eval_forward)


def probe_bytes(facts: ModelFacts, probe: ProbeMemory, *, tokens: int, weight_bytes: int, act_bytes: int) -> ProbeBytes:
    """The parts for ``tokens`` positions per micro-batch, the base in ``weight_bytes``, SAE matmuls in ``act_bytes``."""
    d = facts.hidden
    m = probe.width_factor * d
    params = 2 * d * m + m + d
    wide = (5 if probe.aux else 3) * act_bytes * m  # pre, acts (+ masked, aux acts), one gradient in the backward
    narrow = (8 if probe.aux else 5) * FP32 * d
    indices = INT64 * (probe.sparse_k + (d // 2 if probe.aux else 0))
    step = tokens * (wide + narrow + indices)
    # No grad: a layer's residual, normed input and output, q/k/v, and SwiGLU's gate, silu(gate) and up at once;
    # the hooked site's output is then copied to fp32.
    layer = 3 * d + facts.q_dim + 2 * facts.kv_dim + 3 * facts.intermediate
    base_forward = tokens * (layer * weight_bytes + FP32 * d)
    chunk = min(tokens, probe.eval_chunk_positions) if probe.eval_chunk_positions else tokens
    scratch = (1 if weight_bytes == FP32 else 2) * FP32 * facts.vocab * chunk
    eval_forward = tokens * facts.vocab * weight_bytes + scratch
    return ProbeBytes(
        params=params,
        weights=FP32 * params,
        buffer=probe.buffer_tokens * d * FP32,
        step=step,
        base_forward=base_forward,
        eval_forward=eval_forward,
    )
