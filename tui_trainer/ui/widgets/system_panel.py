"""GPU (pynvml) or CPU/RAM (psutil) gauges with a short history."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from tui_trainer.planning.hardware import GIB
from tui_trainer.ui.widgets.quiet_update import update_if_changed

HISTORY = 60
"""Samples kept for the sparklines (one per sampling interval)."""


@dataclass(frozen=True)
class SystemSample:
    """One reading of the machine, GPU if there is one, else CPU and RAM."""

    kind: str
    """"gpu" or "cpu"."""
    title: str
    """GPU name, or "CPU"."""
    util_pct: float
    """GPU utilization or CPU load, percent."""
    mem_used: int
    """Bytes used (GPU memory or RAM)."""
    mem_total: int
    """Bytes available in total (0 when unknown: a run's own events carry only what it uses)."""
    temperature_c: float | None = None
    """GPU temperature, when known."""
    power_w: float | None = None
    """GPU power draw, when known."""


def _gib(n: int) -> str:
    return f"{n / GIB:.1f}"


class SystemPanel(Vertical):
    """Utilization and memory of the first GPU (or the host), with sparklines."""

    DEFAULT_CSS = """
    SystemPanel { height: auto; }
    SystemPanel > Static { height: 1; }
    SystemPanel > Sparkline { height: 1; margin: 0 0 0 0; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._util: deque[float] = deque(maxlen=HISTORY)
        self._mem: deque[float] = deque(maxlen=HISTORY)

    def compose(self) -> ComposeResult:
        yield Static(Text("waiting for the first sample", style="dim"), id="sys-util")
        yield Sparkline([], id="sys-util-history")
        yield Static("", id="sys-mem")
        yield Sparkline([], id="sys-mem-history")
        yield Static("", id="sys-extra")

    def add_sample(self, sample: SystemSample) -> None:
        self._util.append(sample.util_pct)
        mem_pct = 100.0 * sample.mem_used / sample.mem_total if sample.mem_total else None
        self._mem.append(mem_pct if mem_pct is not None else sample.mem_used / GIB)
        label = "GPU" if sample.kind == "gpu" else "CPU"
        if self.border_title != sample.title:
            self.border_title = sample.title
        mem_label = "VRAM" if sample.kind == "gpu" else "RAM"
        extra = []
        if sample.temperature_c is not None:
            extra.append(f"{sample.temperature_c:.0f}°C")
        if sample.power_w is not None:
            extra.append(f"{sample.power_w:.0f} W")
        self._set_line("#sys-util", f"{label} {sample.util_pct:5.1f}%")
        if mem_pct is None:
            self._set_line("#sys-mem", f"{mem_label} {_gib(sample.mem_used)} GiB in use")
        else:
            self._set_line("#sys-mem", f"{mem_label} {_gib(sample.mem_used)}/{_gib(sample.mem_total)} GiB ({mem_pct:.0f}%)")
        self._set_line("#sys-extra", "  ".join(extra))
        self.query_one("#sys-util-history", Sparkline).data = list(self._util)
        self.query_one("#sys-mem-history", Sparkline).data = list(self._mem)

    def show_note(self, title: str, text: str) -> None:
        """No readings to show: say why in place of the gauges (a run on a CPU-only machine elsewhere)."""
        if self.border_title != title:
            self.border_title = title
        update_if_changed(self.query_one("#sys-util", Static), Text(text, style="dim"))

    def _set_line(self, selector: str, text: str) -> None:
        # Each line is one row high whatever it says: no re-layout of the screen.
        update_if_changed(self.query_one(selector, Static), text)
