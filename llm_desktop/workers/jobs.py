"""Background jobs on QThreads: catalog scans, model imports, demo models, prompt replies.

Each `Job` carries its signals on itself (a QObject moved to its own QThread, never a QRunnable
subclassing QObject), wraps its work in one try/except so every failure is emitted, and cancels
cooperatively. `JobRunner` wires the thread clean-up once and waits for every job on shutdown,
so no thread outlives the window.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)

COPY_CHUNK = 8 * 1024 * 1024


class JobCancelled(Exception):
    """Raised inside a job's work when its cancel was requested."""


class JobContext:
    """What a job's work function sees: progress reporting and the cancel flag."""

    def __init__(self, worker: _JobWorker):
        self._job = worker

    @property
    def cancelled(self) -> bool:
        return self._job.job._cancel.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled

    def report(self, progress: Any) -> None:
        self._job.progress.emit(progress)


class Job(QObject):
    """One piece of background work, seen from the GUI thread.

    The work runs on a `_JobWorker` moved to its own thread; its signals are relayed to this
    object, which stays in the thread that made it, so slots and lambdas connected here always
    run in the GUI thread.

    Signals:
        progress(object): whatever the work reports (bytes copied, a reply's next piece).
        succeeded(object): the work's return value.
        errored(object): the exception the work raised (never swallowed).
        cancelled(): the work stopped because cancel() was called.
        done(): after any of the three above.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    errored = Signal(object)
    cancelled = Signal()
    done = Signal()

    def __init__(self, name: str, work: Callable[[JobContext], Any], on_cancel=None):
        super().__init__()
        self.name = name
        self._on_cancel = on_cancel
        self._cancel = threading.Event()
        self.worker = _JobWorker(self, work)
        self.worker.progress.connect(self.progress)
        self.worker.succeeded.connect(self.succeeded)
        self.worker.errored.connect(self.errored)
        self.worker.cancelled.connect(self.cancelled)
        self.worker.done.connect(self.done)

    def cancel(self) -> None:
        """Thread-safe; the work sees it at its next check."""
        self._cancel.set()
        if self._on_cancel is not None:
            self._on_cancel()


class _JobWorker(QObject):
    progress = Signal(object)
    succeeded = Signal(object)
    errored = Signal(object)
    cancelled = Signal()
    done = Signal()

    def __init__(self, job: Job, work: Callable[[JobContext], Any]):
        super().__init__()
        self.job = job
        self._work = work

    @Slot()
    def run(self) -> None:
        try:
            result = self._work(JobContext(self))
        except JobCancelled:
            self.cancelled.emit()
        except Exception as exc:
            log.exception("job %s failed", self.job.name)
            self.errored.emit(exc)
        else:
            if self.job._cancel.is_set():
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
        finally:
            self.done.emit()


class JobRunner(QObject):
    """Starts jobs on their own threads and keeps them until they are done.

    Signals:
        job_failed(str, object): a job's name and exception, for jobs whose owner did not
            handle `errored` itself; the window turns it into an error toast.
    """

    job_failed = Signal(str, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: dict[Job, QThread] = {}

    def start(self, job: Job, *, report_errors: bool = True) -> Job:
        thread = QThread(self)
        thread.setObjectName(f"job-{job.name}")
        job.worker.moveToThread(thread)
        thread.started.connect(job.worker.run)
        job.worker.done.connect(thread.quit)
        thread.finished.connect(self._thread_finished)
        if report_errors:
            job.errored.connect(lambda exc: self.job_failed.emit(job.name, exc))
        self._running[job] = thread
        thread.start()
        return job

    @Slot()
    def _thread_finished(self) -> None:
        thread = self.sender()
        for job, owner in list(self._running.items()):
            if owner is thread:
                del self._running[job]
                thread.wait()
                thread.deleteLater()
                job.worker.deleteLater()
                job.deleteLater()

    @property
    def running(self) -> list[Job]:
        return list(self._running)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        for job, thread in list(self._running.items()):
            job.cancel()
            thread.quit()
            if not thread.wait(timeout_ms):
                log.error("job %s did not stop in time", job.name)
        self._running.clear()


def copy_with_progress(source: Path, destination: Path, context: JobContext) -> Path:
    """Copy a model file in chunks, reporting (bytes_done, bytes_total); a cancel removes the
    partial copy. The copy appears under its final name only when complete."""
    total = source.stat().st_size
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    done = 0
    try:
        with open(source, "rb") as reader, open(partial, "wb") as writer:
            context.report((0, total))
            while chunk := reader.read(COPY_CHUNK):
                context.check_cancelled()
                writer.write(chunk)
                done += len(chunk)
                context.report((done, total))
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    shutil.copystat(source, destination)
    return destination


def unique_destination(folder: Path, name: str) -> Path:
    """`folder/name`, or `name (2)`, `name (3)`, ... when taken."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    index = 2
    while candidate.exists():
        candidate = folder / f"{stem} ({index}){suffix}"
        index += 1
    return candidate
