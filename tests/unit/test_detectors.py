"""The analytics detectors on synthetic curves (no torch, no Textual)."""

from __future__ import annotations

import json
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.analytics.advice import Advice
from tui_trainer.analytics.monitor import RunAnalytics
from tui_trainer.engine import events as ev

ADVICE = Advice(lr=2e-4, max_grad_norm=1.0, lora_dropout=0.05)


def make(window: int = 32, sigma: float = 6.0, patience: int = 0) -> tuple[RunAnalytics, list[ev.Anomaly]]:
    found: list[ev.Anomaly] = []
    analytics = RunAnalytics(sigma=sigma, window=window, plateau_patience=patience, advice=ADVICE, emit=found.append)
    return analytics, found


def clean_curve(n: int, seed: int = 0, noise: float = 0.02) -> list[float]:
    """A decaying loss with noise, as a healthy run's training loss looks."""
    rng = random.Random(seed)
    return [2.0 + 3.0 * math.exp(-k / 40) + rng.gauss(0, noise) for k in range(n)]


def feed(analytics: RunAnalytics, losses: list[float], grads: list[float] | None = None, start: int = 1) -> None:
    grads = grads or [1.0 + 0.01 * math.sin(k) for k in range(len(losses))]
    for k, (loss, grad) in enumerate(zip(losses, grads)):
        analytics(ev.StepMetrics(start + k, loss=loss, lr=1e-4, grad_norm=grad, tokens_per_s=1.0, samples_per_dataset={}))


def test_clean_curve_has_no_findings() -> None:
    analytics, found = make()
    feed(analytics, clean_curve(400))
    assert found == []


@given(seed=st.integers(0, 10_000), spike_at=st.integers(50, 290))
@settings(max_examples=40, deadline=None)
def test_a_spike_is_found_at_its_step_and_nowhere_else(seed: int, spike_at: int) -> None:
    analytics, found = make()
    losses = clean_curve(300, seed)
    losses[spike_at - 1] += 5.0  # the loss of step spike_at (steps count from 1)
    feed(analytics, losses)
    spikes = [a for a in found if a.kind == "spike"]
    assert [(a.step, a.metric) for a in spikes] == [(spike_at, "loss")]
    assert spikes[0].value > spikes[0].threshold
    assert "train.lr" in spikes[0].recommendation


def test_a_grad_norm_spike_names_grad_norm() -> None:
    analytics, found = make()
    grads = [1.0 + 0.05 * math.sin(k) for k in range(100)]
    grads[70] = 50.0
    feed(analytics, clean_curve(100), grads)
    assert [(a.kind, a.metric, a.step) for a in found] == [("spike", "grad_norm", 71)]


def test_spikes_wait_for_a_full_window() -> None:
    analytics, found = make(window=32)
    losses = clean_curve(60)
    losses[10] += 50.0  # before the window is full: not judged
    feed(analytics, losses)
    assert [a for a in found if a.kind == "spike"] == []


def test_divergence_is_found_once_with_its_onset() -> None:
    analytics, found = make()
    losses = clean_curve(100) + [8.0 + 0.1 * k for k in range(30)]
    feed(analytics, losses)
    divergences = [a for a in found if a.kind == "divergence"]
    assert len(divergences) == 1
    assert 100 < divergences[0].step < 110
    onset = analytics.take_onset()
    assert onset is not None and onset.kind == "divergence"
    assert onset.first_bad_step <= 100 < onset.detected_step == divergences[0].step
    assert analytics.take_onset() is None
    assert "train.lr" in divergences[0].recommendation


def test_plateau_after_patience_evals_names_the_best_step() -> None:
    analytics, found = make(patience=3)
    for step, loss in [(100, 3.0), (200, 2.5), (300, 2.5), (400, 2.51), (500, 2.5), (600, 2.5)]:
        analytics(ev.EvalResult(step, eval_loss=loss, per_dataset={}))
    plateaus = [a for a in found if a.kind == "plateau"]
    assert [a.step for a in plateaus] == [500]
    assert "best eval was step 200" in plateaus[0].recommendation


def test_plateau_off_by_default() -> None:
    analytics, found = make(patience=0)
    for step in range(1, 20):
        analytics(ev.EvalResult(step * 10, eval_loss=2.0, per_dataset={}))
    assert found == []


def test_overfit_gap_is_reported() -> None:
    analytics, found = make()
    step = 0
    for eval_loss in (3.0, 2.6, 2.7, 2.8, 2.9):
        feed(analytics, [3.0 - 0.01 * (step + k) for k in range(20)], start=step + 1)
        step += 20
        analytics(ev.EvalResult(step, eval_loss=eval_loss, per_dataset={}))
    overfits = [a for a in found if a.kind == "overfit"]
    assert len(overfits) == 1 and overfits[0].step == 100
    train_now = analytics.divergence.ema
    assert overfits[0].value == 2.9 - train_now > 0.5
    assert "lora.dropout" in overfits[0].recommendation and "step 40" in overfits[0].recommendation


def test_nonfinite_streak_is_one_finding() -> None:
    analytics, found = make()
    feed(analytics, clean_curve(20))
    for step in (21, 22, 23):
        analytics.on_step(step, float("nan"), float("nan"))
    feed(analytics, clean_curve(5), start=24)
    assert [(a.kind, a.step) for a in found] == [("nonfinite", 21)]
    assert analytics.nonfinite_onset(23).first_bad_step == 20


def test_state_round_trip_keeps_the_windows() -> None:
    """Resume in the middle gives the same findings as the straight run."""
    losses = clean_curve(300, seed=3)
    losses[200] += 3.0
    straight, found_straight = make()
    feed(straight, losses)

    first, found_first = make()
    feed(first, losses[:190])
    state = json.loads(json.dumps(first.state_dict()))  # as trainer_state.json stores it
    second, found_second = make()
    second.load_state_dict(state)
    feed(second, losses[190:], start=191)
    assert [a.step for a in found_first + found_second] == [a.step for a in found_straight] == [201]


def test_old_checkpoint_without_analytics_state_loads() -> None:
    analytics, _ = make()
    analytics.load_state_dict(None)
    analytics.load_state_dict({})
    assert analytics.state_dict()["loss_spikes"]["values"] == []


def test_one_spike_is_not_a_divergence() -> None:
    analytics, found = make()
    losses = clean_curve(100)
    losses[60] *= 50
    feed(analytics, losses)
    assert [a.kind for a in found] == ["spike", "spike"] or [a.kind for a in found] == ["spike"]
    assert analytics.take_onset() is None


def test_the_headless_display_prints_each_finding_once_and_lists_them_at_the_end() -> None:
    import io

    from tui_trainer.cli.progress import ProgressDisplay

    stream = io.StringIO()
    analytics, _ = make()
    with ProgressDisplay(stream, force_plain=True) as display:
        analytics.emit = display
        losses = clean_curve(100)
        losses[70] += 5.0
        feed(analytics, losses)
        display(ev.Recovery(60, from_step=71, checkpoint="ckpt/step-00000060", lr_factor=0.5, skipped_steps=11))
    out = stream.getvalue()
    assert out.count("finding: loss spike at step 71") == 1
    assert "recovery: back to ckpt/step-00000060" in out and "11 batches" in out
    summary = out.split("findings (1; in events.jsonl, and with the curves in report.html):", 1)[1]
    assert "step 71: spike (loss) -> lower train.lr" in summary
