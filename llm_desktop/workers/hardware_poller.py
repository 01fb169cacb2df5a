"""Polls RAM, GPUs and the memory of loaded models on a thread of its own.

NVML and psutil calls take from under a millisecond to tens of milliseconds (a busy driver, a
GPU waking from a low-power state), so they stay off the GUI thread. The poller follows
superqt's worker pattern: signals on the QObject, the object moved onto its own QThread, a
cooperative stop, and every exception surfaced on `errored` rather than swallowed.

Typical use from the GUI thread::

    poller = HardwarePoller(interval_ms=2000, process_pids=engine_pids)
    poller.snapshot_ready.connect(panel.update_report)
    poller.errored.connect(notifications.show_error)
    poller.start()
    ...
    poller.shutdown()  # before the application quits; joins the thread
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from llm_desktop.core import hardware

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelMemory:
    """Memory one loaded model's host process holds, in bytes; None where it cannot be read.

    `rss` is None when the process is gone or not ours to read; `vram` is None when NVML is
    unavailable or the driver does not report per-process memory (see
    `GpuMonitor.process_memory`), and 0 when NVML answers and the process holds none.
    """

    rss: int | None
    vram: int | None


@dataclass(frozen=True)
class HardwareReport:
    """One polling round: the machine's snapshot and the memory of each loaded model by id."""

    snapshot: hardware.HardwareSnapshot
    models: Mapping[str, ModelMemory] = field(default_factory=dict)


def read_report(
    monitor: hardware.GpuMonitor, pids: Mapping[str, int] | None = None
) -> HardwareReport:
    """One round, synchronously: what the poller does on its thread every interval."""
    snap = hardware.snapshot(monitor)
    models = {
        model_id: ModelMemory(rss=hardware.process_rss(pid), vram=monitor.process_memory(pid))
        for model_id, pid in (pids or {}).items()
    }
    return HardwareReport(snapshot=snap, models=models)


class HardwarePoller(QObject):
    """Reads a `HardwareReport` every `interval_ms` on its own QThread.

    Signals:
        snapshot_ready(HardwareReport): a round finished. Despite the name (kept for the
            callers that expect it) the payload is a whole report: `report.snapshot` is the
            `hardware.HardwareSnapshot`, `report.models` the per-model memory.
        errored(Exception): a round raised; polling goes on at the next interval.

    Both are emitted from the poller's thread; receivers living in the GUI thread get them
    queued, as usual. The first round runs as soon as the thread starts, without waiting one
    interval.

    `monitor` is used as given and left running at shutdown (its owner shuts it down); without
    one, the poller makes its own and releases NVML when it shuts down. `process_pids`, when
    given, returns {model_id: host pid} for the loaded models and is called **on the poller's
    thread** every round, so it must be safe to call from there (reading a dict that the GUI
    thread replaces whole is).

    Life cycle: `start()` starts the thread (the QTimer is created inside it, by a slot that
    `QThread.started` invokes); `stop()` pauses polling and `start()` resumes it; `poll_now()`
    asks for a round at once; `shutdown()` stops the timer on its own thread, ends the thread
    and waits for it. After `shutdown()` the poller lives on the thread that made it again and
    cannot be restarted. The owner must call `shutdown()` before the poller is dropped:
    destroying a running QThread aborts the process.
    """

    snapshot_ready = Signal(object)
    errored = Signal(object)

    # Private: requests that cross into the poller's thread as queued calls.
    _resume_requested = Signal()
    _stop_requested = Signal()
    _poll_requested = Signal()
    _shutdown_requested = Signal()

    def __init__(
        self,
        interval_ms: int = 2000,
        monitor: hardware.GpuMonitor | None = None,
        process_pids: Callable[[], Mapping[str, int]] | None = None,
    ):
        super().__init__()  # no parent: a QObject with a parent cannot change threads
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, not {interval_ms}")
        self._interval_ms = int(interval_ms)
        self._owns_monitor = monitor is None
        self._monitor = monitor if monitor is not None else hardware.GpuMonitor()
        self._process_pids = process_pids
        self._timer: QTimer | None = None
        self._paused = threading.Event()  # set by stop(), cleared by start(); checked per round
        self._shut_down = False
        self._home = QThread.currentThread()

        self._thread = QThread()
        self._thread.setObjectName("HardwarePoller")
        self.moveToThread(self._thread)
        self._thread.started.connect(self._on_thread_started)
        self._resume_requested.connect(self._resume)
        self._stop_requested.connect(self._stop_timer)
        self._poll_requested.connect(self._poll)
        self._shutdown_requested.connect(self._finish)

    @property
    def interval_ms(self) -> int:
        return self._interval_ms

    @property
    def running(self) -> bool:
        """True while the poller's thread runs (polling or stopped), False before and after."""
        return self._thread.isRunning()

    def start(self) -> None:
        """Start polling: starts the thread the first time, resumes after `stop()`."""
        if self._shut_down:
            raise RuntimeError("HardwarePoller was shut down and cannot start again")
        self._paused.clear()
        if self._thread.isRunning():
            self._resume_requested.emit()
        else:
            self._thread.start()

    def stop(self) -> None:
        """Pause polling; safe from any thread. A round already under way is not emitted."""
        self._paused.set()
        self._stop_requested.emit()

    def poll_now(self) -> None:
        """Ask for a round now, from any thread; it runs once the thread is free."""
        self._poll_requested.emit()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the timer on its thread, end the thread and wait for it; call from the owner.

        Returns False if the thread was still inside a round after `timeout_ms` (a hung
        driver call); the poller then must be kept alive until the thread ends. Calling it
        again, or before `start()`, is harmless.
        """
        self._shut_down = True
        self._paused.set()
        if not self._thread.isRunning():
            return True
        self._shutdown_requested.emit()  # _finish quits the thread once the timer is gone
        finished = self._thread.wait(timeout_ms)
        if not finished:
            logger.warning("hardware poller thread did not stop within %d ms", timeout_ms)
        return finished

    # --- on the poller's thread ------------------------------------------------------------

    @Slot()
    def _on_thread_started(self) -> None:
        self._timer = QTimer(self)  # created here, so it lives and is stopped on this thread
        self._timer.setInterval(self._interval_ms)
        self._timer.timeout.connect(self._poll)
        self._resume()

    @Slot()
    def _resume(self) -> None:
        if self._timer is None or self._paused.is_set():
            return
        if not self._timer.isActive():
            self._timer.start()
            self._poll()

    @Slot()
    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    @Slot()
    def _poll(self) -> None:
        if self._paused.is_set():
            return
        try:
            pids = dict(self._process_pids()) if self._process_pids is not None else {}
            report = read_report(self._monitor, pids)
        except Exception as error:
            self._surface(error)
            return
        if not self._paused.is_set():  # stop() may have come while the round ran
            self.snapshot_ready.emit(report)

    @Slot()
    def _finish(self) -> None:
        try:
            if self._timer is not None:
                self._timer.stop()
            if self._owns_monitor:
                self._monitor.shutdown()
        finally:
            # Back to the owner's thread, so that deleting the poller (and its stopped timer)
            # later happens where it lives. Pushing away from the current thread is allowed.
            self.moveToThread(self._home)
            QThread.currentThread().quit()

    def _surface(self, error: Exception) -> None:
        if self.isSignalConnected(_signal_method(self, "errored")):
            self.errored.emit(error)
        else:  # nobody listens: never fail silently
            logger.error("hardware poll failed", exc_info=error)


def _signal_method(obj: QObject, name: str):
    meta = obj.metaObject()
    return meta.method(meta.indexOfSignal(f"{name}(PyObject)"))
