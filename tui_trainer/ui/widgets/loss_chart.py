"""Train and eval loss over steps, drawn with plotext.

Drawing the chart costs tens of milliseconds (plotext builds an ANSI canvas that Textual
then parses), far more than every other monitor widget together; on a busy training box
that time comes out of the training thread's CPU. So redraws are throttled: the first
update draws at once, later ones at most every ``min_interval`` seconds (the newest data
is always drawn when the interval elapses).
"""

from __future__ import annotations

import time

from textual.timer import Timer
from textual_plotext import PlotextPlot

MAX_POINTS = 400
"""Points plotted per series; longer histories are thinned evenly."""


def thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = len(points) / limit
    picked = [points[int(i * stride)] for i in range(limit - 1)]
    return picked + [points[-1]]


class LossChart(PlotextPlot):
    """Line chart of the training loss, with eval loss as markers."""

    def __init__(self, min_interval: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.min_interval = min_interval
        self._train: list[tuple[int, float]] = []
        self._eval: list[tuple[int, float]] = []
        self._last_draw = float("-inf")
        self._pending: Timer | None = None
        self.draws = 0
        """Redraws so far (tests check the throttling)."""

    def on_mount(self) -> None:
        super().on_mount()
        self.draw_now()

    def set_points(self, train: list[tuple[int, float]], evals: list[tuple[int, float]], *, force: bool = False) -> None:
        self._train, self._eval = train, evals
        wait = self._last_draw + self.min_interval - time.monotonic()
        if force or wait <= 0:
            self.draw_now()
        elif self._pending is None:
            self._pending = self.set_timer(wait, self.draw_now)

    def draw_now(self) -> None:
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        self._last_draw = time.monotonic()
        self.draws += 1
        train, evals = thin(self._train), thin(self._eval)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss")
        plt.xlabel("step")
        if train:
            plt.plot([s for s, _ in train], [v for _, v in train], label="train", marker="braille")
        if evals:
            plt.plot([s for s, _ in evals], [v for _, v in evals], label="eval", marker="dot", color="orange")
        self.refresh()
