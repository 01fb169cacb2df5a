"""Hardware readings: the real NVML on this machine, and a stand-in NVML module for GPU cases.

The stand-in is the one fake in this project's tests: GPU behaviour cannot be exercised on a
machine without an NVIDIA driver, and `GpuMonitor` takes the module as a parameter for this.
What llama.cpp can use is asked of the real llama.cpp (its CPU-only build here); a GPU-capable
build, which cannot run here, is stood in for by `CUDA_BUILD`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from llm_desktop.core.hardware import (
    CPU_ONLY_BUILD,
    NO_GPU_STATUS,
    GpuInfo,
    GpuMonitor,
    HardwareSnapshot,
    LlamaBuild,
    RamInfo,
    cached_llama_build,
    probe_llama_build,
    process_rss,
    read_ram,
    snapshot,
)
from tests.helpers.fake_nvml import (
    CUDA_BUILD,
    HAS_NVML_LIBRARY,
    LLAMA_GPU_BACKEND_LIBS,
    FakeNvml,
    FakeNvmlError,
)

GiB = 1024**3

cpu_only_build_here = pytest.mark.skipif(
    bool(LLAMA_GPU_BACKEND_LIBS),
    reason=f"this llama.cpp ships GPU backends: {LLAMA_GPU_BACKEND_LIBS}",
)


def never_asked() -> LlamaBuild | None:
    raise AssertionError("llama.cpp was asked about GPUs although none was found")


def two_gpus() -> list[dict]:
    return [
        {
            "name": b"NVIDIA GeForce RTX 4060",
            "total": 8 * GiB,
            "used": 1 * GiB,
            "utilization": 12,
            "temperature": None,  # this card refuses the temperature query
            "processes": [(4242, 512 * 1024 * 1024), (7, 100)],
        },
        {
            "name": "NVIDIA H100 80GB HBM3",
            "total": 80 * GiB,
            "used": 2 * GiB,
            "utilization": 97,
            "temperature": 61,
            "processes": [(4242, 3 * GiB)],
        },
    ]


# --- the real pynvml on this machine ---------------------------------------------------------


@pytest.mark.skipif(HAS_NVML_LIBRARY, reason="an NVIDIA driver is installed here")
def test_real_nvml_without_driver_reports_no_gpu_quietly(caplog):
    caplog.set_level(logging.DEBUG, logger="llm_desktop.core.hardware")
    monitor = GpuMonitor(llama_build=never_asked)  # no GPU: no host started to ask llama.cpp
    assert monitor.read() == ()
    assert monitor.read() == ()
    assert monitor.status == NO_GPU_STATUS
    assert monitor.llama_build is None
    assert monitor.available is False
    assert monitor.unavailable_reason  # NVML's own words are kept for a detail view
    assert monitor.process_memory(os.getpid()) is None
    monitor.shutdown()  # nothing was started: must not raise
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.DEBUG


@pytest.mark.skipif(not HAS_NVML_LIBRARY, reason="no NVIDIA driver here")
def test_real_nvml_with_driver_reads_gpus():
    with GpuMonitor() as monitor:
        gpus = monitor.read()
        assert monitor.status == NO_GPU_STATUS or "NVIDIA GPU" in monitor.status
        for gpu in gpus:
            assert gpu.name
            assert gpu.memory_total > 0
            assert 0 <= gpu.memory_free <= gpu.memory_total
        memory = monitor.process_memory(os.getpid())
        assert memory is None or memory >= 0


def test_real_snapshot_without_monitor():
    result = snapshot()
    assert isinstance(result, HardwareSnapshot)
    assert result.ram.total > 0
    if not HAS_NVML_LIBRARY:
        assert result.gpus == ()
        assert result.gpu_status == NO_GPU_STATUS
        assert result.llama_build is None  # not asked: there is no GPU to ask about
    data = result.to_dict()
    assert set(data) == {"ram", "gpus", "gpu_status", "llama_build"}
    assert data["ram"]["total"] == result.ram.total


def test_importing_hardware_starts_no_nvml_no_qt_and_no_llama_cpp():
    code = (
        "import sys, llm_desktop.core.hardware, llm_desktop.core.fit; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pynvml', 'PySide6', 'llama_cpp')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


# --- a stand-in NVML ------------------------------------------------------------------------


def test_two_gpus_are_read_with_a_failing_temperature_as_none():
    nvml = FakeNvml(two_gpus())
    monitor = GpuMonitor(nvml=nvml, llama_build=lambda: CUDA_BUILD)
    first, second = monitor.read()
    assert first == GpuInfo(
        index=0,
        name="NVIDIA GeForce RTX 4060",  # bytes decoded
        memory_total=8 * GiB,
        memory_used=1 * GiB,
        memory_free=7 * GiB,
        utilization_pct=12,
        temperature_c=None,
    )
    assert second.name == "NVIDIA H100 80GB HBM3"
    assert second.memory_free == 78 * GiB
    assert (second.utilization_pct, second.temperature_c) == (97, 61)
    assert monitor.status == "2 NVIDIA GPUs"
    assert monitor.available is True


def test_nvml_is_initialised_once_and_shut_down_once():
    nvml = FakeNvml(two_gpus())
    monitor = GpuMonitor(nvml=nvml, llama_build=lambda: CUDA_BUILD)
    assert nvml.init_calls == 0  # lazily, not in the constructor
    monitor.read()
    monitor.read()
    _ = monitor.status
    assert nvml.init_calls == 1
    monitor.shutdown()
    monitor.shutdown()
    assert nvml.shutdown_calls == 1
    monitor.read()  # a read after shutdown starts NVML again
    assert nvml.init_calls == 2


def test_one_gpu_status_is_singular():
    monitor = GpuMonitor(nvml=FakeNvml(two_gpus()[1:]), llama_build=lambda: CUDA_BUILD)
    assert monitor.status == "1 NVIDIA GPU"


def test_driver_without_gpus_reports_none():
    monitor = GpuMonitor(nvml=FakeNvml([]), llama_build=never_asked)
    assert monitor.read() == ()
    assert monitor.status == NO_GPU_STATUS
    assert monitor.available is True
    assert monitor.llama_build is None


def test_init_failure_reports_no_gpu_once_without_raising(caplog):
    caplog.set_level(logging.DEBUG, logger="llm_desktop.core.hardware")
    nvml = FakeNvml(two_gpus(), init_error=FakeNvmlError("Driver Not Loaded"))
    monitor = GpuMonitor(nvml=nvml, llama_build=never_asked)
    for _ in range(3):
        assert monitor.read() == ()
    assert monitor.status == NO_GPU_STATUS
    assert monitor.unavailable_reason == "Driver Not Loaded"
    assert monitor.process_memory(4242) is None
    monitor.shutdown()
    assert nvml.init_calls == 1  # the failure is remembered, not retried on every poll
    assert nvml.shutdown_calls == 0
    assert [record.levelno for record in caplog.records] == [logging.DEBUG]


def test_gpu_whose_memory_cannot_be_read_is_left_out():
    gpus = two_gpus()
    gpus[0]["memory_fails"] = True
    (only,) = GpuMonitor(nvml=FakeNvml(gpus)).read()
    assert only.index == 1


def test_failing_utilization_gives_none():
    gpus = two_gpus()
    gpus[1]["utilization"] = None
    assert GpuMonitor(nvml=FakeNvml(gpus)).read()[1].utilization_pct is None


def test_process_memory_sums_over_gpus():
    monitor = GpuMonitor(nvml=FakeNvml(two_gpus()))
    assert monitor.process_memory(4242) == 512 * 1024 * 1024 + 3 * GiB
    assert monitor.process_memory(7) == 100
    assert monitor.process_memory(99999) == 0


def test_process_memory_skips_gpus_that_refuse_and_is_none_when_all_do():
    gpus = two_gpus()
    gpus[0]["processes"] = None
    assert GpuMonitor(nvml=FakeNvml(gpus)).process_memory(4242) == 3 * GiB
    gpus[1]["processes"] = None
    assert GpuMonitor(nvml=FakeNvml(gpus)).process_memory(4242) is None


def test_process_memory_unknown_when_driver_does_not_report_it():
    gpus = two_gpus()
    gpus[1]["processes"] = [(4242, None)]  # what pynvml gives under Windows WDDM
    assert GpuMonitor(nvml=FakeNvml(gpus)).process_memory(4242) is None


def test_snapshot_with_a_monitor():
    result = snapshot(GpuMonitor(nvml=FakeNvml(two_gpus()), llama_build=lambda: CUDA_BUILD))
    assert [gpu.index for gpu in result.gpus] == [0, 1]
    assert result.gpu_status == "2 NVIDIA GPUs"
    assert result.llama_build == CUDA_BUILD
    data = result.to_dict()
    assert data["gpus"][0]["temperature_c"] is None
    assert data["gpus"][1]["name"] == "NVIDIA H100 80GB HBM3"
    assert data["llama_build"] == {
        "gpu_offload": True,
        "backends": ["CUDA", "CPU"],
        "gpu_devices": ["CUDA0: NVIDIA H100 80GB HBM3"],
    }


# --- what llama.cpp can use -------------------------------------------------------------------


@cpu_only_build_here
def test_the_real_llama_cpp_here_is_a_cpu_only_build(no_leaked_processes):
    build = probe_llama_build()
    assert build == LlamaBuild(gpu_offload=False, backends=("CPU",), gpu_devices=())
    assert build.cpu_only
    assert build.why_not_gpu == CPU_ONLY_BUILD == "this llama.cpp build is CPU-only"


def test_the_probe_gives_llama_cpps_own_answer(no_leaked_processes):
    code = "import llama_cpp; print(llama_cpp.llama_supports_gpu_offload())"
    own = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    build = probe_llama_build()
    assert build is not None
    assert str(build.gpu_offload) == own
    assert "CPU" in build.backends


def test_the_answer_is_asked_once_per_process(no_leaked_processes):
    first = cached_llama_build()
    started = time.monotonic()
    assert cached_llama_build() is first  # the same object: no second host was asked
    assert time.monotonic() - started < 0.05


@cpu_only_build_here
def test_fake_gpus_with_the_real_cpu_only_build_say_so(no_leaked_processes):
    monitor = GpuMonitor(nvml=FakeNvml(two_gpus()))  # the real llama.cpp is asked
    result = snapshot(monitor)
    assert len(result.gpus) == 2  # still listed: the cards are there
    assert result.gpu_status == "2 NVIDIA GPUs found; this llama.cpp build is CPU-only"
    assert result.llama_build is not None and result.llama_build.gpu_offload is False
    assert result.to_dict()["llama_build"]["backends"] == ["CPU"]
    one = GpuMonitor(nvml=FakeNvml(two_gpus()[1:]))
    assert one.status == "NVIDIA GPU found; this llama.cpp build is CPU-only"


def test_llama_cpp_is_asked_once_per_monitor_and_only_with_a_gpu():
    calls = []

    def ask() -> LlamaBuild:
        calls.append(1)
        return CUDA_BUILD

    monitor = GpuMonitor(nvml=FakeNvml(two_gpus()), llama_build=ask)
    monitor.read()
    monitor.process_memory(4242)
    assert calls == []  # reading GPUs does not ask
    for _ in range(3):
        assert monitor.status == "2 NVIDIA GPUs"
        assert monitor.llama_build == CUDA_BUILD
        snapshot(monitor)
    assert calls == [1]


def test_a_gpu_build_that_finds_no_device_is_named():
    build = LlamaBuild(gpu_offload=False, backends=("CUDA", "CPU"))
    assert not build.cpu_only
    monitor = GpuMonitor(nvml=FakeNvml(two_gpus()[:1]), llama_build=lambda: build)
    assert monitor.status == "NVIDIA GPU found; llama.cpp (CUDA) found no GPU it can use"


def test_llama_cpp_that_could_not_be_asked_is_said():
    monitor = GpuMonitor(nvml=FakeNvml(two_gpus()), llama_build=lambda: None)
    assert monitor.status == "2 NVIDIA GPUs (llama.cpp could not be asked whether it can use them)"
    assert monitor.llama_build is None


@pytest.mark.parametrize(
    "data",
    [None, "x", {}, {"gpu_offload": "yes"}, {"error": "boom"}, {"gpu_offload": 1}],
)
def test_build_from_a_message_without_an_answer_is_none(data):
    assert LlamaBuild.from_dict(data) is None


def test_build_from_a_message_round_trips():
    assert LlamaBuild.from_dict(CUDA_BUILD.to_dict()) == CUDA_BUILD
    assert LlamaBuild.from_dict({"gpu_offload": False, "backends": "CPU"}) == LlamaBuild(False)


def test_probe_of_a_host_that_dies_is_none(caplog, no_leaked_processes):
    caplog.set_level(logging.WARNING, logger="llm_desktop.core.hardware")
    code = "import sys; sys.stderr.write('no llama here\\n'); sys.exit(3)"
    assert probe_llama_build([sys.executable, "-c", code]) is None
    assert "status 3" in caplog.text and "no llama here" in caplog.text


def test_probe_of_a_host_that_never_answers_gives_up(caplog, no_leaked_processes):
    caplog.set_level(logging.WARNING, logger="llm_desktop.core.hardware")
    code = "import time; time.sleep(60)"
    started = time.monotonic()
    assert probe_llama_build([sys.executable, "-c", code], timeout_s=0.5) is None
    assert time.monotonic() - started < 10  # stopped, not waited for
    assert "did not say" in caplog.text


def test_probe_of_an_older_host_without_an_answer_is_none(no_leaked_processes):
    ready = json.dumps({"t": "ready", "pid": 1})
    code = f"import sys; print({ready!r}, flush=True); sys.stdin.read()"
    assert probe_llama_build([sys.executable, "-c", code]) is None


def test_host_reports_the_build_from_the_registry_and_from_system_info(monkeypatch):
    llama_cpp = pytest.importorskip("llama_cpp")
    from llm_desktop.core.host import child

    from_registry = child.build_info(llama_cpp)
    assert from_registry["gpu_offload"] == bool(llama_cpp.llama_supports_gpu_offload())
    assert "CPU" in from_registry["backends"]

    def unbound():
        raise AttributeError("ggml_backend_reg_count")

    monkeypatch.setattr(child, "_ggml_registry", unbound)
    from_system_info = child.build_info(llama_cpp)  # backends that list features, CPU among them
    assert "CPU" in from_system_info["backends"]
    assert set(from_system_info["backends"]) <= set(from_registry["backends"])
    assert from_system_info["gpu_devices"] == []


# --- psutil ---------------------------------------------------------------------------------


def test_ram_is_sane():
    ram = read_ram()
    assert isinstance(ram, RamInfo)
    assert ram.total > 0
    assert 0 < ram.available <= ram.total
    assert 0 <= ram.used <= ram.total
    assert ram.to_dict() == {"total": ram.total, "available": ram.available, "used": ram.used}


def test_process_rss_of_this_process_and_of_a_finished_one():
    assert process_rss(os.getpid()) > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_rss(child.pid) is None
