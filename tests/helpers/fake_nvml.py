"""A stand-in for the pynvml module: the one fake in the tests, at the hardware boundary this
machine lacks (no NVIDIA driver). `GpuMonitor(nvml=...)` takes it in place of the real module;
the real "no GPU" path is tested with the real pynvml.

With a fake GPU, `GpuMonitor` asks the real llama.cpp (through a model host) whether it can use
it, and this machine's build cannot. Tests of what happens with a GPU-capable build pass
`llama_build=lambda: CUDA_BUILD`: what a CUDA build's host reports, which cannot run here
either. `LLAMA_GPU_BACKEND_LIBS` lists the GPU backend libraries the installed llama_cpp
ships: empty for the CPU-only build this project sets up by default."""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path
from types import SimpleNamespace

from llm_desktop.core.hardware import LlamaBuild

CUDA_BUILD = LlamaBuild(
    gpu_offload=True,
    backends=("CUDA", "CPU"),
    gpu_devices=("CUDA0: NVIDIA H100 80GB HBM3",),
)


def _llama_gpu_backend_libs() -> list[str]:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return []
    names = ("cuda", "vulkan", "metal", "sycl", "hip", "musa", "opencl", "cann")
    folder = Path(spec.origin).parent / "lib"
    return sorted(p.name for n in names for p in folder.glob(f"*ggml-{n}*"))


LLAMA_GPU_BACKEND_LIBS = _llama_gpu_backend_libs()


def _nvml_library_loads() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


HAS_NVML_LIBRARY = _nvml_library_loads()


class FakeNvmlError(Exception):
    pass


class FakeNvml:
    """Just the part of the pynvml module that GpuMonitor uses, with per-GPU failures."""

    NVMLError = FakeNvmlError
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpus: list[dict], *, init_error: Exception | None = None):
        self.gpus = gpus
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict:
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: dict) -> bytes | str:
        return handle["name"]

    def nvmlDeviceGetMemoryInfo(self, handle: dict) -> SimpleNamespace:
        if handle.get("memory_fails"):
            raise FakeNvmlError("Not Supported")
        total, used = handle["total"], handle["used"]
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, handle: dict) -> SimpleNamespace:
        if handle.get("utilization") is None:
            raise FakeNvmlError("Not Supported")
        return SimpleNamespace(gpu=handle["utilization"], memory=0)

    def nvmlDeviceGetTemperature(self, handle: dict, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        if handle.get("temperature") is None:
            raise FakeNvmlError("Not Supported")
        return handle["temperature"]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: dict) -> list[SimpleNamespace]:
        if handle.get("processes") is None:
            raise FakeNvmlError("Not Supported")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in handle["processes"]]
