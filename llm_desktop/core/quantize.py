"""Quantizing a model: llama.cpp's quantizer, run in a model host of its own, as events.

`QuantizeJob(bus, source, "Q4_K_M").start()` checks the source (a readable GGUF of F32, F16 or
BF16 weights), the type, the output's name and the free disk space, then starts a fresh model
host (never one of the engine's warm hosts) and has it run `llama_model_quantize`. Every step
is a `ProgressEvent` with `op="quantize"` and `model="quantize:<output path>"` on the bus:

    connecting  (checks, the host starting)
    quantizing  one event per tensor: "Tensor 45 of 236 · blk.3.ffn_up.weight"; pct, bytes_done
                and bytes_total weigh each tensor by its bytes in the source, so the bar moves at
                the speed of the work; elapsed_s, rate_bps and eta_s follow from the same bytes
    finalizing  the last tensor is converted: the file is written, synced and renamed
    complete    result_path is the new file, bytes_done = bytes_total = its size
    failed      error names the cause (not_found, invalid_model, unsupported_model, disk_full,
                permission_denied, engine_crashed)
    cancelled   `cancel()` ends the host; nothing is left on disk

The file is written as `OUT.part` (the catalog lists only `*.gguf`) and takes its name only when
whole; a failure, a cancel or a crashed host removes it. No Qt here: the CLI, the Qt cards and
the page call the same job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from llm_desktop.core.bus import EventBus
from llm_desktop.core.events import (
    OP_QUANTIZE,
    ErrorInfo,
    ErrorKind,
    ModelError,
    ProgressEvent,
    Stage,
    stage_pct,
)
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.ggml_types import QUANT_SIZES
from llm_desktop.core.gguf_header import GGUFInfo, read_gguf
from llm_desktop.core.host.client import HostExited, HostMessage, HostProcess
from llm_desktop.core.host.quantize_log import QUANTIZE_TYPES, partial_path
from llm_desktop.core.model_names import clean_stem
from llm_desktop.core.preflight import preflight

log = logging.getLogger(__name__)

__all__ = [
    "QUANT_TYPES",
    "QuantizeJob",
    "default_output_path",
    "estimate_output_bytes",
    "free_space",
]

# The types offered, largest file first.
QUANT_TYPES: tuple[str, ...] = tuple(QUANTIZE_TYPES)
# While nothing arrives, an event this often says how long the stage has run.
KEY_PREFIX = "quantize:"
TICK_S = 0.5
THROTTLE_S = 0.05
READY_TIMEOUT_S = 60.0
# llama.cpp's mixes give some tensors a larger type than the name says (output.weight in Q6_K,
# attn_v and ffn_down a step up): what to add to the base type's size, and to every type for
# rows that fall back to a larger type because they are not a multiple of the block size.
MIX_ALLOWANCE: dict[str, float] = {
    "Q2_K": 1.40,
    "Q3_K_S": 1.15,
    "Q3_K_M": 1.25,
    "Q3_K_L": 1.35,
    "Q4_K_S": 1.10,
    "Q4_K_M": 1.20,
    "Q5_K_S": 1.08,
    "Q5_K_M": 1.12,
    "Q6_K": 1.05,
}
BASE_ALLOWANCE = 1.05
# What a file name already says about its weights ("-F32", ".f16", "-Q8_0"): replaced, not kept.
_QUANT_SUFFIX = re.compile(r"[-_.](?:F32|F16|BF16|I?Q\d(?:_[A-Z0-9]+)*)$", re.IGNORECASE)
_UNQUANTIZED_BYTES_PER_WEIGHT = 2  # F16 and BF16; F32 is 4


def canonical_type(type_name: str) -> str:
    return type_name.strip().upper()


def default_output_path(source: str | os.PathLike[str], type_name: str) -> Path:
    """`NAME-TYPE.gguf` beside the source, NAME its stem without a quantization suffix:
    "Llama-3-8B-F16.gguf" (or its split parts) and "Q4_K_M" give "Llama-3-8B-Q4_K_M.gguf"."""
    source = Path(source)
    stem = _QUANT_SUFFIX.sub("", clean_stem(source.name)) or clean_stem(source.name)
    return source.with_name(f"{stem}-{canonical_type(type_name)}.gguf")


def estimate_output_bytes(infos: list[GGUFInfo], type_name: str) -> int:
    """About how large the quantized file will be: every weight at the target type's bytes
    per block, with an allowance for the tensors llama.cpp's mix makes larger, and the header."""
    type_name = canonical_type(type_name)
    block_size, block_bytes = QUANT_SIZES[QUANTIZE_TYPES[type_name]]
    parameters = sum(info.parameter_count or 0 for info in infos)
    header = max(info.data_offset or 0 for info in infos)
    allowance = MIX_ALLOWANCE.get(type_name, BASE_ALLOWANCE)
    return int(header + parameters * block_bytes / block_size * allowance)


def free_space(folder: str | os.PathLike[str]) -> int:
    """Bytes free for this user in `folder`'s file system."""
    return shutil.disk_usage(folder).free


class _Cancelled(Exception):
    pass


class _HostGone(ModelError):
    """The host ended (crashed, or was killed from outside) before it said it was done."""


class QuantizeJob:
    """One quantization, run in a thread that owns its model host.

    Events (on `bus`, `model=job.key`, `op="quantize"`): connecting, quantizing (per tensor),
    finalizing, then complete, failed or cancelled. `final` is the terminal event once the job
    has ended; `wait()` returns it.
    """

    def __init__(
        self,
        bus: EventBus,
        source: str | os.PathLike[str],
        type_name: str,
        out: str | os.PathLike[str] | None = None,
        *,
        threads: int | None = None,
        throttle_s: float = THROTTLE_S,
        host_command: list[str] | None = None,
    ):
        self.bus = bus
        self.source = Path(os.path.abspath(source))
        self.type_name = canonical_type(type_name)
        self.out = Path(os.path.abspath(out or default_output_path(self.source, self.type_name)))
        self.part = Path(partial_path(str(self.out)))
        self.key = f"{KEY_PREFIX}{self.out}"
        self.label = f"{clean_stem(self.source.name)} → {self.type_name}"
        self.threads = threads
        self.throttle_s = throttle_s
        self.host_command = host_command
        self.final: ProgressEvent | None = None
        self._host: HostProcess | None = None
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"quantize-{self.out.name}", daemon=True
        )
        self._pct = 0.0
        self._stage: Stage | None = None
        self._last_emit = 0.0
        self._started = time.monotonic()
        self._part_ours = False  # the partial file may exist and is this job's to remove
        self._tick_message = ""
        self._progress = _Progress(0, 0)

    # -- the API -------------------------------------------------------------------------------

    @property
    def host_pid(self) -> int | None:
        """The model host's process id while it runs (for tests and diagnostics)."""
        host = self._host
        return host.pid if host is not None else None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def start(self) -> QuantizeJob:
        """Publish `connecting` (at once, so `bus.operation_or_start(job.key, job.start)`
        attaches a viewer to it) and run the job in its thread. Raises RuntimeError when the
        same output is being quantized already."""
        with self.bus.lock:
            latest = self.bus.latest(self.key)
            if latest is not None and not latest.is_terminal:
                raise RuntimeError(f"{self.out} is already being quantized")
            self._emit(Stage.CONNECTING, "Checking the model file", force=True)
        self._thread.start()
        return self

    def cancel(self, timeout: float | None = 30.0) -> ProgressEvent | None:
        """End the job: the host is killed (llama.cpp's quantizer cannot be interrupted) and the
        partial file removed. Waits for the job's end and returns its final event."""
        with self._lock:
            self._cancel.set()
            host = self._host
        if host is not None:
            host.kill()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> ProgressEvent | None:
        """The final event once the job has ended, or None if it runs on past `timeout`."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return self.final if self._done.is_set() else None

    # -- events --------------------------------------------------------------------------------

    def _emit(
        self,
        stage: Stage,
        message: str,
        *,
        fraction: float = 0.0,
        force: bool = False,
        **fields: Any,
    ) -> None:
        now = time.monotonic()
        if stage is self._stage and not force and now - self._last_emit < self.throttle_s:
            return
        if stage not in (Stage.FAILED, Stage.CANCELLED):
            self._pct = max(self._pct, stage_pct(stage, fraction, op=OP_QUANTIZE))
        self._stage, self._last_emit = stage, now
        event = self.bus.publish(
            ProgressEvent(
                model=self.key,
                seq=0,  # the bus numbers it
                stage=stage,
                pct=self._pct,
                message=message,
                op=OP_QUANTIZE,
                label=self.label,
                ts=time.time(),
                **fields,
            )
        )
        if event.is_terminal:
            self.final = event

    # -- the job's thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._quantize(self._check())
            except (_Cancelled, _HostGone):
                if not self._renamed():
                    raise
                # Cancelled, or the host died, after it gave the file its name: it is whole.
                self._clean_up()
                self._finish(self.out.stat().st_size)
        except _Cancelled:
            self._clean_up()
            message = "Quantizing cancelled"
            self._emit(Stage.CANCELLED, message, error=ErrorInfo(ErrorKind.CANCELLED, message))
        except ModelError as exc:
            self._clean_up()
            self._emit(Stage.FAILED, exc.info.message, error=exc.info)
        except Exception as exc:  # a bug must still end in an event, never a silent thread
            log.exception("quantizing %s failed unexpectedly", self.source)
            self._clean_up()
            info = ErrorInfo(ErrorKind.ENGINE_CRASHED, f"Unexpected error: {exc}")
            self._emit(Stage.FAILED, info.message, error=info)
        finally:
            self._done.set()

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled

    def _check(self) -> list[GGUFInfo]:
        """Everything that can be refused before a host starts, each with its own error."""
        if self.type_name not in QUANTIZE_TYPES:
            raise ModelError(
                ErrorKind.UNSUPPORTED_MODEL,
                f"Unknown quantization type {self.type_name!r}: choose one of "
                f"{', '.join(QUANT_TYPES)}",
            )
        parts = preflight(str(self.source))
        infos = [read_gguf(part, tensors=True) for part in parts]
        parameters = sum(info.parameter_count or 0 for info in infos)
        tensor_bytes = sum(info.tensor_bytes or 0 for info in infos)
        # F32, F16 and BF16 take at least 2 bytes a weight; anything less holds quantized data.
        if tensor_bytes < parameters * _UNQUANTIZED_BYTES_PER_WEIGHT:
            raise ModelError(
                ErrorKind.UNSUPPORTED_MODEL,
                f"{self.source.name} is already quantized ({infos[0].quantization}): llama.cpp "
                "quantizes from F32, F16 or BF16 weights",
            )
        if os.path.lexists(self.out):
            raise ModelError(
                ErrorKind.PERMISSION_DENIED,
                f"{self.out.name} already exists in {self.out.parent}: choose another name or "
                "remove it first",
            )
        if not self.out.parent.is_dir():
            raise ModelError(ErrorKind.NOT_FOUND, f"Folder not found: {self.out.parent}")
        needed = estimate_output_bytes(infos, self.type_name)
        free = free_space(self.out.parent)
        if free < needed:
            raise ModelError(
                ErrorKind.DISK_FULL,
                f"Not enough disk space: {self.out.name} needs about {format_bytes(needed)} in "
                f"{self.out.parent}, {format_bytes(free)} is free",
            )
        self._check_cancel()
        return infos

    def _quantize(self, infos: list[GGUFInfo]) -> None:
        total = sum(info.tensor_bytes or 0 for info in infos)
        count = sum(info.tensor_count for info in infos)
        with self._lock:
            self._check_cancel()
            try:
                self._host = HostProcess(self.host_command)
            except OSError as exc:
                raise ModelError(
                    ErrorKind.ENGINE_CRASHED, f"Could not start a model host: {exc}"
                ) from None
        self._emit(Stage.CONNECTING, "Starting the quantizer", force=True)
        self._receive("ready", timeout=READY_TIMEOUT_S)
        self._part_ours = True
        command: dict[str, Any] = {
            "op": "quantize",
            "path": str(self.source),
            "out": str(self.out),
            "type": self.type_name,
        }
        if self.threads:
            command["threads"] = self.threads
        self._host.send(command)
        progress = self._progress = _Progress(total, count)
        self._tick_message = f"Quantizing {count} tensors to {self.type_name}"
        self._emit(
            Stage.QUANTIZING,
            self._tick_message,
            force=True,
            bytes_done=0,
            bytes_total=total,
            elapsed_s=0.0,
        )
        while True:
            message = self._receive(tick=lambda: self._tick(progress))
            kind = message.get("t")
            if kind == "quantize_progress":
                index, n = int(message.get("i", 0)), int(message.get("n", count))
                if message.get("done"):
                    progress.tensor_done(index, n, message.get("bytes"))
                    continue
                # Tensor `index` starts: everything before it is converted and written.
                self._tick_message = f"Tensor {index} of {n} · {message.get('tensor', '')}"
                self._emit(
                    Stage.QUANTIZING,
                    self._tick_message,
                    fraction=progress.fraction,
                    force=index == 1,
                    **progress.fields(),
                )
            elif kind == "stage" and message.get("stage") == "finalizing":
                self._tick_message = f"Writing {self.out.name}"
                self._emit(Stage.FINALIZING, self._tick_message, force=True, **progress.fields())
            elif kind == "quantized":
                self._finish(int(message.get("size") or 0))
                return
            elif kind == "error":
                raise ModelError.from_info(ErrorInfo.from_dict(message))

    def _renamed(self) -> bool:
        """True when this job's host has renamed the finished file (`out` did not exist when
        the job started, and the host renames only a whole, synced file)."""
        return self._part_ours and self.out.exists() and not self.part.exists()

    def _finish(self, size: int) -> None:
        """The file has its name: end the host, read the new header back, say so."""
        self._part_ours = False
        assert self._host is not None
        self._host.stop(grace_s=2.0)
        try:
            written = read_gguf(self.out, tensors=True).quantization
        except (ModelError, OSError) as exc:
            raise ModelError(
                ErrorKind.INVALID_MODEL, f"The quantized file cannot be read back: {exc}"
            ) from None
        total = self._progress.total
        ratio = f", {size / total:.0%} of the source" if total else ""
        self._emit(
            Stage.COMPLETE,
            f"Saved {self.out.name} ({written}, {format_bytes(size)}{ratio})",
            bytes_done=size,
            bytes_total=size,
            elapsed_s=round(time.monotonic() - self._started, 3),
            result_path=str(self.out),
        )

    def _tick(self, progress: _Progress) -> None:
        """While a tensor (or the host's start, or the final write) takes a while."""
        if self._stage is Stage.QUANTIZING:
            self._emit(
                Stage.QUANTIZING,
                self._tick_message,
                fraction=progress.fraction,
                force=True,
                **progress.fields(),
            )
        elif self._stage is Stage.FINALIZING:
            self._emit(Stage.FINALIZING, self._tick_message, force=True, **progress.fields())

    def _receive(self, kind: str | None = None, *, timeout: float | None = None, tick=None):
        """The next host message (of `kind`, when given); raises on cancel or the host's end."""
        assert self._host is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._check_cancel()
            wait = TICK_S
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise ModelError(
                        ErrorKind.ENGINE_CRASHED,
                        f"The model host did not start within {timeout:.0f} s",
                        tuple(self._host.stderr_tail)[-10:],
                    )
            try:
                item = self._host.inbox.get(timeout=wait)
            except queue.Empty:
                if tick is not None:
                    tick()
                continue
            if isinstance(item, HostExited):
                self._check_cancel()
                raise _HostGone.from_info(self._host.crash_info(item.returncode))
            if isinstance(item, HostMessage) and (kind is None or item.data.get("t") == kind):
                return item.data

    def _clean_up(self) -> None:
        """End the host (if any) and remove what it was writing."""
        host = self._host
        if host is not None:
            host.kill()
            host.reap()
        if self._part_ours:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.part)


class _Progress:
    """Tensors converted so far, weighed by their bytes in the source."""

    def __init__(self, total: int, count: int):
        self.total = total
        self.count = count
        self.done_bytes = 0
        self.done_tensors = 0
        self.started = time.monotonic()
        self.last_done_at = self.started
        self._bytes_known = True

    def tensor_done(self, index: int, count: int, nbytes: int | None) -> None:
        self.done_tensors, self.count = index, count or self.count
        if nbytes is None:
            self._bytes_known = False
        else:
            self.done_bytes += nbytes
        self.last_done_at = time.monotonic()

    @property
    def fraction(self) -> float:
        if self._bytes_known and self.total:
            return min(self.done_bytes / self.total, 1.0)
        return self.done_tensors / self.count if self.count else 0.0

    def fields(self) -> dict[str, Any]:
        now = time.monotonic()
        elapsed = now - self.started
        working = self.last_done_at - self.started
        fraction = self.fraction
        rate = self.done_bytes / working if working > 0 and self._bytes_known else None
        eta = None
        if fraction > 0 and working > 0:
            # The time the work done so far took, scaled to what is left, less the time the
            # tensor in progress has had already.
            eta = max(0.0, working * (1 - fraction) / fraction - (now - self.last_done_at))
        return {
            "bytes_done": min(self.done_bytes, self.total) if self._bytes_known else None,
            "bytes_total": self.total if self._bytes_known else None,
            "rate_bps": rate,
            "eta_s": round(eta, 2) if eta is not None else None,
            "elapsed_s": round(elapsed, 2),
        }
