"""Deterministic scenes of every screen, shared by the snapshot tests and scripts/screenshots.py.

Each scene builds an app from fakes (fixed clock, fixed runs, scripted events) and a
``run_before`` coroutine that brings it to the screen to capture. Paths are relative to
the current directory, which the caller sets to a scratch directory holding ``data/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select

from tests.functional.fakes import FakeEngine, fake_runs, make_services, scripted_events
from tests.functional.helpers import wait_until
from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.engine import events as ev
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.messages import EngineEvent
from tui_trainer.ui.screens.modals import ConfirmScreen
from tui_trainer.ui.screens.wizard import WizardScreen
from tui_trainer.ui.widgets.loss_chart import LossChart

SIZE = (100, 32)
"""Terminal size of every snapshot and screenshot."""


@dataclass(frozen=True)
class Scene:
    """One screen to capture."""

    make_app: Callable[[], TrainerApp]
    """Builds the app (in the scratch directory)."""
    run_before: Callable[[Pilot], Awaitable[None]]
    """Drives the app to the screen."""


def prepare_scratch(root: Path) -> None:
    """The files the dataset browser shows."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "chat.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    (data / "notes.txt").write_text("first note\n\nsecond note\n")
    (data / "scores.csv").write_text("text\nhello\n")
    (data / "model.bin").write_bytes(b"\0")


def _app(engine: FakeEngine | None = None, runs: bool = False) -> TrainerApp:
    runs_list = fake_runs(Path("runs")) if runs else None
    return TrainerApp(services=make_services(Path("."), engine, runs_list), output_dir=Path("runs"), browse_root=Path("data"))


async def _home(pilot: Pilot) -> None:
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "reads", 1) > 0)
    await pilot.pause()


async def _datasets(pilot: Pilot, strategy: str) -> None:
    await pilot.press("n")
    screen = pilot.app.screen
    screen.query_one("#strategy", Select).value = strategy
    await pilot.pause()
    screen.add_dataset("demo:python-code")
    screen.add_dataset("data/notes.txt")
    await wait_until(pilot, lambda: all(d.inspected for d in screen.draft.datasets))
    table = screen.query_one("#datasets", DataTable)
    if strategy in ("weighted", "curriculum"):
        table.move_cursor(row=1)
        await pilot.pause()
        screen.query_one("#weight", Input).value = "0.4"
        await pilot.pause()
    # sequential: the screen proposes contiguous ranges covering the run
    table.focus()
    await pilot.pause()


async def _datasets_weighted(pilot: Pilot) -> None:
    await _datasets(pilot, "weighted")


async def _datasets_sequential(pilot: Pilot) -> None:
    await _datasets(pilot, "sequential")


async def _wizard(pilot: Pilot) -> None:
    base = config_from_dict({
        "run": {"name": "code-mix", "output_dir": "runs"},
        "data": {"datasets": [{"name": "code", "path": "demo:python-code", "weight": 0.7},
                              {"name": "docs", "path": "demo:python-docs", "weight": 0.3}]},
    })
    pilot.app.push_screen(WizardScreen(base, data_tokens=250_000))
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen) and pilot.app.screen.ready)
    await pilot.pause()


def _wizard_app() -> TrainerApp:
    from tui_trainer.ui.wizard_model import ModelShape

    from tui_trainer.ui.services import Services

    app = _app()
    app.services.model_shape = lambda cfg: ModelShape(cfg.model.name_or_path, 4, 64, None)  # a 4-layer base
    real = Services().estimate  # planning's own estimate for the sae task, from the shipped demo preset's facts
    app.services.estimate = lambda preset, cfg, hardware: real("demo-tiny", cfg, hardware)
    return app


async def _wizard_sae(pilot: Pilot) -> None:
    """The SAE task's rows, the layer (of the base model's 4) set to 2."""
    await _wizard(pilot)
    wizard = pilot.app.screen
    await wait_until(pilot, lambda: wizard.fits >= 1)
    wizard.query_one("#f-run-task", Select).value = "sae"
    await pilot.pause()
    wizard.query_one("#f-sae-layer", Input).value = "2"
    await wait_until(pilot, lambda: wizard.shape is not None and wizard.config is not None)  # the read for layer 2
    await pilot.pause()


async def _monitor(pilot: Pilot, upto: int = 30) -> None:
    app = pilot.app
    app.start_training(RunConfig())
    await pilot.pause()
    for event in scripted_events("runs/demo-20231114-221320", total=40, upto=upto):
        app.post_message(EngineEvent(event))
    await pilot.pause()
    app.screen.query_one(LossChart).draw_now()
    await pilot.pause()


def _task_metrics(task: str, step: int, total: int) -> dict:
    """Plausible eval metrics of an SAE or a 3-class classifier at ``step``."""
    t = step / total
    if task == "sae":
        dead = round(60 * (1 - t))
        return {"l0": 120 - 70 * t, "explained_variance": 0.3 + 0.5 * t, "mse": 0.02 * (1 - t),
                "dead_features": dead, "dead_fraction": dead / 256, "ce_loss_score": 0.5 + 0.4 * t}
    labels = ["angry", "disgust", "happy"]
    recall = {"angry": 0.5 + 0.3 * t, "disgust": 0.1 + 0.2 * t, "happy": 0.7 + 0.25 * t}
    support = {"angry": 40, "disgust": 10, "happy": 60}
    matrix = []
    for i, name in enumerate(labels):
        hit = round(recall[name] * support[name])
        miss = support[name] - hit
        rest = [miss - miss // 2, miss // 2]
        matrix.append(rest[:i] + [hit] + rest[i:])
    return {"accuracy": 0.55 + 0.3 * t, "macro_f1": 0.4 + 0.3 * t, "balanced_accuracy": sum(recall.values()) / 3,
            "recall": recall, "support": support, "confusion_matrix": matrix, "labels": labels}


def task_events(task: str, total: int = 40, upto: int = 30) -> list[ev.Event]:
    """The stream of ``scripted_events`` as a run of ``task``: its config and its eval metrics."""
    out = []
    for event in scripted_events("runs/demo-20231114-221320", total=total, upto=upto):
        if isinstance(event, ev.RunStarted):
            event = dataclasses.replace(event, config={"run": {"task": task}})
        elif isinstance(event, ev.EvalResult):
            event = dataclasses.replace(event, metrics=_task_metrics(task, event.step, total))
        out.append(event)
    return out


async def _monitor_task(pilot: Pilot, task: str) -> None:
    app = pilot.app
    app.start_training(RunConfig())
    await pilot.pause()
    for event in task_events(task):
        app.post_message(EngineEvent(event))
    await pilot.pause()
    await pilot.pause()


async def _monitor_sae(pilot: Pilot) -> None:
    await _monitor_task(pilot, "sae")


async def _monitor_classification(pilot: Pilot) -> None:
    await _monitor_task(pilot, "classification")


async def _monitor_finished(pilot: Pilot) -> None:
    await _monitor(pilot, upto=40)
    pilot.app.post_message(EngineEvent(ev.RunFinished(40, time=1_700_000_080.0, final_dir="runs/demo-20231114-221320/final")))
    await pilot.pause()


async def _monitor_findings(pilot: Pilot) -> None:
    """A loss spike found at step 25: the findings panel, the log line and the chart's mark."""
    await _monitor(pilot)
    pilot.app.post_message(EngineEvent(ev.Anomaly(
        25, time=1_700_000_050.0, kind="spike", metric="loss", value=9.5, threshold=3.2,
        message="loss spike at step 25: 9.5 > 3.2 (mean 2.1 + 6 sd of the last 24 steps)",
        recommendation="lower train.lr to 1e-04 (now 2e-04) if spikes repeat; one spike the loss recovers from is harmless",
    )))
    await wait_until(pilot, lambda: pilot.app.run_state.findings)
    await pilot.pause()


async def _monitor_stop_confirm(pilot: Pilot) -> None:
    await _monitor(pilot)
    await pilot.press("s")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmScreen)


async def _resume(pilot: Pilot) -> None:
    await _home(pilot)
    await pilot.press("r")
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
    await pilot.pause()


async def _help(pilot: Pilot) -> None:
    await _home(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


async def _error(pilot: Pilot) -> None:
    pilot.app.start_training(RunConfig())
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _gated_engine() -> FakeEngine:
    engine = FakeEngine(Path("."), total=40)
    engine.gate.clear()  # scripted events drive the screen; the engine waits before step 1
    return engine


def _failing_engine() -> FakeEngine:
    from tui_trainer.errors import DataError

    return FakeEngine(Path("."), fail=DataError(
        "data.datasets[1] (docs): data/docs.jsonl not found; check the path or remove the dataset"))


async def _demo_picker(pilot: Pilot) -> None:
    await _home(pilot)
    await pilot.press("d")
    await wait_until(pilot, lambda: pilot.app.screen.__class__.__name__ == "DemoPicker")
    await pilot.pause()


async def _datasets_curriculum(pilot: Pilot) -> None:
    await _datasets(pilot, "curriculum")


SCENES: dict[str, Scene] = {
    "home_empty": Scene(lambda: _app(), _home),
    "home_runs": Scene(lambda: _app(runs=True), _home),
    "demo_picker": Scene(lambda: _app(), _demo_picker),
    "datasets_weighted": Scene(lambda: _app(), _datasets_weighted),
    "datasets_sequential": Scene(lambda: _app(), _datasets_sequential),
    "datasets_curriculum": Scene(lambda: _app(), _datasets_curriculum),
    "wizard": Scene(lambda: _app(), _wizard),
    "wizard_sae": Scene(_wizard_app, _wizard_sae),
    "monitor": Scene(lambda: _app(_gated_engine()), _monitor),
    "monitor_sae": Scene(lambda: _app(_gated_engine()), _monitor_sae),
    "monitor_classification": Scene(lambda: _app(_gated_engine()), _monitor_classification),
    "monitor_finished": Scene(lambda: _app(_gated_engine()), _monitor_finished),
    "monitor_findings": Scene(lambda: _app(_gated_engine()), _monitor_findings),
    "monitor_stop_confirm": Scene(lambda: _app(_gated_engine()), _monitor_stop_confirm),
    "resume_picker": Scene(lambda: _app(runs=True), _resume),
    "help": Scene(lambda: _app(runs=True), _help),
    "error": Scene(lambda: _app(_failing_engine()), _error),
}
