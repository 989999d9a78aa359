"""Peak training memory of one device, estimated from architecture facts before anything loads.

The estimate follows what the engine actually does (engine/model.py, engine/step.py):
CUDA runs under autocast (bf16, else fp16) with frozen LoRA bases loaded in bf16, full
fine-tuning keeps fp32 master weights, the CPU runs in fp32, peft keeps adapters in fp32,
4-bit loading (bitsandbytes NF4, double quantization) upcasts every non-quantized tensor
to fp32 (``prepare_model_for_kbit_training``), and the loss upcasts the logits to fp32 one
chunk of positions at a time, keeping their gradient in the logits' dtype
(tasks/cross_entropy.py).

Activations are counted per token from the tensors autograd saves for the backward
(checked against ``torch.autograd.graph.saved_tensors_hooks`` on CPU; see
tests/integration/test_estimate_vs_measured.py). The peak is at the end of the forward,
in the loss, when every layer's saved tensors, the logits, their gradient buffer, one
chunk's fp32 scratch and (with gradient accumulation) the gradients of earlier
micro-batches are alive together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_trainer.planning.hardware import GIB as GB
from tui_trainer.planning.probe_memory import probe_bytes

if TYPE_CHECKING:
    from tui_trainer.config.schema import RunConfig
    from tui_trainer.planning.hardware import Hardware
    from tui_trainer.planning.presets import ModelFacts
    from tui_trainer.tasks.base import ProbeMemory

NF4_BITS_PER_PARAM = 4 + 8 / 64 + 32 / (64 * 256)
"""NF4 with double quantization: 4-bit codes, an 8-bit absmax per 64 weights, an fp32 scale per 256 absmax."""
FP32_BYTES = 4
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CUDA_CONTEXT_BYTES = GB // 2
"""CUDA context, kernels and cuBLAS workspace with lazy module loading: about half a GB, outside PyTorch's allocator."""
CPU_PROCESS_BYTES = GB // 2
"""Python with torch, transformers, peft and datasets imported (measured at about 460 MB resident)."""
ALLOCATOR_SLACK = 0.10
"""Caching-allocator fragmentation: memory reserved beyond the tensors that are alive, as a share of them."""


@dataclass(frozen=True)
class TrainingShape:
    """Everything about a run that changes its memory, resolved the way the engine resolves it."""

    micro_batch: int
    """Rows per forward pass."""
    seq_len: int
    """Tokens per row."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (gradients persist between them)."""
    lora: bool = True
    """Train a LoRA adapter (else every weight is trained)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_dropout: float = 0.05
    """LoRA dropout (a dropout mask per adapted module when above 0)."""
    target_modules: tuple[str, ...] | None = None
    """Adapted module names; None = all linear layers of each block."""
    weight_dtype: str = "bfloat16"
    """dtype the weights are loaded in (float32, bfloat16, float16)."""
    load_in_4bit: bool = False
    """Linear layers of each block stored as NF4."""
    autocast: bool = True
    """Mixed precision: matmuls in 16 bits (CUDA); False computes in the weight dtype (the CPU's fp32)."""
    gradient_checkpointing: bool = False
    """Keep only each block's input and recompute the block in the backward."""
    device: str = "cuda"
    """``cuda`` or ``cpu`` (framework overhead and optimizer kernels differ)."""
    head: str = "lm"
    """The task's output head (tasks.base.LossMemory.head): ``lm`` has logits over the vocabulary at every position."""
    loss_chunk: int = 1024
    """Positions whose fp32 loss scratch is alive at once (tasks.base.LossMemory.chunk_positions; 0 = all)."""
    probe: ProbeMemory | None = None
    """The task trains a probe on the frozen base instead of the model (tasks.base.LossMemory.probe; sae)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per part at the peak of a training step on one device; ``total`` is what must fit."""

    weights: int
    """Model weights as loaded (frozen base for LoRA, fp32 master weights for full training)."""
    lora: int
    """LoRA adapter weights (fp32); 0 for full training."""
    gradients: int
    """One gradient per trainable parameter (all alive at the optimizer step)."""
    gradients_at_peak: int
    """The part of the gradients alive at the activation peak: all with accumulation, else the head's."""
    optimizer: int
    """AdamW's two moment buffers per trainable parameter."""
    activations: int
    """Tensors the decoder blocks save for the backward (one block's worth plus block inputs with checkpointing)."""
    logits: int
    """Logits, their gradient buffer (same dtype) and one chunk's fp32 cross-entropy scratch, in the loss."""
    weight_copies: int
    """16-bit copies of weights made for the forward (autocast casts, 4-bit dequantization, the fp32 head)."""
    update_temporaries: int
    """Scratch memory of the optimizer step (CPU foreach AdamW); it does not coincide with activations."""
    overhead: int
    """Framework memory outside the tensors: CUDA context or the Python process, plus allocator slack."""
    shape: TrainingShape
    """What was estimated."""
    total_params: int
    """Parameters of the model."""
    trainable_params: int
    """Parameters the optimizer updates."""
    vocab: int
    """Vocabulary size (explains the logits part)."""
    buffer: int = 0
    """Activations kept between steps (the sae task's shuffle window); 0 for other tasks."""

    @property
    def step_peak(self) -> int:
        """Memory on top of weights and optimizer states at the worst moment: backward start or optimizer step."""
        backward = self.activations + self.logits + self.weight_copies + self.gradients_at_peak
        return max(backward, self.gradients + self.update_temporaries)

    @property
    def tensor_bytes(self) -> int:
        """Everything PyTorch allocates at the peak (what torch.cuda.max_memory_allocated measures)."""
        return self.weights + self.lora + self.optimizer + self.buffer + self.step_peak

    @property
    def total(self) -> int:
        return self.tensor_bytes + self.overhead

    def format(self) -> str:
        """A breakdown table for the terminal."""
        s = self.shape
        if s.probe is not None:
            return self._format_probe()
        weights_how = "4-bit NF4 linears, fp32 rest" if s.load_in_4bit else s.weight_dtype
        head = (
            f"Memory estimate: micro-batch {s.micro_batch} x {s.seq_len} tokens, {weights_how} weights, "
            f"gradient checkpointing {'on' if s.gradient_checkpointing else 'off'}, {s.device}"
        )
        rows = [
            ("weights", self.weights, f"{_count(self.total_params)} parameters"),
            ("LoRA adapter", self.lora, f"{_count(self.trainable_params)} trainable (fp32)" if s.lora else ""),
            ("gradients", self.gradients, f"{_count(self.trainable_params)} trainable parameters"),
            ("optimizer states", self.optimizer, "AdamW, 2 per trainable parameter"),
            ("activations", self.activations, "saved for the backward"),
            ("logits and loss", self.logits, f"vocabulary {self.vocab} x {s.micro_batch * s.seq_len} tokens"),
            ("weight copies", self.weight_copies, "16-bit casts for the forward"),
            ("optimizer step", self.update_temporaries, "scratch, not at the same time as activations"),
            ("framework", self.overhead, "CUDA context + allocator slack" if s.device == "cuda" else "process + slack"),
        ]
        lines = [head]
        for label, value, note in rows:
            if value == 0 and label in ("LoRA adapter", "weight copies", "optimizer step"):
                continue
            lines.append(f"  {label:<18}{value / GB:>9.2f} GB  {note}".rstrip())
        overlap = sum(value for _, value, _ in rows) - self.total
        why = " (parts that are never alive at the same time are counted once)" if overlap > 0 else ""
        lines.append(f"  {'total':<18}{self.total / GB:>9.2f} GB{why}")
        return "\n".join(lines)


    def _format_probe(self) -> str:
        s = self.shape
        layers = s.probe.layers_run
        # Every layer is loaded; only the forward stops early (compute, not memory).
        stop = f"; the forward stops after layer {layers - 1}" if layers else ""
        head = (
            f"Memory estimate (sae): micro-batch {s.micro_batch} x {s.seq_len} tokens, frozen base in "
            f"{s.weight_dtype}, SAE in fp32, {s.device}"
        )
        rows = [
            ("base weights", self.weights, f"{_count(self.total_params)} parameters, frozen, no gradients{stop}"),
            ("SAE", self.lora, f"{_count(self.trainable_params)} parameters (fp32)"),
            ("gradients", self.gradients, "one per SAE parameter"),
            ("optimizer states", self.optimizer, "Adam, 2 per SAE parameter"),
            ("activation buffer", self.buffer, f"{s.probe.buffer_tokens} tokens x d_in, fp32"),
            ("step peak", self.step_peak, "largest of the SAE step, the base forward and an eval's logits"),
            ("framework", self.overhead, "CUDA context + allocator slack" if s.device == "cuda" else "process + slack"),
        ]
        lines = [head, *(f"  {label:<18}{value / GB:>9.2f} GB  {note}" for label, value, note in rows)]
        lines.append(f"  {'total':<18}{self.total / GB:>9.2f} GB")
        return "\n".join(lines)


def _count(n: int) -> str:
    from tui_trainer.planning.presets import params_label

    return params_label(n)


def lora_params(facts: ModelFacts, r: int, target_modules: tuple[str, ...] | None) -> int:
    """Adapter parameters: r x (in + out) for every adapted linear layer of every block."""
    shapes = facts.linear_shapes()
    names = shapes if target_modules is None else [m for m in target_modules if m in shapes]
    return facts.layers * sum(r * (shapes[m][0] + shapes[m][1]) for m in names)


_INPUT_GROUPS = {
    "q_proj": "attn_in", "k_proj": "attn_in", "v_proj": "attn_in", "qkv_proj": "attn_in",
    "o_proj": "attn_out", "gate_proj": "mlp_in", "up_proj": "mlp_in", "gate_up_proj": "mlp_in",
    "down_proj": "down_in",
}  # fmt: skip


def _block_bytes_per_token(facts: ModelFacts, shape: TrainingShape, act: int, weight: int) -> int:
    """Bytes one decoder block saves for its backward, per token.

    ``act`` is the matmul output width (16 bits under autocast). 4-bit linears hand their
    output back in the input's dtype, fp32 after prepare_model_for_kbit_training, so the
    SwiGLU tensors are fp32 there; autocast does not cover silu and multiplication.
    """
    h, inter, q, kv = facts.hidden, facts.intermediate, facts.q_dim, facts.kv_dim
    mlp = FP32_BYTES if shape.load_in_4bit else act
    total = 2 * FP32_BYTES * h  # each RMSNorm keeps the fp32 copy of its input that it squares
    total += act * (2 * q + 2 * kv)  # SDPA keeps q, k, v and its output (no seq x seq matrix)
    total += mlp * 3 * inter  # SwiGLU keeps gate, silu(gate) and up
    if not shape.lora:
        total += 2 * FP32_BYTES * h  # trainable norm weights keep the normalized input
        if shape.autocast:
            casts = 2 if facts.fused_projections else 5  # q,k,v,gate,up each cast the fp32 input separately
            total += act * h * casts
        else:
            total += 2 * weight * h  # normalized outputs, shared by q/k/v and by gate/up
        total += act * inter  # down_proj input
        return total
    shapes = facts.linear_shapes()
    targets = [m for m in (shape.target_modules or tuple(shapes)) if m in shapes]
    # CUDA dropout keeps a bool mask; the CPU keeps its scaled noise tensor in the adapter's fp32.
    mask = (1 if shape.device == "cuda" else FP32_BYTES) if shape.lora_dropout > 0 else 0
    if shape.autocast:
        for module in targets:
            n_in = shapes[module][0]
            # peft casts x to fp32, autocast casts it back to 16 bits for lora_A: a copy per module.
            total += act * n_in + act * shape.lora_r + mask * n_in
    elif shape.lora_dropout > 0:
        for module in targets:
            # dropout keeps its mask, lora_A its dropped-out fp32 input.
            total += (mask + FP32_BYTES) * shapes[module][0] + FP32_BYTES * shape.lora_r
    else:
        groups = {_INPUT_GROUPS.get(m, m): shapes[m][0] for m in targets}
        groups.pop("attn_out", None)  # o_proj's input is the SDPA output, already kept
        per_module_copy = weight != FP32_BYTES  # a 16-bit input is cast to fp32 once per module
        inputs = sum(shapes[m][0] for m in targets) if per_module_copy else sum(groups.values())
        total += FP32_BYTES * inputs + FP32_BYTES * shape.lora_r * len(targets)
    return total


def _loss_bytes(vocab: int, act: int, tokens: int, shape: TrainingShape) -> int:
    """The loss's peak: logits and their gradient buffer, plus one chunk's fp32 scratch.

    fp32 logits need only logsumexp's temporary; 16-bit ones also an fp32 copy of the chunk.
    """
    if shape.head != "lm":
        return 0
    chunk = min(tokens, shape.loss_chunk) if shape.loss_chunk else tokens
    scratch = (1 if act == FP32_BYTES else 2) * FP32_BYTES * vocab * chunk
    return 2 * act * vocab * tokens + scratch


def estimate_memory(facts: ModelFacts, shape: TrainingShape) -> MemoryEstimate:
    """Peak bytes of one training step on one device."""
    if shape.probe is not None:
        return _probe_estimate(facts, shape)
    weight = DTYPE_BYTES[shape.weight_dtype]
    act = 2 if shape.autocast else weight
    tokens = shape.micro_batch * shape.seq_len
    linear_in_blocks = facts.layers * facts.layer_linear_params
    if shape.load_in_4bit:
        weights = int(linear_in_blocks * NF4_BITS_PER_PARAM / 8) + (facts.params - linear_in_blocks) * FP32_BYTES
        residual = FP32_BYTES  # the upcast fp32 embedding makes the residual stream fp32
    else:
        weights = facts.params * weight
        residual = weight
    if shape.lora:
        trainable = lora_params(facts, shape.lora_r, shape.target_modules)
        trainable_bytes = FP32_BYTES
        adapter = trainable * FP32_BYTES
    else:
        trainable, trainable_bytes, adapter = facts.params, weight, 0

    block = _block_bytes_per_token(facts, shape, act, weight)
    final = FP32_BYTES * facts.hidden + (0 if shape.lora else FP32_BYTES * facts.hidden + act * facts.hidden)
    logits = _loss_bytes(facts.vocab, act, tokens, shape)
    if shape.gradient_checkpointing:
        # Block inputs only; one block is recomputed later, when the loss buffers are already freed.
        recompute = max(0, block * tokens - logits)
        activations = (facts.layers * residual * facts.hidden + final) * tokens + recompute
    else:
        activations = (facts.layers * block + final) * tokens

    copies = 0
    if shape.autocast and not shape.lora:
        copies = 2 * (linear_in_blocks + facts.vocab * facts.hidden)  # cached 16-bit casts, kept for the backward
    if shape.load_in_4bit:
        largest = max(a * b for a, b in facts.linear_shapes().values())
        copies = 2 * largest + 2 * facts.vocab * facts.hidden  # dequantized linear + the fp32 head cast to 16 bits
    grads = trainable * trainable_bytes
    # With accumulation, earlier micro-batches' gradients are alive at the activation peak; without it,
    # only the output head's gradient exists yet (full training), the rest appear as activations are freed.
    head_grad = 0 if shape.lora else facts.vocab * facts.hidden * trainable_bytes
    grads_at_peak = grads if shape.grad_accum > 1 else head_grad
    temporaries = grads if shape.device == "cpu" else 0  # CPU foreach AdamW; CUDA uses the fused kernel

    base = CUDA_CONTEXT_BYTES if shape.device == "cuda" else CPU_PROCESS_BYTES
    estimate = MemoryEstimate(
        weights=weights,
        lora=adapter,
        gradients=grads,
        gradients_at_peak=grads_at_peak,
        optimizer=2 * grads,
        activations=activations,
        logits=logits,
        weight_copies=copies,
        update_temporaries=temporaries,
        overhead=0,
        shape=shape,
        total_params=facts.params,
        trainable_params=trainable,
        vocab=facts.vocab,
    )
    # The allocator's slack grows with what PyTorch holds: tensor_bytes, the one formula for that.
    return dataclasses.replace(estimate, overhead=base + int(ALLOCATOR_SLACK * estimate.tensor_bytes))


def _probe_estimate(facts: ModelFacts, shape: TrainingShape) -> MemoryEstimate:
    """A probe on the frozen base (planning.probe_memory): the base in inference, the probe trained."""
    weight = DTYPE_BYTES[shape.weight_dtype]
    parts = probe_bytes(
        facts, shape.probe, tokens=shape.micro_batch * shape.seq_len, weight_bytes=weight,
        act_bytes=2 if shape.autocast else FP32_BYTES,
    )  # fmt: skip
    grads = parts.weights
    estimate = MemoryEstimate(
        weights=facts.params * weight,
        lora=parts.weights,
        gradients=grads,
        gradients_at_peak=grads if shape.grad_accum > 1 else 0,
        optimizer=2 * grads,
        activations=parts.peak,
        logits=0,
        weight_copies=0,
        update_temporaries=grads if shape.device == "cpu" else 0,
        overhead=0,
        shape=shape,
        total_params=facts.params,
        trainable_params=parts.params,
        vocab=facts.vocab,
        buffer=parts.buffer,
    )
    base = CUDA_CONTEXT_BYTES if shape.device == "cuda" else CPU_PROCESS_BYTES
    return dataclasses.replace(estimate, overhead=base + int(ALLOCATOR_SLACK * estimate.tensor_bytes))


def shape_from_config(cfg: RunConfig, hardware: Hardware) -> TrainingShape:
    """The shape the engine will train ``cfg`` with on ``hardware`` (mirrors engine.model.plan_precision)."""
    on_cuda = hardware.kind == "cuda"
    precision = cfg.train.precision
    if not on_cuda:
        precision = "fp32"
    elif precision == "auto":
        precision = "bf16" if hardware.bf16 else "fp16"
    if cfg.model.dtype != "auto":
        weight_dtype = cfg.model.dtype
    elif cfg.lora.enabled and precision == "bf16":
        weight_dtype = "bfloat16"
    else:
        weight_dtype = "float32"
    targets = None if cfg.lora.target_modules == "all-linear" else tuple(cfg.lora.target_modules)
    from tui_trainer.tasks.registry import task_by_name

    loss = task_by_name(cfg.run.task).memory_facts(cfg)
    if loss.probe is not None and cfg.model.dtype == "auto":
        # The frozen base of a probe is only read: bf16 where the GPU has it (tasks/sae/task.py build_model).
        weight_dtype = "bfloat16" if on_cuda and hardware.bf16 else "float32"
    return TrainingShape(
        micro_batch=cfg.train.micro_batch_size,
        seq_len=cfg.data.max_seq_len,
        grad_accum=cfg.train.grad_accum,
        lora=cfg.lora.enabled,
        lora_r=cfg.lora.r,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets,
        weight_dtype=weight_dtype,
        load_in_4bit=cfg.model.load_in_4bit and on_cuda,
        autocast=on_cuda and precision in ("bf16", "fp16"),
        gradient_checkpointing=cfg.train.gradient_checkpointing,
        device="cuda" if on_cuda else "cpu",
        head=loss.head,
        loss_chunk=loss.chunk_positions,
        probe=loss.probe,
    )


def estimate_for_config(facts: ModelFacts, cfg: RunConfig, hardware: Hardware) -> MemoryEstimate:
    return estimate_memory(facts, shape_from_config(cfg, hardware))
