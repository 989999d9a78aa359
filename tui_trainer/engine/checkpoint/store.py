"""Atomic, verifiable checkpoint directories (DESIGN §4.3).

A checkpoint is written into ``step-NNNNNNNN.tmp/``; every file is fsynced, then
``manifest.json`` (names, sizes, sha256) is written *last*, the directory is fsynced and
renamed to ``step-NNNNNNNN/``. A directory without a manifest that matches its files is
never loaded, so a crash, a kill -9 or a full disk at any moment leaves either the old
set of checkpoints or the old set plus one complete new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.json"
MANIFEST_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d{8,})$")
_TMP_DIR = re.compile(r"^step-(\d{8,})\.tmp$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


@dataclass(frozen=True)
class CheckpointRecord:
    path: Path
    """The checkpoint directory."""
    step: int
    """Optimizer steps completed when it was saved (from the directory name)."""
    problem: str | None
    """Why it cannot be loaded, or None when it is valid."""

    @property
    def valid(self) -> bool:
        return self.problem is None


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _data_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(directory: Path) -> dict[str, Any]:
    files = {
        str(p.relative_to(directory)): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in _data_files(directory)
    }
    manifest = {"version": MANIFEST_VERSION, "created": time.time(), "files": files}
    target = directory / MANIFEST
    target.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    _fsync_file(target)
    return manifest


def verify_checkpoint(directory: Path, *, full: bool = True) -> str | None:
    """Return None when the checkpoint is intact, else the reason it is not.

    ``full=False`` checks presence and sizes only (cheap enough for listings of 7B
    checkpoints); loading always verifies sha256.
    """
    manifest_path = directory / MANIFEST
    if not directory.is_dir():
        return "not a directory"
    if not manifest_path.is_file():
        return "no manifest.json (incomplete write)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("version") != MANIFEST_VERSION or not isinstance(files, dict):
            return "manifest.json has an unknown format"
    except (OSError, ValueError, KeyError, TypeError):
        return "manifest.json is unreadable"
    if TRAINER_STATE not in files:
        return f"manifest lists no {TRAINER_STATE}"
    present = {str(p.relative_to(directory)) for p in _data_files(directory)}
    for name, meta in files.items():
        path = directory / name
        if name not in present:
            return f"{name} is missing"
        if path.stat().st_size != meta.get("size"):
            return f"{name} has {path.stat().st_size} bytes, manifest says {meta.get('size')}"
        if full and _sha256(path) != meta.get("sha256"):
            return f"{name} does not match its sha256 (corrupted)"
    extra = sorted(present - set(files))
    if extra:
        return f"files not in the manifest: {', '.join(extra)}"
    return None


def read_trainer_state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / TRAINER_STATE).read_text(encoding="utf-8"))


class CheckpointManager:
    """Saves, lists, verifies and prunes the checkpoints of one run directory."""

    def __init__(self, root: Path, *, keep_last: int, keep_best: bool) -> None:
        self.root = root
        self.keep_last = keep_last
        self.keep_best = keep_best
        self.best_step: int | None = None
        self.final_step: int | None = None

    def remove_partial(self) -> list[Path]:
        """Delete ``.tmp`` leftovers of an interrupted save (they are never loadable)."""
        removed = []
        if self.root.is_dir():
            for path in self.root.iterdir():
                if _TMP_DIR.match(path.name):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        return removed

    def save(self, step: int, write: Callable[[Path], None]) -> Path:
        """Run ``write(tmp_dir)``, then fsync, manifest and rename; on any failure remove the tmp dir."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / checkpoint_name(step)
        tmp = self.root / f"{checkpoint_name(step)}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            write(tmp)
            for path in _data_files(tmp):
                _fsync_file(path)
            write_manifest(tmp)
            _fsync_dir(tmp)
            if final.exists():
                # Same step saved twice (e.g. "checkpoint now" right after an interval save):
                # move the old one aside first so a valid copy exists at every instant.
                old = self.root / f"{checkpoint_name(step)}.old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def records(self, *, full: bool = False) -> list[CheckpointRecord]:
        """All checkpoint directories, oldest first by step number (numeric, not string order)."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = _STEP_DIR.match(path.name)
            if match:
                found.append(CheckpointRecord(path, int(match.group(1)), verify_checkpoint(path, full=full)))
        return sorted(found, key=lambda r: r.step)

    def newest_valid(self) -> tuple[Path | None, list[CheckpointRecord]]:
        """The newest checkpoint that passes full verification, and the newer ones that did not."""
        skipped: list[CheckpointRecord] = []
        for record in reversed(self.records(full=False)):
            problem = record.problem or verify_checkpoint(record.path, full=True)
            if problem is None:
                return record.path, skipped
            skipped.append(CheckpointRecord(record.path, record.step, problem))
        return None, skipped

    def prune(self) -> list[Path]:
        """Keep the newest ``keep_last`` valid checkpoints plus the best and the final one."""
        records = [r for r in self.records(full=False) if r.valid]
        protected = {self.final_step}
        if self.keep_best:
            protected.add(self.best_step)
        newest = {r.step for r in records[-self.keep_last :]} if self.keep_last > 0 else set()
        removed = []
        for record in records:
            if record.step not in newest and record.step not in protected:
                shutil.rmtree(record.path, ignore_errors=True)
                removed.append(record.path)
        return removed
