"""What the machine has: RAM from psutil, NVIDIA GPUs from NVML, and what llama.cpp can use.

A machine without an NVIDIA driver is an ordinary case here, not an error: `GpuMonitor` then
reports no GPUs and a sentence saying so, and never raises or warns. Every per-GPU query is
guarded on its own, because consumer cards and virtual GPUs often refuse some of them (the
temperature of a vGPU, the utilization of a MIG slice) while answering the rest.

A GPU that NVML sees is of no use when llama.cpp was built without a GPU backend: its layers
would silently run on the CPU. Only llama.cpp can say what it was built with, and importing it
here would cost the app's start-up (and, in a CUDA build, start CUDA in the app's process), so
a model host is asked instead (`probe_llama_build`), once per process, and only once NVML has
found a GPU: a machine without one never pays for the question.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import psutil

logger = logging.getLogger(__name__)

NO_GPU_STATUS = "No NVIDIA GPU detected"
CPU_ONLY_BUILD = "this llama.cpp build is CPU-only"
# Backends that run on the CPU side: a build with nothing else cannot offload, whatever it finds.
CPU_SIDE_BACKENDS = frozenset({"CPU", "BLAS"})
# A host says `ready` 0.25 s after it starts on this project's 2-core test machine (CPU build);
# a CUDA build also starts CUDA first. The limit leaves room for a busy or slow machine.
PROBE_TIMEOUT_S = 60.0


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
class LlamaBuild:
    """What the installed llama.cpp can run on, in its own words (reported by a model host).

    `gpu_offload` is llama.cpp's `llama_supports_gpu_offload()`: True when a GPU backend is
    built in and found a device. `backends` are the names in ggml's backend registry ("CPU",
    "CUDA", "Metal", ...), `gpu_devices` the GPUs those backends found ("CUDA0: NVIDIA ...").
    """

    gpu_offload: bool
    backends: tuple[str, ...] = ()
    gpu_devices: tuple[str, ...] = ()

    @property
    def cpu_only(self) -> bool:
        """True when the build has no backend besides the CPU-side ones (CPU, BLAS)."""
        return not self.gpu_offload and all(name in CPU_SIDE_BACKENDS for name in self.backends)

    @property
    def why_not_gpu(self) -> str:
        """Why layers cannot go to a GPU, for a sentence; "" when they can."""
        if self.gpu_offload:
            return ""
        if self.cpu_only:
            return CPU_ONLY_BUILD
        others = ", ".join(name for name in self.backends if name not in CPU_SIDE_BACKENDS)
        return f"llama.cpp ({others}) found no GPU it can use"

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu_offload": self.gpu_offload,
            "backends": list(self.backends),
            "gpu_devices": list(self.gpu_devices),
        }

    @classmethod
    def from_dict(cls, data: Any) -> LlamaBuild | None:
        """From a host's `ready` message; None when it carries no usable answer."""
        if not isinstance(data, dict) or not isinstance(data.get("gpu_offload"), bool):
            return None
        return cls(
            gpu_offload=data["gpu_offload"],
            backends=_strings(data.get("backends")),
            gpu_devices=_strings(data.get("gpu_devices")),
        )


def gpus_found_text(count: int) -> str:
    """ "NVIDIA GPU found", "2 NVIDIA GPUs found": the start of a sentence on an unused GPU."""
    return "NVIDIA GPU found" if count == 1 else f"{count} NVIDIA GPUs found"


@dataclass(frozen=True)
class HardwareSnapshot:
    """RAM and GPUs read together, with a sentence about the GPUs for a person to read.

    `gpus` are the GPUs NVML sees; `llama_build` says whether llama.cpp can use them. It is None
    when no GPU was found (llama.cpp was not asked) or when llama.cpp could not be asked.
    """

    ram: RamInfo
    gpus: tuple[GpuInfo, ...]
    gpu_status: str
    llama_build: LlamaBuild | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ram": self.ram.to_dict(),
            "gpus": [gpu.to_dict() for gpu in self.gpus],
            "gpu_status": self.gpu_status,
            "llama_build": self.llama_build.to_dict() if self.llama_build else None,
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

    The first time a GPU is found, the monitor asks `llama_build()` (by default
    `cached_llama_build`: a model host, once per process) whether llama.cpp can use it, and
    keeps the answer; `status` and `llama_build` tell it.
    """

    def __init__(
        self,
        nvml: Any = None,
        llama_build: Callable[[], LlamaBuild | None] | None = None,
    ):
        self._nvml: Any = nvml
        self._lock = threading.RLock()
        self._initialised = False
        self._unavailable_reason: str | None = None
        self._ask_llama = llama_build or cached_llama_build
        self._llama_lock = threading.Lock()  # not `_lock`: the answer can take a second
        self._llama_asked = False
        self._llama_answer: LlamaBuild | None = None

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
        """A sentence for a person: "No NVIDIA GPU detected", "1 NVIDIA GPU", "2 NVIDIA GPUs",
        or, when llama.cpp cannot use them, "NVIDIA GPU found; this llama.cpp build is
        CPU-only"."""
        with self._lock:
            if not self._ensure_initialised():
                return NO_GPU_STATUS
            try:
                count = self._nvml.nvmlDeviceGetCount()
            except self._nvml.NVMLError as error:
                return f"NVIDIA GPUs could not be counted: {_error_text(error)}"
        if count == 0:
            return NO_GPU_STATUS
        plain = f"{count} NVIDIA GPU" + ("s" if count != 1 else "")
        build = self._llama_build()
        if build is None:
            return f"{plain} (llama.cpp could not be asked whether it can use them)"
        if not build.gpu_offload:
            return f"{gpus_found_text(count)}; {build.why_not_gpu}"
        return plain

    @property
    def llama_build(self) -> LlamaBuild | None:
        """What llama.cpp can run on, asked the first time a GPU is found; None while no GPU is
        found (nothing to ask about) or when llama.cpp could not be asked."""
        with self._lock:
            if not self._ensure_initialised():
                return None
            try:
                count = self._nvml.nvmlDeviceGetCount()
            except self._nvml.NVMLError:
                return None
        return self._llama_build() if count > 0 else None

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

    def _llama_build(self) -> LlamaBuild | None:
        with self._llama_lock:
            if not self._llama_asked:
                self._llama_answer = self._ask_llama()
                self._llama_asked = True
            return self._llama_answer

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
    """RAM, GPUs and what llama.cpp can use, now. Without a monitor, one is started for this
    call and shut down after."""
    if monitor is None:
        with GpuMonitor() as own_monitor:
            return snapshot(own_monitor)
    gpus = monitor.read()
    return HardwareSnapshot(read_ram(), gpus, monitor.status, monitor.llama_build)


def probe_llama_build(
    command: list[str] | None = None, timeout_s: float = PROBE_TIMEOUT_S
) -> LlamaBuild | None:
    """Ask llama.cpp what it was built with: start a model host, read its `ready` message, stop
    it. None, with a warning in the log, when the host exited, said nothing in `timeout_s`, or
    said `ready` without an answer (an older host).

    A host is the one process that imports llama_cpp, and it runs frozen or not; this costs one
    host start. `command` replaces the host command (tests).
    """
    from llm_desktop.core.host.client import HostExited, HostMessage, HostProcess

    try:
        host = HostProcess(command)
    except OSError as error:
        logger.warning("Could not start a model host to ask llama.cpp about GPUs: %s", error)
        return None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                item = host.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                logger.warning(
                    "A model host did not say what llama.cpp can use in %.0f s", timeout_s
                )
                return None
            if isinstance(item, HostExited):
                last_words = " / ".join(list(host.stderr_tail)[-3:])
                logger.warning(
                    "A model host asked about GPUs exited (status %s): %s",
                    item.returncode,
                    last_words or "no output",
                )
                return None
            if isinstance(item, HostMessage) and item.data.get("t") == "ready":
                build = LlamaBuild.from_dict(item.data.get("build"))
                if build is None:
                    logger.warning("A model host did not say what llama.cpp can use")
                return build
    finally:
        host.stop(grace_s=2.0)


_llama_build_lock = threading.Lock()
_llama_build_answer: list[LlamaBuild | None] = []  # empty until asked


def cached_llama_build() -> LlamaBuild | None:
    """`probe_llama_build()`, once per process: the llama.cpp a running app loads does not
    change under it. Callers at the same time wait for the one answer."""
    with _llama_build_lock:
        if not _llama_build_answer:
            _llama_build_answer.append(probe_llama_build())
        return _llama_build_answer[0]


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as error:
        raise _NvmlUnavailable(f"nvidia-ml-py is not installed ({error})") from None
    return pynvml


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return ()
    return tuple(str(item) for item in value)


def _text(value: bytes | str) -> str:
    # Older nvidia-ml-py releases return bytes, newer ones str.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _error_text(error: BaseException) -> str:
    text = str(error)
    return text or type(error).__name__
