"""Train and eval loss (or the learning rate, or the gradient norm) over steps, drawn with plotext.

The chart shows one of :data:`VIEWS` at a time; the detectors' findings on that curve are
drawn as vertical lines at their step, so a spike is seen where it happened.

Drawing the chart costs tens of milliseconds (15 at 80x24, 35 at 120x40: plotext builds an
ANSI canvas that Textual then parses into strips), more than every other monitor widget
together, and all of it holds the GIL the training thread needs. So redraws are spaced by
their measured cost: after a draw that took d seconds of UI-thread CPU the next waits
d / CPU_SHARE, and never less than ``min_interval``. The first update draws at once; a due
redraw rides along with the next update (one repaint instead of two); a fallback timer
draws the newest data when updates stop coming (a paused run).
"""

from __future__ import annotations

import time

from textual.geometry import Region
from textual.strip import Strip
from textual.timer import Timer
from textual_plotext import PlotextPlot

CPU_SHARE = 0.004
"""Share of one core the chart may use (step updates have their own, see ui/worker.py)."""

FALLBACK_DELAY = 0.5
"""Seconds past the due time before the fallback timer redraws without a new update."""

MAX_POINTS = 400
"""Points plotted per series; longer histories are thinned evenly."""

VIEWS = {"loss": "loss", "lr": "learning rate", "grad_norm": "grad norm (before clipping)"}
"""What the chart can show (the step event's field) and its title."""

MARK_COLORS = {"spike": "red", "divergence": "magenta", "nonfinite": "red", "plateau": "yellow", "overfit": "yellow"}
"""Vertical line colour per finding kind."""


def thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = len(points) / limit
    picked = [points[int(i * stride)] for i in range(limit - 1)]
    return picked + [points[-1]]


class LossChart(PlotextPlot):
    """Line chart of the training loss with eval loss as markers (or another per-step curve), findings marked."""

    total_cpu_spent = 0.0
    """UI-thread CPU seconds every chart of the process has spent drawing (the step-update
    budget leaves it out: the chart has its own)."""

    def __init__(self, min_interval: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.min_interval = min_interval
        self._train: list[tuple[int, float]] = []
        self._eval: list[tuple[int, float]] = []
        self._marks: list[tuple[int, str]] = []
        self.view = "loss"
        """Which curve is shown: a key of VIEWS."""
        self._last_draw = float("-inf")
        self._draw_cost = 0.0
        self._pending: Timer | None = None
        self.draws = 0
        """Redraws so far (tests check the throttling)."""


    @property
    def curve(self) -> list[tuple[int, float]]:
        """The (step, value) points of the view's curve, as last given."""
        return self._train

    @property
    def marks(self) -> list[tuple[int, str]]:
        """The (step, finding kind) vertical lines, as last given."""
        return self._marks

    def on_mount(self) -> None:
        super().on_mount()
        self.draw_now()

    def set_points(
        self, train: list[tuple[int, float]], evals: list[tuple[int, float]], *,
        marks: list[tuple[int, str]] | None = None, force: bool = False,
    ) -> None:
        """The curve of the current view, its eval points (loss only) and (step, finding kind) marks."""
        changed_marks = marks is not None and marks != self._marks
        self._train, self._eval = train, evals
        if marks is not None:
            self._marks = marks
        force = force or changed_marks  # a new finding shows at once, not at the next throttled redraw
        wait = self._last_draw + max(self.min_interval, self._draw_cost / CPU_SHARE) - time.monotonic()
        if force or wait <= 0:
            self.draw_now()
        elif self._pending is None:
            self._pending = self.set_timer(wait + FALLBACK_DELAY, self.draw_now)

    def draw_now(self) -> None:
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        self._last_draw = time.monotonic()
        self._draw_cost = 0.0
        self.draws += 1
        train, evals = thin(self._train), thin(self._eval)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(VIEWS[self.view])
        plt.xlabel("step")
        if train:
            plt.plot([s for s, _ in train], [v for _, v in train], label="train" if self.view == "loss" else None, marker="braille")
        if evals:
            plt.plot([s for s, _ in evals], [v for _, v in evals], label="eval", marker="dot", color="orange")
        for step, kind in self._marks:
            plt.vline(step, MARK_COLORS.get(kind, "red"))
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        # The cost of a draw is spread over plotext's build (in render) and Textual's parsing
        # of its output into strips: timing the whole line rendering counts both.
        start = time.thread_time()
        try:
            return super().render_lines(crop)
        finally:
            elapsed = time.thread_time() - start
            self._draw_cost += elapsed
            LossChart.total_cpu_spent += elapsed
