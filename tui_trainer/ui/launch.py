"""Entry point the CLI calls: load the config, run the app, return the exit code."""

from __future__ import annotations

import os
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
    from tui_trainer.config.io import load_config

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
    from tui_trainer.ui.services import Services

    services = Services()
    results: list = []
    engine_train = services.train

    ends: list = []

    def train_and_keep(cfg, **kwargs):
        forward = kwargs.get("on_event")

        def watch(event):
            if getattr(event, "TYPE", None) in ("run_started", "run_stopped", "run_finished", "run_failed"):
                ends.append(event)
            if forward is not None:
                forward(event)

        kwargs["on_event"] = watch
        results.append(engine_train(cfg, **kwargs))
        return results[-1]

    services.train = train_and_keep
    app = TrainerApp(
        config=config, start=start, monitor_run=monitor_run, output_dir=output_dir, services=services, handle_signals=True
    )
    watchdog = _watch_terminal(app, results, ends)
    try:
        app.run()
    finally:
        if watchdog is not None:
            watchdog.stop()
    _print_outcome(results)
    return app.return_code if app.return_code is not None else 0


def _print_outcome(results: list) -> None:
    """After the app has given the terminal back: how the last run ended and, if stopped, how to resume.

    The screen the outcome was shown on is gone; without this a user who quit mid-run sees an
    empty prompt and has to dig the resume command out of the run directory.
    """
    if not results:
        return
    result = results[-1]
    try:
        stream = sys.stdout if result.exit_code == 0 else sys.stderr
        print(f"tui-trainer: {result.message}", file=stream, flush=True)
    except (OSError, ValueError):
        pass  # the terminal went away; the run directory has everything


def _watch_terminal(app, results: list, ends: list):
    """A dead terminal must end the process even if Textual cannot restore it (issue 11)."""
    from tui_trainer.runs.hangup import HangupWatchdog

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    if not os.isatty(fd):
        return None

    def request_stop() -> None:
        if app.controls is not None and app.engine_busy.is_set():
            app.controls.request_stop("signal")
            app.controls.pause.clear()

    def run_ended() -> bool:
        return bool(ends) and ends[-1].TYPE != "run_started"

    def exit_code() -> int:
        if results:
            return results[-1].exit_code
        if run_ended():
            return {"run_finished": 0, "run_stopped": 75}.get(ends[-1].TYPE, 1)
        return app.return_code if app.return_code is not None else app.exit_code

    def before_exit() -> None:
        """Cut short after the run's end: give its directory up as its cleanup would have."""
        from tui_trainer.engine.checkpoint.rundir import mark_ended

        started = [e for e in ends if e.TYPE == "run_started"]
        if started:
            mark_ended(Path(started[-1].run_dir))

    return HangupWatchdog(
        fd,
        request_stop=request_stop,
        engine_busy=app.engine_busy.is_set,
        exit_code=exit_code,
        run_ended=run_ended,
        before_exit=before_exit,
    ).start()
