"""The task's own eval metrics on the monitor: SAE quality, classification scores, perplexity.

The engine reports what a task measures in ``EvalResult.metrics`` (tasks/sae/metrics.py,
tasks/classification/metrics.py); this panel shows their history and latest values. Evals
are rare, so the panel only changes when a new one arrives: :meth:`TaskMetrics.show` is
called at every monitor update and returns at once when the eval count is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Sparkline, Static

from tui_trainer.engine.events import EvalResult
from tui_trainer.ui.widgets import styles

LOWEST_MARK = "◀ lowest"
"""Marks the worst-recalled class in words and a symbol, so NO_COLOR loses nothing."""

BAR_WIDTH = 16
"""Cells of a recall bar at recall 1.0."""

_EIGHTHS = " ▏▎▍▌▋▊▉"

BAR_STYLE = "#5fafff"
"""Recall bars other than the lowest (which takes styles.WARNING)."""


@dataclass(frozen=True)
class SeriesSpec:
    """One metric shown as a latest value and a sparkline of its history."""

    label: str
    """What the row is called on screen."""
    key: str
    """The ``EvalResult.metrics`` key the sparkline follows."""
    spec: str
    """Format spec of the latest value."""
    count_key: str = ""
    """A count shown before the value (dead_features before dead_fraction), if any."""


SERIES: dict[str, tuple[SeriesSpec, ...]] = {
    "sae": (
        SeriesSpec("L0", "l0", ".1f"),
        SeriesSpec("explained var", "explained_variance", ".3f"),
        SeriesSpec("dead features", "dead_fraction", ".1%", count_key="dead_features"),
        SeriesSpec("CE loss score", "ce_loss_score", ".3f"),
    ),
    "classification": (
        SeriesSpec("accuracy", "accuracy", ".3f"),
        SeriesSpec("macro-F1", "macro_f1", ".3f"),
    ),
    "causal_lm": (SeriesSpec("perplexity", "perplexity", ".2f"),),
}
"""The rows each task shows, in order."""

MAX_SERIES = max(len(rows) for rows in SERIES.values())

SHOWN_BY_DEFAULT = frozenset({"sae", "classification"})
"""Tasks whose panel replaces the loss chart until toggled; causal_lm keeps the chart first."""


# -- pure formatting -------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def series(evals: Sequence[EvalResult], key: str) -> list[float]:
    """The finite values of metric ``key`` over the evals, oldest first (NaN and missing skipped)."""
    values = (_finite(e.metrics.get(key)) for e in evals)
    return [v for v in values if v is not None]


def has_content(task: str, evals: Sequence[EvalResult]) -> bool:
    """Whether any eval carries a metric the task's panel shows."""
    return any(series(evals, spec.key) for spec in SERIES.get(task, ()))


def latest_text(spec: SeriesSpec, metrics: Mapping[str, Any]) -> str:
    """The latest value of a row, e.g. ``0.912`` or ``12 (4.7%)``; ``–`` when the eval lacks it."""
    value = _finite(metrics.get(spec.key))
    shown = "–" if value is None else format(value, spec.spec)
    if spec.count_key and _finite(metrics.get(spec.count_key)) is not None:
        return f"{int(metrics[spec.count_key]):,} ({shown})"
    return shown


def lowest_recall(recall: Mapping[str, float], support: Mapping[str, int] | None = None) -> str | None:
    """The class with the lowest recall (the first in label order on ties).

    Classes absent from the eval set are left out: scikit-learn scores their recall 0
    (zero_division=0), which says nothing about the model.
    """
    present = {name: r for name, r in recall.items() if support is None or support.get(name, 1) > 0}
    if not present:
        return None
    return min(present, key=lambda name: present[name])


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``width`` cells at 1.0, in eighths of a cell, padded to ``width``."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def recall_text(recall: Mapping[str, float], labels: Sequence[str], support: Mapping[str, int] | None = None) -> Text:
    """One line per class: name, bar, recall; the lowest marked with :data:`LOWEST_MARK` (and bold)."""
    names = list(labels) or list(recall)
    worst = lowest_recall({n: recall[n] for n in names if n in recall}, support)
    width = max((len(n) for n in names), default=0)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("recall per class", style="bold")
    for name in names:
        value = recall.get(name)
        text.append("\n")
        line_style = "bold" if name == worst else ""
        text.append(name.ljust(width) + " ", style=line_style)
        text.append(bar(value or 0.0), style=styles.WARNING if name == worst else BAR_STYLE)
        text.append(" –" if value is None else f" {value:.2f}", style=line_style)
        if support is not None and support.get(name) == 0:
            text.append("  (not in eval set)", style="dim")
        if name == worst:
            text.append(" " + LOWEST_MARK, style="bold")
    return text


def per_dataset_text(task: str, per_dataset: Mapping[str, Mapping[str, Any]]) -> Text | None:
    """The latest value of each of the task's rows per dataset (a mix's datasets side by side)."""
    specs = [spec for spec in SERIES.get(task, ()) if any(spec.key in m for m in per_dataset.values())]
    if len(per_dataset) < 2 or not specs:
        return None
    width = max(len("per dataset"), *(len(name) for name in per_dataset))
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("per dataset".ljust(width), style="bold")
    for spec in specs:
        text.append(f"  {spec.label:>13}", style="dim")
    for name, metrics in per_dataset.items():
        text.append("\n" + name.ljust(width))
        for spec in specs:
            value = _finite(metrics.get(spec.key))
            text.append(f"  {'–' if value is None else format(value, spec.spec):>13}")
    return text


def confusion_rows(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Column headers and (row label, cells) of a confusion matrix (rows true, columns predicted).

    Columns are headed by class index, not name, so a 10-class matrix fits the panel; each
    row label names its index and class. Labels missing from the metrics become indices.
    """
    n = len(matrix)
    names = [labels[i] if i < len(labels) else str(i) for i in range(n)]
    header = ["true \\ pred"] + [str(i) for i in range(n)]
    rows = [(f"{i} {names[i]}", [str(int(c)) for c in row]) for i, row in enumerate(matrix)]
    return header, rows


# -- the widget ------------------------------------------------------------------------
class SeriesRow(Horizontal):
    """A metric's name and latest value, then the sparkline of its history."""

    DEFAULT_CSS = """
    SeriesRow { height: 1; }
    SeriesRow > Static { width: 26; }
    SeriesRow > Sparkline { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static("")
        yield Sparkline([])

    def set_series(self, spec: SeriesSpec, evals: Sequence[EvalResult]) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{spec.label:<14}", style="dim")
        text.append(latest_text(spec, evals[-1].metrics if evals else {}), style="bold")
        self.query_one(Static).update(text)
        self.query_one(Sparkline).data = series(evals, spec.key)


class TaskMetrics(VerticalScroll):
    """Eval metrics of the run's task with their history; empty until a first eval has them."""

    can_focus = False
    """It scrolls with the mouse; taking focus would take the monitor's first focus from the event log."""

    DEFAULT_CSS = """
    TaskMetrics { border: round $primary-darken-2; padding: 0 1; height: 1fr; }
    TaskMetrics #tm-recall, TaskMetrics #tm-per-dataset { height: auto; margin-top: 1; }
    TaskMetrics #tm-matrix-title { margin-top: 1; text-style: bold; }
    TaskMetrics DataTable { height: auto; width: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_task = ""
        """The task whose metrics are shown ("" until the run has started)."""
        self.evals: tuple[EvalResult, ...] = ()
        """The evals shown, oldest first."""
        self.renders = 0
        """Times the panel was rebuilt from new evals (tests check it stays rare)."""

    def compose(self) -> ComposeResult:
        yield Static("no eval yet", id="tm-empty")
        for i in range(MAX_SERIES):
            yield SeriesRow(id=f"tm-series-{i}")
        yield Static("", id="tm-per-dataset")
        yield Static("", id="tm-recall")
        yield Static("confusion matrix (rows true, columns predicted)", id="tm-matrix-title")
        table = DataTable(id="tm-matrix", show_cursor=False, zebra_stripes=False)
        table.can_focus = False  # nothing to select in it
        yield table

    def on_mount(self) -> None:
        self._render_evals()

    @property
    def has_content(self) -> bool:
        return has_content(self.run_task, self.evals)

    def show(self, task: str, evals: Sequence[EvalResult]) -> bool:
        """Show ``evals`` of a ``task`` run; True when anything changed (cheap when nothing did)."""
        if task == self.run_task and len(evals) == len(self.evals) and (not evals or evals[-1] is self.evals[-1]):
            return False
        self.run_task, self.evals = task, tuple(evals)
        if self.is_mounted:
            self._render_evals()
        return True

    def _render_evals(self) -> None:
        self.renders += 1
        specs = SERIES.get(self.run_task, ())
        self.border_title = f"eval metrics: {self.run_task}" if self.run_task else "eval metrics"
        self.query_one("#tm-empty").display = not self.has_content
        for i in range(MAX_SERIES):
            row = self.query_one(f"#tm-series-{i}", SeriesRow)
            row.display = i < len(specs) and bool(self.evals)
            if row.display:
                row.set_series(specs[i], self.evals)
        latest = self.evals[-1].metrics if self.evals else {}
        by_dataset = per_dataset_text(self.run_task, self.evals[-1].per_dataset_metrics) if self.evals else None
        by_dataset_widget = self.query_one("#tm-per-dataset", Static)
        by_dataset_widget.display = by_dataset is not None
        if by_dataset is not None:
            by_dataset_widget.update(by_dataset)
        recall = latest.get("recall") if self.run_task == "classification" else None
        recall_widget = self.query_one("#tm-recall", Static)
        recall_widget.display = isinstance(recall, Mapping) and bool(recall)
        if recall_widget.display:
            recall_widget.update(recall_text(recall, latest.get("labels") or list(recall), latest.get("support")))
        matrix = latest.get("confusion_matrix") if self.run_task == "classification" else None
        shown = isinstance(matrix, list) and bool(matrix)
        self.query_one("#tm-matrix-title").display = shown
        table = self.query_one("#tm-matrix", DataTable)
        table.display = shown
        if shown:
            self._fill_matrix(table, matrix, latest.get("labels") or [])

    @staticmethod
    def _fill_matrix(table: DataTable, matrix: list[list[int]], labels: Sequence[str]) -> None:
        header, rows = confusion_rows(matrix, labels)
        table.clear(columns=True)
        for i, name in enumerate(header):
            table.add_column(Text(name, justify="left" if i == 0 else "right"), key=str(i))
        for r, (label, cells) in enumerate(rows):
            # The diagonal (correct predictions) in bold: its place says it, the weight helps.
            styled = [Text(c, justify="right", style="bold" if c_i == r else "") for c_i, c in enumerate(cells)]
            table.add_row(Text(label), *styled)
