"""Downloads as operations of the one event model: connect, download, verify, publish.

A `DownloadJob` gets one model (a hub repository's file or split set, or a direct link) and
publishes `ProgressEvent`s with `op="download"` on the event bus, like a load: `connecting`
(asking the hub which files and checksums), `downloading` (bytes, a rate over a sliding window,
ETA, and how long no byte has arrived), `retrying`, `paused`, `verifying` (sha256 of every byte
on disk, then the GGUF header), `finalizing` (the atomic rename) and `complete`, `failed` or
`cancelled`.

Files go where other tools find them: a hub model into the Hugging Face cache exactly as
huggingface_hub lays it out (`blobs/<sha256>`, `snapshots/<commit>/<file>` linking to it, the
partial as `blobs/<sha256>.incomplete`, which huggingface_hub itself would resume too); a direct
link into the app's models folder (or `--dir`) with the partial as `<name>.part`. Nothing is
visible under a `.gguf` name until every part is verified, so the catalog never lists half a
model. The `DownloadManager` runs several jobs and keeps a list of the unfinished ones, so an app
killed mid-download resumes on its next start from the bytes already on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from llm_desktop.core import hf_hub
from llm_desktop.core.bus import EventBus
from llm_desktop.core.events import (
    OP_DOWNLOAD,
    RESUMABLE_TRANSFER_ERRORS,
    ErrorInfo,
    ErrorKind,
    ModelError,
    ProgressEvent,
    Stage,
    stage_pct,
)
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.gguf_header import read_gguf
from llm_desktop.core.model_locations import hub_cache_dir
from llm_desktop.core.transfer import (
    DEFAULT_POLICY,
    RemoteSource,
    RetryPolicy,
    Stopped,
    TransferControl,
    fetch,
    partial_size,
    read_sidecar,
    remove_partial,
    resumable_bytes,
)

log = logging.getLogger(__name__)

KEY_PREFIX = "download:"
TICK_S = 0.5  # how often a running download reports, bytes or not
RATE_WINDOW_S = 5.0  # the rate is measured over this much recent time
STALL_SHOWN_AFTER_S = 1.5  # a pause in the bytes this long is worth telling
PARALLEL_FILES = 4  # parts of a split model fetched at once
DISK_MARGIN_BYTES = 64 * 1024 * 1024  # room left free for everything else on the disk
HASH_CHUNK_BYTES = 4 * 1024 * 1024
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class DownloadSpec:
    """What a person asked for: a hub model ("org/repo[:QUANT|:FILE]") or a direct link."""

    reference: str
    dest_dir: str | None = None  # direct links only; default: the app's models folder
    sha256: str | None = None  # direct links only; the hub gives its own

    @property
    def is_url(self) -> bool:
        return self.reference.startswith(("http://", "https://"))

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.reference

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DownloadSpec:
        return cls(data["reference"], data.get("dest_dir"), data.get("sha256"))


@dataclass(frozen=True)
class PlannedFile:
    """One file of a download: where it comes from, where its bytes wait, where it ends."""

    url: str
    size: int | None
    sha256: str | None
    partial: str
    final: str  # the verified file (a hub blob, or the file in the models folder)
    link: str | None = None  # hub: the snapshot path pointing at `final`

    @property
    def visible_path(self) -> str:
        return self.link or self.final


@dataclass(frozen=True)
class DownloadPlan:
    label: str
    files: tuple[PlannedFile, ...]
    ref_file: str | None = None  # hub: refs/<revision> to point at the commit
    commit: str | None = None

    @property
    def total(self) -> int | None:
        sizes = [file.size for file in self.files]
        return None if None in sizes else sum(s for s in sizes if s is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "files": [asdict(file) for file in self.files],
            "ref_file": self.ref_file,
            "commit": self.commit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DownloadPlan:
        return cls(
            data["label"],
            tuple(PlannedFile(**file) for file in data["files"]),
            data.get("ref_file"),
            data.get("commit"),
        )


def plan_hub(spec: DownloadSpec) -> DownloadPlan:
    repo_id, selector = hf_hub.parse_reference(spec.reference)
    listing = hf_hub.list_models(repo_id)
    model = hf_hub.choose(listing, selector)
    repo_dir = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    files = []
    for remote in model.files:
        blob_name = remote.sha256 or f"{model.commit}-{remote.path.replace('/', '--')}"
        blob = repo_dir / "blobs" / blob_name
        files.append(
            PlannedFile(
                url=hf_hub.file_url(repo_id, remote.path, model.commit),
                size=remote.size,
                sha256=remote.sha256,
                partial=str(blob) + ".incomplete",
                final=str(blob),
                link=str(repo_dir / "snapshots" / model.commit / remote.path),
            )
        )
    return DownloadPlan(
        label=model.label,
        files=tuple(files),
        ref_file=str(repo_dir / "refs" / "main"),
        commit=model.commit,
    )


def plan_url(spec: DownloadSpec, models_dir: Path) -> DownloadPlan:
    url = spec.reference
    name = os.path.basename(unquote(urlsplit(url).path)) or "model.gguf"
    if not name.lower().endswith(".gguf"):
        raise ModelError(
            ErrorKind.INVALID_MODEL, f"{name!r} is not a .gguf file; only GGUF models can be added"
        )
    dest = Path(spec.dest_dir).expanduser() if spec.dest_dir else models_dir
    final = dest / name
    return DownloadPlan(
        label=name,
        files=(
            PlannedFile(
                url=url,
                size=None,
                sha256=spec.sha256.lower() if spec.sha256 else None,
                partial=str(final) + ".part",
                final=str(final),
            ),
        ),
    )


class RateMeter:
    """Bytes per second over the last few seconds: a stall shows as a falling rate and a count
    of seconds without bytes, never as the last rate frozen in place."""

    def __init__(self, window_s: float = RATE_WINDOW_S):
        self.window_s = window_s
        self.samples: deque[tuple[float, int]] = deque()
        self.last_byte_at: float | None = None
        self.received = 0

    def add(self, n: int, now: float) -> None:
        self.received += n
        self.last_byte_at = now

    def sample(self, now: float) -> tuple[float | None, float | None]:
        """(bytes/s, seconds since the last byte) as of `now`."""
        self.samples.append((now, self.received))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window_s:
            self.samples.popleft()
        oldest_at, oldest = self.samples[0]
        span = now - oldest_at
        rate = (self.received - oldest) / span if span >= TICK_S * 0.9 else None
        quiet = now - self.last_byte_at if self.last_byte_at is not None else None
        return rate, quiet

    def restart(self) -> None:
        self.samples.clear()


@dataclass
class _Progress:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0


class DownloadJob:
    """One download in a thread of its own; `pause`, `resume` and `cancel` from any thread."""

    def __init__(
        self,
        spec: DownloadSpec,
        bus: EventBus,
        *,
        models_dir: Path | None = None,
        plan: DownloadPlan | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        on_finished: Callable[[DownloadJob], None] | None = None,
        on_planned: Callable[[DownloadJob], None] | None = None,
        start_paused: bool = False,
    ):
        from llm_desktop.core.model_locations import default_models_dir

        self.spec = spec
        self.key = spec.key
        self.bus = bus
        self.models_dir = models_dir or default_models_dir()
        self.plan = plan
        self.policy = policy
        self.on_finished = on_finished
        self.on_planned = on_planned
        self.control = TransferControl()
        self._paused = threading.Event()
        if start_paused:
            self._paused.set()
        self._resumed = threading.Event()
        self._cancel_keep: bool | None = None  # set by cancel(): keep the partial bytes?
        self._suspended = False  # the app is closing: stop quietly, resume on its next start
        self._progress = _Progress()
        self._meter = RateMeter()
        self._retry_note: str | None = None
        self._thread: threading.Thread | None = None
        self._last: ProgressEvent | None = None
        self._started = time.monotonic()

    # -- control --------------------------------------------------------------------------

    def start(self) -> DownloadJob:
        self._thread = threading.Thread(target=self._run, name=f"download {self.key}", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> bool:
        if self.finished or self._paused.is_set():
            return False
        self._resumed.clear()
        self._paused.set()
        self.control.stop()
        return True

    def resume(self) -> bool:
        if self.finished or not self._paused.is_set():
            return False
        self._paused.clear()
        self._resumed.set()
        return True

    def cancel(self, keep_partial: bool = True) -> bool:
        if self.finished:
            return False
        self._cancel_keep = keep_partial
        self.control.stop()
        self._resumed.set()  # a paused job wakes up to cancel
        return True

    def suspend(self) -> None:
        """Stop without a word (the app is closing); the bytes stay for the next start."""
        self._suspended = True
        self.on_finished = None
        self.control.stop()
        self._resumed.set()

    def wait(self, timeout: float | None = None) -> ProgressEvent | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._last

    @property
    def finished(self) -> bool:
        return self._last is not None and self._last.is_terminal

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def kept_partial(self) -> bool:
        return bool(self._cancel_keep)

    @property
    def last_event(self) -> ProgressEvent | None:
        return self._last

    # -- the run --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._publish(Stage.CONNECTING, 0.0, f"Asking {self._source_name()} for the files")
            if self.plan is None:
                self.plan = (
                    plan_url(self.spec, self.models_dir)
                    if self.spec.is_url
                    else (plan_hub(self.spec))
                )
            self._drop_stale_partials()
            if self.on_planned:
                self.on_planned(self)
            self._download_all()
            self._verify_all()
            self._finalize()
        except _Cancelled:
            if not self._suspended:
                self._finish_cancelled()
        except ModelError as exc:
            self._finish_failed(exc.info)
        except Exception as exc:  # a bug must end this download, never the app
            log.exception("download %s failed", self.key)
            self._finish_failed(ErrorInfo(ErrorKind.NETWORK, f"The download failed: {exc}"))
        finally:
            if self.on_finished:
                try:
                    self.on_finished(self)
                except Exception:
                    log.exception("download %s: on_finished failed", self.key)

    def _drop_stale_partials(self) -> None:
        """Partial bytes of an older version of the same hub file (the repository moved on
        since an earlier, interrupted download) would never be resumed: delete them."""
        for file in self._plan().files:
            blobs = os.path.dirname(file.partial)
            if not file.link or not os.path.isdir(blobs):
                continue
            repo_path = file.url.split("/resolve/", 1)[-1].partition("/")[2]
            for name in os.listdir(blobs):
                other = os.path.join(blobs, name)
                if not name.endswith(".incomplete") or other == file.partial:
                    continue
                state = read_sidecar(other)
                if state is not None and state.url.endswith("/" + repo_path):
                    remove_partial(other)
                    self._retry_note = "The file changed on the hub since; starting over"

    def _source_name(self) -> str:
        return urlsplit(self.spec.reference).netloc if self.spec.is_url else "the hub"

    def _download_all(self) -> None:
        plan = self._plan()
        # Files with the same content share one blob in the hub cache: fetched once.
        unique = {file.partial: file for file in plan.files}.values()
        pending = [file for file in unique if not os.path.exists(file.final)]
        with self._progress.lock:
            self._progress.done = sum(
                (file.size or 0) if os.path.exists(file.final) else self._resumable(file)
                for file in plan.files
            )
        self._check_space(pending)
        with _exclusive(pending):
            self._fetch_pending(pending)

    def _fetch_pending(self, pending: list[PlannedFile]) -> None:
        while pending:
            if self._paused.is_set():
                self._wait_while_paused()
            errors: list[BaseException] = []
            self.control.reset()
            self._meter.restart()
            self._publish_downloading()
            with ThreadPoolExecutor(max_workers=PARALLEL_FILES) as pool:
                futures = [pool.submit(self._fetch_one, file) for file in pending]
                # Wake for each tick, and at once when the last file is whole: verifying
                # starts with the last byte, not up to a tick later.
                while wait(futures, timeout=TICK_S).not_done:
                    if not self.control.stopped:
                        self._publish_downloading()
                        self._check_space_while_writing(pending)
                for future in futures:
                    exc = future.exception()
                    if exc is not None:
                        errors.append(exc)
            if self._cancel_keep is not None or self._suspended:
                raise _Cancelled()
            real = [exc for exc in errors if not isinstance(exc, Stopped)]
            if real:
                self.control.stop()
                raise real[0]
            pending = [file for file in pending if not self._fetched(file)]
            if pending and not self._paused.is_set():
                raise ModelError(ErrorKind.NETWORK, "The download stopped before the end")

    def _fetch_one(self, file: PlannedFile) -> None:
        source = RemoteSource(
            url=file.url,
            headers=hf_hub.auth_headers() if not self.spec.is_url else {},
            size=file.size,
            etag=f'"{file.sha256}"' if file.sha256 and not self.spec.is_url else None,
        )

        def on_bytes(n: int) -> None:
            with self._progress.lock:
                self._progress.done += n
            self._meter.add(n, time.monotonic())
            self._retry_note = None

        def on_restart(dropped: int, why: str) -> None:
            with self._progress.lock:
                self._progress.done -= dropped
            self._retry_note = f"Starting over: {why}"

        def on_retry(attempt: int, wait_s: float, why: str) -> None:
            self._retry_note = (
                f"{why[:1].upper()}{why[1:]}; resuming in {wait_s:.0f} s "
                f"(attempt {attempt + 1} of {self.policy.attempts})"
            )
            self._publish_progress(Stage.RETRYING, self._retry_note)

        size = fetch(
            source,
            file.partial,
            control=self.control,
            on_bytes=on_bytes,
            on_restart=on_restart,
            on_retry=on_retry,
            policy=self.policy,
        )
        if file.size is None and self.plan is not None:
            self._learn_size(file, size)

    def _learn_size(self, file: PlannedFile, size: int) -> None:
        assert self.plan is not None
        files = tuple(replace(f, size=size) if f == file else f for f in self.plan.files)
        self.plan = replace(self.plan, files=files)

    def _fetched(self, file: PlannedFile) -> bool:
        current = next(f for f in self._plan().files if f.partial == file.partial)
        have = partial_size(file.partial)
        return current.size is not None and have == current.size

    def _resumable(self, file: PlannedFile) -> int:
        source = RemoteSource(file.url, {}, file.size, None)
        return resumable_bytes(file.partial, source)

    def _wait_while_paused(self) -> None:
        self._publish_progress(Stage.PAUSED, "Paused; the bytes so far are kept")
        while self._paused.is_set():
            self._resumed.wait()
            if self._cancel_keep is not None or self._suspended:
                raise _Cancelled()

    def _check_space(self, pending: list[PlannedFile]) -> None:
        if not pending:
            return
        needed = _bytes_to_come(pending)
        folder = os.path.dirname(pending[0].partial)
        os.makedirs(folder, exist_ok=True)
        free = free_bytes(folder)
        if needed + DISK_MARGIN_BYTES > free:
            raise ModelError(
                ErrorKind.DISK_FULL,
                f"Not enough disk space: this download needs {format_bytes(needed)} more and "
                f"{folder} has {format_bytes(free)} free",
            )

    def _check_space_while_writing(self, pending: list[PlannedFile]) -> None:
        needed = _bytes_to_come(pending)
        free = free_bytes(os.path.dirname(pending[0].partial))
        if needed > free:
            self.control.stop()
            raise ModelError(
                ErrorKind.DISK_FULL,
                f"The disk is filling up: {format_bytes(needed)} still to come and "
                f"{format_bytes(free)} free; the bytes so far are kept",
            )

    def _verify_all(self) -> None:
        unique = list({file.partial: file for file in self._plan().files}.values())
        total = sum(file.size or 0 for file in unique if not os.path.exists(file.final))
        hashed = 0
        for file in unique:
            if os.path.exists(file.final):
                continue
            if file.sha256:
                hashed = self._verify_checksum(file, hashed, total)
            self._verify_header(file)

    def _verify_checksum(self, file: PlannedFile, hashed: int, total: int) -> int:
        digest = hashlib.sha256()
        next_report = 0.0
        with open(file.partial, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                if self._cancel_keep is not None:
                    raise _Cancelled()
                digest.update(chunk)
                hashed += len(chunk)
                now = time.monotonic()
                if now >= next_report:
                    next_report = now + TICK_S
                    self._publish(
                        Stage.VERIFYING,
                        hashed / total if total else 1.0,
                        f"Checking sha256 · {format_bytes(hashed)} of {format_bytes(total)}",
                        bytes_done=hashed,
                        bytes_total=total,
                    )
        if digest.hexdigest() != file.sha256:
            remove_partial(file.partial)
            raise ModelError(
                ErrorKind.CHECKSUM_MISMATCH,
                f"{os.path.basename(file.visible_path)} arrived damaged: its sha256 is "
                f"{digest.hexdigest()[:12]}…, the hub says {file.sha256[:12]}…; "
                "the file was deleted, download it again",
            )
        return hashed

    def _verify_header(self, file: PlannedFile) -> None:
        try:
            read_gguf(file.partial, tensors=True)
        except ModelError as exc:
            remove_partial(file.partial)
            raise ModelError(
                ErrorKind.INVALID_MODEL,
                f"{os.path.basename(file.visible_path)} is not a usable GGUF model "
                f"({exc.info.message}); it was deleted",
            ) from exc

    def _finalize(self) -> None:
        plan = self._plan()
        self._publish(Stage.FINALIZING, 0.0, "Adding the model to the library")
        for file in plan.files:
            if not os.path.exists(file.final):
                os.replace(file.partial, file.final)
            remove_partial(file.partial)
        # Links last, all parts together: the catalog sees the whole model or nothing.
        for file in plan.files:
            if file.link:
                _link(file.final, file.link)
        if plan.ref_file and plan.commit:
            os.makedirs(os.path.dirname(plan.ref_file), exist_ok=True)
            Path(plan.ref_file).write_text(plan.commit, encoding="utf-8")
        total = plan.total
        self._finish(
            Stage.COMPLETE,
            f"Downloaded {format_bytes(total or 0)} in {_seconds(self._elapsed())}",
            result_path=plan.files[0].visible_path,
            bytes_done=total,
            bytes_total=total,
        )

    # -- events ---------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _plan(self) -> DownloadPlan:
        assert self.plan is not None
        return self.plan

    def _publish_downloading(self) -> None:
        stage = Stage.RETRYING if self._retry_note else Stage.DOWNLOADING
        self._publish_progress(stage, self._retry_note)

    def _publish_progress(self, stage: Stage, note: str | None) -> None:
        plan = self._plan()
        total = plan.total
        with self._progress.lock:
            done = self._progress.done
        rate, quiet = self._meter.sample(time.monotonic())
        stalled = quiet if quiet is not None and quiet >= STALL_SHOWN_AFTER_S else None
        if stage is not Stage.DOWNLOADING:
            rate, stalled = None, None
        eta = (total - done) / rate if total and rate else None
        fraction = done / total if total else 0.0
        if note is None:
            note = f"{format_bytes(done)} of {format_bytes(total)}" if total else format_bytes(done)
        self._publish(
            stage,
            fraction,
            note,
            bytes_done=done,
            bytes_total=total,
            rate_bps=round(rate, 1) if rate is not None else None,
            eta_s=round(eta, 1) if eta is not None else None,
            stalled_s=round(stalled, 1) if stalled is not None else None,
        )

    def _publish(self, stage: Stage, fraction: float, message: str, **fields: Any) -> None:
        band_stage = Stage.DOWNLOADING if stage in (Stage.RETRYING, Stage.PAUSED) else stage
        self._emit(stage, stage_pct(band_stage, fraction, op=OP_DOWNLOAD), message, **fields)

    def _finish(self, stage: Stage, message: str, **fields: Any) -> None:
        pct = 100.0 if stage is Stage.COMPLETE else (self._last.pct if self._last else 0.0)
        self._emit(stage, pct, message, **fields)

    def _emit(self, stage: Stage, pct: float, message: str, **fields: Any) -> None:
        self._last = self.bus.publish(
            ProgressEvent(
                model=self.key,
                seq=0,
                stage=stage,
                pct=pct,
                message=message,
                op=OP_DOWNLOAD,
                label=self.plan.label if self.plan else self.spec.reference,
                elapsed_s=round(self._elapsed(), 2),
                **fields,
            )
        )

    def _finish_failed(self, info: ErrorInfo) -> None:
        if info.kind not in RESUMABLE_TRANSFER_ERRORS and self.plan is not None:
            for file in self.plan.files:
                remove_partial(file.partial)
        with self._progress.lock:
            done = self._progress.done
        self._finish(
            Stage.FAILED,
            info.message,
            error=info,
            bytes_done=done,
            bytes_total=self.plan.total if self.plan else None,
        )

    def _finish_cancelled(self) -> None:
        kept = sum(partial_size(file.partial) for file in (self.plan.files if self.plan else ()))
        if not self._cancel_keep and self.plan is not None:
            for file in self.plan.files:
                remove_partial(file.partial)
            message = "Download cancelled; the partial file was deleted"
        elif kept:
            message = f"Download cancelled; the {format_bytes(kept)} received are kept to resume"
        else:
            message = "Download cancelled"
        info = ErrorInfo(ErrorKind.CANCELLED, message)
        self._finish(
            Stage.CANCELLED,
            message,
            error=info,
            bytes_done=kept if self._cancel_keep else 0,
            bytes_total=self.plan.total if self.plan else None,
        )


class _Cancelled(Exception):
    pass


@contextlib.contextmanager
def _exclusive(files: list[PlannedFile]):
    """Hold a lock on each partial file's bytes: two downloads of one file (the app and a
    `pull` in a terminal, or two names for the same file) must never write the same partial."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: nothing to hold
        yield
        return
    held = []
    try:
        for file in files:
            os.makedirs(os.path.dirname(file.partial), exist_ok=True)
            handle = open(file.partial + LOCK_SUFFIX, "a")  # noqa: SIM115 - closed below
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()  # the holder's lock file stays: it is theirs to remove
                raise ModelError(
                    ErrorKind.IN_USE,
                    f"{os.path.basename(file.visible_path)} is being downloaded already "
                    "(by this app or another llm-desktop); that download will finish it",
                ) from None
            held.append(handle)
        yield
    finally:
        for handle in held:
            with contextlib.suppress(FileNotFoundError):
                os.remove(handle.name)  # removed while still locked: no one can take it between
            handle.close()


def _bytes_to_come(files: list[PlannedFile]) -> int:
    """Bytes of `files` not yet on disk (a file whose size is not known yet counts 0)."""
    return sum(max((f.size or 0) - partial_size(f.partial), 0) for f in files)


def free_bytes(folder: str) -> int:
    return shutil.disk_usage(folder).free


def _link(target: str, link: str) -> None:
    """A relative symlink `link` → `target`, as huggingface_hub makes them (a copy where the
    filesystem has no symlinks)."""
    os.makedirs(os.path.dirname(link), exist_ok=True)
    relative = os.path.relpath(target, os.path.dirname(link))
    with contextlib.suppress(FileNotFoundError):
        os.remove(link)
    try:
        os.symlink(relative, link)
    except OSError:
        shutil.copyfile(target, link)


def _seconds(seconds: float) -> str:
    from llm_desktop.core.presenter import format_seconds

    return format_seconds(seconds)


class DownloadManager:
    """Several downloads at once, and the list of unfinished ones kept across restarts."""

    def __init__(
        self,
        bus: EventBus,
        state_file: Path,
        *,
        models_dir: Path | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        on_complete: Callable[[ProgressEvent], None] | None = None,
    ):
        self.bus = bus
        self.state_file = state_file
        self.models_dir = models_dir
        self.policy = policy
        self.on_complete = on_complete
        self._lock = threading.Lock()
        self._jobs: dict[str, DownloadJob] = {}

    def start(self, spec: DownloadSpec) -> DownloadJob:
        """Start `spec`, or return its job when it is already running."""
        with self._lock:
            running = self._jobs.get(spec.key)
            if running is not None and not running.finished:
                if running.paused:
                    running.resume()
                return running
            job = self._job(spec, None, paused=False)
            self._jobs[spec.key] = job
        self._remember(job)
        return job.start()

    def job(self, key: str) -> DownloadJob | None:
        with self._lock:
            return self._jobs.get(key)

    def jobs(self) -> list[DownloadJob]:
        with self._lock:
            return list(self._jobs.values())

    def pause(self, key: str) -> bool:
        job = self.job(key)
        if job is None or not job.pause():
            return False
        self._remember(job, paused=True)
        return True

    def resume(self, key: str) -> bool:
        job = self.job(key)
        if job is None:
            return False
        if job.finished:
            # A failed or kept-and-cancelled download resumes as a new run from its bytes.
            return self.start(job.spec) is not None
        if not job.resume():
            return False
        self._remember(job, paused=False)
        return True

    def cancel(self, key: str, keep_partial: bool) -> bool:
        job = self.job(key)
        return job is not None and job.cancel(keep_partial)

    def forget(self, key: str) -> bool:
        """Delete a stopped download's kept bytes and take it off the restart list."""
        job = self.job(key)
        if job is None or not job.finished:
            return False
        for file in job.plan.files if job.plan else ():
            remove_partial(file.partial)
        with self._lock:
            self._jobs.pop(key, None)
        self._forget(key)
        return True

    def resume_pending(self) -> list[DownloadJob]:
        """The downloads an earlier run left unfinished: running ones resume, paused ones
        come back paused."""
        started = []
        for entry in self._read_state().values():
            try:
                spec = DownloadSpec.from_dict(entry["spec"])
                plan = DownloadPlan.from_dict(entry["plan"]) if entry.get("plan") else None
            except (KeyError, TypeError, ValueError):
                continue
            with self._lock:
                if spec.key in self._jobs:
                    continue
                job = self._job(spec, plan, paused=bool(entry.get("paused")))
                self._jobs[spec.key] = job
            started.append(job.start())
        return started

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every transfer now; the bytes stay on disk and the list says to resume them."""
        for job in self.jobs():
            job.suspend()
        deadline = time.monotonic() + timeout
        for job in self.jobs():
            job.wait(max(deadline - time.monotonic(), 0.0))

    def _job(self, spec: DownloadSpec, plan: DownloadPlan | None, paused: bool) -> DownloadJob:
        return DownloadJob(
            spec,
            self.bus,
            models_dir=self.models_dir,
            plan=plan,
            policy=self.policy,
            on_finished=self._finished,
            on_planned=lambda job: self._remember(job),
            start_paused=paused,
        )

    def _finished(self, job: DownloadJob) -> None:
        last = job.last_event
        keep = last is not None and (
            (last.stage is Stage.CANCELLED and job.kept_partial)
            or (
                last.stage is Stage.FAILED
                and last.error is not None
                and last.error.kind in RESUMABLE_TRANSFER_ERRORS
            )
        )
        if keep:
            self._remember(job, paused=True)
        else:
            self._forget(job.key)
        if last is not None and last.stage is Stage.COMPLETE and self.on_complete:
            self.on_complete(last)

    def _remember(self, job: DownloadJob, paused: bool | None = None) -> None:
        with self._lock:
            state = self._read_state()
            entry = state.get(job.key, {})
            entry["spec"] = job.spec.to_dict()
            if job.plan is not None:
                entry["plan"] = job.plan.to_dict()
            if paused is not None:
                entry["paused"] = paused
            state[job.key] = entry
            self._write_state(state)

    def _forget(self, key: str) -> None:
        with self._lock:
            state = self._read_state()
            if state.pop(key, None) is not None:
                self._write_state(state)

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict[str, Any]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(temporary, self.state_file)
