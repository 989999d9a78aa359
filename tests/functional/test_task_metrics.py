"""The task metrics panel: SAE, classification and causal_lm evals, and its pure formatting."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable, Sparkline, Static

from tests.functional.fakes import T0, FakeEngine, make_services
from tests.functional.helpers import contrast, followed, rendered_cells, rendered_text, static_text, wait_training, wait_until
from tests.functional.scenes import task_events
from tui_trainer.config.schema import RunConfig
from tui_trainer.engine.events import EvalResult
from tui_trainer.ui.app import TrainerApp
from tui_trainer.ui.messages import EngineEvent
from tui_trainer.ui.screens.monitor import MonitorScreen
from tui_trainer.ui.widgets.loss_chart import LossChart
from tui_trainer.ui.widgets.task_metrics import (
    LOWEST_MARK,
    SeriesRow,
    TaskMetrics,
    bar,
    confusion_rows,
    has_content,
    latest_text,
    lowest_recall,
    per_dataset_text,
    recall_text,
    series,
    SERIES,
)

SIZE = (90, 40)

LABELS = ["angry", "disgust", "happy"]


def sae_eval(step: int, *, ev: float, l0: float, dead: int, d_sae: int = 256, ce: float = 0.8) -> EvalResult:
    metrics = {
        "eval_loss": 1 - ev, "l0": l0, "explained_variance": ev, "mse": 0.01,
        "dead_features": dead, "dead_fraction": dead / d_sae, "ce_loss_score": ce,
    }
    return EvalResult(step, time=T0 + step, eval_loss=1 - ev, per_dataset={}, metrics=metrics)


def cls_eval(step: int, *, acc: float, f1: float, recall: dict[str, float], matrix: list[list[int]]) -> EvalResult:
    metrics = {
        "eval_loss": 1.0, "accuracy": acc, "macro_f1": f1, "balanced_accuracy": sum(recall.values()) / len(recall),
        "precision": dict.fromkeys(LABELS, 0.5), "recall": recall,
        "support": {name: sum(row) for name, row in zip(LABELS, matrix, strict=True)},
        "confusion_matrix": matrix, "labels": LABELS,
    }
    return EvalResult(step, time=T0 + step, eval_loss=1.0, per_dataset={}, metrics=metrics, best_metric="macro_f1")


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield TaskMetrics()


def _rows(app: App) -> list[str]:
    return [static_text(row.query_one(Static)).strip() for row in app.screen.query(SeriesRow) if row.display]


def _sparks(app: App) -> list[list[float]]:
    return [list(row.query_one(Sparkline).data or []) for row in app.screen.query(SeriesRow) if row.display]


async def test_sae_panel_shows_latest_values_and_history() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TaskMetrics)
        evals = [sae_eval(10, ev=0.41, l0=88.0, dead=40), sae_eval(20, ev=0.63, l0=61.5, dead=12)]
        assert panel.show("sae", evals[:1])
        await pilot.pause()
        assert panel.show("sae", evals)
        await pilot.pause()
        rows = _rows(app)
        assert rows == [
            "L0            61.5",
            "explained var 0.630",
            "dead features 12 (4.7%)",
            "CE loss score 0.800",
        ]
        assert _sparks(app) == [[88.0, 61.5], [0.41, 0.63], [40 / 256, 12 / 256], [0.8, 0.8]]
        assert not app.query_one("#tm-recall").display and not app.query_one("#tm-matrix").display
        assert not app.query_one("#tm-per-dataset").display
        per = {"code": {"l0": 50.0}, "docs": {"l0": 70.0}}
        panel.show("sae", [*evals, dataclasses.replace(sae_eval(30, ev=0.7, l0=60.0, dead=5), per_dataset_metrics=per)])
        await pilot.pause()
        shown = static_text(app.query_one("#tm-per-dataset", Static)).splitlines()
        assert [line.split() for line in shown] == [["per", "dataset", "L0"], ["code", "50.0"], ["docs", "70.0"]]
        assert panel.border_title == "eval metrics: sae"


async def test_classification_panel_recall_bars_and_confusion_matrix() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TaskMetrics)
        matrix = [[8, 1, 1], [3, 1, 0], [0, 0, 10]]
        evals = [
            cls_eval(10, acc=0.5, f1=0.40, recall={"angry": 0.5, "disgust": 0.0, "happy": 0.7}, matrix=[[5, 0, 5], [4, 0, 0], [3, 0, 7]]),
            cls_eval(20, acc=0.79, f1=0.62, recall={"angry": 0.8, "disgust": 0.25, "happy": 1.0}, matrix=matrix),
        ]
        panel.show("classification", evals)
        await pilot.pause()
        assert _rows(app) == ["accuracy      0.790", "macro-F1      0.620"]
        assert _sparks(app) == [[0.5, 0.79], [0.40, 0.62]]
        recall = static_text(app.query_one("#tm-recall", Static)).splitlines()
        assert recall[0] == "recall per class"
        lowest = [line for line in recall if LOWEST_MARK in line]
        assert len(lowest) == 1 and lowest[0].startswith("disgust") and "0.25" in lowest[0]
        assert recall[3].startswith("happy   " + "█" * 16 + " 1.00")
        table = app.query_one("#tm-matrix", DataTable)
        assert table.display and table.row_count == 3
        assert [str(c.label) for c in table.columns.values()] == ["true \\ pred", "0", "1", "2"]
        shown = [[str(cell) for cell in table.get_row_at(r)] for r in range(3)]
        assert shown == [["0 angry", "8", "1", "1"], ["1 disgust", "3", "1", "0"], ["2 happy", "0", "0", "10"]]


async def test_causal_lm_shows_perplexity_or_nothing() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TaskMetrics)
        plain = EvalResult(10, time=T0, eval_loss=2.0, per_dataset={})
        panel.show("causal_lm", [plain])
        await pilot.pause()
        assert not panel.has_content and _rows(app) == ["perplexity    –"]
        assert app.query_one("#tm-empty").display
        with_ppl = EvalResult(20, time=T0, eval_loss=2.0, per_dataset={}, metrics={"eval_loss": 2.0, "perplexity": math.exp(2.0)})
        panel.show("causal_lm", [plain, with_ppl])
        await pilot.pause()
        assert panel.has_content and _rows(app) == ["perplexity    7.39"]
        assert not app.query_one("#tm-empty").display


async def test_unchanged_evals_do_not_rebuild_the_panel() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TaskMetrics)
        evals = [sae_eval(10, ev=0.4, l0=80.0, dead=3)]
        panel.show("sae", evals)
        await pilot.pause()
        before = panel.renders
        for _ in range(50):  # every step update calls show; only a new eval may rebuild
            assert not panel.show("sae", evals)
        assert panel.renders == before
        assert panel.show("sae", [*evals, sae_eval(20, ev=0.5, l0=70.0, dead=2)])
        assert panel.renders == before + 1


async def test_no_color_keeps_the_lowest_recall_readable(monkeypatch) -> None:
    """Under NO_COLOR the lowest class must still be told apart, by its mark, and be legible."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        assert app.no_color
        recall = {"angry": 0.8, "disgust": 0.25, "happy": 1.0}
        app.query_one(TaskMetrics).show("classification", [cls_eval(10, acc=0.8, f1=0.6, recall=recall, matrix=[[1, 0, 0]] * 3)])
        await pilot.pause()
        region = app.query_one("#tm-recall").region
        lines = [rendered_text(app, region._replace(y=y, height=1)) for y in range(region.y, region.y + region.height)]
        assert [line.split()[0] for line in lines if LOWEST_MARK in line] == ["disgust"]
        cells = rendered_cells(app, region)
        assert cells and min(contrast(fg, bg) for text, fg, bg in cells if set(text) - set("█▏▎▍▌▋▊▉ ")) >= 4.5


# -- pure helpers ----------------------------------------------------------------------
def test_series_skips_missing_and_nan() -> None:
    evals = [sae_eval(1, ev=0.1, l0=5.0, dead=0), EvalResult(2, eval_loss=1.0, per_dataset={}, metrics={"l0": math.nan})]
    assert series(evals, "l0") == [5.0]
    assert series(evals, "nope") == []
    assert has_content("sae", evals) and not has_content("causal_lm", evals) and not has_content("unknown", evals)


def test_latest_text_count_and_fraction() -> None:
    dead = SERIES["sae"][2]
    assert latest_text(dead, {"dead_features": 1234, "dead_fraction": 0.0754}) == "1,234 (7.5%)"
    assert latest_text(dead, {}) == "–"
    assert latest_text(SERIES["sae"][3], {"ce_loss_score": math.nan}) == "–"


def test_lowest_recall_ignores_classes_absent_from_the_eval_set() -> None:
    recall = {"a": 0.9, "b": 0.0, "c": 0.4}
    assert lowest_recall(recall) == "b"
    assert lowest_recall(recall, {"a": 5, "b": 0, "c": 7}) == "c"
    assert lowest_recall({}, None) is None
    assert lowest_recall({"a": 0.5, "b": 0.5}) == "a"


def test_recall_text_marks_the_lowest_in_plain_text() -> None:
    text = recall_text({"a": 0.9, "b": 0.3}, ["a", "b"], {"a": 3, "b": 0}).plain.splitlines()
    # b is absent from the eval set, so a is the lowest that says something about the model.
    assert text[1].endswith(LOWEST_MARK) and text[1].startswith("a ")
    assert "(not in eval set)" in text[2] and LOWEST_MARK not in text[2]


def test_per_dataset_text_lines_up_the_mix() -> None:
    per = {"code": {"l0": 60.0, "explained_variance": 0.7}, "docs": {"l0": 40.25, "explained_variance": math.nan}}
    lines = per_dataset_text("sae", per).plain.splitlines()
    assert lines == [
        "per dataset             L0  explained var",
        "code                  60.0          0.700",
        "docs                  40.2              –",
    ]
    assert per_dataset_text("sae", {"code": per["code"]}) is None  # one dataset: the rows above say it
    assert per_dataset_text("classification", per) is None


def test_confusion_rows_names_rows_and_indexes_columns() -> None:
    header, rows = confusion_rows([[3, 1], [0, 4]], ["cat", "dog"])
    assert header == ["true \\ pred", "0", "1"]
    assert rows == [("0 cat", ["3", "1"]), ("1 dog", ["0", "4"])]
    assert confusion_rows([[1]], [])[1] == [("0 0", ["1"])]


@given(st.floats(min_value=-1, max_value=2, allow_nan=False), st.integers(min_value=1, max_value=40))
def test_bar_width_is_fixed_and_grows_with_the_fraction(fraction: float, width: int) -> None:
    drawn = bar(fraction, width)
    assert len(drawn) == width
    assert drawn.count("█") == math.floor(round(max(0.0, min(1.0, fraction)) * width * 8) / 8)


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.floats(min_value=0, max_value=1), min_size=1))
def test_lowest_recall_is_a_minimum(recall: dict[str, float]) -> None:
    worst = lowest_recall(recall)
    assert recall[worst] == min(recall.values())


# -- on the monitor --------------------------------------------------------------------
async def _local_monitor(tmp_path: Path, task: str, upto: int = 30) -> AsyncIterator[tuple[TrainerApp, Pilot]]:
    engine = FakeEngine(tmp_path, total=40)
    engine.gate.clear()  # the scripted events drive the screen; the engine waits before step 1
    app = TrainerApp(services=make_services(tmp_path, engine), output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        app.start_training(RunConfig())
        await pilot.pause()
        for event in task_events(task, upto=upto):
            app.post_message(EngineEvent(event))
        await pilot.pause()
        try:
            yield app, pilot
        finally:
            # Ended here, while the app runs: an engine thread outliving it posts to a closed app.
            app.controls.request_stop("user")
            await wait_training(app)


@pytest.mark.parametrize("task", ["sae", "classification"])
async def test_monitor_shows_the_task_panel_and_t_toggles_the_loss_chart(tmp_path: Path, task: str) -> None:
    async with asynccontextmanager(_local_monitor)(tmp_path, task) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        panel, chart = screen.query_one(TaskMetrics), screen.query_one(LossChart)
        assert panel.display and not chart.display
        assert panel.run_task == task and [e.step for e in panel.evals] == [10, 20, 30]
        first = _rows(app)[0]
        assert first.startswith("L0            " if task == "sae" else "accuracy      ")
        await pilot.press("t")
        assert chart.display and not panel.display
        await pilot.press("t")
        assert panel.display and not chart.display


async def test_causal_lm_monitor_keeps_the_chart_until_asked(tmp_path: Path) -> None:
    async with asynccontextmanager(_local_monitor)(tmp_path, "causal_lm") as (app, pilot):
        panel, chart = app.screen.query_one(TaskMetrics), app.screen.query_one(LossChart)
        assert chart.display and not panel.display
        await pilot.press("t")  # scripted evals carry no perplexity: nothing to show, the key is off
        assert chart.display and not panel.display


async def test_follow_mode_shows_the_task_panel(tmp_path: Path) -> None:
    from tui_trainer.runs.listing import EventFollower

    run_dir = tmp_path / "runs" / "other-20231114-221320"
    run_dir.mkdir(parents=True)
    with (run_dir / "events.jsonl").open("w") as fh:
        for event in task_events("classification", upto=20):
            fh.write(json.dumps(event.to_dict()) + "\n")
    services = make_services(tmp_path)
    services.follower = EventFollower
    app = TrainerApp(services=services, monitor_run=run_dir, output_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.following
        await followed(pilot, app.screen)
        panel = app.screen.query_one(TaskMetrics)
        assert panel.display and [e.step for e in panel.evals] == [10, 20]
        assert app.screen.query_one("#tm-matrix", DataTable).row_count == 3


async def test_causal_lm_perplexity_is_one_key_away(tmp_path: Path) -> None:
    async with asynccontextmanager(_local_monitor)(tmp_path, "causal_lm") as (app, pilot):
        panel, chart = app.screen.query_one(TaskMetrics), app.screen.query_one(LossChart)
        metrics = {"eval_loss": 2.0, "perplexity": math.exp(2.0)}
        app.post_message(EngineEvent(EvalResult(31, time=T0 + 62, eval_loss=2.0, per_dataset={}, metrics=metrics)))
        await pilot.pause()
        assert chart.display and not panel.display  # the chart stays first for a language model
        await pilot.press("t")
        assert panel.display and not chart.display
        assert _rows(app) == ["perplexity    7.39"]
