"""The memory estimator: each part scales the way the engine's memory does, and the display adds up."""

from __future__ import annotations

import dataclasses

import pytest

from tui_trainer.config.schema import config_from_dict
from tui_trainer.planning.hardware import GIB, Hardware, simulated_gpu
from tui_trainer.planning.memory_estimate import (
    NF4_BITS_PER_PARAM,
    TrainingShape,
    estimate_for_config,
    estimate_memory,
    lora_params,
    shape_from_config,
)
from tui_trainer.planning.presets import get_preset

CPU = Hardware(kind="cpu", name="test CPU", total_bytes=64 * GIB, free_bytes=64 * GIB, bf16=False,
               compute_capability=None, gpu_count=0, simulated=True, cpu_cores=8, ram_bytes=64 * GIB)  # fmt: skip


def facts(family: str):
    return get_preset(family).facts


def lora_shape(**changes) -> TrainingShape:
    return dataclasses.replace(TrainingShape(micro_batch=4, seq_len=1024, grad_accum=4), **changes)


def test_weights_by_dtype():
    f = facts("qwen2.5-1.5b")
    assert estimate_memory(f, lora_shape(weight_dtype="bfloat16")).weights == f.params * 2
    assert estimate_memory(f, lora_shape(weight_dtype="float32", autocast=False, device="cpu")).weights == f.params * 4


def test_four_bit_quantizes_only_the_block_linears():
    f = facts("mistral-7b")
    est = estimate_memory(f, lora_shape(load_in_4bit=True))
    linear = f.layers * f.layer_linear_params
    rest = f.params - linear  # embeddings, head and norms, upcast to fp32 by prepare_model_for_kbit_training
    assert est.weights == pytest.approx(linear * NF4_BITS_PER_PARAM / 8 + rest * 4, rel=1e-6)
    assert est.weights < 0.35 * estimate_memory(f, lora_shape()).weights
    # The head is fp32 and is cast to bf16 for every forward.
    assert est.weight_copies >= 2 * f.vocab * f.hidden


def test_lora_training_state_is_fp32_adam_on_the_adapter_only():
    f = facts("llama-3.2-3b")
    est = estimate_memory(f, lora_shape(lora_r=32))
    adapter = lora_params(f, 32, None)
    assert est.trainable_params == adapter
    assert (est.lora, est.gradients, est.optimizer) == (4 * adapter, 4 * adapter, 8 * adapter)


def test_lora_params_by_target_modules():
    f = facts("tinyllama-1.1b")
    h, kv = f.hidden, f.kv_dim
    assert lora_params(f, 8, ("q_proj", "v_proj")) == f.layers * 8 * ((h + h) + (h + kv))
    assert lora_params(f, 8, None) == lora_params(f, 8, get_preset("tinyllama-1.1b").target_modules)
    assert lora_params(f, 16, None) == 2 * lora_params(f, 8, None)


def test_full_training_keeps_fp32_weights_gradients_and_adam():
    f = facts("demo-tiny")
    est = estimate_memory(f, TrainingShape(micro_batch=8, seq_len=256, lora=False, weight_dtype="float32",
                                           autocast=False, device="cpu"))  # fmt: skip
    assert est.trainable_params == f.params
    assert (est.weights, est.gradients, est.optimizer, est.lora) == (4 * f.params, 4 * f.params, 8 * f.params, 0)


def test_activations_and_logits_grow_linearly_with_tokens():
    f = facts("qwen2.5-0.5b")
    one = estimate_memory(f, lora_shape(micro_batch=1))
    four = estimate_memory(f, lora_shape(micro_batch=4))
    longer = estimate_memory(f, lora_shape(micro_batch=1, seq_len=4096))
    assert four.activations == 4 * one.activations and longer.activations == 4 * one.activations
    # Logits and their gradient grow with the tokens; the chunked loss's fp32 scratch does not.
    per_token = 2 * 2 * f.vocab  # bf16 logits + bf16 gradient buffer
    assert four.logits - one.logits == 3 * 1024 * per_token and longer.logits == four.logits
    unchunked = estimate_memory(f, lora_shape(micro_batch=4, loss_chunk=0))
    assert unchunked.logits == 4 * estimate_memory(f, lora_shape(micro_batch=1, loss_chunk=0)).logits
    assert four.weights == one.weights and four.optimizer == one.optimizer


def test_chunked_loss_on_a_large_vocabulary():
    """Qwen's 152k vocabulary: bf16 logits and their bf16 gradient, plus the fp32 scratch of 1024
    positions (not of all 4096): under half of what an fp32 copy of every logit cost."""
    vocab = facts("qwen2.5-0.5b").vocab
    est = estimate_memory(facts("qwen2.5-0.5b"), lora_shape())
    tokens = 4 * 1024
    assert est.logits < tokens * vocab * (2 + 3 * 4) / 2
    assert est.logits == tokens * vocab * 2 * 2 + 1024 * vocab * 2 * 4


def test_gradient_checkpointing_keeps_only_block_inputs():
    f = facts("llama-3.2-1b")
    plain = estimate_memory(f, lora_shape())
    checkpointed = estimate_memory(f, lora_shape(gradient_checkpointing=True))
    assert checkpointed.activations < plain.activations / 5
    assert checkpointed.logits == plain.logits  # the loss is not checkpointed
    # What stays: one bf16 hidden state per block and token.
    assert checkpointed.activations >= f.layers * f.hidden * 2 * 4 * 1024


def test_lora_dropout_costs_a_mask_per_adapted_input():
    f = facts("phi-3-mini")
    with_dropout = estimate_memory(f, lora_shape(lora_dropout=0.1))
    without = estimate_memory(f, lora_shape(lora_dropout=0.0))
    inputs = sum(f.linear_shapes()[m][0] for m in f.linear_shapes())
    assert with_dropout.activations - without.activations == f.layers * inputs * 4 * 1024  # 1-byte masks


def test_gradients_of_earlier_micro_batches_count_only_with_accumulation():
    f = facts("demo-tiny")
    shape = TrainingShape(micro_batch=8, seq_len=256, lora=False, weight_dtype="float32", autocast=False, device="cpu")
    single = estimate_memory(f, shape)
    accumulating = estimate_memory(f, dataclasses.replace(shape, grad_accum=2))
    assert accumulating.gradients_at_peak == accumulating.gradients
    assert single.gradients_at_peak == f.vocab * f.hidden * 4  # only the (tied) head's gradient exists yet
    assert accumulating.tensor_bytes - single.tensor_bytes == single.gradients - single.gradients_at_peak


def test_framework_overhead_is_separate_from_tensors():
    est = estimate_memory(facts("qwen2.5-1.5b"), lora_shape())
    assert est.total == est.tensor_bytes + est.overhead
    assert est.overhead > GIB // 2  # CUDA context plus allocator slack
    cpu = estimate_memory(facts("qwen2.5-1.5b"), lora_shape(weight_dtype="float32", autocast=False, device="cpu"))
    assert cpu.update_temporaries == cpu.gradients and est.update_temporaries == 0  # fused AdamW on CUDA


def test_format_shows_every_part_and_the_total():
    est = estimate_memory(facts("mistral-7b"), lora_shape(load_in_4bit=True, gradient_checkpointing=True))
    text = est.format()
    for label in ("weights", "LoRA adapter", "gradients", "optimizer states", "activations", "logits and loss",
                  "weight copies", "framework", "total"):  # fmt: skip
        assert label in text
    assert "4-bit" in text and "gradient checkpointing on" in text and "micro-batch 4 x 1024" in text
    assert f"{est.total / GIB:.2f} GB" in text
    assert f"{est.weights / GIB:.2f} GB" in text


def _config(**sections):
    raw = {"model": {"name_or_path": "x/y"}, "train": {"micro_batch_size": 2, "grad_accum": 8}, "data": {"max_seq_len": 1024}}
    for key, values in sections.items():
        raw.setdefault(key, {}).update(values)
    return config_from_dict(raw)


def test_shape_from_config_resolves_like_the_engine_on_cpu():
    import torch

    from tui_trainer.engine.model import plan_precision

    cfg = _config(model={"load_in_4bit": True}, train={"precision": "auto", "gradient_checkpointing": True})
    shape = shape_from_config(cfg, CPU)
    plan = plan_precision(_config(train={"precision": "auto"}), torch.device("cpu"))
    assert plan.load_dtype == torch.float32 and shape.weight_dtype == "float32"
    assert plan.precision == "fp32" and not shape.autocast
    assert not shape.load_in_4bit  # 4-bit is CUDA-only
    assert (shape.micro_batch, shape.grad_accum, shape.seq_len, shape.device) == (2, 8, 1024, "cpu")
    assert shape.gradient_checkpointing


@pytest.mark.parametrize(("lora", "bf16", "dtype"), [(True, True, "bfloat16"), (False, True, "float32"),
                                                     (True, False, "float32")])  # fmt: skip
def test_shape_from_config_auto_dtype_on_cuda(lora, bf16, dtype):
    cfg = _config(lora={"enabled": lora})
    shape = shape_from_config(cfg, simulated_gpu(24, bf16=bf16))
    assert shape.weight_dtype == dtype and shape.autocast and shape.device == "cuda"


def test_estimate_for_config_uses_the_config():
    f = facts("qwen2.5-0.5b")
    cfg = _config(lora={"r": 8, "target_modules": ["q_proj", "v_proj"]})
    est = estimate_for_config(f, cfg, simulated_gpu(24))
    assert est.trainable_params == lora_params(f, 8, ("q_proj", "v_proj"))
    assert est.shape.micro_batch == 2
