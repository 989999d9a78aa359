"""The window shuffle buffer: every token used once, batches a pure function of (seed, step, rows)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.tasks.sae.buffer import ActivationWindow, window_steps


def _tokens(step: int, slot: int, n: int) -> torch.Tensor:
    """Token t of (step, slot) carries its identity, so a batch says where its tokens came from."""
    ids = torch.arange(n, dtype=torch.float32)
    return torch.stack([torch.full((n,), float(step)), torch.full((n,), float(slot)), ids], dim=1)


@settings(max_examples=12, deadline=None)
@given(w=st.integers(1, 6), steps=st.integers(1, 12), n=st.integers(0, 40), seed=st.integers(0, 1000))
def test_each_token_is_used_exactly_once_within_w_steps(w, steps, n, seed):
    window = ActivationWindow(w, seed)
    used = []
    for step in range(1, steps + w):
        if step <= steps:
            window.put(step, 0, _tokens(step, 0, n))
        window.drop_before(step - w + 1)
        if step <= steps:
            used.append(window.batch(step, 0))
        else:  # past the last put: drain what is left, as the next steps would
            window.put(step, 0, _tokens(step, 0, 0))
            used.append(window.batch(step, 0))
    seen = torch.cat(used)
    assert seen.size(0) == steps * n
    assert len({tuple(row.tolist()) for row in seen}) == steps * n


def test_batches_mix_the_last_w_steps():
    window = ActivationWindow(4, seed=1)
    for step in range(1, 5):
        window.put(step, 0, _tokens(step, 0, 40))
    sources = set(window.batch(4, 0)[:, 0].tolist())
    assert sources == {1.0, 2.0, 3.0, 4.0}


def test_a_rebuilt_window_gives_the_same_batch_and_another_seed_does_not():
    straight = ActivationWindow(3, seed=7)
    for step in range(1, 6):
        straight.put(step, 2, _tokens(step, 2, 30))
        straight.drop_before(step - 2)
    rebuilt = ActivationWindow(3, seed=7)  # a resume at step 5: only steps 3..5 recomputed
    for step in (3, 4, 5):
        rebuilt.put(step, 2, _tokens(step, 2, 30))
    assert torch.equal(straight.batch(5, 2), rebuilt.batch(5, 2))
    other = ActivationWindow(3, seed=8)
    for step in (3, 4, 5):
        other.put(step, 2, _tokens(step, 2, 30))
    assert not torch.equal(straight.batch(5, 2), other.batch(5, 2))
    assert rebuilt.missing(6, 2) == [6] and set(ActivationWindow(3, 7).missing(5, 2)) == {3, 4, 5}


def test_window_steps_covers_the_buffer():
    assert window_steps(65536, 32, 512) == 4
    assert window_steps(100, 32, 512) == 1
    assert window_steps(65537, 32, 512) == 5
