"""The SAE training module: the loss does not depend on micro-batching, and a module restored from a
state_dict (a resume) rebuilds its window and computes the same step bit for bit."""

from __future__ import annotations

import pytest
import torch

from tui_trainer.config.schema import SaeSection
from tui_trainer.tasks.sae.activations import resolve_site
from tui_trainer.tasks.sae.model import SparseAutoencoder
from tui_trainer.tasks.sae.training import SaeSchedule, SaeTrainingModule

ROWS, SEQ = 4, 12


@pytest.fixture(scope="module")
def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=32,
    )
    return LlamaForCausalLM(cfg).eval()


def _row_tensors(items):
    """Deterministic fake rows for (dataset, row) items: BOS (1) then tokens from the row index."""
    g = [torch.Generator().manual_seed(d * 1000 + r) for d, r in items]
    ids = torch.stack([torch.cat([torch.tensor([1]), torch.randint(2, 64, (SEQ - 1,), generator=x)]) for x in g])
    lengths = torch.tensor([SEQ - (r % 3) for _, r in items])
    return {
        "input_ids": ids,
        "position_ids": torch.arange(SEQ).expand(len(items), SEQ).clone(),
        "lengths": lengths,
        "n_targets": lengths - 1,
        "slot": torch.arange(len(items)),
    }


def _module(llama, cfg=None):
    cfg = cfg or SaeSection(layer=0, expansion_factor=2, k=4, dead_feature_window_tokens=30)
    sae = SparseAutoencoder(16, 32, cfg.architecture, cfg.k, generator=torch.Generator().manual_seed(3))
    schedule = SaeSchedule(total_steps=10, window=3, slots=ROWS, seed=5)
    return SaeTrainingModule(llama, resolve_site(llama, cfg), sae, cfg, schedule, bos_id=1, fetch_rows=_row_tensors)


def _items(step):
    return [(step % 2, step * ROWS + i) for i in range(ROWS)]


def _select(rows, start, stop):
    return {k: v[start:stop] for k, v in rows.items()}


def _run_step(module, step, split=(0, ROWS)):
    module.begin_step(_items(step))
    rows = _row_tensors(_items(step))
    bounds = [0, *split[1:-1], ROWS] if len(split) > 2 else [0, ROWS]
    total, count = torch.zeros(()), 0
    for a, b in zip(bounds, bounds[1:]):
        loss, n = module(_select(rows, a, b))
        total, count = total + loss.total.detach(), count + n
    return total, count


def test_the_step_loss_does_not_depend_on_micro_batching(llama):
    whole, split = _module(llama), _module(llama)
    for step in (1, 2, 3, 4):
        a, n_a = _run_step(whole, step)
        b, n_b = _run_step(split, step, split=(0, 1, 3, ROWS))
        assert n_a == n_b == int(_row_tensors(_items(step))["n_targets"].sum())
        assert float(a) == pytest.approx(float(b), rel=1e-5)
    whole.commit_pending(), split.commit_pending()
    assert torch.equal(whole.sae.tokens_since_fired, split.sae.tokens_since_fired)
    assert torch.equal(whole.fire_counts, split.fire_counts)


def test_a_restored_module_rebuilds_its_window_and_matches_bitwise(llama):
    straight = _module(llama)
    for step in (1, 2, 3):
        _run_step(straight, step)
    straight.commit_pending()
    state = {k: v.clone() for k, v in straight.state_dict().items()}
    expected, _ = _run_step(straight, 4)
    resumed = _module(llama)
    resumed.load_state_dict(state)
    assert len(resumed.window) == 0
    got, _ = _run_step(resumed, 4)
    assert torch.equal(expected, got)
    assert len(resumed.window) == 3 * ROWS  # steps 2 and 3 recomputed, step 4 its own


def test_state_dict_holds_the_sae_and_its_counters_but_not_the_base(llama):
    keys = set(_module(llama).state_dict())
    assert keys == {
        "step", "window_items", "fire_counts", "train_tokens",
        "sae.W_enc", "sae.b_enc", "sae.W_dec", "sae.b_dec", "sae.input_scale", "sae.tokens_since_fired", "sae.initialized",
    }
    assert [n for n, _ in _module(llama).named_parameters()] == ["sae.W_dec", "sae.W_enc", "sae.b_enc", "sae.b_dec"]
