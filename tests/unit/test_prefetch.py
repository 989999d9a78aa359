"""BatchFeed: the next step's rows are collated on a thread while this step computes, without changing anything."""

from __future__ import annotations

import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.data.mixing.sampler import MixingSampler, MixSource
from tui_trainer.engine.prefetch import BatchFeed
from tui_trainer.tasks.base import Batch


class FakeTask:
    """Collates (dataset, row) pairs into a tensor of their codes; records the thread of every call."""

    collate_ahead = True

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.calls: list[tuple] = []
        self.fail_on: tuple | None = None

    def collate(self, prepared, items, split="train") -> Batch:
        self.threads.append(threading.current_thread().name)
        self.calls.append(tuple(items))
        if self.fail_on is not None and tuple(items) == self.fail_on:
            raise RuntimeError("bad row")
        codes = torch.tensor([d * 1000 + r for d, r in items], dtype=torch.long)
        ones = torch.ones(len(items), dtype=torch.long)
        return Batch({"codes": codes}, n_targets=ones, work=ones)


def sampler(total_steps: int = 12, batch: int = 4, seed: int = 3) -> MixingSampler:
    sources = [MixSource("a", 7, 0.6), MixSource("b", 5, 0.4)]
    return MixingSampler(sources, strategy="weighted", global_batch_size=batch, total_steps=total_steps, seed=seed)


TARGETS = [torch.arange(7) % 3, torch.arange(5) % 2 + 1]


def inline_rows(s: MixingSampler, steps: int, world: int = 1, rank: int = 0) -> list[tuple]:
    task = FakeTask()
    feed = BatchFeed(task, [], targets=TARGETS, rank=rank, world=world, ahead=False)
    out = []
    for _ in range(steps):
        fed = feed.take(s.next_batch(), s)
        out.append((fed.rows.tensors["codes"].tolist(), fed.dataset_ids.tolist(), fed.global_targets))
    return out


def fed_rows(feed: BatchFeed, s: MixingSampler, steps: int) -> list[tuple]:
    out = []
    for _ in range(steps):
        fed = feed.take(s.next_batch(), s)
        out.append((fed.rows.tensors["codes"].tolist(), fed.dataset_ids.tolist(), fed.global_targets))
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 15), st.integers(1, 6), st.integers(0, 50), st.sampled_from([(1, 0), (2, 0), (2, 1)]))
def test_prefetched_rows_equal_inline_rows_and_the_sampler_never_runs_ahead(steps, batch, seed, rank_world):
    world, rank = rank_world
    expected = inline_rows(sampler(steps, batch * world, seed), steps, world, rank)
    s = sampler(steps, batch * world, seed)
    task = FakeTask()
    feed = BatchFeed(task, [], targets=TARGETS, rank=rank, world=world)
    got = []
    for step in range(steps):
        got.extend(fed_rows(feed, s, 1))
        assert s.step == step + 1  # the real sampler advanced exactly once per step
    feed.close()
    assert got == expected
    assert feed.hits == steps - 1  # every step but the first came from the look-ahead


def test_the_next_steps_rows_are_collated_while_this_step_runs():
    s = sampler()
    started = threading.Event()
    release = threading.Event()

    class GatedTask(FakeTask):
        def collate(self, prepared, items, split="train"):
            if threading.current_thread() is not threading.main_thread():
                started.set()
                assert release.wait(10)
            return super().collate(prepared, items, split)

    task = GatedTask()
    feed = BatchFeed(task, [], targets=TARGETS)
    feed.take(s.next_batch(), s)
    # "Compute" of step 0: the look-ahead for step 1 is already running, on another thread.
    assert started.wait(10)
    release.set()
    feed.take(s.next_batch(), s)
    feed.close()
    assert feed.hits == 1
    assert task.threads[0] == threading.main_thread().name
    assert task.threads[1].startswith("tui-trainer-prefetch")


def test_a_sampler_moved_by_resume_or_rollback_drops_the_stale_look_ahead():
    s = sampler(total_steps=20)
    feed = BatchFeed(FakeTask(), [], targets=TARGETS)
    fed_rows(feed, s, 5)  # look-ahead for step 5 is pending
    s.seek(2)  # a rollback to step 2
    got = fed_rows(feed, s, 4)
    feed.close()
    reference = sampler(total_steps=20)
    reference.seek(2)
    assert got == inline_rows(reference, 4)


def test_a_task_whose_collate_starts_the_step_is_collated_in_line():
    s = sampler()
    task = FakeTask()
    task.collate_ahead = False
    feed = BatchFeed(task, [], targets=TARGETS)
    fed_rows(feed, s, 6)
    assert feed.hits == 0
    assert set(task.threads) == {threading.main_thread().name}
    assert len(task.calls) == 6  # once per step, never a second time for a look-ahead


def test_no_look_ahead_past_the_last_step():
    s = sampler(total_steps=3)
    task = FakeTask()
    feed = BatchFeed(task, [], targets=TARGETS)
    fed_rows(feed, s, 3)
    feed.close()
    assert len(task.calls) == 3


def test_a_collation_error_in_the_look_ahead_surfaces_at_its_step():
    s = sampler()
    probe = sampler()
    probe.next_batch()
    task = FakeTask()
    task.fail_on = probe.next_batch().items  # step 1's rows
    feed = BatchFeed(task, [], targets=TARGETS)
    feed.take(s.next_batch(), s)
    with pytest.raises(RuntimeError, match="bad row"):
        feed.take(s.next_batch(), s)
    feed.close()
