"""Entry point the CLI calls: load the config, run the app, return the exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from tui_trainer.errors import UserError


def run_app(
    *,
    config_path: Path | None = None,
    start: bool = False,
    monitor_run: Path | None = None,
    output_dir: Path | None = None,
) -> int:
    """Run the TUI until the user quits; returns the process exit code.

    0 normally; 75 when a signal (or quitting during training) stopped a run that saved a
    resumable checkpoint; 2 when the config or the run to monitor cannot be loaded (the
    message goes to stderr before the screen is taken over); 1 when a run failed on a bug.
    """
    from tui_trainer.config import load_config

    config = None
    try:
        if config_path is not None:
            config = load_config(config_path)
        if monitor_run is not None and not Path(monitor_run).is_dir():
            raise UserError(f"{monitor_run}: no such run directory; list runs with: tui-trainer runs")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if start and config is None:
        print("error: --start needs --config FILE (the run to start)", file=sys.stderr)
        return 2

    from tui_trainer.ui.app import TrainerApp

    app = TrainerApp(config=config, start=start, monitor_run=monitor_run, output_dir=output_dir, handle_signals=True)
    app.run()
    return app.return_code if app.return_code is not None else 0
