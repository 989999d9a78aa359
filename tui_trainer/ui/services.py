"""Everything the UI asks of the core, gathered in one replaceable place.

The screens call these instead of importing core modules directly, so tests can swap
a slow or machine-dependent piece (the engine, GPU sampling, the clock) for a fake
while the rest stays real. The defaults import lazily: opening the home screen must
not import torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.ui.widgets.system_panel import SystemSample


def _discover_runs(output_dir: Path) -> list[Any]:
    from tui_trainer.runs.listing import discover_runs

    return discover_runs(output_dir)


def _discover_studies(output_dir: Path) -> list[Any]:
    from tui_trainer.search.progress import discover_studies

    return discover_studies(output_dir)


def _start_search(cfg: Any) -> Path:
    from tui_trainer.search.launch import start_search

    return start_search(cfg)


def _request_stop(run_dir: Path) -> Path:
    from tui_trainer.runs.listing import request_stop

    return request_stop(run_dir)


def _follower(run_dir: Path) -> Any:
    from tui_trainer.runs.listing import EventFollower

    return EventFollower(run_dir)


def _train(cfg: Any, **kwargs: Any) -> Any:
    from tui_trainer.api import train

    return train(cfg, **kwargs)


def _inspect(spec: Any) -> Any:
    from tui_trainer.data.inspect import inspect_dataset

    return inspect_dataset(spec)


def _inspect_classes(spec: Any, section: Any, eval_fraction: float, seed: int) -> Any:
    from tui_trainer.tasks.classification.inspect import inspect_classes

    return inspect_classes(spec, section, eval_fraction=eval_fraction, seed=seed)


def _demo_config(output_dir: Path) -> Any:
    from tui_trainer.demo.catalog import demo_run_config

    return demo_run_config(output_dir=str(output_dir))


def _smollm2_config(output_dir: Path) -> Any:
    from tui_trainer.demo.catalog import smollm2_demo_config

    return smollm2_demo_config(output_dir=str(output_dir))


def _sae_demo_config(output_dir: Path) -> Any:
    from tui_trainer.tasks.sae.demo import sae_demo_config

    return sae_demo_config(output_dir=str(output_dir))


def _classification_demo_config(output_dir: Path) -> Any:
    from tui_trainer.demo.classification_demos import classification_run_config

    return classification_run_config(output_dir=str(output_dir))


def _launch(cfg: Any, *, detach: bool, nproc: int) -> Any:
    from tui_trainer.ui.wizard_launch import launch_run

    return launch_run(cfg, detach=detach, nproc=nproc)


def _end_process(pid: int) -> None:
    import os
    import signal

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it has ended already


def _measure(cfg: Any) -> Any:
    from tui_trainer.measure import measure

    return measure(cfg)


def _model_shape(cfg: Any) -> Any:
    from tui_trainer.ui.wizard_model import read_model_shape

    return read_model_shape(cfg)


def _load_presets() -> dict[str, Any]:
    from tui_trainer.planning.presets import load_presets

    return load_presets()


def _levels() -> tuple[str, ...]:
    from tui_trainer.planning.presets import LEVELS

    return tuple(LEVELS)


def _detect_hardware() -> Any:
    from tui_trainer.planning.hardware import detect_hardware

    return detect_hardware()


def _fit_preset(name: str, level: str, hardware: Any, data_tokens: int | None, base: Any) -> Any:
    from tui_trainer.planning.fitting import fit_preset

    return fit_preset(name, level, hardware, data_tokens=data_tokens, base=base)


def _estimate(preset: str, cfg: Any, hardware: Any) -> Any:
    from tui_trainer.planning.memory_estimate import estimate_for_config
    from tui_trainer.planning.presets import get_preset

    return estimate_for_config(get_preset(preset).facts, cfg, hardware)


def _system_sample() -> SystemSample | None:
    from tui_trainer.planning.hardware import sample_gpu_stats, sample_host_stats

    gpus = sample_gpu_stats()
    if gpus:
        g = gpus[0]
        return SystemSample(
            kind="gpu",
            title=g.name,
            util_pct=g.utilization_pct or 0.0,
            mem_used=g.memory_used_bytes,
            mem_total=g.memory_total_bytes,
            temperature_c=g.temperature_c,
            power_w=g.power_w,
        )
    h = sample_host_stats()
    return SystemSample(kind="cpu", title="CPU / RAM", util_pct=h.cpu_pct, mem_used=h.ram_used_bytes, mem_total=h.ram_total_bytes)


@dataclass
class Services:
    """The core functions the UI uses; each can be replaced (tests, benchmarks)."""

    discover_runs: Callable[[Path], list[Any]] = _discover_runs
    """runs.discover_runs: newest first."""
    discover_studies: Callable[[Path], list[Any]] = _discover_studies
    """search.progress.discover_studies: hyperparameter studies, newest first."""
    start_search: Callable[[Any], Path] = _start_search
    """search.launch.start_search: a detached study over the config; its directory."""
    request_stop: Callable[[Path], Any] = _request_stop
    """runs.request_stop: write a run's STOP file."""
    follower: Callable[[Path], Any] = _follower
    """runs.EventFollower factory (``poll()`` returns new events)."""
    train: Callable[..., Any] = _train
    """engine.api.train (blocking; runs in the worker thread)."""
    inspect_dataset: Callable[[Any], Any] = _inspect
    """data.inspect.inspect_dataset for the dataset screen's details."""
    inspect_classes: Callable[[Any, Any, float, int], Any] = _inspect_classes
    """tasks.classification.inspect.inspect_classes(spec, section, eval_fraction, seed): rows per label, the cap."""
    demo_config: Callable[[Path], Any] = _demo_config
    """data.demo.demo_run_config for the one-key demo."""
    smollm2_config: Callable[[Path], Any] = _smollm2_config
    """demo.catalog.smollm2_demo_config: the second demo (LoRA on SmolLM2-135M-Instruct)."""
    sae_demo_config: Callable[[Path], Any] = _sae_demo_config
    """tasks.sae.demo.sae_demo_config: a TopK SAE on the tiny model's layer 1 (home's d)."""
    classification_demo_config: Callable[[Path], Any] = _classification_demo_config
    """demo.classification_demos.classification_run_config: the tiny ViT on imbalanced digits (home's d)."""
    launch: Callable[..., Any] = _launch
    """wizard_launch.launch_run(cfg, detach=, nproc=): the run in processes of its own; a StartedRun."""
    end_process: Callable[[int], None] = _end_process
    """SIGTERM to a launched run's process: it saves a resumable checkpoint and exits 75."""
    measure: Callable[[Any], Any] = _measure
    """measure.measure: a few timed steps of the config (blocking; the wizard runs it in a worker)."""
    model_shape: Callable[[Any], Any] = _model_shape
    """wizard_model.read_model_shape: the base model's layers and width, and the task's check of them."""
    load_presets: Callable[[], dict[str, Any]] = _load_presets
    """presets.load_presets: preset families by name."""
    levels: Callable[[], tuple[str, ...]] = _levels
    """presets.LEVELS: highspeed / quality / bestaccuracy."""
    detect_hardware: Callable[[], Any] = _detect_hardware
    """hardware.detect_hardware: the GPU (or CPU) the wizard fits to."""
    fit_preset: Callable[[str, str, Any, int | None, Any], Any] = _fit_preset
    """fitting.fit_preset(name, level, hardware, data_tokens, base) -> FitResult."""
    estimate: Callable[[str, Any, Any], Any] | None = _estimate
    """memory_estimate.estimate_for_config for an edited config of a preset family."""
    system_sample: Callable[[], SystemSample | None] | None = _system_sample
    """GPU or host stats for the monitor's panel; None hides the sampling."""
    sample_every: float = 2.0
    """Seconds between system samples; 0 samples once (deterministic screenshots)."""
    poll_every: float = 0.5
    """Seconds between reads of a followed run's events.jsonl; 0 reads once."""
    clock: Callable[[], float] = field(default=time.time)
    """Wall clock for ages on the home screen (frozen in snapshot tests)."""
