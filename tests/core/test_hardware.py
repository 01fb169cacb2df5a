"""Hardware readings: the real NVML on this machine, and a stand-in NVML module for GPU cases.

The stand-in is the one fake in this project's tests: GPU behaviour cannot be exercised on a
machine without an NVIDIA driver, and `GpuMonitor` takes the module as a parameter for this.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from llm_desktop.core.hardware import (
    NO_GPU_STATUS,
    GpuInfo,
    GpuMonitor,
    HardwareSnapshot,
    RamInfo,
    process_rss,
    read_ram,
    snapshot,
)
from tests.helpers.fake_nvml import HAS_NVML_LIBRARY, FakeNvml, FakeNvmlError

GiB = 1024**3


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
    monitor = GpuMonitor()
    assert monitor.read() == ()
    assert monitor.read() == ()
    assert monitor.status == NO_GPU_STATUS
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
        assert monitor.status.endswith(("NVIDIA GPU", "NVIDIA GPUs", NO_GPU_STATUS))
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
    data = result.to_dict()
    assert set(data) == {"ram", "gpus", "gpu_status"}
    assert data["ram"]["total"] == result.ram.total


def test_importing_hardware_starts_no_nvml_and_no_qt():
    code = (
        "import sys, llm_desktop.core.hardware, llm_desktop.core.fit; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pynvml', 'PySide6')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


# --- a stand-in NVML ------------------------------------------------------------------------


def test_two_gpus_are_read_with_a_failing_temperature_as_none():
    nvml = FakeNvml(two_gpus())
    monitor = GpuMonitor(nvml=nvml)
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
    monitor = GpuMonitor(nvml=nvml)
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
    monitor = GpuMonitor(nvml=FakeNvml(two_gpus()[1:]))
    assert monitor.status == "1 NVIDIA GPU"


def test_driver_without_gpus_reports_none():
    monitor = GpuMonitor(nvml=FakeNvml([]))
    assert monitor.read() == ()
    assert monitor.status == NO_GPU_STATUS
    assert monitor.available is True


def test_init_failure_reports_no_gpu_once_without_raising(caplog):
    caplog.set_level(logging.DEBUG, logger="llm_desktop.core.hardware")
    nvml = FakeNvml(two_gpus(), init_error=FakeNvmlError("Driver Not Loaded"))
    monitor = GpuMonitor(nvml=nvml)
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
    result = snapshot(GpuMonitor(nvml=FakeNvml(two_gpus())))
    assert [gpu.index for gpu in result.gpus] == [0, 1]
    assert result.gpu_status == "2 NVIDIA GPUs"
    data = result.to_dict()
    assert data["gpus"][0]["temperature_c"] is None
    assert data["gpus"][1]["name"] == "NVIDIA H100 80GB HBM3"


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
