"""``analytics.tensorboard = true``: the run's scalars as TensorBoard event files in ``<run_dir>/tensorboard``."""

from __future__ import annotations

import math
from pathlib import Path

from tui_trainer.engine import events as ev
from tui_trainer.errors import ConfigError

_ENDINGS = (ev.RunFinished, ev.RunStopped, ev.RunFailed, ev.Cleanup)


def _writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "analytics.tensorboard = true needs the tensorboard package: "
            "pip install 'tui-trainer[tensorboard]', or set analytics.tensorboard = false"
        ) from None
    return SummaryWriter(log_dir=str(log_dir))


class TensorBoardWriter:
    """An event callback: ``step`` and ``eval`` scalars, findings as text."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._writer = _writer(log_dir)

    def __call__(self, event: ev.Event) -> None:
        w = self._writer
        if w is None:
            return
        if isinstance(event, ev.StepMetrics):
            for name in ("loss", "lr", "grad_norm", "tokens_per_s"):
                self._scalar(f"train/{name}", getattr(event, name), event.step)
        elif isinstance(event, ev.EvalResult):
            self._scalar("eval/loss", event.eval_loss, event.step)
            for name, value in event.per_dataset.items():
                self._scalar(f"eval/loss/{name}", value, event.step)
            for name, value in (getattr(event, "metrics", None) or {}).items():
                self._scalar(f"eval/{name}", value, event.step)
            w.flush()
        elif isinstance(event, ev.Anomaly):
            w.add_text("findings", f"**{event.kind}** ({event.metric}): {event.message}  \n{event.recommendation}", event.step)
        elif isinstance(event, ev.Recovery):
            w.add_text("findings", f"**recovery**: back to {event.checkpoint}, lr x {event.lr_factor:g}", event.step)
        elif isinstance(event, _ENDINGS):
            self.close()

    def _scalar(self, tag: str, value, step: int) -> None:
        # Only plain numbers: task metrics may hold a confusion matrix or a list per class.
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            self._writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
