"""Deterministic stand-ins for the slow or machine-dependent parts the UI uses.

Only the edges are faked (engine timing, GPU stats, the clock, preset fitting while the
real module is unavailable); the UI code under test is the real one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.engine import events as ev
from tui_trainer.engine.control import Controls
from tui_trainer.errors import DataError
from tui_trainer.runs.listing import CheckpointInfo, RunInfo
from tui_trainer.ui.services import Services
from tui_trainer.ui.widgets.system_panel import SystemSample

T0 = 1_700_000_000.0
"""Fixed start time of every fake run (2023-11-14 22:13:20 UTC)."""
NOW = T0 + 3 * 3600
"""The frozen 'now' of the home screen."""
GIB = 1024**3


@dataclass(frozen=True)
class FakeResult:
    """Same fields as engine.api.TrainResult."""

    run_dir: Path | None
    final_step: int
    status: str
    stop_reason: str | None
    checkpoint: Path | None
    metrics: dict = field(default_factory=dict)
    exit_code: int = 0
    message: str = ""


def step_event(step: int, total: int, *, loss: float | None = None) -> ev.StepMetrics:
    return ev.StepMetrics(
        step,
        time=T0 + 2.0 * step,
        loss=loss if loss is not None else 3.0 - 1.5 * step / max(total, 1),
        lr=2e-4 * (1 - step / max(total, 1)) + 1e-5,
        grad_norm=1.0 + 0.01 * step,
        tokens_per_s=4096.0,
        samples_per_dataset={"code": 6 * step, "docs": 2 * step},
        total_steps=total,
        epoch=step / 50,
        tokens_seen=2048 * step,
    )


def scripted_events(run_dir: str, total: int, upto: int) -> list[ev.Event]:
    """A plausible event stream of a run that reached step ``upto`` of ``total``."""
    out: list[ev.Event] = [
        ev.RunStarted(0, time=T0, config={}, run_dir=run_dir, world_size=1, device="cpu", total_steps=total, plan="2 datasets, weighted"),
        ev.DatasetPrepared(0, time=T0, name="code", rows=1200, tokens=600_000, cached=True),
        ev.DatasetPrepared(0, time=T0, name="docs", rows=400, tokens=200_000, cached=False),
    ]
    for step in range(1, upto + 1):
        out.append(step_event(step, total))
        if step % 10 == 0:
            out.append(ev.EvalResult(step, time=T0 + 2.0 * step, eval_loss=2.9 - step / total, per_dataset={"code": 2.8, "docs": 3.1}))
        if step == 20:
            out.append(ev.CheckpointSaved(step, time=T0 + 2.0 * step, path=f"{run_dir}/checkpoints/step-00000020", reason="interval"))
        if step == 25:
            out.append(ev.DatasetEpoch(step, time=T0 + 2.0 * step, name="docs", epoch=1))
            out.append(ev.Warning_(step, time=T0 + 2.0 * step, message="loss spike at step 25 (3.1x the mean); continuing"))
    return out


class FakeEngine:
    """A ``train`` with the engine's signature: scripted events, honours the controls."""

    def __init__(
        self, tmp: Path, total: int = 40, delay: float = 0.0, fail: Exception | None = None, hold_after: int | None = None
    ) -> None:
        self.tmp, self.total, self.delay, self.fail = tmp, total, delay, fail
        self.hold_after = hold_after
        """Close the gate after this step, so the run waits for the test (or a stop) however fast the machine is."""
        self.calls: list[dict[str, Any]] = []
        self.observed: list[tuple[Any, ...]] = []
        """What the engine saw of the controls, in order: ("paused", step), ("checkpoint_now", step), ("stop", step, reason)."""
        self.last_step = 0
        """The last step the fake completed."""
        self.started = threading.Event()
        self.gate = threading.Event()
        """When not set, the engine waits before each step (tests drive it)."""
        self.gate.set()

    def allow(self, steps: int) -> None:
        """Let a held fake take ``steps`` more steps, then hold again."""
        self.hold_after = self.last_step + steps
        self.gate.set()

    def __call__(self, cfg: RunConfig, *, on_event, resume=None, controls: Controls) -> FakeResult:
        self.calls.append({"cfg": cfg, "resume": resume})
        if self.fail is not None:
            raise self.fail
        run_dir = self.tmp / "runs" / f"{cfg.run.name}-20231114-221320"
        run_dir.mkdir(parents=True, exist_ok=True)
        on_event(ev.RunStarted(0, time=T0, config=cfg.to_dict(), run_dir=str(run_dir), world_size=1, device="cpu", total_steps=self.total))
        self.started.set()
        first = int(Path(resume).name.removeprefix("step-")) if resume is not None else 0
        for step in range(first + 1, self.total + 1):
            while not self.gate.wait(0.01) and not controls.stop.is_set():
                pass
            if controls.pause.is_set() and not controls.stop.is_set():
                self.observed.append(("paused", step - 1))
            while controls.pause.is_set() and not controls.stop.is_set():
                time.sleep(0.005)
            if controls.checkpoint_now.is_set():
                self.observed.append(("checkpoint_now", step - 1))
                controls.checkpoint_now.clear()
                on_event(ev.CheckpointSaved(step - 1, time=T0 + 2.0 * step, path=str(run_dir / "checkpoints" / f"step-{step - 1:08d}"), reason="user"))
            if controls.stop.is_set():
                self.observed.append(("stop", step - 1, controls.reason))
                ckpt = run_dir / "checkpoints" / f"step-{step - 1:08d}"
                on_event(ev.CheckpointSaved(step - 1, time=T0 + 2.0 * step, path=str(ckpt), reason=controls.reason))
                on_event(ev.RunStopped(step - 1, time=T0 + 2.0 * step, reason=controls.reason, checkpoint=str(ckpt)))
                return FakeResult(run_dir, step - 1, "stopped", controls.reason, ckpt, exit_code=75, message=f"stopped at step {step - 1}")
            on_event(step_event(step, self.total))
            self.last_step = step
            if step == self.hold_after:
                self.gate.clear()
            if self.delay:
                time.sleep(self.delay)
        on_event(ev.RunFinished(self.total, time=T0 + 2.0 * self.total, final_dir=str(run_dir / "final")))
        return FakeResult(run_dir, self.total, "finished", None, None, exit_code=0, message=f"finished {self.total} steps")


def ckpt(run: Path, step: int, *, valid: bool = True, problem: str | None = None, loss: float = 2.5) -> CheckpointInfo:
    return CheckpointInfo(
        path=run / "checkpoints" / f"step-{step:08d}", step=step, time=T0 + 60.0 * step, loss=loss,
        eval_loss=loss + 0.1, reason="interval", valid=valid, problem=problem,
    )


def fake_runs(root: Path) -> list[RunInfo]:
    """Three runs (newest first): stopped with a corrupt newest checkpoint, finished, failed."""
    a, b, c = root / "code-mix-20231114-231500", root / "demo-20231114-221320", root / "big-20231114-200000"
    a_ckpts = (ckpt(a, 100, loss=2.1), ckpt(a, 200, loss=1.8), ckpt(a, 250, valid=False, problem="manifest.json missing (partial write)"))
    b_ckpts = (ckpt(b, 40, loss=2.7), ckpt(b, 80, loss=2.2))
    return [
        RunInfo(a, a.name, "stopped", 250, 1000, 1.93, a_ckpts, a_ckpts[1], T0 + 3600, T0 + 2.5 * 3600),
        RunInfo(b, b.name, "finished", 80, 80, 2.31, b_ckpts, b_ckpts[1], T0, T0 + 600),
        RunInfo(c, c.name, "failed", 3, 5000, None, (), None, T0 - 7200, T0 - 7000),
    ]


def fake_preview(spec: Any) -> Any:
    if spec.path.endswith("broken.jsonl"):
        raise DataError(f"{spec.path}: line 3 is not valid JSON (Expecting value); fix or remove the line")
    rows = 1000 if "code" in spec.path else 250
    return SimpleNamespace(
        path=spec.path, format="demo" if spec.path.startswith("demo:") else Path(spec.path).suffix.lstrip("."),
        shape=SimpleNamespace(kind="text", fields=("text",)), rows=rows, est_tokens=rows * 200,
        preview=tuple(f"def example_{i}(x):\n    return x + {i}" for i in range(3)), fields=("text",),
    )


PRESET_VALUES = {
    "highspeed": {"lr": 3e-4, "micro_batch_size": 16, "grad_accum": 2, "r": 8},
    "quality": {"lr": 2e-4, "micro_batch_size": 8, "grad_accum": 4, "r": 16},
    "bestaccuracy": {"lr": 1e-4, "micro_batch_size": 4, "grad_accum": 8, "r": 64},
}


def fake_fit(name: str, level: str, hardware: Any, data_tokens: int | None, base: RunConfig) -> Any:
    v = PRESET_VALUES[level]
    raw = base.to_dict()
    raw["model"]["name_or_path"] = f"org/{name}"
    raw["train"].update(lr=v["lr"], micro_batch_size=v["micro_batch_size"], grad_accum=v["grad_accum"], max_steps=500)
    raw["lora"].update(r=v["r"], alpha=2 * v["r"])
    cfg = config_from_dict(raw)
    need = int((1.5 + v["micro_batch_size"] / 8) * GIB)
    estimate = SimpleNamespace(total=need, format=lambda: f"Memory estimate: {need / GIB:.1f} GiB in total")
    return SimpleNamespace(config=cfg, estimate=estimate, notes=(f"{level} for {hardware.name}",), size_class="small")


def fixed_sample() -> SystemSample:
    return SystemSample(kind="gpu", title="NVIDIA Test GPU", util_pct=87.0, mem_used=30 * GIB, mem_total=80 * GIB, temperature_c=64, power_w=310)


def make_services(tmp: Path, engine: FakeEngine | None = None, runs: list[RunInfo] | None = None) -> Services:
    return Services(
        discover_runs=lambda out: list(runs or []),
        request_stop=lambda run: (Path(run) / "STOP").write_text("stop\n") or Path(run) / "STOP",
        train=engine or FakeEngine(tmp),
        inspect_dataset=fake_preview,
        demo_config=lambda out: config_from_dict({"run": {"name": "demo", "output_dir": str(out)}}),
        load_presets=lambda: {"tiny-llama": object(), "qwen2.5": object()},
        levels=lambda: ("highspeed", "quality", "bestaccuracy"),
        detect_hardware=lambda: SimpleNamespace(kind="cuda", name="NVIDIA Test GPU", total_bytes=80 * GIB, free_bytes=78 * GIB, bf16=True),
        fit_preset=fake_fit,
        estimate=None,
        system_sample=fixed_sample,
        sample_every=0,
        poll_every=0,
        clock=lambda: NOW,
    )
