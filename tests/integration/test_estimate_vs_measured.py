"""The memory estimator against memory measured during real training steps.

How memory is measured on the CPU, honestly: PyTorch's CPU allocator keeps no peak
statistic, and the process RSS is dominated by Python and the libraries (about 460 MB
against a few hundred MB of tensors) and blurred by glibc keeping freed pages. So the
measurement counts tensor bytes exactly instead: ``torch.profiler`` with
``profile_memory=True`` records every allocation and free of PyTorch's CPU allocator
with its size; replaying them in time order gives the peak of bytes alive during the
step, on top of the tensors alive before it (weights, buffers and optimizer states,
counted once per storage). That is the CPU counterpart of
``torch.cuda.max_memory_allocated``, and it is compared with ``MemoryEstimate.tensor_bytes``:
the estimate minus its framework overhead, which lives outside the allocator by definition.

The step measured is the engine's own: ``StepRunner.run`` on an accelerate-prepared model
and the optimizer the engine makes (fused AdamW), with the causal_lm task's chunked loss,
micro-batching, clipping and ``zero_grad(set_to_none=True)``. A tiny step runs before
measuring so the optimizer states exist, as at every later step.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest

from tui_trainer.planning.hardware import Hardware
from tui_trainer.planning.memory_estimate import TrainingShape, estimate_memory, estimate_for_config
from tui_trainer.planning.presets import ModelFacts, get_preset

torch = pytest.importorskip("torch")

CPU = Hardware(kind="cpu", name="test CPU", total_bytes=8 * 1024**3, free_bytes=8 * 1024**3, bf16=False,
               compute_capability=None, gpu_count=0, simulated=True, cpu_cores=2, ram_bytes=8 * 1024**3)  # fmt: skip


def peak_cpu_tensor_bytes(fn: Callable[[], None]) -> int:
    """Peak bytes allocated by PyTorch's CPU allocator while ``fn`` runs, above what was allocated before."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    alive = peak = 0
    for event in events:
        alive += event.nbytes()  # negative for frees
        peak = max(peak, alive)
    return peak


def live_tensor_bytes(model, optimizer) -> int:
    storages: dict[int, int] = {}
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
    for t in tensors:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(storages.values())


def random_batch(vocab: int, rows: int, seq_len: int):
    """Full rows of random tokens, one document each, as the causal_lm task collates them."""
    from tui_trainer.tasks.base import Batch

    ids = torch.randint(0, vocab, (rows, seq_len))
    positions = torch.arange(seq_len).expand(rows, -1).contiguous()
    lengths = torch.full((rows,), seq_len)
    tensors = {"input_ids": ids, "labels": ids.clone(), "position_ids": positions}
    return Batch(tensors, n_targets=lengths - 1, work=lengths, lengths=lengths)


def engine_step_runner(model, *, lr: float = 1e-4, micro_batch: int, mixed_precision: str = "no", cpu: bool = True):
    """The engine's own step: accelerate-prepared model and optimizer (engine.optim.make_optimizer,
    fused AdamW), the causal_lm task's loss, StepRunner's micro-batching, clipping and update."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from tui_trainer.config.schema import config_from_dict
    from tui_trainer.engine.faults import Faults
    from tui_trainer.engine.optim import make_optimizer
    from tui_trainer.engine.step import StepRunner
    from tui_trainer.tasks.causal_lm import CausalLMTask

    AcceleratorState._reset_state(reset_partial_state=True)  # each test picks its own mixed precision
    acc = Accelerator(mixed_precision=mixed_precision, cpu=cpu)
    cfg = config_from_dict({"train": {"lr": lr}})
    optimizer = make_optimizer(cfg, model, acc.device)
    model, optimizer = acc.prepare(model, optimizer)
    runner = StepRunner(accelerator=acc, model=model, optimizer=optimizer, task=CausalLMTask(),
                        micro_batch_size=micro_batch, max_grad_norm=1.0, faults=Faults(), on_oom=lambda *_: None)  # fmt: skip
    return runner


def estimate_ratio(label: str, estimate, measured: int) -> float:
    """Estimated / measured tensor bytes, printed for the log (``pytest -s``)."""
    ratio = estimate.tensor_bytes / measured
    print(f"{label}: measured {measured / 2**20:.1f} MiB, estimated {estimate.tensor_bytes / 2**20:.1f} MiB, ratio {ratio:.3f}")
    return ratio


def measured_cpu_bytes(model, vocab: int, micro_batch: int, seq_len: int, grad_accum: int, *, mixed_precision="no") -> int:
    """Live tensor bytes plus the peak of one engine step (StepRunner.run) on a random global batch of that
    shape, after one tiny step so the optimizer states exist (AdamW creates them lazily) as at any later step."""
    runner = engine_step_runner(model, micro_batch=micro_batch, mixed_precision=mixed_precision)
    ids = torch.zeros(1, dtype=torch.long)
    warm = runner.run(0, random_batch(vocab, 1, 8), ids)
    assert warm.finite
    batch = random_batch(vocab, micro_batch * grad_accum, seq_len)
    dataset_ids = torch.zeros(batch.rows, dtype=torch.long)
    before = live_tensor_bytes(runner.model, runner.optimizer)
    return before + peak_cpu_tensor_bytes(lambda: runner.run(1, batch, dataset_ids))


def facts_for(**shape) -> ModelFacts:
    """Facts for a made-up architecture; the parameter count is computed, so it is always consistent."""
    from pydantic import ValidationError

    try:
        return ModelFacts(params=1, **shape)
    except ValidationError as err:
        computed = int(re.search(r"give ([\d,]+)", str(err)).group(1).replace(",", ""))
    return ModelFacts(params=computed, **shape)


def hf_config(facts: ModelFacts):
    from transformers import AutoConfig

    return AutoConfig.for_model(
        facts.model_type, hidden_size=facts.hidden, intermediate_size=facts.intermediate,
        num_hidden_layers=facts.layers, num_attention_heads=facts.heads, num_key_value_heads=facts.kv_heads,
        vocab_size=facts.vocab, max_position_embeddings=facts.max_position_embeddings,
        tie_word_embeddings=facts.tie_word_embeddings, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip


@pytest.mark.slow
def test_demo_model_full_training_on_cpu():
    """The embedded demo model, trained in full as the demo-tiny preset fits it for a CPU: within 10%."""
    from transformers import AutoModelForCausalLM

    from tui_trainer.demo.catalog import ensure_demo_model
    from tui_trainer.planning.fitting import fit_preset

    cfg = fit_preset("demo-tiny", "highspeed", CPU).config
    estimate = estimate_for_config(get_preset("demo-tiny").facts, cfg, CPU)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(ensure_demo_model(), dtype=torch.float32, attn_implementation="sdpa")
    model.train()
    assert sum(p.numel() for p in model.parameters()) == estimate.total_params
    vocab = model.config.vocab_size
    measured = measured_cpu_bytes(model, vocab, cfg.train.micro_batch_size, cfg.data.max_seq_len, cfg.train.grad_accum)
    ratio = estimate_ratio(f"demo full training, micro-batch {cfg.train.micro_batch_size} x {cfg.data.max_seq_len}", estimate, measured)
    assert 0.9 <= ratio <= 1.1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_lora_with_gqa_bias_and_checkpointing_on_cpu():
    """A small Qwen2-shaped model (grouped KV heads, q/k/v biases, tied head) with LoRA and dropout."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    facts = facts_for(hub_id="test", model_type="qwen2", layers=3, hidden=384, intermediate=1024, vocab=32000,
                      heads=6, kv_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, qkv_bias=True)  # fmt: skip
    shape = TrainingShape(micro_batch=2, seq_len=128, grad_accum=2, lora=True, lora_r=16, lora_dropout=0.05,
                          weight_dtype="float32", autocast=False, device="cpu")  # fmt: skip
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(hf_config(facts), attn_implementation="sdpa")
        assert sum(p.numel() for p in model.parameters()) == facts.params
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))
        if checkpointing:
            model.enable_input_require_grads()
        model.train()
        measured = measured_cpu_bytes(model, facts.vocab, shape.micro_batch, shape.seq_len, shape.grad_accum)
        estimate = estimate_memory(facts, dataclasses.replace(shape, gradient_checkpointing=checkpointing))
        ratio = estimate_ratio(f"LoRA, checkpointing {checkpointing}", estimate, measured)
        assert 0.9 <= ratio <= 1.1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_lora_on_a_bf16_base_under_autocast_on_cpu():
    """The CUDA recipe (frozen bf16 base, fp32 adapter, bf16 autocast) run on the CPU's autocast.

    The closest check of the GPU formula this machine allows: the same casts and saved
    tensors, except that CPU dropout keeps a float mask where CUDA keeps a bool one
    (the estimator's ``device`` accounts for that).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    facts = facts_for(hub_id="test", model_type="llama", layers=3, hidden=384, intermediate=1024, vocab=32000,
                      heads=6, kv_heads=2, max_position_embeddings=1024)  # fmt: skip
    shape = TrainingShape(micro_batch=2, seq_len=256, grad_accum=2, lora=True, lora_r=16, lora_dropout=0.05,
                          weight_dtype="bfloat16", autocast=True, device="cpu")  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(hf_config(facts), attn_implementation="sdpa", dtype=torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))
    model.train()
    measured = measured_cpu_bytes(model, facts.vocab, shape.micro_batch, shape.seq_len, shape.grad_accum,
                                  mixed_precision="bf16")  # fmt: skip
    estimate = estimate_memory(facts, shape)
    ratio = estimate_ratio("LoRA bf16 autocast", estimate, measured)
    assert 0.9 <= ratio <= 1.1


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_qwen_0_5b_lora_on_cuda_within_15_percent():
    """Qwen2.5-0.5B's real architecture (from the preset; weights random, which does not change memory),
    LoRA as the highspeed level fits it, bf16 base, bf16 autocast, fused AdamW: against max_memory_allocated."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tui_trainer.planning.fitting import fit_preset
    from tui_trainer.planning.hardware import detect_hardware

    hardware = detect_hardware()
    assert hardware.kind == "cuda"
    preset = get_preset("qwen2.5-0.5b")
    cfg = fit_preset("qwen2.5-0.5b", "highspeed", hardware).config
    estimate = estimate_for_config(preset.facts, cfg, hardware)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(hf_config(preset.facts), dtype=torch.bfloat16, attn_implementation="sdpa")
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, lora)
    if cfg.train.gradient_checkpointing:
        model.enable_input_require_grads()
    model.train()
    runner = engine_step_runner(model, lr=cfg.train.lr, micro_batch=cfg.train.micro_batch_size, mixed_precision="bf16", cpu=False)
    accum = min(cfg.train.grad_accum, 2)
    batch = random_batch(preset.facts.vocab, cfg.train.micro_batch_size * accum, cfg.data.max_seq_len)
    dataset_ids = torch.zeros(batch.rows, dtype=torch.long)
    runner.run(0, batch, dataset_ids)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    runner.run(1, batch, dataset_ids)
    torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated()
    shape = dataclasses.replace(estimate.shape, grad_accum=accum)
    expected = estimate_memory(preset.facts, shape).tensor_bytes
    print(f"qwen2.5-0.5b LoRA on {hardware.name}: measured {measured / 2**30:.2f} GiB, estimated {expected / 2**30:.2f} GiB")
    assert 0.85 <= expected / measured <= 1.15
