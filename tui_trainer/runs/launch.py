"""Start a run in other processes: detached (its own session) or through torchrun.

Both create the run directory first, so the caller can print it and follow it
(``runs.listing.EventFollower``, ``rundir.run_owner``) before the first step; the
processes they start find it in ``TUI_TRAINER_RUN_DIR``. Nothing here speaks a protocol of
its own: a detached run is ``tui-trainer train`` in a new session, a multi-process run is
``python -m torch.distributed.run ... -m tui_trainer train`` (through ``runs.torchrun_main``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.config.schema import RunConfig
from tui_trainer.engine.checkpoint.rundir import RUN_DIR_ENV, create_run_dir, resolve_resume, run_owner
from tui_trainer.errors import ConfigError, ResumeError

LOG_FILE = "train.log"
"""stdout and stderr of a detached run, inside its run directory."""
EXIT_STOPPED, EXIT_BUG = 75, 1
FORWARDED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1") if hasattr(signal, name))


@dataclass(frozen=True)
class StartedRun:
    run_dir: Path
    """The run directory the processes write to."""
    pid: int
    """The process started (the detached trainer, or torchrun)."""


@dataclass(frozen=True)
class Distributed:
    nproc: int
    """Processes on this machine (torchrun --nproc-per-node)."""
    nnodes: str | None = None
    """Machines (torchrun --nnodes, e.g. ``2`` or ``1:4``); None: this machine only."""
    node_rank: int | None = None
    """This machine's rank (torchrun --node-rank)."""
    rdzv_endpoint: str | None = None
    """host:port every machine meets at; ``localhost:0`` (a free port) on one machine."""

    @property
    def single_node(self) -> bool:
        return self.nnodes in (None, "1")


def check_nproc(nproc: int) -> None:
    """Refuse what cannot run before anything starts (exit 2)."""
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: needs at least 1 process")
    import torch

    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise ConfigError(
            f"--nproc {nproc}: only {torch.cuda.device_count()} GPU(s) are visible (CUDA_VISIBLE_DEVICES); "
            "use at most that many processes per machine"
        )


def check_world(cfg: RunConfig, *, world_size: int) -> None:
    """The engine's own rule for these processes (engine/accelerators.check_world), checked here
    before torchrun starts: a rank's error would reach us as torchrun's exit 1, not 2."""
    import torch

    from tui_trainer.engine.accelerators import check_world as engine_check

    engine_check(cfg, world_size, torch.cuda.is_available())


def plan_run_dir(cfg: RunConfig, resume: str | None) -> Path:
    """The directory the started processes will train in; refuses a live one (exit 2)."""
    target = resolve_resume(cfg, resume)
    if target is None:
        return create_run_dir(cfg)
    owner = run_owner(target.run_dir)
    if owner is not None:
        raise ResumeError(f"{target.run_dir}: the run is live, trained by {owner}; stop it first and resume after it has saved")
    return target.run_dir


def train_argv(config: Path, *, resume: str | None, sets: Sequence[str], max_steps: int | None, merge: bool) -> list[str]:
    """``tui-trainer train`` arguments for a started process (no --detach / --nproc)."""
    argv = ["train", str(Path(config).resolve())]
    if resume:
        argv += ["--resume", resume]
    for item in sets:
        argv += ["--set", item]
    if max_steps is not None:
        argv += ["--max-steps", str(max_steps)]
    if merge:
        argv.append("--merge")
    return argv


def torchrun_argv(dist: Distributed, train_args: Sequence[str], run_id: str) -> list[str]:
    argv = [sys.executable, "-m", "tui_trainer.runs.torchrun_main", f"--nproc-per-node={dist.nproc}"]
    if dist.single_node:
        argv += ["--nnodes=1", "--rdzv-backend=c10d", f"--rdzv-endpoint={dist.rdzv_endpoint or 'localhost:0'}"]
    else:
        if not dist.rdzv_endpoint:
            raise ConfigError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT (the same on every machine)")
        argv += [f"--nnodes={dist.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={dist.rdzv_endpoint}", f"--rdzv-id={run_id}"]
        if dist.node_rank is not None:
            argv.append(f"--node-rank={dist.node_rank}")
    return [*argv, "-m", "tui_trainer", *train_args]


def start_detached(argv: Sequence[str], run_dir: Path) -> StartedRun:
    """``tui-trainer <argv>`` in its own session (no controlling terminal); output to train.log."""
    with (run_dir / LOG_FILE).open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui_trainer", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, RUN_DIR_ENV: str(run_dir)},
            cwd=os.getcwd(),
        )
    return StartedRun(run_dir, proc.pid)


def run_torchrun(dist: Distributed, train_args: Sequence[str], run_dir: Path | None, run_id: str) -> int:
    """Run torchrun in the foreground; our stop signals reach it once; returns rank 0's exit code.

    torchrun gets its own session so a Ctrl-C on the terminal reaches the ranks once, through
    it, and not a second time directly (three would force an exit mid-save). SIGUSR1, which
    torchrun does not handle, is forwarded as SIGTERM.
    """
    env = dict(os.environ)
    if run_dir is not None:
        env[RUN_DIR_ENV] = str(run_dir)
    proc = subprocess.Popen(torchrun_argv(dist, train_args, run_id), env=env, start_new_session=True)

    def forward(signum: int, _frame) -> None:
        sig = signal.SIGTERM if signum == getattr(signal, "SIGUSR1", None) else signum
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        code = proc.wait()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if run_dir is None:
        return code
    # torchrun reports any non-zero rank exit as its own failure (1); the run's log says what happened.
    return exit_code_of(run_dir, fallback=code)


def exit_code_of(run_dir: Path, *, fallback: int) -> int:
    """What ``train()`` returned on rank 0 (0 finished, 75 stopped, 2 user error, 1 bug), read
    back from its events.jsonl."""
    last = None
    try:
        lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return fallback
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("type") in ("run_finished", "run_stopped", "run_failed", "run_started"):
            last = item
    if last is None or last["type"] == "run_started":
        return fallback if fallback else EXIT_BUG
    if last["type"] == "run_finished":
        return 0
    if last["type"] == "run_stopped":
        return EXIT_STOPPED
    return 2 if _is_user_error(str(last.get("error", ""))) else EXIT_BUG


def _is_user_error(error: str) -> bool:
    from tui_trainer import errors

    name = error.split(":", 1)[0].strip()
    kind = getattr(errors, name, None)
    return isinstance(kind, type) and issubclass(kind, errors.UserError)
