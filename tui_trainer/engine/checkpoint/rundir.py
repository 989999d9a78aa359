"""Run directories: create one, mark it live or ended, and find what a ``--resume`` argument points at."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.config.schema import RunConfig
from tui_trainer.engine.checkpoint.store import CheckpointManager, CheckpointRecord, verify_checkpoint
from tui_trainer.errors import ConfigError, ResumeError

STOP_FILE = "STOP"
"""Created by `tui-trainer monitor` (or anyone) to stop a run gracefully; polled each step."""
PID_FILE = "run.pid"
"""host:pid of the process training the run; removed when it ends."""
LOCK_FILE = "run.lock"
"""Exclusively flock-ed by the process training the run, for the life of the run; the kernel
drops the lock when that process dies, so a run killed with -9 frees its directory."""

RUN_DIR_ENV = "TUI_TRAINER_RUN_DIR"
"""Set by a launcher (``--detach``, ``--nproc``) that created the run directory before
starting the processes that train it, so it knows the directory to print and to follow."""

_held: dict[Path, int] = {}
"""Run directories this process owns -> the open descriptor holding the lock."""

_RUN_SUFFIX = re.compile(r"-(\d{8}-\d{6})(?:-(\d+))?$")


@dataclass(frozen=True)
class ResumeTarget:
    run_dir: Path
    """The run directory the resumed run keeps writing to."""
    checkpoint: Path
    """The verified checkpoint to load."""
    skipped: tuple[CheckpointRecord, ...]
    """Newer checkpoints that failed verification, with the reason."""


def create_run_dir(cfg: RunConfig) -> Path:
    root = Path(cfg.run.output_dir).expanduser()
    try:
        return _new_run_dir(root, cfg.run.name)
    except OSError as err:
        raise output_dir_error(cfg.run.output_dir, err) from None


def check_output_dir(cfg: RunConfig) -> None:
    """Fail before any slow work (data, model) when run.output_dir cannot hold a run directory.

    Creates nothing; ``create_run_dir`` still turns a later failure into the same error.
    """
    root = Path(cfg.run.output_dir).expanduser()
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir():
        raise output_dir_error(cfg.run.output_dir, NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise output_dir_error(cfg.run.output_dir, PermissionError(errno.EACCES, f"{existing} is not writable"))


def output_dir_error(output_dir: str, err: OSError) -> ConfigError:
    """run.output_dir is unusable: say which path is in the way and what to do."""
    root = Path(output_dir).expanduser()
    blocker = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        why = f"{blocker} is a file, not a directory"
    else:
        why = f"cannot create a run directory there ({err.strerror or type(err).__name__})"
    return ConfigError(
        f"run.output_dir = {output_dir!r}: {why}; set run.output_dir (or --set run.output_dir=DIR) "
        "to a directory you can write to (it is created if missing)"
    )


def _new_run_dir(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{name}-{stamp}"
    counter = 2
    while True:
        try:
            candidate.mkdir()
            return candidate.resolve()
        except FileExistsError:  # two runs started in the same second
            candidate = root / f"{name}-{stamp}-{counter}"
            counter += 1


def runs_of(output_dir: Path, name: str) -> list[Path]:
    """Run directories named ``<name>-<timestamp>``, newest first."""
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = _RUN_SUFFIX.search(path.name)
        if path.is_dir() and match and path.name[: match.start()] == name:
            found.append((match.group(1), int(match.group(2) or 1), path))
    return [p for *_, p in sorted(found, reverse=True)]


def is_run_dir(path: Path) -> bool:
    return (path / "checkpoints").is_dir() or (path / "events.jsonl").is_file()


def _newest_in_run(run_dir: Path, cfg: RunConfig) -> ResumeTarget | None:
    manager = CheckpointManager(run_dir / "checkpoints", keep_last=cfg.checkpoint.keep_last, keep_best=True)
    checkpoint, skipped = manager.newest_valid()
    if checkpoint is None:
        return None
    return ResumeTarget(run_dir, checkpoint, tuple(skipped))


def resolve_resume(cfg: RunConfig, resume: str | Path | None) -> ResumeTarget | None:
    """None means "start fresh" (``auto`` with nothing to resume)."""
    if resume is None or resume == "":
        return None
    if str(resume) == "auto":
        for run_dir in runs_of(Path(cfg.run.output_dir), cfg.run.name):
            target = _newest_in_run(run_dir, cfg)
            if target is not None:
                return target
        return None
    path = Path(resume).expanduser()
    if not path.exists():
        raise ResumeError(f"--resume {resume}: no such run directory or checkpoint")
    if is_run_dir(path):
        target = _newest_in_run(path.resolve(), cfg)
        if target is None:
            raise ResumeError(
                f"--resume {resume}: the run has no valid checkpoint to resume from; "
                f"`tui-trainer runs {path.parent}` lists its checkpoints and why they are not valid"
            )
        return target
    problem = verify_checkpoint(path, full=True)
    if problem is not None:
        raise ResumeError(f"--resume {resume}: this checkpoint cannot be loaded: {problem}; pick an older one")
    checkpoint = path.resolve()
    return ResumeTarget(checkpoint.parent.parent, checkpoint, ())


def shared_run_dir(accelerator, cfg: RunConfig, resume_target: ResumeTarget | None) -> Path:
    """The run directory, created once by the main process and shared with every rank."""
    if resume_target is not None:
        return resume_target.run_dir
    planned = os.environ.get(RUN_DIR_ENV)
    if planned:
        return Path(planned).resolve()
    if accelerator.num_processes == 1:
        return create_run_dir(cfg)
    from accelerate.utils import broadcast_object_list

    holder = [str(create_run_dir(cfg)) if accelerator.is_main_process else None]
    broadcast_object_list(holder)
    return Path(holder[0])


def _try_lock(run_dir: Path) -> int | None:
    """An fd holding the exclusive lock on ``run_dir``, or None when another process holds it."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def run_owner(run_dir: Path) -> str | None:
    """``host:pid`` of the live process training ``run_dir``, or None when nobody does.

    The lock decides (it dies with its process); ``run.pid`` only names the owner. A run of
    an older version without a lock file counts as live while its ``run.pid`` exists.
    """
    run_dir = Path(run_dir)
    try:
        owner = (run_dir / PID_FILE).read_text(encoding="utf-8").strip() or "unknown process"
    except OSError:
        owner = None
    if run_dir.resolve() in _held:
        return owner or f"{socket.gethostname()}:{os.getpid()}"
    if not (run_dir / LOCK_FILE).exists():
        return owner
    try:
        fd = _try_lock(run_dir)
    except OSError:
        return owner
    if fd is None:
        return owner or "unknown process"
    os.close(fd)
    return None


def mark_running(run_dir: Path) -> None:
    """Take the run directory (exclusive lock), clear an old STOP request and write ``run.pid``
    (``host:pid``), which names the owner for ``runs``, the home screen and a refused resume.

    Call it before touching anything in the directory: a second trainer must change nothing.
    """
    key = run_dir.resolve()
    if key not in _held:
        fd = _try_lock(run_dir)
        if fd is None:
            raise ResumeError(
                f"{run_dir}: the run is live, trained by {run_owner(run_dir)}; stop it first "
                f"(tui-trainer monitor {run_dir}, or touch {run_dir / STOP_FILE}) and resume after it has saved"
            )
        _held[key] = fd
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    (run_dir / PID_FILE).write_text(f"{socket.gethostname()}:{os.getpid()}\n", encoding="utf-8")


def mark_ended(run_dir: Path) -> None:
    """Give the directory up; a process that never owned it (a refused resume) touches nothing."""
    fd = _held.pop(run_dir.resolve(), None)
    if fd is None:
        return
    try:
        (run_dir / PID_FILE).unlink(missing_ok=True)
    finally:
        os.close(fd)
