"""``tui-trainer search FILE [--trials N] [--resume auto|STUDY_DIR]``: a hyperparameter study, headless."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("search", help="hyperparameter search over the config's [search.space], trials pruned on their evals")
    p.add_argument("file", type=Path, help="run config (TOML) with [search] and [search.space]")
    p.add_argument("--trials", type=int, help="override search.trials")
    p.add_argument("--resume", metavar="auto|STUDY_DIR", help="continue a study: auto = this config's newest")
    p.add_argument("--detach", action="store_true", help="run the study in its own session (survives the terminal); print its directory")
    p.add_argument("--study-dir", type=Path, help=argparse.SUPPRESS)  # the detached child's directory, made by its parent
    p.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    from tui_trainer.engine.control import Controls
    from tui_trainer.engine.signals import graceful_signals, stderr_notify
    from tui_trainer.errors import ConfigError
    from tui_trainer.search.study import Study

    if args.trials is not None and args.trials <= 0:
        raise ConfigError(f"--trials {args.trials}: must be at least 1")
    controls = Controls()
    study = Study(args.file, trials=args.trials, resume=args.resume, stop=controls.stop, on_line=_print, study_dir=args.study_dir)
    if args.detach:
        return _detach(args, study.study_dir)
    with graceful_signals(controls, notify=stderr_notify):
        outcome = study.run()
    summary = outcome.summary
    if summary is not None and summary.importances:
        completed = sum(1 for t in summary.trials if t["state"] == "complete")
        _print(f"importance (over {completed} completed trials): " + ", ".join(f"{k} {v:.2f}" for k, v in summary.importances.items()))
    print(outcome.message, file=sys.stdout if outcome.exit_code == 0 else sys.stderr, flush=True)
    if outcome.exit_code == 0:
        _print(f"results: {outcome.study_dir / 'results.json'}; best config: {outcome.study_dir / 'best.toml'}")
    return outcome.exit_code


def _detach(args: argparse.Namespace, study_dir: Path) -> int:
    """The config and space are valid (checked above, in the foreground): run the study in its own session."""
    import subprocess

    cmd = [sys.executable, "-m", "tui_trainer", "search", str(args.file), "--study-dir", str(study_dir)]
    if args.trials is not None:
        cmd += ["--trials", str(args.trials)]
    if args.resume is not None:
        cmd += ["--resume", str(study_dir)]
    with (study_dir / "search.log").open("ab") as log:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (study_dir / "search.pid").write_text(f"{child.pid}\n", encoding="utf-8")
    print(study_dir, flush=True)
    return 0


def _print(line: str) -> None:
    try:
        print(line, flush=True)
    except OSError:
        pass  # the terminal went away; the study directory has everything
