"""What the machine can train on: a GPU probe through NVML, a CPU fallback, a simulated card.

NVML (``pynvml``, from the nvidia-ml-py package) is read without creating a CUDA context,
so probing never takes GPU memory or slows the TUI start. Anything that goes wrong with
NVML (package missing, no driver, no GPU) falls back to the CPU silently: a machine
without a GPU is a normal case, not an error.

The live samplers (``sample_gpu_stats``, ``sample_host_stats``) are cheap enough to call
a few times per second from the monitor.
"""

from __future__ import annotations

import os
import platform
import threading
from dataclasses import dataclass
from typing import Any

GIB = 1024**3

BF16_MIN_COMPUTE_CAPABILITY = (8, 0)
"""Ampere and newer run bf16 (and TF32) matmuls natively."""


@dataclass(frozen=True)
class Hardware:
    kind: str
    """``cuda`` or ``cpu``."""
    name: str
    """GPU model (the smallest one when several differ) or the CPU description."""
    total_bytes: int
    """Memory of one device: GPU memory, or system RAM on the CPU."""
    free_bytes: int
    """Memory available now on that device (the fitting budget)."""
    bf16: bool
    """bf16 compute is supported (CUDA compute capability 8.0 or newer)."""
    compute_capability: tuple[int, int] | None
    """CUDA compute capability, None on the CPU."""
    gpu_count: int
    """GPUs visible to this process (0 on the CPU); each holds a full model replica under DDP."""
    simulated: bool
    """Made up from ``--vram GB`` for planning, not probed."""
    cpu_cores: int = 1
    """Logical CPU cores (data loading, CPU training)."""
    ram_bytes: int = 0
    """System RAM."""

    @property
    def total_gb(self) -> float:
        return self.total_bytes / GIB

    @property
    def free_gb(self) -> float:
        return self.free_bytes / GIB

    def describe(self) -> str:
        """One line, e.g. ``NVIDIA H100 80GB HBM3 x2, 79.1 of 79.6 GB free, bf16``."""
        if self.kind == "cpu":
            ram = f"{self.free_gb:.1f} of {self.total_gb:.1f} GB RAM available"
            return f"CPU ({self.name}), {self.cpu_cores} cores, {ram}"
        count = f" x{self.gpu_count}" if self.gpu_count > 1 else ""
        caps = "bf16" if self.bf16 else "no bf16 (fp16)"
        sim = " (simulated)" if self.simulated else ""
        return f"{self.name}{count}{sim}, {self.free_gb:.1f} of {self.total_gb:.1f} GB free, {caps}"


@dataclass(frozen=True)
class GpuStats:
    index: int
    """NVML device index."""
    name: str
    """GPU model."""
    utilization_pct: float | None
    """Share of the last sample period a kernel was running, 0-100 (None when unsupported)."""
    memory_used_bytes: int
    """Memory in use on the device by all processes."""
    memory_total_bytes: int
    """Device memory."""
    temperature_c: float | None
    """GPU core temperature in Celsius (None when unsupported)."""
    power_w: float | None
    """Power draw in watts (None when unsupported)."""


@dataclass(frozen=True)
class HostStats:
    cpu_pct: float
    """System-wide CPU use since the previous call, 0-100 (0.0 on the very first call)."""
    ram_used_bytes: int
    """System RAM in use (total minus available)."""
    ram_total_bytes: int
    """System RAM."""
    process_rss_bytes: int
    """Resident memory of this process."""


def _cpu_name() -> str:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or "unknown CPU"


def _host() -> tuple[int, int, int]:
    """(cores, RAM total, RAM available)."""
    import psutil

    mem = psutil.virtual_memory()
    return psutil.cpu_count(logical=True) or os.cpu_count() or 1, int(mem.total), int(mem.available)


def cpu_hardware() -> Hardware:
    cores, total, available = _host()
    return Hardware(
        kind="cpu",
        name=_cpu_name(),
        total_bytes=total,
        free_bytes=available,
        bf16=False,
        compute_capability=None,
        gpu_count=0,
        simulated=False,
        cpu_cores=cores,
        ram_bytes=total,
    )


def simulated_gpu(vram_gb: float, *, bf16: bool = True, gpu_count: int = 1) -> Hardware:
    """A card with ``vram_gb`` GiB (a "24 GB" card has 24 GiB), all free; bf16-capable unless told otherwise."""
    if not vram_gb > 0:
        from tui_trainer.errors import ConfigError

        raise ConfigError(f"--vram must be a positive number of GB, got {vram_gb}")
    cores, ram, _ = _host()
    size = int(vram_gb * GIB)
    return Hardware(
        kind="cuda",
        name=f"{vram_gb:g} GB GPU",
        total_bytes=size,
        free_bytes=size,
        bf16=bf16,
        compute_capability=BF16_MIN_COMPUTE_CAPABILITY if bf16 else (7, 5),
        gpu_count=gpu_count,
        simulated=True,
        cpu_cores=cores,
        ram_bytes=ram,
    )


# NVML is initialised once per process and kept open: nvmlInit costs milliseconds,
# and the monitor samples several times per second.
_nvml_lock = threading.Lock()
_nvml_module: Any = None
_nvml_failed = False


def _nvml() -> Any:
    """The initialised pynvml module, or None when NVML is unusable here."""
    global _nvml_module, _nvml_failed
    with _nvml_lock:
        if _nvml_module is not None or _nvml_failed:
            return _nvml_module
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # missing package, no driver, no device: all mean "no GPU"
            _nvml_failed = True
            return None
        _nvml_module = pynvml
        return pynvml


def _reset_nvml_for_tests() -> None:
    global _nvml_module, _nvml_failed
    with _nvml_lock:
        _nvml_module, _nvml_failed = None, False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _visible_indices(nvml: Any, count: int) -> list[int]:
    """NVML indices of the GPUs this process may use (CUDA_VISIBLE_DEVICES: indices or UUIDs)."""
    spec = os.environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return list(range(count))
    picked: list[int] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            break
        if item.lstrip("-").isdigit():
            index = int(item)
            if not 0 <= index < count:
                break  # CUDA stops at the first invalid entry
            picked.append(index)
            continue
        for index in range(count):
            uuid = _text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(index)))
            if uuid.startswith(item) or uuid.removeprefix("GPU-").startswith(item.removeprefix("GPU-")):
                picked.append(index)
                break
        else:
            break
    return picked


def _visible_handles(nvml: Any) -> list[tuple[int, Any]]:
    """(NVML index, handle) of each GPU this process may use (CUDA_VISIBLE_DEVICES applies)."""
    return [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in _visible_indices(nvml, int(nvml.nvmlDeviceGetCount()))]


def _probe_gpus() -> Hardware | None:
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        handles = _visible_handles(nvml)
        if not handles:
            return None
        devices = []
        for _, handle in handles:
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            name = _text(nvml.nvmlDeviceGetName(handle))
            devices.append((int(mem.total), int(mem.free), name, (int(major), int(minor))))
    except Exception:
        return None
    # Every rank holds a full replica, so the plan must fit the smallest (then fullest) card.
    total, free, name, capability = min(devices, key=lambda d: (d[0], d[1]))
    oldest = min(d[3] for d in devices)
    cores, ram, _ = _host()
    return Hardware(
        kind="cuda",
        name=name,
        total_bytes=total,
        free_bytes=min(d[1] for d in devices),
        bf16=oldest >= BF16_MIN_COMPUTE_CAPABILITY,
        compute_capability=capability,
        gpu_count=len(devices),
        simulated=False,
        cpu_cores=cores,
        ram_bytes=ram,
    )


def detect_hardware(vram_gb: float | None = None) -> Hardware:
    """The GPU(s) this process can use, else the CPU; ``vram_gb`` simulates a bf16 card of that size."""
    if vram_gb is not None:
        return simulated_gpu(vram_gb)
    return _probe_gpus() or cpu_hardware()


def _optional(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except Exception:  # NVMLError_NotSupported on some boards and virtual GPUs
        return None


def sample_gpu_stats() -> list[GpuStats]:
    """Utilization, memory, temperature and power of every visible GPU; [] without NVML."""
    nvml = _nvml()
    if nvml is None:
        return []
    stats: list[GpuStats] = []
    try:
        for index, handle in _visible_handles(nvml):
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            util = _optional(nvml.nvmlDeviceGetUtilizationRates, handle)
            temp = _optional(nvml.nvmlDeviceGetTemperature, handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0))
            milliwatts = _optional(nvml.nvmlDeviceGetPowerUsage, handle)
            stats.append(
                GpuStats(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    utilization_pct=float(util.gpu) if util is not None else None,
                    memory_used_bytes=int(mem.used),
                    memory_total_bytes=int(mem.total),
                    temperature_c=float(temp) if temp is not None else None,
                    power_w=milliwatts / 1000.0 if milliwatts is not None else None,
                )
            )
    except Exception:
        return stats
    return stats


def sample_host_stats() -> HostStats:
    """CPU use since the last call, system RAM and this process's resident memory."""
    import psutil

    mem = psutil.virtual_memory()
    return HostStats(
        cpu_pct=float(psutil.cpu_percent(interval=None)),
        ram_used_bytes=int(mem.total - mem.available),
        ram_total_bytes=int(mem.total),
        process_rss_bytes=int(psutil.Process().memory_info().rss),
    )
