"""GPU utilization and memory, sampled for the ``step`` events (and so for the report's curves).

The engine asks :meth:`GpuSampler.fields` at every step; a reading is taken at most once per
``every`` seconds and only that step's event carries it (``gpu_utilization_pct``,
``gpu_memory_bytes``, DESIGN §4.4). A reading through NVML costs tens of microseconds and
NVML's own utilization counter averages over 1/6 to 1 s, so sampling every step would add
cost without adding information. Without CUDA the sampler is off: the events carry no GPU
fields and the report says "not sampled" instead of drawing an empty plot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SAMPLE_SECONDS = 1.0
"""Least time between two readings that go into step events."""


@dataclass(frozen=True)
class GpuReading:
    """One reading of the GPU this process trains on."""

    utilization_pct: float | None
    """Share of the last sample period a kernel was running, 0-100 (None where NVML cannot tell)."""
    memory_bytes: int | None
    """Memory in use on the device (NVML: all processes; without NVML, what torch reserved)."""


Reader = Callable[[], GpuReading | None]


class GpuSampler:
    """Rate-limited GPU readings for the step events; ``reader=None`` means not sampled."""

    def __init__(self, reader: Reader | None, every: float = SAMPLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        """Where a reading comes from (None: no GPU, nothing is sampled)."""
        self.every = every
        self._clock = clock
        self._next = float("-inf")

    @property
    def active(self) -> bool:
        return self.reader is not None

    def fields(self) -> dict[str, float | int]:
        """The step event's GPU fields: a fresh reading when one is due, else nothing."""
        if self.reader is None:
            return {}
        now = self._clock()
        if now < self._next:
            return {}
        self._next = now + self.every
        try:
            reading = self.reader()
        except Exception:  # noqa: BLE001 - a driver hiccup must not end a run; the next reading may work
            return {}
        if reading is None:
            return {}
        out: dict[str, float | int] = {}
        if reading.utilization_pct is not None:
            out["gpu_utilization_pct"] = float(reading.utilization_pct)
        if reading.memory_bytes is not None:
            out["gpu_memory_bytes"] = int(reading.memory_bytes)
        return out

    @classmethod
    def for_device(cls, device: Any) -> GpuSampler:
        """Reads ``device`` (the run's torch device) when it is a CUDA device; off otherwise.

        The run's own device, not "is CUDA available": a CPU run on a GPU box must not create
        a CUDA context (hundreds of MiB of GPU memory) just to be sampled.
        """
        if getattr(device, "type", None) != "cuda":
            return cls(None)
        import torch

        return cls(_cuda_reader(device.index if device.index is not None else torch.cuda.current_device()))


def _cuda_reader(ordinal: int) -> Reader:
    def read() -> GpuReading | None:
        from tui_trainer.planning.hardware import sample_gpu_stats

        gpus = sample_gpu_stats()  # visible devices in CUDA order (CUDA_VISIBLE_DEVICES applied)
        if ordinal < len(gpus):
            gpu = gpus[ordinal]
            return GpuReading(gpu.utilization_pct, gpu.memory_used_bytes)
        import torch

        # No NVML (a container without the library): torch still knows its own memory.
        return GpuReading(None, int(torch.cuda.memory_reserved(ordinal)))

    return read
