"""The hardware poller on its thread, and the panel that shows its reports.

The poller runs against the real NVML of this machine (no NVIDIA driver: no GPUs) and against
a stand-in NVML module given to `GpuMonitor(nvml=...)`, the one boundary where a GPU can be
faked. Signals from the poller's thread are collected by a QObject living in the GUI thread,
so every wait here is on something delivered to the main thread.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from PySide6.QtCore import QObject, QThread, Slot
from PySide6.QtWidgets import QLabel

from llm_desktop.core.fit import format_bytes
from llm_desktop.core.hardware import (
    NO_GPU_STATUS,
    GpuInfo,
    GpuMonitor,
    HardwareSnapshot,
    RamInfo,
)
from llm_desktop.ui import theme
from llm_desktop.ui.hardware_panel import NO_MODEL_TEXT, HardwarePanel, MemoryBar, usage_text
from llm_desktop.workers.hardware_poller import (
    HardwarePoller,
    HardwareReport,
    ModelMemory,
    read_report,
)
from tests.helpers.fake_nvml import (
    CUDA_BUILD,
    HAS_NVML_LIBRARY,
    LLAMA_GPU_BACKEND_LIBS,
    FakeNvml,
)

GB = 1000**3
WAIT_MS = 5000


def fake_gpus(model_pid: int = 4242) -> list[dict]:
    return [
        {
            "name": "NVIDIA H100 80GB HBM3",
            "total": 80 * GB,
            "used": 76 * GB,  # 95 %: over the warning line
            "utilization": 97,
            "temperature": 61,
            "processes": [(model_pid, 60 * GB)],
        },
        {
            "name": "NVIDIA GeForce RTX 4090",
            "total": 24 * GB,
            "used": 12 * GB,
            "utilization": 35,
            "temperature": None,  # refused, as some cards do
            "processes": [(model_pid, 2 * GB), (7, 1 * GB)],
        },
    ]


class Collector(QObject):
    """Lives in the GUI thread, so the poller's signals reach it queued."""

    def __init__(self, poller: HardwarePoller):
        super().__init__()
        self.events: list[tuple[str, object]] = []
        poller.snapshot_ready.connect(self.on_report)
        poller.errored.connect(self.on_error)

    @Slot(object)
    def on_report(self, report: object) -> None:
        assert QThread.currentThread() is self.thread()
        self.events.append(("report", report))

    @Slot(object)
    def on_error(self, error: object) -> None:
        self.events.append(("error", error))

    @property
    def reports(self) -> list[HardwareReport]:
        return [payload for kind, payload in self.events if kind == "report"]

    @property
    def errors(self) -> list[Exception]:
        return [payload for kind, payload in self.events if kind == "error"]


@pytest.fixture
def make_poller(qapp):
    """Builds pollers and fails the test if one of them leaves its thread running."""
    made: list[HardwarePoller] = []

    def make(**kwargs) -> tuple[HardwarePoller, Collector]:
        poller = HardwarePoller(**kwargs)
        made.append(poller)
        return poller, Collector(poller)

    yield make
    for poller in made:
        assert poller.shutdown(), "poller thread did not stop"
        assert not poller.running


@pytest.fixture
def sleeper(no_leaked_processes):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield child
    child.kill()
    child.wait(timeout=10)


# --- the poller --------------------------------------------------------------------------------


@pytest.mark.skipif(HAS_NVML_LIBRARY, reason="this machine has an NVIDIA driver")
def test_real_monitor_reports_no_gpu_and_ram(qtbot, make_poller):
    poller, seen = make_poller(interval_ms=60_000)
    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) > 0, timeout=WAIT_MS)  # the first round does not wait

    report = seen.reports[0]
    assert isinstance(report, HardwareReport)
    assert report.snapshot.gpus == ()
    assert report.snapshot.gpu_status == NO_GPU_STATUS
    assert 0 < report.snapshot.ram.available <= report.snapshot.ram.total
    assert report.models == {}
    assert seen.errors == []


def test_fake_gpus_and_a_real_child_process(qtbot, make_poller, sleeper):
    monitor = GpuMonitor(
        nvml=FakeNvml(fake_gpus(model_pid=sleeper.pid)), llama_build=lambda: CUDA_BUILD
    )
    poller, seen = make_poller(
        interval_ms=60_000, monitor=monitor, process_pids=lambda: {"m": sleeper.pid}
    )
    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) > 0, timeout=WAIT_MS)

    report = seen.reports[0]
    gpus = report.snapshot.gpus
    assert [gpu.name for gpu in gpus] == ["NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090"]
    assert (gpus[0].memory_used, gpus[0].utilization_pct, gpus[0].temperature_c) == (
        76 * GB,
        97,
        61,
    )
    assert gpus[1].temperature_c is None
    assert report.snapshot.gpu_status == "2 NVIDIA GPUs"
    memory = report.models["m"]
    assert memory.rss is not None and memory.rss > 0  # the child's real resident memory
    assert memory.vram == 62 * GB  # summed over both GPUs, other processes left out


@pytest.mark.skipif(HAS_NVML_LIBRARY, reason="this machine has an NVIDIA driver")
def test_real_child_process_without_nvml(sleeper):
    report = read_report(GpuMonitor(), {"m": sleeper.pid})
    assert report.models["m"].rss > 0
    assert report.models["m"].vram is None  # no NVML: unknown, not zero


def test_vanished_process_has_unknown_memory(no_leaked_processes):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    report = read_report(GpuMonitor(nvml=FakeNvml(fake_gpus())), {"gone": child.pid})
    assert report.models["gone"].rss is None
    assert report.models["gone"].vram == 0  # NVML answered, and the process holds nothing


def test_poll_now_runs_a_round_at_once(qtbot, make_poller):
    poller, seen = make_poller(interval_ms=60_000, monitor=GpuMonitor(nvml=FakeNvml([])))
    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) == 1, timeout=WAIT_MS)
    poller.poll_now()
    qtbot.waitUntil(lambda: len(seen.reports) == 2, timeout=WAIT_MS)


def test_timer_polls_and_stop_pauses(qtbot, make_poller):
    poller, seen = make_poller(interval_ms=20, monitor=GpuMonitor(nvml=FakeNvml([])))
    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) >= 3, timeout=WAIT_MS)

    poller.stop()
    qtbot.wait(60)  # rounds already queued to the GUI thread arrive
    paused_at = len(seen.reports)
    qtbot.wait(120)
    assert len(seen.reports) == paused_at

    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) >= paused_at + 2, timeout=WAIT_MS)


class FlakyMonitor(GpuMonitor):
    """A real monitor (over the stand-in NVML) whose first read fails."""

    def __init__(self):
        super().__init__(nvml=FakeNvml(fake_gpus()))
        self.failures_left = 1

    def read(self):
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("driver hiccup")
        return super().read()


def test_an_error_is_emitted_and_polling_goes_on(qtbot, make_poller):
    poller, seen = make_poller(interval_ms=20, monitor=FlakyMonitor())
    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) >= 2, timeout=WAIT_MS)

    kinds = [kind for kind, _ in seen.events]
    assert kinds[0] == "error"
    assert set(kinds[1:]) == {"report"}
    (error,) = seen.errors
    assert isinstance(error, RuntimeError) and str(error) == "driver hiccup"


def test_an_error_nobody_listens_to_is_logged(qtbot, qapp, caplog):
    poller = HardwarePoller(interval_ms=60_000, monitor=FlakyMonitor())
    caplog.set_level(logging.ERROR, logger="llm_desktop.workers.hardware_poller")
    try:
        poller.start()
        qtbot.waitUntil(lambda: "hardware poll failed" in caplog.text, timeout=WAIT_MS)
    finally:
        assert poller.shutdown()


def test_shutdown_ends_the_thread(qtbot, make_poller):
    poller, seen = make_poller(interval_ms=10, monitor=GpuMonitor(nvml=FakeNvml(fake_gpus())))
    assert poller.shutdown() is True  # before start: nothing to do
    assert not poller.running

    poller, seen = make_poller(interval_ms=10, monitor=GpuMonitor(nvml=FakeNvml(fake_gpus())))
    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) >= 2, timeout=WAIT_MS)
    assert poller.running

    assert poller.shutdown() is True
    assert not poller.running
    assert poller.thread() is QThread.currentThread()  # back home, with its stopped timer
    assert poller.shutdown() is True  # twice is harmless
    poller.poll_now()  # after shutdown: ignored, no warning
    qtbot.wait(30)
    with pytest.raises(RuntimeError):
        poller.start()


def test_owned_monitor_is_released_at_shutdown(qtbot, make_poller):
    poller, seen = make_poller(interval_ms=60_000)
    poller.start()
    qtbot.waitUntil(lambda: len(seen.reports) > 0, timeout=WAIT_MS)
    assert poller.shutdown()
    assert not poller._monitor._initialised


# --- the panel ---------------------------------------------------------------------------------


def fake_report(models: dict[str, ModelMemory] | None = None) -> HardwareReport:
    snap = HardwareSnapshot(
        ram=RamInfo(total=64 * GB, available=40 * GB, used=22 * GB),
        gpus=GpuMonitor(nvml=FakeNvml(fake_gpus())).read(),
        gpu_status="2 NVIDIA GPUs",
        llama_build=CUDA_BUILD,
    )
    return HardwareReport(snapshot=snap, models=models or {})


@pytest.fixture
def panel(qtbot):
    widget = HardwarePanel()
    qtbot.addWidget(widget)  # not shown: offscreen warns about size hints of shown windows
    return widget


def bar(panel: HardwarePanel, name: str) -> MemoryBar:
    found = panel.findChild(MemoryBar, name)
    assert found is not None, name
    return found


def label(panel: HardwarePanel, name: str) -> QLabel:
    found = panel.findChild(QLabel, name)
    assert found is not None, name
    return found


def shown(panel: HardwarePanel, name: str) -> bool:
    return panel.findChild(QLabel, name).isVisibleTo(panel)


def model_rows(panel: HardwarePanel) -> list[tuple[str, str]]:
    """(name, memory text) of each listed model, top to bottom."""
    names = [lab for lab in panel.findChildren(QLabel, "modelName") if lab.isVisibleTo(panel)]
    names.sort(key=lambda lab: lab.mapTo(panel, lab.rect().topLeft()).y())
    return [(lab.accessibleName(), lab.parent().details.text()) for lab in names]


def test_panel_before_any_report(panel):
    assert label(panel, "gpuStatus").text() == "Reading hardware…"
    assert not bar(panel, "ramBar").isVisibleTo(panel)
    assert shown(panel, "modelsEmpty")
    assert panel.report is None


def test_panel_shows_each_gpu(panel):
    panel.update_report(fake_report())

    assert not shown(panel, "gpuStatus")
    first, second = bar(panel, "gpuMemoryBar0"), bar(panel, "gpuMemoryBar1")
    assert first.accessibleName() == "GPU 0 memory"
    assert second.accessibleName() == "GPU 1 memory"
    assert first.text() == "76.0 GB / 80.0 GB (95% used)"
    assert first.warning
    assert second.text() == "12.0 GB / 24.0 GB"
    assert not second.warning
    assert second.accessibleDescription() == "12.0 GB of 24.0 GB used (50%), 12.0 GB free"
    assert "NVIDIA H100 80GB HBM3" in label(panel, "gpuName0").text()
    assert label(panel, "gpuDetails0").text() == "Utilization 97%  ·  61 °C"
    assert label(panel, "gpuDetails1").text() == "Utilization 35%"  # temperature refused


def test_panel_drops_rows_of_gpus_that_went_away(panel):
    panel.update_report(fake_report())
    report = fake_report()
    one = HardwareReport(
        HardwareSnapshot(report.snapshot.ram, report.snapshot.gpus[:1], "1 NVIDIA GPU", CUDA_BUILD),
        {},
    )
    panel.update_report(one)
    assert panel.findChild(MemoryBar, "gpuMemoryBar1") is None
    assert bar(panel, "gpuMemoryBar0").isVisibleTo(panel)


@pytest.mark.skipif(HAS_NVML_LIBRARY, reason="this machine has an NVIDIA driver")
def test_panel_without_gpu_says_so_plainly(panel):
    report = read_report(GpuMonitor())
    panel.update_report(report)

    status = label(panel, "gpuStatus")
    assert status.text() == NO_GPU_STATUS
    assert status.isVisibleTo(panel)
    assert panel.findChild(MemoryBar, "gpuMemoryBar0") is None


@pytest.mark.skipif(bool(LLAMA_GPU_BACKEND_LIBS), reason="this llama.cpp ships GPU backends")
def test_panel_says_when_llama_cpp_cannot_use_the_gpus(panel, no_leaked_processes):
    # Fake GPUs, the real llama.cpp of this machine (CPU-only) asked through a model host.
    report = read_report(GpuMonitor(nvml=FakeNvml(fake_gpus())))
    panel.update_report(report)

    status = label(panel, "gpuStatus")
    assert status.text() == "2 NVIDIA GPUs found; this llama.cpp build is CPU-only"
    assert status.isVisibleTo(panel)
    assert status.property("muted") == "false"  # a warning, not secondary text
    assert bar(panel, "gpuMemoryBar1").isVisibleTo(panel)  # the cards are still listed

    panel.update_report(fake_report())  # a build that can use them: the rows say it all
    assert not status.isVisibleTo(panel)
    assert status.property("muted") == "true"


def test_panel_says_when_llama_cpp_could_not_be_asked(panel):
    report = read_report(GpuMonitor(nvml=FakeNvml(fake_gpus()), llama_build=lambda: None))
    panel.update_report(report)
    status = label(panel, "gpuStatus")
    assert status.isVisibleTo(panel)
    assert "could not be asked" in status.text()


def test_panel_system_memory_states_the_numbers(panel):
    report = fake_report()
    panel.update_report(report)

    ram = bar(panel, "ramBar")
    assert ram.accessibleName() == "System memory"
    assert ram.text() == "22.0 GB / 64.0 GB"
    assert "22.0 GB of 64.0 GB used" in ram.accessibleDescription()
    assert label(panel, "ramAvailable").text() == "40.0 GB available"
    assert ram.value() == round(ram.maximum() * 22 / 64)


def test_panel_real_ram_numbers(panel):
    report = read_report(GpuMonitor(nvml=FakeNvml([])))
    panel.update_report(report)
    ram = report.snapshot.ram
    assert format_bytes(ram.used) in bar(panel, "ramBar").text()
    assert format_bytes(ram.total) in bar(panel, "ramBar").text()
    assert format_bytes(ram.available) in label(panel, "ramAvailable").text()


@pytest.mark.parametrize(
    ("used", "text", "warning"),
    [
        (0, "0 B / 10.0 GB", False),
        (8_960_000_000, "9.0 GB / 10.0 GB", False),  # 89.6 %: under the line
        (9 * GB, "9.0 GB / 10.0 GB (90% used)", True),
        (10 * GB, "10.0 GB / 10.0 GB (100% used)", True),
    ],
)
def test_warning_is_written_not_only_coloured(qtbot, used, text, warning):
    gauge = MemoryBar("GPU 0 memory")
    qtbot.addWidget(gauge)
    gauge.set_usage(used, 10 * GB)
    assert gauge.text() == text == usage_text(used, 10 * GB)
    assert gauge.warning is warning
    assert gauge.property("level") == ("warning" if warning else "normal")


def test_loaded_models_are_listed_by_name(panel):
    panel.set_model_names({"b": "Beta 7B", "a": "Alpha 3B", "c": "Gamma (not loaded)"})
    panel.update_report(
        fake_report(
            {
                "b": ModelMemory(rss=1_200_000_000, vram=5 * GB),
                "a": ModelMemory(rss=None, vram=None),
                "x": ModelMemory(rss=300_000_000, vram=0),
            }
        )
    )
    assert not shown(panel, "modelsEmpty")
    assert model_rows(panel) == [
        ("Alpha 3B", "RAM unknown  ·  VRAM unknown"),
        ("Beta 7B", "RAM 1.2 GB  ·  VRAM 5.0 GB"),
        ("x", "RAM 300 MB  ·  VRAM 0 B"),  # no display name: its id
    ]

    panel.set_model_names({"x": "Xi 1B"})
    assert [name for name, _ in model_rows(panel)] == ["a", "b", "Xi 1B"]

    panel.update_report(fake_report({}))
    assert model_rows(panel) == []
    assert shown(panel, "modelsEmpty")
    assert label(panel, "modelsEmpty").text() == NO_MODEL_TEXT


def test_without_gpu_vram_is_left_out(panel):
    report = HardwareReport(
        HardwareSnapshot(RamInfo(16 * GB, 8 * GB, 7 * GB), (), NO_GPU_STATUS),
        {"m": ModelMemory(rss=2 * GB, vram=None)},
    )
    panel.update_report(report)
    assert model_rows(panel) == [("m", "RAM 2.0 GB")]


def test_panel_themed_and_driven_by_the_poller(qtbot, qapp, panel, make_poller):
    saved = (qapp.styleSheet(), qapp.palette())
    try:
        for scheme in theme.SCHEMES:
            theme.apply_theme(qapp, scheme)
            panel.update_report(fake_report())  # repolishes the warning bar: no Qt warnings
        poller, _ = make_poller(
            interval_ms=60_000,
            monitor=GpuMonitor(nvml=FakeNvml(fake_gpus()), llama_build=lambda: CUDA_BUILD),
        )
        poller.snapshot_ready.connect(panel.update_report)
        panel.update_report(
            HardwareReport(HardwareSnapshot(RamInfo(1, 1, 0), (), "x"), {})
        )  # reset
        poller.start()
        qtbot.waitUntil(lambda: bar(panel, "gpuMemoryBar1").isVisibleTo(panel), timeout=WAIT_MS)
        assert panel.report.snapshot.gpu_status == "2 NVIDIA GPUs"
        assert isinstance(panel.report.snapshot.gpus[0], GpuInfo)
    finally:
        qapp.setStyleSheet(saved[0])
        qapp.setPalette(saved[1])
