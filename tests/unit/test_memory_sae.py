"""The memory estimate of the sae task, part by part, on shapes small enough to count by hand."""

from __future__ import annotations

import pytest

from tui_trainer.config.schema import config_from_dict
from tui_trainer.planning.hardware import Hardware, simulated_gpu
from tui_trainer.planning.memory_estimate import estimate_for_config, shape_from_config
from tui_trainer.planning.presets import ModelFacts
from tui_trainer.planning.probe_memory import probe_bytes
from tui_trainer.tasks.base import ProbeMemory

CPU = Hardware(kind="cpu", name="test CPU", total_bytes=8 * 1024**3, free_bytes=8 * 1024**3, bf16=False,
               compute_capability=None, gpu_count=0, simulated=True, cpu_cores=2, ram_bytes=8 * 1024**3)  # fmt: skip

# hidden 16, intermediate 32, vocab 64, 2 layers: 2 x (4 x 16 x 16 + 3 x 16 x 32 + 2 x 16) + 64 x 16 + 16 = 6224.
FACTS = ModelFacts(hub_id="t", model_type="llama", params=6224, layers=2, hidden=16, intermediate=32, vocab=64,
                   heads=4, kv_heads=4, max_position_embeddings=64, tie_word_embeddings=True)  # fmt: skip


def _sae_config(**sae):
    raw = {
        "run": {"task": "sae"},
        "model": {"name_or_path": "x/y"},
        "train": {"micro_batch_size": 2, "grad_accum": 1},
        "data": {"max_seq_len": 8},
        "sae": {"layer": 0, "expansion_factor": 4, "k": 4, "buffer_tokens": 40, **sae},
    }
    return config_from_dict(raw)


def test_the_task_states_its_probe_from_the_config():
    probe = shape_from_config(_sae_config(), CPU).probe
    # W = ceil(40 / (2 rows x 8 tokens)) = 3 whole steps of rows.
    assert probe == ProbeMemory(layers_run=1, width_factor=4, buffer_tokens=48, sparse_k=4, aux=True, eval_chunk_positions=1024)
    standard = shape_from_config(_sae_config(architecture="standard"), CPU).probe
    assert (standard.sparse_k, standard.aux) == (0, False)
    assert shape_from_config(_sae_config(hook_module="model.norm"), CPU).probe.layers_run is None


def test_sae_parameters_adam_and_buffer_by_hand():
    est = estimate_for_config(FACTS, _sae_config(), CPU)
    params = 2 * 16 * 64 + 64 + 16  # W_enc, W_dec, b_enc, b_dec
    assert est.trainable_params == params == 2128
    assert est.lora == 4 * params  # fp32
    assert est.gradients == 4 * params and est.optimizer == 8 * params
    assert est.buffer == 48 * 16 * 4  # tokens x d_in x fp32
    assert est.weights == FACTS.params * 4  # the whole base is loaded, in fp32 on the CPU
    assert est.logits == 0 and est.weight_copies == 0


def test_the_step_part_by_hand():
    probe = ProbeMemory(layers_run=1, width_factor=4, buffer_tokens=0, sparse_k=4, aux=True, eval_chunk_positions=1024)
    parts = probe_bytes(FACTS, probe, tokens=10, weight_bytes=4, act_bytes=4)
    # per token: 5 d_sae-wide fp32 (pre, acts, masked, aux acts, a gradient), 8 d_in-wide fp32, int64 indices of k + d_in/2.
    assert parts.step == 10 * (5 * 4 * 64 + 8 * 4 * 16 + 8 * (4 + 8))
    dense = probe_bytes(FACTS, ProbeMemory(1, 4, 0, 0, False, 1024), tokens=10, weight_bytes=4, act_bytes=4)
    assert dense.step == 10 * (3 * 4 * 64 + 5 * 4 * 16)
    # The base's no-grad layer (3 d + q + 2 kv + 3 inter, in its dtype) and the fp32 copy of the site's output.
    assert parts.base_forward == 10 * ((3 * 16 + 16 + 32 + 96) * 4 + 4 * 16)
    # An eval's logits over the vocabulary and the fp32 scratch of one chunk (all 10 positions).
    assert parts.eval_forward == 10 * 64 * 4 + 4 * 64 * 10
    assert parts.peak == max(parts.step, parts.base_forward, parts.eval_forward)


def test_the_step_peak_is_the_worst_moment_and_grows_with_the_micro_batch():
    one = estimate_for_config(FACTS, _sae_config(), CPU)
    four = estimate_for_config(FACTS, _sae_config().model_copy(update={"train": _sae_config().train.model_copy(update={"micro_batch_size": 8})}), CPU)
    assert four.activations == pytest.approx(4 * one.activations, rel=0.01)
    assert one.tensor_bytes == one.weights + one.lora + one.optimizer + one.buffer + one.step_peak


def test_on_a_bf16_gpu_the_base_is_bf16_and_the_sae_step_16_bit():
    shape = shape_from_config(_sae_config(), simulated_gpu(24, bf16=True))
    assert shape.weight_dtype == "bfloat16" and shape.autocast
    est = estimate_for_config(FACTS, _sae_config(), simulated_gpu(24, bf16=True))
    assert est.weights == FACTS.params * 2
    assert est.lora == 4 * est.trainable_params  # the SAE stays fp32
    no_bf16 = shape_from_config(_sae_config(), simulated_gpu(24, bf16=False))
    assert no_bf16.weight_dtype == "float32"


def test_format_names_the_sae_parts():
    text = estimate_for_config(FACTS, _sae_config(), CPU).format()
    assert "Memory estimate (sae)" in text and "the forward stops after layer 0" in text
    for label in ("base weights", "SAE", "optimizer states", "activation buffer", "step peak", "total"):
        assert label in text


def test_other_tasks_have_no_probe():
    cfg = config_from_dict({"model": {"name_or_path": "x/y"}})
    assert shape_from_config(cfg, CPU).probe is None
