"""One background thread that runs short commands in the order they were given.

Pausing, resuming, cancelling or starting a transfer touches the disk (the restart list, partial
files) and sometimes the network, so the GUI thread hands each command to this worker instead
of running it. One thread, not one per command: "pause" then "resume" must arrive in that order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)


class _Runner(QObject):
    failed = Signal(str, object)

    @Slot(object)
    def run(self, command: tuple[str, Callable[..., Any], tuple]) -> None:
        name, function, args = command
        try:
            function(*args)
        except Exception as exc:
            log.exception("command %s failed", name)
            self.failed.emit(name, exc)


class SerialWorker(QObject):
    """Runs `submit`ted callables one after another on its own QThread.

    Signals:
        failed(str, object): a command's name and the exception it raised (never swallowed).
    """

    failed = Signal(str, object)
    _submitted = Signal(object)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread(self)
        self._thread.setObjectName(name)
        self._runner = _Runner()
        self._runner.moveToThread(self._thread)
        self._submitted.connect(self._runner.run)  # queued: the runner lives in the thread
        self._runner.failed.connect(self.failed)  # queued back to this object's thread
        self._thread.finished.connect(self._runner.deleteLater)
        self._thread.start()
        self._closed = False

    def submit(self, name: str, function: Callable[..., Any], *args: Any) -> None:
        if self._closed:
            log.warning("command %s after shutdown: dropped", name)
            return
        self._submitted.emit((name, function, args))

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Run what was submitted, then stop the thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        # Quit from inside the thread, after the commands queued before it have run.
        self._submitted.emit(("stop", self._thread.quit, ()))
        if not self._thread.wait(timeout_ms):
            log.error("%s did not stop in time", self._thread.objectName())
