"""Every way of getting a model, behind one object the Qt app, the server and the page share.

`Transfers` owns the downloads (with their restart list), the uploads in flight and the quantize
jobs; all publish on the engine's event bus, so every view sees them as it sees loads. A
transfer's key says what it is ("download:…", "upload:…", "quantize:…") and `cancel`, `pause`,
`resume` route by it. `on_model_added(path)` is called when a new file joins the models folder
or the hub cache, so the library can list it with Load ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from llm_desktop.core.bus import EventBus
from llm_desktop.core.download import KEY_PREFIX as DOWNLOAD_PREFIX
from llm_desktop.core.download import DownloadManager, DownloadSpec
from llm_desktop.core.events import ProgressEvent, Stage
from llm_desktop.core.quantize import KEY_PREFIX as QUANTIZE_PREFIX
from llm_desktop.core.quantize import QuantizeJob
from llm_desktop.core.transfer import DEFAULT_POLICY, RetryPolicy
from llm_desktop.core.upload import DEFAULT_UPLOAD_LIMIT, UploadJob
from llm_desktop.core.upload import KEY_PREFIX as UPLOAD_PREFIX

log = logging.getLogger(__name__)

DOWNLOAD_STATE_FILE = "downloads-v1.json"


class Transfers:
    def __init__(
        self,
        bus: EventBus,
        *,
        models_dir: Path,
        state_dir: Path,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        policy: RetryPolicy = DEFAULT_POLICY,
        on_model_added: Callable[[str], None] | None = None,
    ):
        self.bus = bus
        self.models_dir = models_dir
        self.upload_limit = upload_limit
        self.on_model_added = on_model_added
        self.downloads = DownloadManager(
            bus,
            state_dir / DOWNLOAD_STATE_FILE,
            models_dir=models_dir,
            policy=policy,
            on_complete=self._completed,
        )
        self._lock = threading.Lock()
        self._uploads: dict[str, UploadJob] = {}
        self._quantizing: dict[str, QuantizeJob] = {}

    # -- starting ---------------------------------------------------------------------------

    def download(
        self, reference: str, *, dest_dir: str | None = None, sha256: str | None = None
    ) -> str:
        """Start (or rejoin) a download; returns its key. Errors arrive as its events."""
        spec = DownloadSpec(reference.strip(), dest_dir=dest_dir, sha256=sha256)
        return self.downloads.start(spec).key

    def upload(self, name: str, size: int | None) -> UploadJob:
        """An upload about to stream in; `begin()` it, `write()` its chunks, `finish()` it."""
        job = UploadJob(self.bus, self.models_dir, name, size, limit=self.upload_limit)
        with self._lock:
            self._uploads[job.key] = job
        return job

    def upload_finished(self, job: UploadJob) -> None:
        with self._lock:
            self._uploads.pop(job.key, None)
        last = job.last_event
        if last is not None and last.stage is Stage.COMPLETE and last.result_path:
            self._added(last.result_path)

    def quantize(self, source: str, type_name: str, out: str | None = None) -> str:
        """Start quantizing `source`; returns the key. Checks fail as its events."""
        job = QuantizeJob(self.bus, source, type_name, out)
        with self._lock:
            running = self._quantizing.get(job.key)
            if running is not None and not running.done:
                return running.key
            self._quantizing[job.key] = job
        job.start()
        threading.Thread(
            target=self._await_quantize, args=(job,), name=f"await {job.key}", daemon=True
        ).start()
        return job.key

    def resume_pending(self) -> None:
        """Downloads an earlier run left unfinished carry on (paused ones stay paused)."""
        self.downloads.resume_pending()

    # -- controlling ------------------------------------------------------------------------

    def pause(self, key: str) -> bool:
        return key.startswith(DOWNLOAD_PREFIX) and self.downloads.pause(key)

    def resume(self, key: str) -> bool:
        return key.startswith(DOWNLOAD_PREFIX) and self.downloads.resume(key)

    def cancel(self, key: str, keep_partial: bool = True) -> bool:
        if key.startswith(DOWNLOAD_PREFIX):
            return self.downloads.cancel(key, keep_partial)
        with self._lock:
            upload = self._uploads.get(key)
            quantize = self._quantizing.get(key)
        if upload is not None:
            upload.cancel()
            return True
        if quantize is not None and not quantize.done:
            threading.Thread(target=quantize.cancel, daemon=True).start()
            return True
        return False

    def discard(self, key: str) -> bool:
        """Cancel and delete the partial bytes (a download running, paused or stopped)."""
        if not key.startswith(DOWNLOAD_PREFIX):
            return self.cancel(key, keep_partial=False)
        job = self.downloads.job(key)
        if job is None:
            return False
        if not job.finished:
            return self.downloads.cancel(key, keep_partial=False)
        self.downloads.forget(key)
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Downloads stop and resume at the next start; quantizing and uploads are cancelled."""
        self.downloads.shutdown(timeout)
        with self._lock:
            uploads = list(self._uploads.values())
            quantizing = list(self._quantizing.values())
        for upload in uploads:
            upload.cancel()
        for job in quantizing:
            if not job.done:
                job.cancel(timeout)

    # -- outcomes ---------------------------------------------------------------------------

    def _await_quantize(self, job: QuantizeJob) -> None:
        last = job.wait()
        if last is not None and last.stage is Stage.COMPLETE and last.result_path:
            self._added(last.result_path)

    def _completed(self, event: ProgressEvent) -> None:
        if event.result_path:
            self._added(event.result_path)

    def _added(self, path: str) -> None:
        if self.on_model_added is None:
            return
        try:
            self.on_model_added(path)
        except Exception:
            log.exception("on_model_added failed for %s", path)


def is_transfer_key(key: str) -> bool:
    return key.startswith((DOWNLOAD_PREFIX, UPLOAD_PREFIX, QUANTIZE_PREFIX))
