"""What the machine has: RAM from psutil, NVIDIA GPUs from NVML.

A machine without an NVIDIA driver is an ordinary case here, not an error: `GpuMonitor` then
reports no GPUs and a sentence saying so, and never raises or warns. Every per-GPU query is
guarded on its own, because consumer cards and virtual GPUs often refuse some of them (the
temperature of a vGPU, the utilization of a MIG slice) while answering the rest.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import psutil

logger = logging.getLogger(__name__)

NO_GPU_STATUS = "No NVIDIA GPU detected"


@dataclass(frozen=True)
class GpuInfo:
    """One GPU's memory (bytes) and load at the moment it was read."""

    index: int
    name: str
    memory_total: int
    memory_used: int
    memory_free: int
    utilization_pct: int | None  # None where the device refuses the query
    temperature_c: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RamInfo:
    """System memory in bytes; `available` is what new allocations can get without swapping."""

    total: int
    available: int
    used: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HardwareSnapshot:
    """RAM and GPUs read together, with a sentence about the GPUs for a person to read."""

    ram: RamInfo
    gpus: tuple[GpuInfo, ...]
    gpu_status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ram": self.ram.to_dict(),
            "gpus": [gpu.to_dict() for gpu in self.gpus],
            "gpu_status": self.gpu_status,
        }


def read_ram() -> RamInfo:
    memory = psutil.virtual_memory()
    return RamInfo(total=memory.total, available=memory.available, used=memory.used)


def process_rss(pid: int) -> int | None:
    """Resident memory of a process in bytes, or None when it is gone or not ours to read."""
    try:
        return psutil.Process(pid).memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess is a NoSuchProcess
        return None


class _NvmlUnavailable(Exception):
    """Internal: NVML could not be started; carries the sentence `status` shows."""


class GpuMonitor:
    """Reads NVIDIA GPUs through NVML (the `pynvml` module of nvidia-ml-py).

    NVML is initialised on first use, once. If that fails (no driver, no library, no GPU) the
    reason is kept, logged once at debug level, and every later call reports no GPUs without
    trying again. `nvml` replaces the real module, so tests can run on machines without a GPU.
    One monitor may be shared between threads; keep one alive for polling rather than making
    one per read, since NVML initialisation takes tens of milliseconds.
    """

    def __init__(self, nvml: Any = None):
        self._nvml: Any = nvml
        self._lock = threading.RLock()
        self._initialised = False
        self._unavailable_reason: str | None = None

    def __enter__(self) -> GpuMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    @property
    def available(self) -> bool:
        """True when NVML started; a machine with the driver but no GPU is still 'available'."""
        with self._lock:
            return self._ensure_initialised()

    @property
    def unavailable_reason(self) -> str | None:
        """Why NVML could not start (NVML's own words), or None when it started or was not tried."""
        return self._unavailable_reason

    @property
    def status(self) -> str:
        """A sentence for a person: "No NVIDIA GPU detected", "1 NVIDIA GPU", "2 NVIDIA GPUs"."""
        with self._lock:
            if not self._ensure_initialised():
                return NO_GPU_STATUS
            try:
                count = self._nvml.nvmlDeviceGetCount()
            except self._nvml.NVMLError as error:
                return f"NVIDIA GPUs could not be counted: {_error_text(error)}"
            if count == 0:
                return NO_GPU_STATUS
            return f"{count} NVIDIA GPU" + ("s" if count != 1 else "")

    def read(self) -> tuple[GpuInfo, ...]:
        """Every GPU whose memory can be read; a GPU that refuses that query is left out."""
        with self._lock:
            if not self._ensure_initialised():
                return ()
            nvml = self._nvml
            try:
                count = nvml.nvmlDeviceGetCount()
            except nvml.NVMLError as error:
                logger.debug("nvmlDeviceGetCount failed: %s", _error_text(error))
                return ()
            gpus = []
            for index in range(count):
                gpu = self._read_one(index)
                if gpu is not None:
                    gpus.append(gpu)
            return tuple(gpus)

    def process_memory(self, pid: int) -> int | None:
        """GPU memory in bytes that compute process `pid` holds, summed over all GPUs.

        0 when NVML answers and the process holds none; None when NVML is unavailable, every
        GPU refused the query, or the driver does not report per-process memory (Windows WDDM).
        NVML reports host PIDs, so inside a container with its own PID namespace this finds
        nothing and returns 0.
        """
        with self._lock:
            if not self._ensure_initialised():
                return None
            nvml = self._nvml
            try:
                count = nvml.nvmlDeviceGetCount()
            except nvml.NVMLError:
                return None
            answered = False
            total = 0
            for index in range(count):
                try:
                    handle = nvml.nvmlDeviceGetHandleByIndex(index)
                    processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
                except nvml.NVMLError as error:
                    logger.debug("GPU %d process query failed: %s", index, _error_text(error))
                    continue
                answered = True
                for process in processes:
                    if process.pid != pid:
                        continue
                    used = getattr(process, "usedGpuMemory", None)
                    if used is None:  # the driver does not say: unknown, not zero
                        return None
                    total += int(used)
            return total if answered else None

    def shutdown(self) -> None:
        """Release NVML if this monitor started it; a later read starts it again."""
        with self._lock:
            if not self._initialised:
                return
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as error:
                logger.debug("nvmlShutdown failed: %s", _error_text(error))

    def _ensure_initialised(self) -> bool:
        if self._initialised:
            return True
        if self._unavailable_reason is not None:
            return False
        try:
            if self._nvml is None:
                self._nvml = _import_pynvml()
            self._nvml.nvmlInit()
        except _NvmlUnavailable as error:
            self._unavailable_reason = str(error)
        except Exception as error:
            # Any NVMLError (LibraryNotFound, DriverNotLoaded, NoPermission, ...) and the
            # OSError a broken library can give mean the same to a person: no usable GPU.
            nvml_error = getattr(self._nvml, "NVMLError", None)
            if not (
                isinstance(error, OSError)
                or (isinstance(nvml_error, type) and isinstance(error, nvml_error))
            ):
                raise
            self._unavailable_reason = _error_text(error)
        else:
            self._initialised = True
            return True
        logger.debug("NVML unavailable, reporting no GPUs: %s", self._unavailable_reason)
        return False

    def _read_one(self, index: int) -> GpuInfo | None:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except nvml.NVMLError as error:
            logger.debug("GPU %d left out, memory unreadable: %s", index, _error_text(error))
            return None
        try:
            name = _text(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError:
            name = f"GPU {index}"
        try:
            utilization: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except nvml.NVMLError:
            utilization = None
        try:
            sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
            temperature: int | None = int(nvml.nvmlDeviceGetTemperature(handle, sensor))
        except nvml.NVMLError:
            temperature = None
        return GpuInfo(
            index=index,
            name=name,
            memory_total=int(memory.total),
            memory_used=int(memory.used),
            memory_free=int(memory.free),
            utilization_pct=utilization,
            temperature_c=temperature,
        )


def snapshot(monitor: GpuMonitor | None = None) -> HardwareSnapshot:
    """RAM and GPUs now. Without a monitor, one is started for this call and shut down after."""
    if monitor is not None:
        return HardwareSnapshot(read_ram(), monitor.read(), monitor.status)
    with GpuMonitor() as own_monitor:
        return HardwareSnapshot(read_ram(), own_monitor.read(), own_monitor.status)


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as error:
        raise _NvmlUnavailable(f"nvidia-ml-py is not installed ({error})") from None
    return pynvml


def _text(value: bytes | str) -> str:
    # Older nvidia-ml-py releases return bytes, newer ones str.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _error_text(error: BaseException) -> str:
    text = str(error)
    return text or type(error).__name__
