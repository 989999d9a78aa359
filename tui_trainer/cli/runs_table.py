"""``tui-trainer runs``: runs and their checkpoints as tables."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tui_trainer.runs.listing import discover_runs, list_checkpoints


def _fmt_loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _fmt_time(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def print_runs(output_dir: Path, *, verify: bool = False, console: Console | None = None) -> int:
    console = console or Console()
    runs = discover_runs(output_dir)
    if not runs:
        console.print(f"No runs under {output_dir}. Start one with `tui-trainer demo` or `tui-trainer train FILE`.")
        return 0
    for run in runs:
        title = escape(
            f"{run.name}  [{run.status}]  step {run.step}/{run.total_steps or '?'}  best eval {_fmt_loss(run.best_eval)}"
        )
        table = Table(title=title, title_justify="left", expand=False)
        for column in ("checkpoint", "step", "saved", "reason", "loss", "eval loss", "valid"):
            table.add_column(column)
        checkpoints = list_checkpoints(run.path, verify=verify) if verify else run.checkpoints
        for ckpt in checkpoints:
            table.add_row(
                ckpt.path.name,
                str(ckpt.step),
                _fmt_time(ckpt.time),
                ckpt.reason or "-",
                _fmt_loss(ckpt.loss),
                _fmt_loss(ckpt.eval_loss),
                "yes" if ckpt.valid else f"no: {ckpt.problem}",
            )
        if not checkpoints:
            table.add_row("(none)", "", "", "", "", "", "")
        console.print(table)
    return 0
