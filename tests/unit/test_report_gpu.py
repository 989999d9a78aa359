"""GPU samples in step events (a fake sampler) and in the report: curves when sampled, "not sampled" when not."""

from __future__ import annotations

import json
from pathlib import Path

from tui_trainer.analytics.report_html import NOT_SAMPLED, render_run, write_run_report
from tui_trainer.analytics.run_data import load_run
from tui_trainer.analytics.session import AnalyticsSession
from tui_trainer.analytics.system_samples import GpuReading, GpuSampler
from tui_trainer.config.schema import RunConfig
from tui_trainer.engine import events as ev

GIB = 1024**3


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sampler_reads_at_most_once_per_interval_and_only_that_step_carries_it() -> None:
    clock, reads = FakeClock(), []

    def reader() -> GpuReading:
        reads.append(clock.now)
        return GpuReading(utilization_pct=87.0, memory_bytes=30 * GIB)

    sampler = GpuSampler(reader, every=1.0, clock=clock)
    assert sampler.fields() == {"gpu_utilization_pct": 87.0, "gpu_memory_bytes": 30 * GIB}
    clock.now += 0.4
    assert sampler.fields() == {}  # not due: the step event goes without
    clock.now += 0.6
    assert sampler.fields()["gpu_memory_bytes"] == 30 * GIB
    assert reads == [100.0, 101.0]


def test_sampler_off_without_a_gpu_and_robust_to_a_failing_driver() -> None:
    assert GpuSampler(None).fields() == {} and not GpuSampler(None).active

    def broken() -> GpuReading:
        raise RuntimeError("NVML: GPU is lost")

    assert GpuSampler(broken, clock=FakeClock()).fields() == {}
    memory_only = GpuSampler(lambda: GpuReading(None, 5 * GIB), clock=FakeClock())
    assert memory_only.fields() == {"gpu_memory_bytes": 5 * GIB}


def test_step_events_leave_unsampled_gpu_fields_out_of_their_line() -> None:
    base = dict(loss=2.0, lr=1e-4, grad_norm=1.0, tokens_per_s=10.0, samples_per_dataset={"a": 1})
    plain = ev.StepMetrics(1, **base).to_dict()
    assert "gpu_utilization_pct" not in plain and "gpu_memory_bytes" not in plain
    sampled = ev.StepMetrics(2, **base, gpu_utilization_pct=55.0, gpu_memory_bytes=GIB).to_dict()
    assert sampled["gpu_utilization_pct"] == 55.0 and sampled["gpu_memory_bytes"] == GIB
    back = ev.event_from_dict(json.loads(json.dumps(sampled)))
    assert isinstance(back, ev.StepMetrics) and back.gpu_memory_bytes == GIB
    assert ev.event_from_dict(plain).gpu_utilization_pct is None


def _run_dir(tmp_path: Path, *, gpu: bool) -> Path:
    run = tmp_path / ("gpu-run" if gpu else "cpu-run")
    run.mkdir()
    sampler = GpuSampler(lambda: GpuReading(41.0, 12 * GIB), every=0.0) if gpu else GpuSampler(None)
    with (run / "events.jsonl").open("w") as fh:
        for step in range(1, 21):
            event = ev.StepMetrics(step, time=float(step), loss=3.0 - step / 20, lr=1e-4, grad_norm=1.0, tokens_per_s=100.0,
                                   samples_per_dataset={"a": step}, **sampler.fields())
            fh.write(json.dumps(event.to_dict()) + "\n")
        fh.write(json.dumps(ev.RunFinished(20, time=21.0).to_dict()) + "\n")
    return run


def test_report_plots_gpu_curves_when_sampled(tmp_path: Path) -> None:
    run = load_run(_run_dir(tmp_path, gpu=True))
    assert len(run.series("gpu_memory_bytes")) == 20
    html = render_run(run)
    assert "GPU utilization (%)" in html and "GPU memory (GiB)" in html
    assert NOT_SAMPLED not in html


def test_report_says_not_sampled_and_draws_no_empty_gpu_plot(tmp_path: Path) -> None:
    html = render_run(load_run(_run_dir(tmp_path, gpu=False)))
    assert NOT_SAMPLED in html
    assert "GPU utilization (%)" not in html and "GPU memory (GiB)" not in html
    assert html.count("<svg") == 4  # loss, learning rate, grad norm, tokens/s


class _Events:
    def __init__(self) -> None:
        self.callbacks, self.emitted = [], []

    def add_callback(self, cb) -> None:
        self.callbacks.append(cb)

    def emit(self, event) -> None:
        self.emitted.append(event)
        for cb in self.callbacks:
            cb(event)


def test_no_report_after_a_signal_stop_and_one_after_a_user_stop(tmp_path: Path) -> None:
    for reason, written in (("signal", False), ("user", True)):
        (tmp_path / reason).mkdir()
        run = _run_dir(tmp_path / reason, gpu=False)
        events = _Events()
        session = AnalyticsSession(RunConfig(), events, run, main_process=False)
        events.emit(ev.RunStopped(20, reason=reason, checkpoint=None))
        session.write_report(run)
        assert (run / "report.html").is_file() is written, reason


def test_report_write_is_atomic_and_repeatable(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, gpu=True)
    first = write_run_report(run).read_text()
    second = write_run_report(run).read_text()
    assert first.count("<svg") == second.count("<svg") == 6
    assert not list(run.glob("*.tmp"))


def test_the_report_modules_are_imported_on_a_thread_from_the_last_step_on_the_main_process() -> None:
    def step(n: int) -> ev.StepMetrics:
        return ev.StepMetrics(n, loss=2.0, lr=1e-4, grad_norm=1.0, tokens_per_s=1.0, samples_per_dataset={}, total_steps=10)

    for main_process in (True, False):
        events = _Events()
        session = AnalyticsSession(RunConfig(), events, None, main_process=main_process)
        events.emit(step(9))
        assert session._prefetch is None  # not while training: it would compete with the steps
        events.emit(step(10))
        assert (session._prefetch is not None) is main_process
        if main_process:
            session._prefetch.join(timeout=60)
            assert not session._prefetch.is_alive()


def test_only_a_cuda_device_is_sampled() -> None:
    import torch

    assert not GpuSampler.for_device(torch.device("cpu")).active
    assert not GpuSampler.for_device(None).active
    assert GpuSampler.for_device(torch.device("cuda", 0)).active  # the reader is built lazily: no CUDA needed here


def test_the_cuda_reader_picks_the_run_device_among_the_visible_gpus(monkeypatch) -> None:
    import torch

    from tui_trainer.analytics import system_samples
    from tui_trainer.planning import hardware

    gpus = [hardware.GpuStats(i, "H100", 10.0 * (i + 1), (i + 1) * GIB, 80 * GIB, None, None) for i in range(2)]
    monkeypatch.setattr(hardware, "sample_gpu_stats", lambda: gpus)
    assert system_samples._cuda_reader(1)() == GpuReading(20.0, 2 * GIB)
    # No NVML reading for it (a container without the library): torch's own reserved memory, no utilization.
    monkeypatch.setattr(hardware, "sample_gpu_stats", lambda: [])
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda ordinal: 3 * GIB)
    assert system_samples._cuda_reader(0)() == GpuReading(None, 3 * GIB)
