"""``tui-trainer report RUN_DIR [RUN_DIR ...]``: write report.html for a run, or one page comparing several."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tui_trainer.errors import DataError


def _cmd_report(args: argparse.Namespace) -> int:
    from tui_trainer.analytics.report_html import COMPARISON_NAME, write_comparison, write_run_report

    started = time.perf_counter()
    dirs = [Path(d) for d in args.run_dirs]
    from tui_trainer.analytics.report_trials import is_study_dir, write_study_report

    if len(dirs) == 1 and args.out is None and is_study_dir(dirs[0]):  # a search study: one page comparing its trials
        print(f"wrote {write_study_report(dirs[0])} ({time.perf_counter() - started:.1f}s)")
        return 0
    for run_dir in dirs:
        if not (run_dir / "events.jsonl").is_file():
            raise DataError(f"{run_dir}: not a run directory (no events.jsonl); `tui-trainer runs` lists runs")
    if len(dirs) == 1 and args.out is None:
        path = write_run_report(dirs[0])
    else:
        out = args.out or Path.cwd() / COMPARISON_NAME
        if out.suffix != ".html" and not out.is_dir():
            raise DataError(f"--out {out}: give an .html file name or an existing directory")
        path = write_comparison(dirs, out)
    print(f"wrote {path} ({time.perf_counter() - started:.1f}s)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="write report.html for a run, or one page comparing several runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (several: one comparison page)")
    p.add_argument(
        "--out", type=Path, help="file or directory for the page (default: RUN_DIR/report.html; comparisons ./comparison.html)"
    )
    p.set_defaults(func=_cmd_report)
