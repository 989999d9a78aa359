"""Detectors over a run's curves: spike, divergence, plateau, overfit, non-finite.

Each is a small state machine fed one value at a time, O(1) per update, returning an
:class:`~tui_trainer.engine.events.Anomaly` when it finds something and None otherwise.
A detector reports an *episode* once (a run of spike steps, a divergence, a plateau)
and re-arms when the curve is back to normal, so a console shows each finding once.
Their state is a small JSON-able dict, saved in every checkpoint so a resumed run keeps
its windows.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from tui_trainer.analytics import advice
from tui_trainer.analytics.advice import Advice
from tui_trainer.engine.events import Anomaly

DIVERGENCE_RATIO = 1.5
"""Smoothed loss this many times its best (and DIVERGENCE_MARGIN above it) is a divergence."""
DIVERGENCE_MARGIN = 0.1
"""Absolute floor on the rise, so a loss near zero does not diverge by rounding."""
DIVERGENCE_WINDOW = 8
"""The smoothed loss is the median of this many steps: one spike moves it not at all, a
divergence (most of the window bad) at once, which an EMA cannot tell apart."""
TREND_SMOOTHING = 0.2
"""EMA weight of the newest loss for the train-loss trend the overfit check compares."""
OVERFIT_EVALS = 3
"""Consecutive eval-loss rises, with train loss falling over them, that make an overfit finding."""
PLATEAU_MIN_DELTA = 1e-3
"""Relative improvement an eval must make to count as one (Lightning's ``min_delta``)."""
SD_FLOOR = 1e-3
"""Relative floor on the window's sd: on a perfectly flat window any wiggle would be a spike."""


@dataclass(frozen=True)
class Onset:
    """Where a bad stretch began, for recovery to roll back before it."""

    kind: str
    """divergence | nonfinite."""
    first_bad_step: int
    """The first step of the bad window (the checkpoint to go back to must be at or before it)."""
    detected_step: int
    """The step at which it was found (the batches up to it are skipped)."""


class SpikeDetector:
    """A value above mean + sigma x sd of the last ``window`` values (OLMo-core's stability monitor)."""

    def __init__(self, metric: str, sigma: float, window: int) -> None:
        self.metric = metric
        self.sigma = sigma
        self.window = window
        self._values: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._sumsq = 0.0
        self._in_spike = False

    def update(self, step: int, value: float, ctx: Advice) -> Anomaly | None:
        if not math.isfinite(value):
            return None
        found = None
        if len(self._values) == self.window:
            n = self.window
            mean = self._sum / n
            sd = math.sqrt(max(self._sumsq / n - mean * mean, 0.0))
            threshold = mean + self.sigma * max(sd, SD_FLOOR * abs(mean))
            spike = value > threshold
            if spike and not self._in_spike:
                found = Anomaly(
                    step,
                    kind="spike",
                    metric=self.metric,
                    value=value,
                    threshold=threshold,
                    message=(
                        f"{self.metric} spike at step {step}: {value:.4g} > {threshold:.4g} "
                        f"(mean {mean:.4g} + {self.sigma:g} sd of the last {n} steps)"
                    ),
                    recommendation=advice.for_spike(self.metric, ctx),
                )
            self._in_spike = spike
            old = self._values[0]
            self._sum -= old
            self._sumsq -= old * old
        self._values.append(value)
        self._sum += value
        self._sumsq += value * value
        return found

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self._values), "in_spike": self._in_spike}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._values = deque((float(v) for v in state.get("values", [])), maxlen=self.window)
        # Recomputed rather than saved: the running sums drift by rounding, the values do not.
        self._sum = math.fsum(self._values)
        self._sumsq = math.fsum(v * v for v in self._values)
        self._in_spike = bool(state.get("in_spike", False))


class DivergenceDetector:
    """The smoothed (median) training loss far above the best it has reached."""

    def __init__(self) -> None:
        self.ema: float | None = None
        """Trend of the training loss (read by the overfit check)."""
        self.recent: deque[float] = deque(maxlen=DIVERGENCE_WINDOW)
        self.best: float | None = None
        self.best_step = 0
        self.diverged = False

    def update(self, step: int, loss: float, ctx: Advice) -> tuple[Anomaly | None, Onset | None]:
        if not math.isfinite(loss):
            return None, None
        self.ema = loss if self.ema is None else self.ema + TREND_SMOOTHING * (loss - self.ema)
        self.recent.append(loss)
        if len(self.recent) < DIVERGENCE_WINDOW:
            return None, None
        ordered = sorted(self.recent)
        smoothed = (ordered[(DIVERGENCE_WINDOW - 1) // 2] + ordered[DIVERGENCE_WINDOW // 2]) / 2  # the median
        if self.best is None or smoothed < self.best:
            self.best, self.best_step = smoothed, step
        threshold = max(self.best * DIVERGENCE_RATIO, self.best + DIVERGENCE_MARGIN)
        if smoothed <= threshold:
            self.diverged = False
            return None, None
        if self.diverged:
            return None, None
        self.diverged = True
        anomaly = Anomaly(
            step,
            kind="divergence",
            metric="loss",
            value=smoothed,
            threshold=threshold,
            message=(
                f"training diverged at step {step}: the median loss of the last {DIVERGENCE_WINDOW} steps, "
                f"{smoothed:.4g}, is {smoothed / self.best:.1f}x its best {self.best:.4g} (step {self.best_step})"
            ),
            recommendation=advice.for_divergence(ctx),
        )
        return anomaly, Onset("divergence", self.best_step, step)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema, "recent": list(self.recent), "best": self.best, "best_step": self.best_step,
                "diverged": self.diverged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema, self.best = state.get("ema"), state.get("best")
        self.recent = deque((float(v) for v in state.get("recent", [])), maxlen=DIVERGENCE_WINDOW)
        self.best_step = int(state.get("best_step", 0))
        self.diverged = bool(state.get("diverged", False))


class EvalDetector:
    """Plateau (no eval improvement in ``patience`` evals) and overfit (eval up, train down)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best: float | None = None
        self.best_step = 0
        self.without_improvement = 0
        self.history: list[tuple[float, float | None]] = []  # (eval loss, smoothed train loss) of the last evals
        self.plateau_reported = False
        self.overfit_reported = False

    def update(self, step: int, eval_loss: float, train_loss: float | None, ctx: Advice) -> list[Anomaly]:
        if not math.isfinite(eval_loss):
            return []
        found = []
        if self.best is None or eval_loss < self.best * (1 - PLATEAU_MIN_DELTA):
            self.best, self.best_step = eval_loss, step
            self.without_improvement = 0
            self.plateau_reported = self.overfit_reported = False
        else:
            self.without_improvement += 1
        if self.patience and self.without_improvement >= self.patience and not self.plateau_reported:
            self.plateau_reported = True
            found.append(
                Anomaly(
                    step,
                    kind="plateau",
                    metric="eval_loss",
                    value=eval_loss,
                    threshold=self.best,
                    message=(
                        f"eval loss has not improved in {self.without_improvement} evals: {eval_loss:.4g} "
                        f"at step {step}, best {self.best:.4g} at step {self.best_step}"
                    ),
                    recommendation=advice.for_plateau(self.best_step, ctx),
                )
            )
        self.history = [*self.history, (eval_loss, train_loss)][-(OVERFIT_EVALS + 1) :]
        if self._overfitting() and not self.overfit_reported:
            self.overfit_reported = True
            gap = eval_loss - (train_loss or 0.0)
            first = self.history[0][0]
            found.append(
                Anomaly(
                    step,
                    kind="overfit",
                    metric="eval_loss",
                    value=gap,
                    threshold=0.0,
                    message=(
                        f"overfitting: eval loss rose {OVERFIT_EVALS} evals in a row ({first:.4g} -> {eval_loss:.4g}) "
                        f"while train loss fell; the eval - train gap is {gap:.4g}"
                    ),
                    recommendation=advice.for_overfit(self.best_step, ctx),
                )
            )
        return found

    def _overfitting(self) -> bool:
        if len(self.history) <= OVERFIT_EVALS or any(t is None for _, t in self.history):
            return False
        evals = [e for e, _ in self.history]
        trains = [t for _, t in self.history]
        rising = all(b > a for a, b in zip(evals, evals[1:]))
        return rising and trains[-1] < trains[0]

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "without_improvement": self.without_improvement,
            "history": [list(h) for h in self.history],
            "plateau_reported": self.plateau_reported,
            "overfit_reported": self.overfit_reported,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_step = int(state.get("best_step", 0))
        self.without_improvement = int(state.get("without_improvement", 0))
        self.history = [(float(e), t) for e, t in state.get("history", [])]
        self.plateau_reported = bool(state.get("plateau_reported", False))
        self.overfit_reported = bool(state.get("overfit_reported", False))


class NonFiniteDetector:
    """NaN/inf losses or gradients: one finding per streak, the streak's start kept for recovery."""

    def __init__(self) -> None:
        self.streak = 0
        self.first_step = 0

    def update(self, step: int, loss: float, grad_norm: float, ctx: Advice) -> Anomaly | None:
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.streak = 0
            return None
        self.streak += 1
        if self.streak > 1:
            return None
        # ``step`` counts completed steps; the bad update was the one before it.
        self.first_step = step - 1
        metric, value = ("loss", loss) if not math.isfinite(loss) else ("grad_norm", grad_norm)
        return Anomaly(
            step,
            kind="nonfinite",
            metric=metric,
            value=value,
            threshold=math.inf,
            message=f"non-finite {metric} ({value}) at step {step}; the update was skipped",
            recommendation=advice.for_nonfinite(ctx),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "first_step": self.first_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.streak = int(state.get("streak", 0))
        self.first_step = int(state.get("first_step", 0))
