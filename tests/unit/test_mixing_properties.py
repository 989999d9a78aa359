"""Property tests of the mixing sampler over random sizes, weights, batch sizes and seeds."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.data.mixing.sampler import MixingSampler, MixSource

SETTINGS = settings(max_examples=100, deadline=None)

rows_st = st.integers(1, 50)
weight_st = st.sampled_from([0.05, 0.1, 0.25, 0.3, 1 / 3, 0.5, 0.7, 0.95, 1.0, 2.0, 3.7, 10.0])
batch_st = st.integers(1, 64)
seed_st = st.integers(0, 2**32 - 1)


@st.composite
def weighted_mixes(draw, min_n: int = 1, max_n: int = 12):
    n = draw(st.integers(min_n, max_n))
    rows = draw(st.lists(rows_st, min_size=n, max_size=n))
    weights = draw(st.lists(weight_st, min_size=n, max_size=n))
    return [MixSource(f"d{i}", r, w) for i, (r, w) in enumerate(zip(rows, weights))]


def make(sources, strategy="weighted", batch=8, total_steps=100, seed=0, shuffle=True):
    return MixingSampler(
        sources,
        strategy=strategy,
        global_batch_size=batch,
        total_steps=total_steps,
        seed=seed,
        shuffle_across_datasets=shuffle,
    )


def counts_per_step(sampler: MixingSampler, steps: int) -> np.ndarray:
    """Rows each dataset gave at each step, counted from the drawn items themselves."""
    out = np.zeros((steps, len(sampler.names)), dtype=np.int64)
    for k in range(steps):
        for i, _ in sampler.next_batch().items:
            out[k, i] += 1
    return out


def rounding_errors(counts: np.ndarray, shares: list[Fraction], batch: int) -> np.ndarray:
    """e[k, i] = rows given by dataset i in steps [0, k) minus its exact target k * batch * share."""
    cum = np.vstack([np.zeros((1, counts.shape[1]), dtype=np.int64), np.cumsum(counts, axis=0)])
    steps = np.arange(cum.shape[0])[:, None]
    return cum - steps * batch * np.array([float(s) for s in shares])[None, :]


def exact_shares(sources) -> list[Fraction]:
    w = [Fraction(repr(s.weight)) for s in sources]
    return [x / sum(w) for x in w]


def accuracy_bounds(sources) -> tuple[list[float], list[float]]:
    """The documented accuracy (mixing_schedule): per dataset, the bound from the start and over any window.

    With c distinct weights and a dataset of share p in a class of m equal weights:
    c = 1: both below 1; c = 2: from the start 1 - 1/(2m), any window 1;
    c >= 3: from the start 1 - 1/(2m) + p(c-2)/2, any window 1 + p(c-2).
    """
    shares = exact_shares(sources)
    weights = [Fraction(repr(s.weight)) for s in sources]
    c = len(set(weights))
    prefix, window = [], []
    for w, p in zip(weights, shares):
        m = weights.count(w)
        extra = float(p) * max(0, c - 2)
        prefix.append((m - 1) / m if c == 1 else 1 - 1 / (2 * m) + extra / 2)
        window.append((m - 1) / m if c == 1 else 1 + extra)
    return prefix, window


@SETTINGS
@given(weighted_mixes(), batch_st, seed_st, st.integers(1, 60))
def test_weighted_share_within_the_documented_bound_over_any_window(sources, batch, seed, steps):
    counts = counts_per_step(make(sources, batch=batch, seed=seed), steps)
    assert (counts.sum(axis=1) == batch).all()
    e = rounding_errors(counts, exact_shares(sources), batch)
    prefix, window = accuracy_bounds(sources)
    tol = 1e-9
    for i in range(len(sources)):
        # From the start: |rows given - target|; any window [a, b) of steps: e[b] - e[a].
        assert np.abs(e[:, i]).max() <= prefix[i] + tol
        assert e[:, i].max() - e[:, i].min() <= window[i] + tol
        assert window[i] <= 1 + tol or len(set(s.weight for s in sources)) >= 3


@SETTINGS
@given(st.integers(1, 64), seed_st, st.integers(1, 80))
def test_two_datasets_within_one_sample_over_any_window_even_below_one_row_per_batch(batch, seed, steps):
    counts = counts_per_step(make([MixSource("big", 37, 0.95), MixSource("small", 5, 0.05)], batch=batch, seed=seed), steps)
    e = rounding_errors(counts, [Fraction(95, 100), Fraction(5, 100)], batch)
    assert (e.max(axis=0) - e.min(axis=0)).max() <= 1 + 1e-9
    assert np.abs(e).max() <= 0.5 + 1e-9


@SETTINGS
@given(weighted_mixes(max_n=12), batch_st, seed_st, st.integers(1, 40))
def test_uniform_equal_shares_within_one_sample_over_any_window(sources, batch, seed, steps):
    counts = counts_per_step(make(sources, strategy="uniform", batch=batch, seed=seed), steps)
    n = len(sources)
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()
    e = rounding_errors(counts, [Fraction(1, n)] * n, batch)
    assert (e.max(axis=0) - e.min(axis=0)).max() < 1


@SETTINGS
@given(weighted_mixes(), batch_st, seed_st, st.integers(1, 40))
def test_no_row_repeats_within_a_dataset_epoch(sources, batch, seed, steps):
    grouped = make(sources, batch=batch, seed=seed, shuffle=False)
    shuffled = make(sources, batch=batch, seed=seed, shuffle=True)
    streams: list[list[int]] = [[] for _ in sources]
    for _ in range(steps):
        g, s = grouped.next_batch(), shuffled.next_batch()
        # Shuffling across datasets only reorders a batch; it never changes which rows are in it.
        assert sorted(g.items) == sorted(s.items)
        assert [i for i, _ in g.items] == sorted(i for i, _ in g.items)
        for i, row in g.items:
            streams[i].append(row)
    for src, stream in zip(sources, streams):
        n = src.rows
        assert all(0 <= r < n for r in stream)
        for start in range(0, len(stream), n):
            chunk = stream[start : start + n]
            assert len(set(chunk)) == len(chunk), f"{src.name}: a row repeats inside epoch {start // n}"
    assert grouped.samples_per_dataset() == {s.name: len(x) for s, x in zip(sources, streams)}


@SETTINGS
@given(weighted_mixes(), batch_st, seed_st, st.integers(1, 30))
def test_same_arguments_give_the_same_batches(sources, batch, seed, steps):
    a, b = make(sources, batch=batch, seed=seed), make(sources, batch=batch, seed=seed)
    assert [a.next_batch() for _ in range(steps)] == [b.next_batch() for _ in range(steps)]


@SETTINGS
@given(
    weighted_mixes(),
    st.sampled_from(["uniform", "weighted"]),
    batch_st,
    seed_st,
    st.integers(0, 40),
    st.integers(1, 20),
    st.booleans(),
)
def test_state_round_trip_equals_the_uninterrupted_run(sources, strategy, batch, seed, cut, more, shuffle):
    straight = make(sources, strategy, batch, seed=seed, shuffle=shuffle)
    expected = [straight.next_batch() for _ in range(cut + more)]

    first = make(sources, strategy, batch, seed=seed, shuffle=shuffle)
    for _ in range(cut):
        first.next_batch()
    state = json.loads(json.dumps(first.state_dict()))
    second = make(sources, strategy, batch, seed=seed, shuffle=shuffle)
    second.load_state_dict(state)
    assert second.step == cut and second.anchor_step is None
    assert second.samples_per_dataset() == first.samples_per_dataset()
    assert [second.next_batch() for _ in range(more)] == expected[cut:]


@SETTINGS
@given(weighted_mixes(), batch_st, seed_st, st.integers(0, 60))
def test_seek_equals_iterating(sources, batch, seed, k):
    walked = make(sources, batch=batch, seed=seed)
    for _ in range(k):
        walked.next_batch()
    jumped = make(sources, batch=batch, seed=seed)
    jumped.next_batch()  # seek must also work backwards from a used sampler
    jumped.seek(k)
    assert jumped.state_dict() == walked.state_dict()
    assert [jumped.next_batch() for _ in range(3)] == [walked.next_batch() for _ in range(3)]


def _curriculum_phase(step: int, n_phases: int, total: int) -> int:
    """Independent restatement: phase p starts at p * total / n_phases (real division); the last runs on."""
    phase = 0
    for p in range(n_phases):
        if step >= p * total / n_phases:
            phase = p
    return phase


@st.composite
def curricula(draw):
    m = draw(st.integers(1, 5))
    n = draw(st.integers(m, 10))
    orders = list(range(m)) + draw(st.lists(st.integers(0, m - 1), min_size=n - m, max_size=n - m))
    orders = draw(st.permutations(orders))
    rows = draw(st.lists(rows_st, min_size=n, max_size=n))
    equal = draw(st.booleans())
    weights = [1.0] * n if equal else draw(st.lists(weight_st, min_size=n, max_size=n))
    total = draw(st.integers(m, 200))
    return [MixSource(f"d{i}", r, w, order=o) for i, (r, w, o) in enumerate(zip(rows, weights, orders))], m, total, equal


@SETTINGS
@given(curricula(), batch_st, seed_st)
def test_curriculum_active_sets_exact_around_every_boundary(curriculum, batch, seed):
    sources, m, total, equal = curriculum
    sampler = make(sources, "curriculum", batch, total_steps=total, seed=seed)
    boundaries = {-(-p * total // m) for p in range(m)} | {total}
    for b in sorted(boundaries):
        for k in (b - 1, b, b + 1):
            if k < 0:
                continue
            phase = _curriculum_phase(k, m, total)
            expected = {i for i, s in enumerate(sources) if s.order <= phase}
            assert set(sampler.active_datasets(k)) == expected, (k, phase)
            sampler.seek(k)
            drawn = {i for i, _ in sampler.next_batch().items}
            assert drawn <= expected
            if equal and batch >= len(expected):
                assert drawn == expected


@st.composite
def sequences(draw):
    n = draw(st.integers(1, 10))
    lengths = draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    owners = draw(st.permutations(range(n)))
    rows = draw(st.lists(rows_st, min_size=n, max_size=n))
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    ranges = {owner: (bounds[k], bounds[k + 1]) for k, owner in enumerate(owners)}
    sources = [MixSource(f"d{i}", rows[i], start_step=ranges[i][0], end_step=ranges[i][1]) for i in range(n)]
    return sources, ranges, bounds[-1]


@SETTINGS
@given(sequences(), batch_st, seed_st)
def test_sequential_exactly_one_dataset_around_every_boundary(sequence, batch, seed):
    sources, ranges, total = sequence
    sampler = make(sources, "sequential", batch, total_steps=total, seed=seed)
    last = max(ranges, key=lambda i: ranges[i][1])
    for start, _ in ranges.values():
        for k in (start - 1, start, start + 1, total - 1, total, total + 5):
            if k < 0:
                continue
            owner = next((i for i, (a, b) in ranges.items() if a <= k < b), last)
            assert sampler.active_datasets(k) == (owner,)
            sampler.seek(k)
            assert {i for i, _ in sampler.next_batch().items} == {owner}
