"""Hardware probe: NVML when it works (a fake NVML here), the CPU otherwise, a simulated card on request."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import psutil
import pytest

from tui_trainer.planning import hardware
from tui_trainer.errors import ConfigError
from tui_trainer.planning.hardware import GIB, detect_hardware, sample_gpu_stats, sample_host_stats, simulated_gpu


@pytest.fixture(autouse=True)
def _fresh_nvml(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    hardware._reset_nvml_for_tests()
    yield
    hardware._reset_nvml_for_tests()


class NVMLError(Exception):
    pass


@dataclass
class FakeGpu:
    name: str
    total: int
    used: int
    capability: tuple[int, int]
    uuid: str
    util: int = 50
    temp: int | None = 60
    milliwatts: int | None = 250_000


def fake_nvml(gpus: list[FakeGpu], init_error: bool = False) -> types.ModuleType:
    """A stand-in for the pynvml module with the calls hardware.py makes."""
    mod = types.ModuleType("pynvml")
    mod.NVML_TEMPERATURE_GPU = 0
    mod.init_calls = 0

    def init():
        mod.init_calls += 1
        if init_error:
            raise NVMLError("Driver Not Loaded")

    def unsupported_if_none(value):
        if value is None:
            raise NVMLError("Not Supported")
        return value

    mod.nvmlInit = init
    mod.nvmlDeviceGetCount = lambda: len(gpus)
    mod.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]
    mod.nvmlDeviceGetName = lambda g: g.name.encode()  # older pynvml returns bytes
    mod.nvmlDeviceGetUUID = lambda g: g.uuid
    mod.nvmlDeviceGetMemoryInfo = lambda g: types.SimpleNamespace(total=g.total, used=g.used, free=g.total - g.used)
    mod.nvmlDeviceGetCudaComputeCapability = lambda g: g.capability
    mod.nvmlDeviceGetUtilizationRates = lambda g: types.SimpleNamespace(gpu=g.util, memory=10)
    mod.nvmlDeviceGetTemperature = lambda g, sensor: unsupported_if_none(g.temp)
    mod.nvmlDeviceGetPowerUsage = lambda g: unsupported_if_none(g.milliwatts)
    return mod


A100 = FakeGpu("NVIDIA A100-SXM4-80GB", 80 * GIB, 2 * GIB, (8, 0), "GPU-aaaa1111")
T4 = FakeGpu("Tesla T4", 15 * GIB, 1 * GIB, (7, 5), "GPU-bbbb2222", temp=None, milliwatts=None)


def install(monkeypatch, module) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", module)


def test_simulated_card():
    hw = detect_hardware(vram_gb=24)
    assert hw == simulated_gpu(24)
    assert (hw.kind, hw.total_bytes, hw.free_bytes, hw.bf16, hw.gpu_count, hw.simulated) == (
        "cuda", 24 * GIB, 24 * GIB, True, 1, True
    )
    assert hw.compute_capability == (8, 0)
    assert "24 GB GPU (simulated)" in hw.describe()


@pytest.mark.parametrize("bad", [0, -8])
def test_simulated_card_needs_a_positive_size(bad):
    with pytest.raises(ConfigError, match="--vram"):
        simulated_gpu(bad)


def test_missing_pynvml_falls_back_to_the_cpu(monkeypatch):
    install(monkeypatch, None)  # `import pynvml` raises ImportError
    hw = detect_hardware()
    assert hw.kind == "cpu" and hw.gpu_count == 0 and not hw.simulated and not hw.bf16
    assert hw.total_bytes == psutil.virtual_memory().total
    assert 0 < hw.free_bytes <= hw.total_bytes
    assert hw.cpu_cores == psutil.cpu_count(logical=True)
    assert sample_gpu_stats() == []


def test_failing_nvml_falls_back_to_the_cpu(monkeypatch):
    module = fake_nvml([A100], init_error=True)
    install(monkeypatch, module)
    assert detect_hardware().kind == "cpu"
    assert sample_gpu_stats() == []
    assert module.init_calls == 1  # a failed init is remembered, not retried on every sample


def test_nvml_without_devices_is_the_cpu(monkeypatch):
    install(monkeypatch, fake_nvml([]))
    assert detect_hardware().kind == "cpu"


def test_gpu_probe_reads_memory_and_bf16(monkeypatch):
    install(monkeypatch, fake_nvml([A100]))
    hw = detect_hardware()
    assert hw.kind == "cuda" and not hw.simulated
    assert hw.name == "NVIDIA A100-SXM4-80GB"
    assert (hw.total_bytes, hw.free_bytes) == (80 * GIB, 78 * GIB)
    assert hw.compute_capability == (8, 0) and hw.bf16
    assert hw.gpu_count == 1


def test_mixed_gpus_plan_for_the_smallest_and_oldest(monkeypatch):
    install(monkeypatch, fake_nvml([A100, T4]))
    hw = detect_hardware()
    assert hw.gpu_count == 2
    assert hw.name == "Tesla T4" and hw.total_bytes == 15 * GIB and hw.free_bytes == 14 * GIB
    assert not hw.bf16  # the T4 (7.5) cannot, so the run cannot use bf16


@pytest.mark.parametrize(("visible", "expected"), [("0", "NVIDIA A100-SXM4-80GB"), ("1", "Tesla T4"),
                                                   ("GPU-aaaa", "NVIDIA A100-SXM4-80GB"), ("bbbb2222", "Tesla T4")])  # fmt: skip
def test_cuda_visible_devices_is_respected(monkeypatch, visible, expected):
    install(monkeypatch, fake_nvml([A100, T4]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    hw = detect_hardware()
    assert (hw.name, hw.gpu_count) == (expected, 1)


def test_hidden_gpus_mean_the_cpu(monkeypatch):
    install(monkeypatch, fake_nvml([A100]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_hardware().kind == "cpu"


def test_live_gpu_stats(monkeypatch):
    install(monkeypatch, fake_nvml([A100, T4]))
    a100, t4 = sample_gpu_stats()
    assert (a100.index, a100.name, a100.utilization_pct) == (0, "NVIDIA A100-SXM4-80GB", 50.0)
    assert (a100.memory_used_bytes, a100.memory_total_bytes) == (2 * GIB, 80 * GIB)
    assert (a100.temperature_c, a100.power_w) == (60.0, 250.0)
    assert (t4.index, t4.temperature_c, t4.power_w) == (1, None, None)  # unsupported sensors are None


def test_live_host_stats():
    sample_host_stats()  # primes cpu_percent's interval
    stats = sample_host_stats()
    assert 0.0 <= stats.cpu_pct <= 100.0
    assert 0 < stats.ram_used_bytes <= stats.ram_total_bytes == psutil.virtual_memory().total
    assert stats.process_rss_bytes == pytest.approx(psutil.Process().memory_info().rss, rel=0.5)


def test_this_machine_probes_without_error():
    hw = detect_hardware()
    assert hw.kind in ("cuda", "cpu")
    assert hw.total_bytes > 0 and 0 < hw.free_bytes <= hw.total_bytes
    assert hw.describe()
