"""The analytics callback: feeds each event to the detectors and emits what they find.

The engine registers one :class:`RunAnalytics` on its event log. It reads ``step`` and
``eval`` events, emits ``anomaly`` events through the same log (so they reach the
console, the UI and ``events.jsonl`` like any other), and keeps the onset of a
divergence or non-finite streak for the recovery policy to act on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tui_trainer.analytics.advice import Advice
from tui_trainer.analytics.detectors import (
    DivergenceDetector,
    EvalDetector,
    NonFiniteDetector,
    Onset,
    SpikeDetector,
)
from tui_trainer.engine import events as ev

STATE_VERSION = 1


class RunAnalytics:
    def __init__(self, *, sigma: float, window: int, plateau_patience: int, advice: Advice,
                 emit: Callable[[ev.Event], None]) -> None:
        self.advice = advice
        self.emit = emit
        self.loss_spikes = SpikeDetector("loss", sigma, window)
        self.grad_spikes = SpikeDetector("grad_norm", sigma, window)
        self.divergence = DivergenceDetector()
        self.evals = EvalDetector(plateau_patience)
        self.nonfinite = NonFiniteDetector()
        self.onset: Onset | None = None
        """A divergence found since the last :meth:`take_onset`."""
        self.findings: list[ev.Anomaly] = []
        """Every finding of this session, in order."""

    @classmethod
    def from_config(cls, cfg: Any, emit: Callable[[ev.Event], None]) -> RunAnalytics:
        a = cfg.analytics
        return cls(sigma=a.spike_sigma, window=a.spike_window, plateau_patience=a.plateau_patience,
                   advice=Advice.from_config(cfg), emit=emit)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics):
            self.on_step(event.step, event.loss, event.grad_norm)
        elif isinstance(event, ev.EvalResult):
            self._report(*self.evals.update(event.step, event.eval_loss, self.divergence.ema, self.advice))

    def on_step(self, step: int, loss: float, grad_norm: float) -> None:
        """One optimizer step; the engine calls it itself for a skipped non-finite step, which has no event."""
        nonfinite = self.nonfinite.update(step, loss, grad_norm, self.advice)
        if nonfinite is not None or self.nonfinite.streak:
            self._report(nonfinite)
            return
        self._report(self.loss_spikes.update(step, loss, self.advice), self.grad_spikes.update(step, grad_norm, self.advice))
        anomaly, onset = self.divergence.update(step, loss, self.advice)
        if onset is not None:
            self.onset = onset
        self._report(anomaly)

    def nonfinite_onset(self, step: int) -> Onset:
        return Onset("nonfinite", self.nonfinite.first_step, step)

    def take_onset(self) -> Onset | None:
        onset, self.onset = self.onset, None
        return onset

    def _report(self, *found: ev.Anomaly | None) -> None:
        for anomaly in found:
            if anomaly is not None:
                self.findings.append(anomaly)
                self.emit(anomaly)

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "loss_spikes": self.loss_spikes.state_dict(),
            "grad_spikes": self.grad_spikes.state_dict(),
            "divergence": self.divergence.state_dict(),
            "evals": self.evals.state_dict(),
            "nonfinite": self.nonfinite.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore the windows; a checkpoint from before analytics existed leaves them empty."""
        if not state or state.get("version") != STATE_VERSION:
            return
        self.loss_spikes.load_state_dict(state["loss_spikes"])
        self.grad_spikes.load_state_dict(state["grad_spikes"])
        self.divergence.load_state_dict(state["divergence"])
        self.evals.load_state_dict(state["evals"])
        self.nonfinite.load_state_dict(state["nonfinite"])
        self.onset = None
