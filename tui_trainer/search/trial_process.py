"""One trial = one ``tui-trainer train`` process: launched, followed through its events, stopped gracefully.

A process per trial is what keeps a study from leaking memory between trials (the HF
Trainer's in-process trials leaked GPU memory for years, transformers #13019); the
study process itself never loads a model.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.runs.listing import request_stop


def _terminate_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the study process dies (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


@dataclass(frozen=True)
class EvalPoint:
    """One eval of a trial, as the study reads it."""

    step: int
    """Optimizer step of the eval."""
    value: float
    """The objective at that eval (NaN when the metric was missing or non-finite)."""


def objective_of(event: dict[str, Any], objective: str) -> float:
    """The objective from an ``eval`` event line: a top-level field or one of the task's ``metrics``."""
    value = event.get(objective)
    if value is None:
        value = (event.get("metrics") or {}).get(objective)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


@dataclass
class TrialProcess:
    """A running (or finished) trial's process and what its events said so far."""

    number: int
    """optuna's trial number."""
    root: Path
    """``trials/NNN/``: the trial's config, log and run directory."""
    params: dict[str, Any]
    """The sampled values of the searched keys."""
    process: subprocess.Popen | None = None
    """The ``tui-trainer train`` child."""
    evals: list[EvalPoint] = field(default_factory=list)
    """Evals seen so far, in order."""
    error: str | None = None
    """The run's own error message (``run_failed`` or the last stderr line) when it failed."""
    stop_requested: bool = False
    """True once the study asked the trial to stop (pruned, or the study is stopping)."""
    steps: int = 0
    """Optimizer steps the trial reported last."""
    _offset: int = 0
    _partial: bytes = b""

    @property
    def run_dir(self) -> Path | None:
        """The run directory the engine created under ``root`` (None until it exists)."""
        dirs = sorted(p for p in self.root.glob("trial-*") if p.is_dir())
        return dirs[-1] if dirs else None

    def start(self, config_text: str, resume: Path | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.toml"
        config.write_text(config_text, encoding="utf-8")
        cmd = [sys.executable, "-m", "tui_trainer", "train", str(config)]
        if resume is not None:
            cmd += ["--resume", str(resume)]
        log = (self.root / "train.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Its own session: a Ctrl+C meant for the study reaches the trials only as the study's graceful STOP.
        # And SIGTERM when the study dies (kill -9, a dropped session): the trial saves, exits 75, and
        # `search --resume` continues it from that checkpoint instead of it training on unwatched.
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=_terminate_with_parent,
        )
        log.close()

    def poll_events(self, objective: str) -> list[EvalPoint]:
        """Read the run's new complete event lines; return the new evals."""
        run_dir = self.run_dir
        if run_dir is None:
            return []
        try:
            with (run_dir / "events.jsonl").open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        new = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("type")
            self.steps = max(self.steps, int(event.get("step") or 0))
            if kind == "eval":
                point = EvalPoint(int(event.get("step") or 0), objective_of(event, objective))
                self.evals.append(point)
                new.append(point)
            elif kind == "run_failed":
                self.error = str(event.get("error") or "failed")
        return new

    def request_stop(self) -> None:
        """The run's own graceful stop: it finishes the step, saves a checkpoint and exits 75."""
        if self.stop_requested:
            return
        self.stop_requested = True
        run_dir = self.run_dir
        if run_dir is not None:
            request_stop(run_dir)
        elif self.process is not None and self.process.poll() is None:
            self.process.terminate()  # still preparing: SIGTERM is the same graceful stop

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def failure_text(self) -> str:
        """Why the trial failed: its run_failed event, else the last lines of its log."""
        if self.error:
            return self.error
        try:
            lines = (self.root / "train.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return " ".join(lines[-3:]) if lines else f"exit code {self.returncode()}"
