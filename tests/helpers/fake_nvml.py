"""A stand-in for the pynvml module: the one fake in the tests, at the hardware boundary this
machine lacks (no NVIDIA driver). `GpuMonitor(nvml=...)` takes it in place of the real module;
the real "no GPU" path is tested with the real pynvml."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace


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
