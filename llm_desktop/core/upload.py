"""A model file sent from the page, streamed to disk with the same honest progress as a download.

The server hands the request body to an `UploadJob` chunk by chunk. Before a byte is kept, the
declared size is checked against the limit and the free space; the first bytes must be a GGUF
signature; the whole header is validated before the file joins the library under its `.gguf`
name. Anything refused or cancelled leaves no file behind: the bytes wait under a name the
catalog never lists and are deleted on every path that does not end in `complete`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import uuid
from pathlib import Path

from llm_desktop.core.bus import EventBus
from llm_desktop.core.download import DISK_MARGIN_BYTES, TICK_S, RateMeter, free_bytes
from llm_desktop.core.events import (
    OP_UPLOAD,
    ErrorInfo,
    ErrorKind,
    ModelError,
    ProgressEvent,
    Stage,
    stage_pct,
)
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.gguf_header import GGUF_MAGIC, read_gguf

KEY_PREFIX = "upload:"
PARTIAL_SUFFIX = ".uploading"
DEFAULT_UPLOAD_LIMIT = 256 * 1024**3  # larger than any model a desktop runs; a guard, not a rule
_UNSAFE_NAME = re.compile(r"[^\w.\- ()+]+")


def safe_file_name(name: str) -> str:
    """The file name a page sent, as one harmless name in the models folder (no folders, no
    hidden files); a name that is not a .gguf is refused."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    base = _UNSAFE_NAME.sub("_", base).lstrip(".")
    if not base.lower().endswith(".gguf") or len(base) <= len(".gguf"):
        raise ModelError(
            ErrorKind.INVALID_MODEL, f"{name!r} is not a .gguf file; only GGUF models can be added"
        )
    return base[:200]


class UploadJob:
    """One upload: `begin()`, then `write()` each chunk, then `finish()`; `cancel()` anytime."""

    def __init__(
        self,
        bus: EventBus,
        models_dir: Path,
        name: str,
        size: int | None,
        *,
        limit: int = DEFAULT_UPLOAD_LIMIT,
    ):
        self.bus = bus
        self.models_dir = models_dir
        self.requested_name = name
        self.size = size
        self.limit = limit
        self.key = f"{KEY_PREFIX}{uuid.uuid4().hex[:12]}"
        self.label = os.path.basename(name) or "upload"
        self.partial: Path | None = None
        self._handle = None
        self._received = 0
        self._meter = RateMeter()
        self._next_report = 0.0
        self._started = time.monotonic()
        self._cancelled = threading.Event()
        self._last: ProgressEvent | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def last_event(self) -> ProgressEvent | None:
        return self._last

    def begin(self) -> None:
        """Check the name, the size and the disk before accepting a byte."""
        self._publish(Stage.CONNECTING, 0.0, "Checking the file")
        try:
            self.label = safe_file_name(self.requested_name)
            if self.size is None:
                raise ModelError(
                    ErrorKind.INVALID_MODEL, "The upload did not say how large the file is"
                )
            if self.size > self.limit:
                raise ModelError(
                    ErrorKind.TOO_LARGE,
                    f"{self.label} is {format_bytes(self.size)}; this server accepts files up "
                    f"to {format_bytes(self.limit)}",
                )
            self.models_dir.mkdir(parents=True, exist_ok=True)
            free = free_bytes(str(self.models_dir))
            if self.size + DISK_MARGIN_BYTES > free:
                raise ModelError(
                    ErrorKind.DISK_FULL,
                    f"Not enough disk space: {self.label} needs {format_bytes(self.size)} and "
                    f"{self.models_dir} has {format_bytes(free)} free",
                )
            self.partial = self.models_dir / f".{self.key.partition(':')[2]}{PARTIAL_SUFFIX}"
            self._handle = open(self.partial, "wb")  # noqa: SIM115 - closed in finish/abort
        except ModelError as exc:
            self.fail(exc.info)
            raise

    def write(self, chunk: bytes) -> None:
        if self.cancelled:
            raise ModelError(ErrorKind.CANCELLED, "Upload cancelled")
        if self._handle is None:
            raise RuntimeError("write() before begin()")
        try:
            if self._received < len(GGUF_MAGIC) and chunk:
                head = (self._peek_head() + chunk)[: len(GGUF_MAGIC)]
                if not GGUF_MAGIC.startswith(head[: len(GGUF_MAGIC)]):
                    raise ModelError(
                        ErrorKind.INVALID_MODEL,
                        f"{self.label} is not a GGUF model: it does not start with the GGUF "
                        "signature",
                    )
            if self._received + len(chunk) > (self.size or 0):
                raise ModelError(
                    ErrorKind.TOO_LARGE, f"{self.label} is larger than the size it announced"
                )
            try:
                self._handle.write(chunk)
            except OSError as exc:
                raise ModelError(
                    ErrorKind.DISK_FULL, f"The disk filled up while receiving {self.label}"
                ) from exc
        except ModelError as exc:
            self.fail(exc.info)
            raise
        self._received += len(chunk)
        now = time.monotonic()
        self._meter.add(len(chunk), now)
        if now >= self._next_report:
            self._next_report = now + TICK_S
            self._publish_progress(now)

    def _peek_head(self) -> bytes:
        if not self._received or self.partial is None:
            return b""
        self._handle.flush()
        with open(self.partial, "rb") as handle:
            return handle.read(len(GGUF_MAGIC))

    def _publish_progress(self, now: float) -> None:
        rate, _quiet = self._meter.sample(now)
        total = self.size or 0
        eta = (total - self._received) / rate if rate else None
        self._publish(
            Stage.UPLOADING,
            self._received / total if total else 0.0,
            f"{format_bytes(self._received)} of {format_bytes(total)}",
            bytes_done=self._received,
            bytes_total=total,
            rate_bps=round(rate, 1) if rate is not None else None,
            eta_s=round(eta, 1) if eta is not None else None,
        )

    def finish(self) -> Path:
        """The body ended: validate the whole header, then give the file its name."""
        if self._handle is None or self.partial is None:
            raise RuntimeError("finish() before begin()")
        try:
            self._handle.close()
            if self.cancelled:
                raise ModelError(ErrorKind.CANCELLED, "Upload cancelled")
            if self._received != self.size:
                raise ModelError(
                    ErrorKind.NETWORK,
                    f"The upload of {self.label} stopped after {format_bytes(self._received)} "
                    f"of {format_bytes(self.size or 0)}",
                )
            self._publish_progress(time.monotonic())
            self._publish(Stage.VERIFYING, 0.0, "Checking the GGUF header")
            try:
                read_gguf(self.partial, tensors=True)
            except ModelError as exc:
                raise ModelError(
                    ErrorKind.INVALID_MODEL, f"{self.label}: {exc.info.message}"
                ) from exc
            self._publish(Stage.FINALIZING, 0.0, "Adding the model to the library")
            final = _unused_path(self.models_dir / self.label)
            os.replace(self.partial, final)
        except ModelError as exc:
            self.fail(exc.info)
            raise
        self._last = self.bus.publish(
            self._event(
                Stage.COMPLETE,
                100.0,
                f"Uploaded {format_bytes(self._received)}",
                bytes_done=self._received,
                bytes_total=self._received,
                result_path=str(final),
            )
        )
        return final

    def cancel(self) -> None:
        """From any thread: the next write or the end stops, and the bytes are deleted."""
        self._cancelled.set()

    def abort(self, info: ErrorInfo) -> None:
        """The connection ended early (the page cancelled or went away)."""
        self.fail(info)

    def fail(self, info: ErrorInfo) -> None:
        if self._last is not None and self._last.is_terminal:
            return
        self._discard()
        stage = Stage.CANCELLED if info.kind is ErrorKind.CANCELLED else Stage.FAILED
        message = (
            f"Upload of {self.label} cancelled; nothing was kept"
            if stage is Stage.CANCELLED
            else info.message
        )
        self._last = self.bus.publish(
            self._event(
                stage,
                self._last.pct if self._last else 0.0,
                message,
                error=ErrorInfo(info.kind, message, info.detail),
                bytes_done=self._received,
                bytes_total=self.size,
            )
        )

    def _discard(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        if self.partial is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.partial)

    def _publish(self, stage: Stage, fraction: float, message: str, **fields) -> None:
        self._last = self.bus.publish(
            self._event(stage, stage_pct(stage, fraction, op=OP_UPLOAD), message, **fields)
        )

    def _event(self, stage: Stage, pct: float, message: str, **fields) -> ProgressEvent:
        return ProgressEvent(
            model=self.key,
            seq=0,
            stage=stage,
            pct=pct,
            message=message,
            op=OP_UPLOAD,
            label=self.label,
            elapsed_s=round(time.monotonic() - self._started, 2),
            **fields,
        )


def _unused_path(path: Path) -> Path:
    """`path`, or "name-2.gguf", "name-3.gguf"… when a file already has the name."""
    if not path.exists():
        return path
    for index in range(2, 1000):
        candidate = path.with_name(f"{path.stem}-{index}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise ModelError(ErrorKind.INVALID_MODEL, f"Too many files named like {path.name}")
