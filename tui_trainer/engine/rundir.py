"""Run directories: create one, mark it live or ended, and find what a ``--resume`` argument points at."""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.config import RunConfig
from tui_trainer.engine.checkpoints import CheckpointManager, CheckpointRecord, verify_checkpoint
from tui_trainer.errors import ResumeError

STOP_FILE = "STOP"
"""Created by `tui-trainer monitor` (or anyone) to stop a run gracefully; polled each step."""
PID_FILE = "run.pid"
"""host:pid of the process training the run; removed when it ends."""

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
    root = Path(cfg.run.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{cfg.run.name}-{stamp}"
    counter = 2
    while True:
        try:
            candidate.mkdir()
            return candidate.resolve()
        except FileExistsError:  # two runs started in the same second
            candidate = root / f"{cfg.run.name}-{stamp}-{counter}"
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
    if accelerator.num_processes == 1:
        return create_run_dir(cfg)
    from accelerate.utils import broadcast_object_list

    holder = [str(create_run_dir(cfg)) if accelerator.is_main_process else None]
    broadcast_object_list(holder)
    return Path(holder[0])


def mark_running(run_dir: Path) -> None:
    """Clear an old STOP request and write ``run.pid`` (``host:pid``): it lets ``runs`` and the
    home screen tell a live run from one killed with -9."""
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    (run_dir / PID_FILE).write_text(f"{socket.gethostname()}:{os.getpid()}\n", encoding="utf-8")


def mark_ended(run_dir: Path) -> None:
    (run_dir / PID_FILE).unlink(missing_ok=True)
