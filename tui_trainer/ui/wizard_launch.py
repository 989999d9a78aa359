"""The wizard's "start detached" and "processes": the run goes to processes of its own.

Nothing here launches anything itself: the config is written into the run directory that
``runs.launch.plan_run_dir`` creates, and ``runs.launch.start_detached`` starts
``tui-trainer train RUN/config.toml [--nproc N]`` in its own session, exactly what
``tui-trainer train FILE --detach [--nproc N]`` does. The app then follows the run through
its events.jsonl like any other (OpenMonitor). A detached run outlives the app; a
multi-process run started without "detached" belongs to the app, which sends its launcher
SIGTERM when the app quits (forwarded to every rank: one checkpoint, exit 75). Not the STOP
file: a trainer that has not reached its first step yet clears an old STOP when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_trainer.config.io import save_config
from tui_trainer.config.schema import RunConfig


def launch_run(cfg: RunConfig, *, detach: bool, nproc: int) -> Any:
    """Start ``cfg`` in its own session (through torchrun when ``nproc`` > 1); the StartedRun.

    Raises ConfigError for a process count this machine or the config cannot run (runs.launch's checks)."""
    from tui_trainer.runs.launch import check_nproc, check_world, plan_run_dir, start_detached, train_argv

    check_nproc(nproc)
    if nproc > 1:
        check_world(cfg, world_size=nproc)  # as `train --nproc` does: a rank's refusal would come back as exit 1
    run_dir = plan_run_dir(cfg, None)
    config = run_dir / "config.toml"
    save_config(cfg, config)  # the run rewrites it with the same resolved values
    argv = train_argv(config, resume=None, sets=(), max_steps=None, merge=False)
    if nproc > 1:
        argv += ["--nproc", str(nproc)]
    return start_detached(argv, run_dir)


def default_processes(hardware: Any) -> int:
    """One process per visible GPU; one on the CPU (or when the probe failed)."""
    if getattr(hardware, "kind", "cpu") != "cuda":
        return 1
    return max(1, int(getattr(hardware, "gpu_count", 1) or 1))


def launches_in_process(detach: bool, nproc: int) -> bool:
    """Whether the start trains in the app's own worker thread (else: processes of its own)."""
    return not detach and nproc <= 1


class AppLaunches:
    """The app's side: start in a worker thread, follow the run, stop the attached ones on quit."""

    def __init__(self, app: Any, on_failed: Callable[[str], Any]) -> None:
        self._app = app
        self._on_failed = on_failed
        self.attached: list[Any] = []
        """StartedRuns of multi-process runs started without "detached": stopped when the app quits."""
        self.started: list[Any] = []
        """Every StartedRun of this app (tests read it)."""

    def start(self, cfg: RunConfig, *, detach: bool, nproc: int) -> None:
        app = self._app
        how = "detached" if detach else f"on {nproc} processes"
        app.notify(f"Starting {cfg.run.name} {how}…")

        def body() -> None:
            from tui_trainer.errors import UserError
            from tui_trainer.ui.messages import OpenMonitor

            try:
                started = app.services.launch(cfg, detach=detach, nproc=nproc)
            except UserError as err:
                app.call_from_thread(self._on_failed, str(err))
                return
            self.started.append(started)
            if not detach:
                self.attached.append(started)
            app.post_message(OpenMonitor(Path(started.run_dir)))

        app.run_worker(body, thread=True, exit_on_error=False, group="launch")

    def stop_attached(self) -> None:
        """The app goes away: its attached runs save and stop; detached ones keep training."""
        for started in self.attached:
            self._app.services.end_process(started.pid)
