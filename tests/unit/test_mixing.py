"""Unit tests of the mixing sampler: exact cases, state handling, errors and the plan text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tui_trainer.config.schema import DataSection, DatasetSpec
from tui_trainer.data.mixing.sampler import (
    GlobalBatch,
    MixingSampler,
    MixSource,
    sampler_from_config,
)
from tui_trainer.data.mixing.plan import describe_plan, plan_summary
from tui_trainer.errors import ConfigError


def make(sources, strategy="weighted", batch=8, total_steps=100, seed=0, **kw) -> MixingSampler:
    return MixingSampler(sources, strategy=strategy, global_batch_size=batch, total_steps=total_steps, seed=seed, **kw)


def per_step(sampler: MixingSampler, steps: int) -> list[Counter]:
    return [Counter(i for i, _ in sampler.next_batch().items) for _ in range(steps)]


def test_a_weight_below_one_row_per_batch_still_gets_its_share():
    sampler = make([MixSource("big", 1000, 0.95), MixSource("small", 1000, 0.05)], batch=8)
    small = [c[1] for c in per_step(sampler, 100)]
    # 5% of 8 rows = 0.4 per step: exactly two rows in every five consecutive steps.
    assert sum(small) == 40
    assert all(sum(small[k : k + 5]) == 2 for k in range(96))
    assert sampler.samples_per_dataset() == {"big": 760, "small": 40}


def test_uniform_gives_the_remainder_to_the_highest_weights_first_then_rotates():
    sampler = make([MixSource("a", 100, 1.0), MixSource("b", 100, 3.0), MixSource("c", 100, 2.0)], "uniform", batch=8)
    steps = per_step(sampler, 3)
    assert [steps[0][i] for i in range(3)] == [2, 3, 3]  # b and c (heaviest) get the 2 extra rows
    assert [steps[1][i] for i in range(3)] == [3, 3, 2]
    assert [steps[2][i] for i in range(3)] == [3, 2, 3]
    assert sampler.samples_per_dataset() == {"a": 8, "b": 8, "c": 8}


def test_uniform_ignores_weight_values_except_for_ranking():
    sampler = make([MixSource("a", 10, 0.0), MixSource("b", 10, 9.0)], "uniform", batch=4)
    assert [dict(c) for c in per_step(sampler, 2)] == [{0: 2, 1: 2}, {0: 2, 1: 2}]


def test_one_row_datasets_and_batches_larger_than_the_data():
    sampler = make([MixSource("tiny", 1, 1.0), MixSource("pair", 2, 1.0)], batch=64)
    batch = sampler.next_batch()
    assert len(batch.items) == 64
    assert {row for i, row in batch.items if i == 0} == {0}
    assert sorted(row for i, row in batch.items if i == 1) == [0] * 16 + [1] * 16
    # Only the latest epoch that started per dataset is reported: 32 rows from 1 row = epochs 0..31.
    assert dict(batch.new_epochs) == {0: 31, 1: 15}
    assert sampler.epochs_per_dataset() == {"tiny": 32.0, "pair": 16.0}


def test_new_epochs_reports_the_epoch_that_starts_in_this_batch():
    sampler = make([MixSource("d", 10, 1.0)], batch=4)
    batches = [sampler.next_batch() for _ in range(6)]
    # Rows 0..23 of the endless sequence: epoch 1 starts at row 10 (step 2), epoch 2 at row 20 (step 5).
    assert [b.new_epochs for b in batches] == [(), (), ((0, 1),), (), (), ((0, 2),)]
    assert sampler.epochs_per_dataset() == {"d": 2.4}


def test_batch_of_one_row_cycles_through_datasets():
    sampler = make([MixSource(f"d{i}", 3, 1.0) for i in range(3)], "uniform", batch=1)
    assert [sampler.next_batch().items[0][0] for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_rows_due_at_the_same_time_go_to_the_higher_weight_first():
    sampler = make([MixSource("rare", 9, 0.25), MixSource("often", 9, 0.75)], batch=1)
    # "often" rows are due at 2/3, 2, 10/3, 14/3, 6 ...; "rare" rows at 2, 6, ...: ties at 2 and 6.
    assert [sampler.next_batch().items[0][0] for _ in range(8)] == [1, 1, 0, 1, 1, 1, 0, 1]


def test_twelve_datasets_get_their_shares():
    weights = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]
    sampler = make([MixSource(f"d{i}", 50 + i, float(w)) for i, w in enumerate(weights)], batch=42, total_steps=500)
    for _ in range(500):
        sampler.next_batch()
    got = sampler.samples_per_dataset()
    total = 500 * 42
    for i, w in enumerate(weights):
        assert abs(got[f"d{i}"] - total * w / sum(weights)) <= 2
    assert sampler.expected_samples() == got


def test_max_samples_caps_a_dataset_to_its_first_rows():
    src = MixSource("capped", 1000, 1.0, max_samples=7)
    assert src.usable_rows == 7
    sampler = make([src], batch=5)
    rows = [row for _ in range(7) for _, row in sampler.next_batch().items]
    assert set(rows) == set(range(7))
    assert sampler.epochs_per_dataset() == {"capped": 5.0}
    assert MixSource("all", 10, max_samples=0).usable_rows == 10
    assert MixSource("small", 3, max_samples=10).usable_rows == 3


def test_shuffle_across_datasets_only_reorders_each_batch():
    sources = [MixSource("a", 40, 1.0), MixSource("b", 40, 1.0), MixSource("c", 40, 2.0)]
    grouped = make(sources, batch=16, shuffle_across_datasets=False)
    mixed = make(sources, batch=16, shuffle_across_datasets=True)
    differs = False
    for _ in range(10):
        g, m = grouped.next_batch(), mixed.next_batch()
        assert [i for i, _ in g.items] == sorted(i for i, _ in g.items)
        assert sorted(g.items) == sorted(m.items)
        differs |= g.items != m.items
    assert differs


def test_rows_are_a_fresh_permutation_each_epoch_and_depend_on_the_seed():
    def epochs(seed):
        # One batch is one epoch; without the batch shuffle its order is the epoch's permutation itself.
        sampler = make([MixSource("d", 20, 1.0)], batch=20, seed=seed, shuffle_across_datasets=False)
        return [sampler.next_batch().items for _ in range(2)]

    first, second = epochs(0)
    assert sorted(r for _, r in first) == list(range(20)) == sorted(r for _, r in second)
    assert first != second
    assert epochs(0) == epochs(0)
    assert epochs(0) != epochs(1)


def test_batches_are_the_same_in_another_process():
    code = (
        "import json;from tui_trainer.data.mixing.sampler import MixingSampler, MixSource;"
        "s=MixingSampler([MixSource('a',13,0.7),MixSource('b',5,0.3)],strategy='weighted',"
        "global_batch_size=6,total_steps=50,seed=7);s.seek(11);"
        "print(json.dumps([s.next_batch().items for _ in range(4)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = Path(__file__).resolve().parents[2]  # importable from the checkout even when not installed
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True).stdout
    here = make([MixSource("a", 13, 0.7), MixSource("b", 5, 0.3)], batch=6, total_steps=50, seed=7)
    here.seek(11)
    assert json.loads(out) == [[list(t) for t in here.next_batch().items] for _ in range(4)]


def test_seek_to_step_one_million_is_arithmetic_not_a_replay():
    sources = [MixSource(f"d{i}", 1000 + 17 * i, float(i + 1)) for i in range(10)]
    sampler = make(sources, batch=64, total_steps=2_000_000)
    start = time.perf_counter()
    sampler.seek(10**6)
    elapsed = time.perf_counter() - start
    assert sum(sampler.samples_per_dataset().values()) == 64 * 10**6
    assert sampler.samples_per_dataset() == sampler.expected_samples(10**6)
    assert sampler.next_batch().step == 10**6
    assert elapsed < 0.5  # replaying a million batches takes minutes


def test_state_dict_is_small_and_json():
    sampler = make([MixSource(f"dataset-{i}", 10**6, 1.0 + i) for i in range(12)], batch=64)
    sampler.seek(123_456)
    state = sampler.state_dict()
    text = json.dumps(state)
    assert len(text) < 3000
    assert state["step"] == 123_456
    first = state["datasets"][0]
    assert first["epoch"] * first["rows"] + first["position"] == first["samples"]
    assert all(abs(c) < 1 for c in state["carry"])


def state_after(sampler: MixingSampler, steps: int) -> dict:
    for _ in range(steps):
        sampler.next_batch()
    return json.loads(json.dumps(sampler.state_dict()))


SOURCES = [MixSource("code", 30, 0.6), MixSource("docs", 20, 0.4)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("seed"), "missing keys ['seed']"),
        (lambda s: s.update(extra=1), "unexpected keys ['extra']"),
        (lambda s: s.update(strategy="uniform"), "strategy is 'uniform' in the state but 'weighted' now"),
        (lambda s: s.update(global_batch_size=16), "global_batch_size is 16 in the state but 8 now"),
        (lambda s: s.update(seed=1), "seed is 1 in the state but 0 now"),
        (lambda s: s["datasets"].pop(), "1 datasets in the state but 2 now"),
        (lambda s: s["datasets"][1].update(name="books"), "dataset 1 is 'books' in the state but 'docs' now"),
        (lambda s: s["datasets"][0].update(rows=31), "'code' had 31 usable rows but has 30 now"),
        (lambda s: s["datasets"][0].pop("epoch"), "datasets[0]: missing keys ['epoch']"),
        (lambda s: s["datasets"][0].update(position=3), "epoch/position do not match"),
        (lambda s: s.update(step=-1), "step must be an integer >= 0"),
        (lambda s: s.update(version=99), "version 99 is not supported"),
    ],
)
def test_load_state_dict_rejects_a_state_from_another_mix(change, message):
    state = state_after(make(SOURCES), 5)
    change(state)
    with pytest.raises(ValueError) as err:
        make(SOURCES).load_state_dict(state)
    assert message in str(err.value)


def test_loading_a_curriculum_state_after_max_steps_grew_continues_from_the_saved_cursors():
    sources = [MixSource("easy", 50, 1.0, order=0), MixSource("hard", 40, 1.0, order=1)]
    short = make(sources, "curriculum", batch=4, total_steps=20)
    drawn = [short.next_batch() for _ in range(15)]
    state = short.state_dict()
    longer = make(sources, "curriculum", batch=4, total_steps=40)
    longer.load_state_dict(state)
    assert longer.anchor_step == 15
    assert longer.samples_per_dataset() == short.samples_per_dataset()
    # Steps 15..19 are phase 0 of the longer plan: only "easy", continuing its epoch without repeats.
    rest = [longer.next_batch() for _ in range(5)]
    easy = [r for b in drawn + rest for i, r in b.items if i == 0]
    assert len(easy) == 10 * 4 + 5 * 2 + 5 * 4  # short plan: phase 0, then phase 1 (half); longer plan: phase 0 again
    for start in range(0, len(easy), 50):
        assert len(set(easy[start : start + 50])) == len(easy[start : start + 50])
    with pytest.raises(ValueError, match="before step 15"):
        longer.seek(3)
    longer.seek(30)
    assert longer.active_datasets(30) == (0, 1)


def test_a_state_from_the_same_plan_is_not_anchored():
    first = make(SOURCES)
    state = state_after(first, 9)
    second = make(SOURCES)
    second.load_state_dict(state)
    assert second.anchor_step is None
    second.seek(0)  # free to go anywhere
    assert second.next_batch() == make(SOURCES).next_batch()


def test_sequential_keeps_the_last_range_after_the_planned_steps():
    sources = [MixSource("b", 10, start_step=5, end_step=10), MixSource("a", 10, start_step=0, end_step=5)]
    sampler = make(sources, "sequential", batch=3, total_steps=10)
    owners = [{i for i, _ in sampler.next_batch().items} for _ in range(14)]
    assert owners == [{1}] * 5 + [{0}] * 9


def test_curriculum_phases_of_equal_length():
    sources = [MixSource("a", 10, 1.0, order=0), MixSource("b", 10, 1.0, order=1), MixSource("c", 10, 1.0, order=2)]
    sampler = make(sources, "curriculum", batch=6, total_steps=10)
    assert [sampler.active_datasets(k) for k in range(12)] == [(0,)] * 4 + [(0, 1)] * 3 + [(0, 1, 2)] * 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "random"}, "unknown strategy 'random'"),
        ({"global_batch_size": 0}, "global_batch_size must be >= 1"),
        ({"total_steps": 0}, "total_steps must be >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"normalize_weights": False}, r"weights sum to 1.5 \(a 1 \+ b 0.5\)"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, message):
    args = {"strategy": "weighted", "global_batch_size": 8, "total_steps": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        MixingSampler([MixSource("a", 5, 1.0), MixSource("b", 5, 0.5)], **args)


@pytest.mark.parametrize(
    ("sources", "strategy", "message"),
    [
        ([MixSource("a", 5), MixSource("a", 5)], "weighted", r"\(a\).name duplicates data.datasets\[0\]"),
        ([MixSource("a", 5, 0.0)], "weighted", "give at least one dataset a weight > 0"),
        ([MixSource("a", 0, 1.0), MixSource("b", 5)], "weighted", "'a' has no usable rows"),
        ([MixSource("a", 5, order=0), MixSource("b", 5, order=2)], "curriculum", "without gaps"),
        ([MixSource("a", 5, order=0), MixSource("b", 5)], "curriculum", r"\(b\).order is missing; the curriculum strategy needs an order"),
        ([MixSource("a", 5, start_step=0, end_step=5), MixSource("b", 5, start_step=6, end_step=9)], "sequential", r"\(b\).start_step 6 leaves step 5 without a dataset"),
        ([MixSource("a", 5, start_step=0)], "sequential", "start_step and end_step"),
    ],
)
def test_constructor_rejects_inconsistent_mixes(sources, strategy, message):
    with pytest.raises(ValueError, match=message):
        make(sources, strategy)


def test_zero_weight_dataset_without_rows_is_fine_when_weighted():
    sampler = make([MixSource("a", 5, 1.0), MixSource("empty", 0, 0.0)])
    assert {i for i, _ in sampler.next_batch().items} == {0}
    assert sampler.epochs_per_dataset() == {"a": 1.6, "empty": 0.0}


def test_plan_line_for_weighted():
    sampler = make(
        [MixSource("code", 3200, 0.4), MixSource("docs", 1600, 0.4), MixSource("books", 800, 0.2)],
        batch=32,
        total_steps=1000,
    )
    assert describe_plan(sampler) == (
        "3 datasets, weighted: code 40% (~12,800 samples, 4 epochs), "
        "docs 40% (~12,800 samples, 8 epochs), books 20% (~6,400 samples, 8 epochs)"
    )


def test_plan_for_curriculum_has_a_phase_table():
    sources = [MixSource("easy", 100, 1.0, order=0), MixSource("mid", 100, 1.0, order=1), MixSource("hard", 100, 2.0, order=1)]
    text = describe_plan(make(sources, "curriculum", batch=10, total_steps=100))
    assert text.splitlines() == [
        "3 datasets, curriculum: easy 62.5% (~625 samples, 6.25 epochs), mid 12.5% (~125 samples, 1.25 epochs), "
        "hard 25% (~250 samples, 2.5 epochs)",
        "  phase 0, steps 0-49: easy",
        "  phase 1, steps 50-99: hard 50%, easy 25%, mid 25%",
    ]


def test_plan_for_sequential_lists_the_ranges():
    sources = [MixSource("a", 10, start_step=0, end_step=30), MixSource("b", 10, 0.0, start_step=30, end_step=100)]
    sampler = make(sources, "sequential", batch=1, total_steps=100)
    assert describe_plan(sampler).splitlines()[1:] == ["  steps 0-29: a", "  steps 30-99: b"]
    assert plan_summary(make([MixSource("x", 5), MixSource("y", 5, 0.0)])) == "2 datasets, weighted: x 100% (~800 samples, 160 epochs), y 0% (unused)"


def _data(**kw) -> DataSection:
    return DataSection(**kw)


def test_sampler_from_config_uses_the_config_fields():
    data = _data(
        strategy="weighted",
        shuffle_across_datasets=False,
        datasets=[DatasetSpec(name="a", path="a.jsonl", weight=3.0), DatasetSpec(name="b", path="b.jsonl", weight=1.0, max_samples=4)],
    )
    sampler = sampler_from_config(data, [100, 50], global_batch_size=8, total_steps=10, seed=3)
    assert sampler.rows == (100, 4)
    batch = sampler.next_batch()
    assert isinstance(batch, GlobalBatch)
    assert [i for i, _ in batch.items] == [0] * 6 + [1] * 2
    assert sampler.expected_samples() == {"a": 60, "b": 20}


def test_sampler_from_config_raises_config_error_for_an_empty_dataset():
    data = _data(datasets=[DatasetSpec(name="a", path="a.jsonl"), DatasetSpec(name="b", path="b.jsonl", weight=0.5)])
    with pytest.raises(ConfigError, match=r"data.datasets\[1\] \(b\).weight is 0.5 but the dataset has no usable"):
        sampler_from_config(data, [10, 0], global_batch_size=8, total_steps=10, seed=0)
