"""Deterministic scenes of every screen, shared by the snapshot tests and scripts/screenshots.py.

Each scene builds an app from fakes (fixed clock, fixed runs, scripted events) and a
``run_before`` coroutine that brings it to the screen to capture. Paths are relative to
the current directory, which the caller sets to a scratch directory holding ``data/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select

from tests.functional.fakes import FakeEngine, fake_runs, make_services, scripted_events
from tests.functional.helpers import wait_until
from tui_trainer.config import RunConfig, config_from_dict
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


async def _nothing(pilot: Pilot) -> None:
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
    if strategy == "weighted":
        table.move_cursor(row=1)
        await pilot.pause()
        screen.query_one("#weight", Input).value = "0.4"
        await pilot.pause()
    else:
        table.move_cursor(row=0)
        await pilot.pause()
        for row, (start, end) in enumerate((("0", "300"), ("250", "500"))):
            table.move_cursor(row=row)
            await pilot.pause()
            screen.query_one("#start-step", Input).value = start
            await pilot.pause()
            screen.query_one("#end-step", Input).value = end
            await pilot.pause()
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


async def _monitor_finished(pilot: Pilot) -> None:
    await _monitor(pilot, upto=40)
    pilot.app.post_message(EngineEvent(ev.RunFinished(40, time=1_700_000_080.0, final_dir="runs/demo-20231114-221320/final")))
    await pilot.pause()


async def _monitor_stop_confirm(pilot: Pilot) -> None:
    await _monitor(pilot)
    await pilot.press("s")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmScreen)


async def _resume(pilot: Pilot) -> None:
    await pilot.press("r")
    await pilot.pause()


async def _help(pilot: Pilot) -> None:
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


SCENES: dict[str, Scene] = {
    "home_empty": Scene(lambda: _app(), _nothing),
    "home_runs": Scene(lambda: _app(runs=True), _nothing),
    "datasets_weighted": Scene(lambda: _app(), _datasets_weighted),
    "datasets_sequential": Scene(lambda: _app(), _datasets_sequential),
    "wizard": Scene(lambda: _app(), _wizard),
    "monitor": Scene(lambda: _app(_gated_engine()), _monitor),
    "monitor_finished": Scene(lambda: _app(_gated_engine()), _monitor_finished),
    "monitor_stop_confirm": Scene(lambda: _app(_gated_engine()), _monitor_stop_confirm),
    "resume_picker": Scene(lambda: _app(runs=True), _resume),
    "help": Scene(lambda: _app(runs=True), _help),
    "error": Scene(lambda: _app(_failing_engine()), _error),
}
