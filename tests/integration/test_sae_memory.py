"""The SAE memory estimate against the tensor bytes of a real SAE step of the demo, measured on CPU.

Measured as tests/integration/test_estimate_vs_measured.py measures (the profiler's trace of
PyTorch's CPU allocator, replayed for its peak, on top of the tensors alive before): the
engine's own StepRunner and optimizer on the sae demo's SaeTrainingModule, with the window
full (W steps of rows) and dead features present, so AuxK runs as it does in a long run.
"""

from __future__ import annotations

import pytest
import torch

from tests.integration.test_estimate_vs_measured import CPU, peak_cpu_tensor_bytes
from tui_trainer.planning.memory_estimate import estimate_for_config
from tui_trainer.planning.presets import get_preset
from tui_trainer.planning.probe_memory import probe_bytes

pytestmark = pytest.mark.slow


def _rows(items, vocab: int, seq: int):
    g = torch.Generator().manual_seed(sum(d * 100_003 + r for d, r in items))
    ids = torch.randint(3, vocab, (len(items), seq), generator=g)
    ids[:, 0] = 1  # BOS, left out of the activations as in training
    lengths = torch.full((len(items),), seq)
    return {
        "input_ids": ids, "position_ids": torch.arange(seq).expand(len(items), seq).contiguous(),
        "lengths": lengths, "n_targets": lengths - 1, "slot": torch.arange(len(items)),
    }  # fmt: skip


def test_sae_step_on_the_demo_within_15_percent_of_the_estimate():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from transformers import AutoModelForCausalLM

    from tui_trainer.demo.catalog import ensure_demo_model
    from tui_trainer.engine.faults import Faults
    from tui_trainer.engine.optim import make_optimizer
    from tui_trainer.engine.step import StepRunner
    from tui_trainer.tasks.base import Batch
    from tui_trainer.tasks.sae.activations import resolve_site
    from tui_trainer.tasks.sae.buffer import window_steps
    from tui_trainer.tasks.sae.demo import sae_demo_config
    from tui_trainer.tasks.sae.model import SparseAutoencoder
    from tui_trainer.tasks.sae.task import SaeTask
    from tui_trainer.tasks.sae.training import SaeSchedule, SaeTrainingModule

    cfg = sae_demo_config(steps=20)
    facts = get_preset("demo-tiny").facts
    estimate = estimate_for_config(facts, cfg, CPU)
    rows, seq = cfg.effective_batch, cfg.data.max_seq_len
    assert cfg.train.grad_accum == 1 and estimate.shape.micro_batch == rows

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(ensure_demo_model(), dtype=torch.float32, attn_implementation="sdpa")
    assert sum(p.numel() for p in base.parameters()) == estimate.total_params
    d_in = base.config.hidden_size
    sae = SparseAutoencoder(d_in, cfg.sae.expansion_factor * d_in, "topk", cfg.sae.k, generator=torch.Generator().manual_seed(0))
    window = window_steps(cfg.sae.buffer_tokens, rows, seq)
    schedule = SaeSchedule(total_steps=20, window=window, slots=rows, seed=0)
    vocab = base.config.vocab_size

    def fetch(items):
        return _rows(items, vocab, seq)

    module = SaeTrainingModule(base, resolve_site(base, cfg.sae), sae, cfg.sae, schedule, bos_id=1, fetch_rows=fetch)
    assert estimate.trainable_params == sum(p.numel() for p in module.parameters())

    AcceleratorState._reset_state(reset_partial_state=True)
    acc = Accelerator(cpu=True)
    optimizer = make_optimizer(cfg, module, acc.device)
    model, optimizer = acc.prepare(module, optimizer)
    runner = StepRunner(accelerator=acc, model=model, optimizer=optimizer, task=SaeTask(), micro_batch_size=rows,
                        max_grad_norm=1.0, faults=Faults(), on_oom=lambda *_: None)  # fmt: skip

    def step(k: int):
        items = [(0, k * rows + i) for i in range(rows)]
        module.begin_step(items)
        t = fetch(items)
        batch = Batch(t, n_targets=t["n_targets"], work=t["lengths"], lengths=t["lengths"])
        return lambda: runner.run(k, batch, torch.zeros(rows, dtype=torch.long))

    for k in range(1, window + 2):  # the window full, the optimizer states made
        step(k)()
    module.commit_pending()
    # Random rows make every feature fire; half of them dead makes AuxK run, as it does in a long run.
    module.sae.tokens_since_fired[: sae.d_sae // 2] = 10**9
    assert int(module.sae.dead_mask(cfg.sae.dead_feature_window_tokens).sum()) >= sae.d_sae // 2

    storages: dict[int, int] = {}
    tensors = [*module.parameters(), *module.buffers(), *base.parameters(), *base.buffers()]
    tensors += [v for s in optimizer.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    tensors += [t for acts, perm in module.window._entries.values() for t in (acts, perm)]
    for t in tensors:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    before = sum(storages.values())
    measured = before + peak_cpu_tensor_bytes(step(window + 2))

    parts = probe_bytes(facts, estimate.shape.probe, tokens=rows * seq, weight_bytes=4, act_bytes=4)
    # The step's own moment: the estimate with the step's part in place of the worst of the three.
    expected = estimate.tensor_bytes - estimate.step_peak + max(parts.step, estimate.gradients + estimate.update_temporaries)
    ratio = expected / measured
    print(f"sae demo step: measured {measured / 2**20:.1f} MiB, estimated {expected / 2**20:.1f} MiB, ratio {ratio:.3f}")
    assert 0.85 <= ratio <= 1.15
