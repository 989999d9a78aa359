"""``tui-trainer train``: in this process, detached (``--detach``), or through torchrun (``--nproc``).

The config is validated here first, so a bad one is exit 2 in the foreground, before any
process is started or any directory created.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from tui_trainer.errors import ConfigError


def add_launch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach", action="store_true", help="train in the background (own session, output in RUN/train.log); prints the run directory")
    p.add_argument("--nproc", type=int, metavar="N", help="train with N processes through torchrun (default: this one process)")
    p.add_argument("--nnodes", metavar="N", help="machines taking part (torchrun --nnodes); needs --rdzv-endpoint")
    p.add_argument("--node-rank", type=int, metavar="R", help="this machine's rank (torchrun --node-rank)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="where the machines meet (torchrun --rdzv-endpoint)")


def cmd_train(args: argparse.Namespace, run_here: Callable[..., int]) -> int:
    from tui_trainer.config.io import load_config

    cfg = load_config(args.file, args.set)
    launched = args.detach or args.nproc is not None or args.nnodes is not None
    if not launched:
        return run_here(cfg, resume=args.resume, max_steps=args.max_steps, merge=args.merge)
    from tui_trainer.engine.checkpoint.rundir import RUN_DIR_ENV
    from tui_trainer.runs.launch import Distributed, check_nproc, check_world, plan_run_dir, run_torchrun
    from tui_trainer.runs.launch import start_detached, train_argv

    if args.nproc is None and (args.nnodes or args.node_rank is not None or args.rdzv_endpoint):
        raise ConfigError("--nnodes / --node-rank / --rdzv-endpoint need --nproc N (processes on this machine)")
    if args.nproc is not None:
        check_nproc(args.nproc)
        # Several machines: their count is known to torchrun only; each has at least this many.
        check_world(cfg, world_size=args.nproc)
    if args.max_steps is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": args.max_steps})})
    inner = train_argv(args.file, resume=args.resume, sets=args.set, max_steps=args.max_steps, merge=args.merge)
    dist = Distributed(args.nproc, args.nnodes, args.node_rank, args.rdzv_endpoint) if args.nproc is not None else None
    # On several machines rank 0 creates the directory on its own disk; here it can be made first.
    # A detached `--nproc N` trainer got its directory from the launcher that printed it.
    planned = os.environ.get(RUN_DIR_ENV) if not args.detach else None
    if planned:
        run_dir: Path | None = Path(planned)
    else:
        run_dir = plan_run_dir(cfg, args.resume) if dist is None or dist.single_node else None
    if args.detach:
        if run_dir is None:
            raise ConfigError("--detach with --nnodes above 1: detach each machine's launcher with your scheduler instead")
        if dist is not None:
            inner = [*inner, "--nproc", str(dist.nproc)]
        started = start_detached(inner, run_dir)
        print(run_dir, flush=True)
        print(f"training detached (pid {started.pid}); follow it: tui-trainer monitor {run_dir}", file=sys.stderr, flush=True)
        return 0
    return run_torchrun(dist, inner, run_dir, run_id=cfg.run.name)


def is_main_rank() -> bool:
    """False in the ranks 1.. that torchrun starts: they print nothing (rank 0 reports the run)."""
    return os.environ.get("RANK", "0") == "0"
