"""What the engine holds of analytics for one run: the detectors, the recovery policy, TensorBoard.

The recipe creates one :class:`AnalyticsSession` once the run directory exists; it puts
:meth:`state_dict` into every checkpoint's ``trainer_state.json`` and gives it back on
resume, asks :meth:`write_report` for ``report.html`` at the end, and puts :attr:`gpu`'s
readings into the step events.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from tui_trainer.analytics.monitor import RunAnalytics
from tui_trainer.analytics.recovery import RecoveryPolicy
from tui_trainer.analytics.system_samples import GpuSampler
from tui_trainer.engine import events as ev

log = logging.getLogger(__name__)


class AnalyticsSession:
    def __init__(self, cfg: Any, events: Any, run_dir: Path | None, *, main_process: bool, device: Any = None) -> None:
        self.events = events
        self.detectors = RunAnalytics.from_config(cfg, events.emit)
        self.policy = RecoveryPolicy.from_config(cfg.analytics)
        events.add_callback(self.detectors)
        events.add_callback(self._watch_ending)
        self._main_process = main_process
        self._prefetch: threading.Thread | None = None
        self.stop_reason: str | None = None
        """The reason of this session's ``run_stopped`` event, once there is one."""
        run_device = device if device is not None else _run_device()
        self.gpu = GpuSampler.for_device(run_device) if main_process else GpuSampler(None)
        """GPU readings for the step events (off on a CPU device and on the ranks that write no events)."""
        self.tensorboard = None
        if cfg.analytics.tensorboard and main_process and run_dir is not None:
            from tui_trainer.analytics.tensorboard import TensorBoardWriter

            self.tensorboard = TensorBoardWriter(run_dir / "tensorboard")
            events.add_callback(self.tensorboard)

    def on_skipped_step(self, step: int, loss: float, grad_norm: float) -> None:
        """A non-finite step: the engine emits no ``step`` event for it, so it is told directly."""
        self.detectors.on_step(step, loss, grad_norm)

    def state_dict(self) -> dict[str, Any]:
        return {"detectors": self.detectors.state_dict(), "recoveries": self.policy.done}

    def load_state_dict(self, state: dict[str, Any] | None, *, rollback: bool = False) -> None:
        """Restore the windows; a rollback keeps this session's recovery count (it only grows)."""
        state = state or {}
        self.detectors.load_state_dict(state.get("detectors"))
        if not rollback:
            self.policy.done = int(state.get("recoveries", 0))

    def _watch_ending(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStopped):
            self.stop_reason = event.reason
        elif (isinstance(event, ev.StepMetrics) and event.total_steps and event.step >= event.total_steps
              and self._main_process and self._prefetch is None):
            # The last step: the final eval, checkpoint and export come before the report. Importing
            # matplotlib (half a second of CPU, half the report's cost) on a thread meanwhile takes it
            # off the run's end; checkpoint writes and torch kernels leave the GIL free for it.
            self._prefetch = threading.Thread(target=_import_report_modules, name="tui-trainer-report-import", daemon=True)
            self._prefetch.start()

    def write_report(self, run_dir: Path) -> None:
        """``report.html``; a failure is a warning, never the end of a run that trained fine.

        Not after a signal: a hangup or a scheduler's SIGTERM wants the process gone within
        seconds, and the report (about a second, most of it importing matplotlib) is a view
        of files already saved, which ``tui-trainer report RUN_DIR`` or the resumed run's end
        writes later.
        """
        if self.stop_reason == "signal":
            log.info("report.html skipped after a signal stop; `tui-trainer report %s` writes it", run_dir)
            return
        try:
            from tui_trainer.analytics.report_html import write_run_report

            write_run_report(run_dir)
        except Exception as err:  # the report is a view of saved files; they stay intact either way
            log.exception("report.html failed")
            self.events.emit(ev.Warning_(0, message=f"report.html could not be written ({type(err).__name__}: {err})"))


def _import_report_modules() -> None:
    try:
        import tui_trainer.analytics.report_html  # noqa: F401
    except Exception:  # noqa: BLE001 - the report's own import reports the problem, in write_report
        pass


def _run_device() -> Any:
    """The device of the run's Accelerator (created before this session), or None without one."""
    from accelerate.state import AcceleratorState, is_initialized

    return AcceleratorState().device if is_initialized() else None
