"""Measure a config on this machine (``tui-trainer bench``, the wizard's "measure this config").

A few warm-up steps and N timed steps of the user's own config run through the real engine
(``train()``), into a temporary output directory that is deleted afterwards: periodic
checkpoints and evals are off, and the final eval reads one row. The timing window is
the StepMetrics events of the timed steps, so set-up, data preparation, the final eval,
checkpoint and export stay out of it. Memory and GPU utilization are sampled on a thread
while the timed steps run. ``compare`` runs two variants ABBA in the same process, so a
load that changes over the measurement hits both alike.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tui_trainer.config.io import apply_override
from tui_trainer.config.schema import RunConfig, config_from_dict

SAMPLE_SECONDS = 0.2
"""Resource sampling period: NVML's utilization counter itself averages over ~1/6-1 s."""


@dataclass(frozen=True)
class BenchFigures:
    """What one measurement of a config found."""

    tokens_per_s: float
    """Work units (real tokens for sequences) per second over the timed steps."""
    samples_per_s: float
    """Rows per second over the timed steps (packed rows when packing is on)."""
    step_median_s: float
    """Median duration of one timed optimizer step."""
    step_p90_s: float
    """90th percentile of the timed step durations."""
    peak_memory_bytes: int
    """Peak CUDA memory allocated by torch on a GPU; peak resident memory of this process sampled on the CPU."""
    memory_kind: str
    """``cuda_allocated`` or ``rss``: what ``peak_memory_bytes`` counts."""
    gpu_utilization_pct: float | None
    """Mean NVML utilization of the visible GPUs during the timed steps; None without a GPU."""
    gpu_memory_used_bytes: int | None
    """Peak NVML memory in use on the GPUs (all processes) during the timed steps; None without a GPU."""
    epoch_seconds: float
    """Time one pass over the training rows would take at ``samples_per_s``."""
    rows_per_epoch: int
    """Training rows of every dataset together (after packing)."""
    timed_steps: int
    """Steps in the timing window."""
    warmup_steps: int
    """Steps run before the window (allocator, kernels, compilation)."""
    warmup_s: float
    """From the end of set-up (the run_started event) to the end of the warm-up: what torch.compile adds shows here."""


class _ResourceSampler:
    """Samples RSS and NVML figures on a daemon thread between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.rss_peak = 0
        self.gpu_util: list[float] = []
        self.gpu_mem_peak: int | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        from tui_trainer.planning.hardware import sample_gpu_stats, sample_host_stats

        self.rss_peak = max(self.rss_peak, sample_host_stats().process_rss_bytes)
        gpus = sample_gpu_stats()
        utils = [g.utilization_pct for g in gpus if g.utilization_pct is not None]
        if utils:
            self.gpu_util.append(sum(utils) / len(utils))
        if gpus:
            self.gpu_mem_peak = max(self.gpu_mem_peak or 0, max(g.memory_used_bytes for g in gpus))

    def _loop(self) -> None:
        while not self._halt.wait(SAMPLE_SECONDS):
            self._sample()

    def start(self) -> None:
        if self._thread is None:
            self._sample()
            self._thread = threading.Thread(target=self._loop, name="tui-trainer-bench-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._sample()


def bench_variant(cfg: RunConfig, output_dir: Path, steps: int) -> RunConfig:
    """``cfg`` as a measurement: ``steps`` steps into ``output_dir``, no periodic checkpoints or evals."""
    raw = cfg.to_dict()
    raw["run"]["output_dir"] = str(output_dir)
    raw["train"].update(max_steps=steps, eval_every=0, eval_max_rows=1, eval_at_start=False, early_stopping_patience=0)
    raw["checkpoint"].update(every_steps=0, every_minutes=0, keep_best=False)
    return config_from_dict(raw, "bench")


def with_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """``cfg`` with ``key=value`` overrides applied (the ``--set`` syntax)."""
    raw = cfg.to_dict()
    for item in overrides:
        apply_override(raw, item)
    return config_from_dict(raw, "--compare " + " ".join(overrides))


def measure(cfg: RunConfig, *, steps: int = 10, warmup: int = 2) -> BenchFigures:
    """Run ``warmup + steps`` steps of ``cfg`` in a temporary directory and time the last ``steps``."""
    from tui_trainer.api import train
    from tui_trainer.engine.events import DatasetPrepared, RunStarted, StepMetrics

    if steps < 1 or warmup < 1:
        raise ValueError("steps and warmup must be at least 1 (the window starts at the end of a warm-up step)")
    cuda = torch.cuda.is_available()
    sampler = _ResourceSampler()
    ends: list[float] = []
    tokens_seen: list[int] = []
    rows: dict[str, int] = {}
    started: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, DatasetPrepared):
            rows[event.name] = event.rows
        elif isinstance(event, RunStarted):
            started.append(time.perf_counter())
        elif isinstance(event, StepMetrics):
            ends.append(time.perf_counter())
            tokens_seen.append(event.tokens_seen)
            if len(ends) == warmup:  # the window opens at the end of the last warm-up step
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                sampler.start()
            elif len(ends) == warmup + steps:
                sampler.stop()

    with tempfile.TemporaryDirectory(prefix="tui-trainer-bench-") as tmp:
        try:
            result = train(bench_variant(cfg, Path(tmp) / "runs", warmup + steps), on_event=on_event)
        finally:
            sampler.stop()
    if result.status != "finished" or len(ends) < warmup + steps:
        raise RuntimeError(f"the measured run ended {result.status} after {len(ends)} steps: {result.message}")
    window = ends[warmup - 1 : warmup + steps]
    durations = [b - a for a, b in zip(window, window[1:])]
    seconds = window[-1] - window[0]
    samples_per_s = steps * cfg.effective_batch / seconds
    rows_per_epoch = sum(rows.values())
    return BenchFigures(
        tokens_per_s=(tokens_seen[warmup + steps - 1] - tokens_seen[warmup - 1]) / seconds,
        samples_per_s=samples_per_s,
        step_median_s=statistics.median(durations),
        step_p90_s=_percentile(durations, 0.9),
        peak_memory_bytes=int(torch.cuda.max_memory_allocated()) if cuda else sampler.rss_peak,
        memory_kind="cuda_allocated" if cuda else "rss",
        gpu_utilization_pct=statistics.fmean(sampler.gpu_util) if sampler.gpu_util else None,
        gpu_memory_used_bytes=sampler.gpu_mem_peak,
        epoch_seconds=rows_per_epoch / samples_per_s,
        rows_per_epoch=rows_per_epoch,
        timed_steps=steps,
        warmup_steps=warmup,
        warmup_s=window[0] - started[0],
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Comparison:
    """Two variants of one config measured ABBA in one process."""

    base: tuple[BenchFigures, ...]
    """Every measurement of the config as given, in run order."""
    variant: tuple[BenchFigures, ...]
    """Every measurement of the config with the overrides, in run order."""
    overrides: tuple[str, ...]
    """The ``key=value`` overrides that make the variant."""

    @property
    def tokens_per_s_ratio(self) -> float:
        """Median tokens/s of the variant over the base's."""
        base = statistics.median(f.tokens_per_s for f in self.base)
        return statistics.median(f.tokens_per_s for f in self.variant) / base if base > 0 else float("nan")

    @property
    def samples_per_s_ratio(self) -> float:
        base = statistics.median(f.samples_per_s for f in self.base)
        return statistics.median(f.samples_per_s for f in self.variant) / base if base > 0 else float("nan")


def compare(cfg: RunConfig, overrides: list[str], *, steps: int = 10, warmup: int = 2, repeats: int = 2) -> Comparison:
    """Measure ``cfg`` and ``cfg`` with ``overrides`` in ABBA order (base, variant, variant, base, ...)."""
    other = with_overrides(cfg, overrides)
    base: list[BenchFigures] = []
    variant: list[BenchFigures] = []
    for i in range(repeats):
        order = [(cfg, base), (other, variant)] if i % 2 == 0 else [(other, variant), (cfg, base)]
        for config, out in order:
            out.append(measure(config, steps=steps, warmup=warmup))
    return Comparison(tuple(base), tuple(variant), tuple(overrides))
