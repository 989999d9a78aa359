"""Engine events (DESIGN §4.4): frozen dataclasses, one per line in ``events.jsonl``.

Every event has ``type`` (its class's ``TYPE``), ``time`` (unix seconds) and ``step``.
The engine passes them to ``on_event`` callbacks and appends them to the run's log;
the UI and ``runs`` read them back with :func:`event_from_dict`.
"""

from __future__ import annotations

import dataclasses
import time as _time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    step: int
    """Optimizer steps completed when the event happened."""
    time: float = field(default_factory=_time.time, kw_only=True)
    """Unix time in seconds."""

    TYPE: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        # Shallow: every field is a plain value or a dict of them, and asdict's deep copy
        # cost 7x more on every step's event.
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"type": self.TYPE, "time": body.pop("time"), "step": body.pop("step"), **body}


@dataclass(frozen=True)
class RunStarted(Event):
    TYPE: ClassVar[str] = "run_started"
    config: dict[str, Any]
    """The resolved run config as a plain dict."""
    run_dir: str
    """Absolute path of the run directory."""
    world_size: int
    """Number of processes training together."""
    device: str
    """Device type and name, e.g. ``cuda:0 (NVIDIA H100)`` or ``cpu``."""
    total_steps: int = 0
    """Optimizer steps the run will take (derived from epochs when max_steps = 0)."""
    precision: str = "fp32"
    """Compute precision in effect: fp32, bf16 or fp16."""
    tf32: bool = False
    """Whether TF32 matmuls are enabled."""
    attn_implementation: str = "eager"
    """Attention kernel the model actually uses."""
    pin_memory: bool = False
    """Whether batches are pinned before the host-to-device copy."""
    trainable_params: int = 0
    """Parameters updated by the optimizer."""
    total_params: int = 0
    """All parameters of the model."""
    resumed_from: str | None = None
    """Checkpoint directory the run continues from, if any."""
    plan: str = ""
    """The data mix: one line (``2 datasets, weighted: code 70% ...``), then the phase table for curriculum/sequential."""


@dataclass(frozen=True)
class DatasetPrepared(Event):
    TYPE: ClassVar[str] = "dataset_prepared"
    name: str
    """Dataset name from the config."""
    rows: int
    """Training rows after tokenization (and packing)."""
    tokens: int
    """Training tokens (labels included in the loss count separately in stats)."""
    cached: bool
    """True when loaded from the Arrow cache instead of re-tokenized."""
    eval_rows: int = 0
    """Rows held out for evaluation."""
    seconds: float = 0.0
    """Time spent preparing or loading."""


@dataclass(frozen=True)
class StepMetrics(Event):
    TYPE: ClassVar[str] = "step"
    loss: float
    """Mean training loss over the optimizer step's tokens."""
    lr: float
    """Learning rate used for this step."""
    grad_norm: float
    """Gradient norm before clipping."""
    tokens_per_s: float
    """Work units per second over this step, as the task counts them (``Batch.work``: real tokens
    for sequences, one per image or example); the name is the DESIGN §4.4 event key."""
    samples_per_dataset: dict[str, int]
    """Cumulative samples drawn from each dataset since step 0."""
    total_steps: int = 0
    """Steps the run will take, for progress and ETA."""
    epoch: float = 0.0
    """Fractional passes over the training data."""
    tokens_seen: int = 0
    """Cumulative work units, counted as ``tokens_per_s`` is."""
    gpu_utilization_pct: float | None = None
    """GPU utilization of this process's device, 0-100, on the steps where it was sampled
    (about once a second on CUDA; never without a GPU: then the key is left out of the line)."""
    gpu_memory_bytes: int | None = None
    """GPU memory in use on that device, on the same sampled steps."""

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        for key in _SAMPLED_STEP_FIELDS:
            if body[key] is None:
                del body[key]  # optional: lines of CPU runs and unsampled steps stay as before
        return body


_SAMPLED_STEP_FIELDS = ("gpu_utilization_pct", "gpu_memory_bytes")


@dataclass(frozen=True)
class EvalResult(Event):
    TYPE: ClassVar[str] = "eval"
    eval_loss: float
    """Mean loss over all held-out tokens."""
    per_dataset: dict[str, float]
    """Mean held-out loss per dataset."""
    best: bool = False
    """True when this is the best eval loss so far."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """The task's eval metrics by name (eval_loss included, e.g. perplexity for causal_lm)."""
    per_dataset_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The task's eval metrics per dataset name, where the task computes them per dataset."""
    best_metric: str = "eval_loss"
    """The metric ``best`` is judged by (the task's, e.g. classification.metric_for_best)."""


@dataclass(frozen=True)
class CheckpointSaved(Event):
    TYPE: ClassVar[str] = "checkpoint_saved"
    path: str
    """Directory of the checkpoint that was written."""
    reason: str
    """interval | time | signal | user | final | best."""
    seconds: float = 0.0
    """Time the save took."""


@dataclass(frozen=True)
class DatasetEpoch(Event):
    TYPE: ClassVar[str] = "dataset_epoch"
    name: str
    """Dataset whose rows were all seen; its next epoch is reshuffled."""
    epoch: int
    """The epoch that starts now (1 after the first full pass)."""


@dataclass(frozen=True)
class Warning_(Event):
    TYPE: ClassVar[str] = "warning"
    message: str
    """What went wrong and what the engine did about it."""


@dataclass(frozen=True)
class LibraryWarning(Event):
    TYPE: ClassVar[str] = "library_warning"
    category: str
    """The warning's class (FutureWarning, UserWarning, ...) or the log level (WARNING, ERROR)."""
    message: str
    """The library's own text, unchanged."""
    source: str
    """Where it came from: ``file:line`` of a warning, or the logger's name."""


@dataclass(frozen=True)
class OomRecovered(Event):
    TYPE: ClassVar[str] = "oom_recovered"
    micro_batch_size: int
    """The new (halved) micro-batch size."""
    grad_accum: int
    """The new (doubled) gradient accumulation."""


@dataclass(frozen=True)
class RunFinished(Event):
    TYPE: ClassVar[str] = "run_finished"
    final_dir: str = ""
    """Directory with the trained weights (``final/``)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Summary metrics (final loss, best eval loss, tokens/s, seconds)."""


@dataclass(frozen=True)
class RunStopped(Event):
    TYPE: ClassVar[str] = "run_stopped"
    reason: str
    """user | signal | stop_file | oom | nan | checkpoint_failures."""
    checkpoint: str | None
    """The resumable checkpoint left behind, if any."""
    message: str = ""
    """What happened and how to resume."""


@dataclass(frozen=True)
class RunFailed(Event):
    TYPE: ClassVar[str] = "run_failed"
    error: str
    """The error message (with the exception type)."""


@dataclass(frozen=True)
class Cleanup(Event):
    TYPE: ClassVar[str] = "cleanup"
    cuda_allocated_before: int
    """CUDA bytes allocated before releasing the run's objects (0 without CUDA)."""
    cuda_allocated_after: int
    """CUDA bytes allocated after the release."""


@dataclass(frozen=True)
class Anomaly(Event):
    TYPE: ClassVar[str] = "anomaly"
    kind: str
    """spike | divergence | plateau | overfit | nonfinite."""
    metric: str
    """The curve it was found on: loss, grad_norm or eval_loss."""
    value: float
    """The value that crossed the threshold (for overfit: the eval - train gap)."""
    threshold: float
    """The limit it crossed."""
    message: str
    """What was seen, with the numbers."""
    recommendation: str
    """What to do about it, naming the config key and a value where there is one."""


@dataclass(frozen=True)
class Recovery(Event):
    TYPE: ClassVar[str] = "recovery"
    from_step: int
    """The step at which the run went bad and was rolled back."""
    checkpoint: str
    """The checkpoint it went back to."""
    lr_factor: float
    """Learning rate multiplier now in effect (cumulative over recoveries)."""
    skipped_steps: int
    """Global batches of the bad window that are skipped (the sampler continues after them)."""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        RunStarted,
        DatasetPrepared,
        StepMetrics,
        EvalResult,
        CheckpointSaved,
        DatasetEpoch,
        Warning_,
        LibraryWarning,
        OomRecovered,
        RunFinished,
        RunStopped,
        RunFailed,
        Cleanup,
        Anomaly,
        Recovery,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """Rebuild an event from one ``events.jsonl`` line; unknown types or fields give None."""
    cls = EVENT_TYPES.get(data.get("type", ""))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None
