"""Atomic checkpoint directories: manifest last, corruption detected, numeric retention, failed saves."""

from __future__ import annotations

import errno
import json

import pytest

from tui_trainer.engine.checkpoint.store import CheckpointManager, checkpoint_name, verify_checkpoint


def _writer(payload: bytes = b"x" * 100):
    def write(directory):
        (directory / "weights.bin").write_bytes(payload)
        (directory / "trainer_state.json").write_text(json.dumps({"step": 1}))

    return write


def test_save_writes_manifest_and_no_tmp_left(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3, keep_best=False)
    path = manager.save(5, _writer())
    assert path.name == "step-00000005"
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"weights.bin", "trainer_state.json"}
    assert manifest["files"]["weights.bin"]["size"] == 100
    assert len(manifest["files"]["weights.bin"]["sha256"]) == 64
    assert verify_checkpoint(path) is None
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: (p / "manifest.json").unlink(), "no manifest.json"),
        (lambda p: (p / "weights.bin").write_bytes(b"x" * 50), "manifest says 100"),
        (lambda p: (p / "weights.bin").write_bytes(b"y" + b"x" * 99), "sha256"),
        (lambda p: (p / "weights.bin").unlink(), "weights.bin is missing"),
        (lambda p: (p / "extra.pt").write_bytes(b"1"), "not in the manifest"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "unreadable"),
    ],
)
def test_damaged_checkpoints_are_detected_and_skipped(tmp_path, damage, problem):
    manager = CheckpointManager(tmp_path, keep_last=5, keep_best=False)
    older = manager.save(10, _writer())
    newer = manager.save(20, _writer())
    damage(newer)
    assert problem in verify_checkpoint(newer)
    chosen, skipped = manager.newest_valid()
    assert chosen == older
    assert [s.path for s in skipped] == [newer] and problem in skipped[0].problem


def test_write_failure_removes_tmp_and_keeps_earlier(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=5, keep_best=False)
    good = manager.save(1, _writer())

    def failing(directory):
        (directory / "weights.bin").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        manager.save(2, failing)
    assert not (tmp_path / "step-00000002.tmp").exists()
    assert not (tmp_path / "step-00000002").exists()
    assert verify_checkpoint(good) is None


def test_leftover_tmp_is_removed_and_never_listed(tmp_path):
    (tmp_path / "step-00000009.tmp").mkdir(parents=True)
    (tmp_path / "step-00000009.tmp" / "weights.bin").write_bytes(b"half")
    manager = CheckpointManager(tmp_path, keep_last=2, keep_best=False)
    assert manager.records() == []
    assert manager.remove_partial() == [tmp_path / "step-00000009.tmp"]
    assert not (tmp_path / "step-00000009.tmp").exists()


@pytest.mark.parametrize("steps", [9, 10, 100, 1000])
def test_retention_numeric_keep_last_plus_best_and_final(tmp_path, steps):
    manager = CheckpointManager(tmp_path, keep_last=3, keep_best=True)
    every = max(1, steps // 10)
    saved = list(range(every, steps + 1, every))
    manager.best_step = saved[1]
    for step in saved:
        manager.save(step, _writer())
        manager.prune()
    manager.final_step = saved[-1]
    manager.prune()
    kept = [r.step for r in manager.records()]
    assert kept == sorted({saved[1], *saved[-3:]})


def test_retention_is_numeric_not_lexicographic(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2, keep_best=False)
    for step in (9, 10, 99, 100, 1000):
        manager.save(step, _writer())
    manager.prune()
    assert [r.step for r in manager.records()] == [100, 1000]


def test_final_checkpoint_never_pruned(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1, keep_best=False)
    manager.save(5, _writer())
    manager.final_step = 5
    manager.save(6, _writer())
    manager.prune()
    assert [r.step for r in manager.records()] == [5, 6]


def test_saving_same_step_twice_replaces_atomically(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3, keep_best=False)
    manager.save(3, _writer(b"a" * 10))
    path = manager.save(3, _writer(b"b" * 10))
    assert (path / "weights.bin").read_bytes() == b"b" * 10
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_name(3)]
