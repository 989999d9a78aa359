"""Run directories as the home screen, the resume picker, ``runs`` and ``monitor`` see them.

Everything is read from disk (``events.jsonl``, ``checkpoints/``, ``run.pid``) so it works
for runs of other processes, finished runs and runs killed with -9 alike.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.engine.checkpoint.store import CheckpointManager, read_trainer_state
from tui_trainer.engine.events import Event, event_from_dict
from tui_trainer.engine.checkpoint.rundir import PID_FILE, STOP_FILE, run_owner

_TERMINAL = {"run_finished": "finished", "run_stopped": "stopped", "run_failed": "failed"}


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    """The checkpoint directory."""
    step: int
    """Optimizer steps completed when it was saved."""
    time: float
    """Unix time it was saved (0 when unknown)."""
    loss: float | None
    """Training loss of its last step."""
    eval_loss: float | None
    """Latest eval loss when it was saved."""
    reason: str | None
    """Why it was saved: interval, time, signal, user, final, best."""
    valid: bool
    """Whether it can be resumed from."""
    problem: str | None
    """Why it is not valid (None when valid)."""


@dataclass(frozen=True)
class RunInfo:
    path: Path
    """The run directory."""
    name: str
    """Directory name (``<name>-<timestamp>``)."""
    status: str
    """running | finished | stopped | failed | unknown."""
    step: int
    """Last step reached."""
    total_steps: int
    """Steps the run was set to take."""
    best_eval: float | None
    """Lowest eval loss seen."""
    checkpoints: tuple[CheckpointInfo, ...]
    """All checkpoints, oldest first."""
    last_checkpoint: CheckpointInfo | None
    """Newest valid checkpoint."""
    started: float
    """Unix time of the first event (directory mtime when there are none)."""
    updated: float
    """Unix time of the last event."""
    owner: str | None = None
    """``host:pid`` of the live process training it (None unless the status is running)."""


def list_checkpoints(run_dir: str | Path, *, verify: bool = False) -> list[CheckpointInfo]:
    """Checkpoints of a run, oldest first; ``verify`` also checks sha256 (slow for large models)."""
    manager = CheckpointManager(Path(run_dir) / "checkpoints", keep_last=1, keep_best=False)
    infos = []
    for record in manager.records(full=verify):
        state: dict = {}
        if record.valid:
            try:
                state = read_trainer_state(record.path)
            except (OSError, ValueError):
                state = {}
        infos.append(
            CheckpointInfo(
                path=record.path,
                step=record.step,
                time=float(state.get("time") or record.path.stat().st_mtime),
                loss=state.get("loss"),
                eval_loss=state.get("eval_loss"),
                reason=state.get("reason"),
                valid=record.valid,
                problem=record.problem,
            )
        )
    return infos


def _pid_owner(run_dir: Path) -> tuple[str, str] | None:
    """(host, pid) as ``run.pid`` names them, None without the file."""
    try:
        host, _, pid = (run_dir / PID_FILE).read_text(encoding="utf-8").strip().rpartition(":")
    except OSError:
        return None
    return host, pid


def _pid_alive(run_dir: Path) -> bool:
    owner = _pid_owner(run_dir)
    if owner is None:
        return False
    host, pid = owner
    if host != socket.gethostname():
        return True  # another machine's run: trust the file
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError):
        return False


def read_run(run_dir: str | Path) -> RunInfo:
    run_dir = Path(run_dir)
    status, step, total, best = "unknown", 0, 0, None
    started = updated = run_dir.stat().st_mtime
    raw = _raw_lines(run_dir / "events.jsonl")
    if raw:
        started = float(raw[0].get("time", started))
        updated = float(raw[-1].get("time", updated))
    for item in raw:
        kind = item.get("type")
        step = max(step, int(item.get("step", 0) or 0))
        if kind in ("run_started", "step"):
            total = int(item.get("total_steps", total) or total)
            if kind == "run_started":
                status = "running"
        elif kind == "eval" and item.get("eval_loss") is not None:
            best = item["eval_loss"] if best is None else min(best, item["eval_loss"])
        elif kind in _TERMINAL:
            status = _TERMINAL[kind]
    checkpoints = tuple(list_checkpoints(run_dir))
    owner = run_owner(run_dir) if status == "running" and _pid_alive(run_dir) else None
    if status == "running" and owner is None:
        # Killed without a goodbye (kill -9, power loss): resumable if a checkpoint survived.
        status = "stopped" if any(c.valid for c in checkpoints) else "failed"
    valid = [c for c in checkpoints if c.valid]
    return RunInfo(
        path=run_dir,
        name=run_dir.name,
        status=status,
        step=step,
        total_steps=total,
        best_eval=best,
        checkpoints=checkpoints,
        last_checkpoint=valid[-1] if valid else None,
        started=started,
        updated=updated,
        owner=owner,
    )


def discover_runs(output_dir: str | Path) -> list[RunInfo]:
    """Runs directly under ``output_dir``, newest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    runs = [
        read_run(path)
        for path in root.iterdir()
        if path.is_dir()
        and ((path / "events.jsonl").exists() or (path / "checkpoints").is_dir())
        and not (path / "study.journal").exists()  # a search study: its trials are runs, it is not (search/progress.py)
    ]
    return sorted(runs, key=lambda r: r.started, reverse=True)


def _raw_lines(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    items = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line being written right now, or damaged: skip, never fail a listing
        if isinstance(item, dict):
            items.append(item)
    return items


class EventFollower:
    """Follows ``events.jsonl`` of a run another process writes; returns only complete new lines."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "events.jsonl"
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Event]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # incomplete last line: keep for the next poll
        events = []
        for line in lines:
            try:
                event = event_from_dict(json.loads(line))
            except ValueError:
                continue
            if event is not None:
                events.append(event)
        return events

    def remote_host(self) -> str | None:
        """The machine training this run when it is not this one (``run.pid`` names it), else None.

        A run on another node over shared storage: this machine's GPU says nothing about it."""
        owner = _pid_owner(self.path.parent)
        host = owner[0] if owner else ""
        return host if host and host != socket.gethostname() else None


def request_stop(run_dir: str | Path) -> Path:
    """Ask the process training ``run_dir`` to stop gracefully (it polls this file each step)."""
    path = Path(run_dir) / STOP_FILE
    path.write_text("stop requested\n", encoding="utf-8")
    return path
