"""One model's session: the thread that owns its model host and the load's state machine.

A `ModelSession` has one thread that owns its host for the host's whole life: it runs the load's
stages (attach a host, preflight the file, read its header, judge the fit, load the weights),
then serves prompts until unload, crash or shutdown. Everything that reaches a session (host
messages, the host's end, and the engine's `Request`s: cancel, unload, generate, shutdown)
arrives in one queue, so a session is a plain sequential state machine. Each step is published
on the engine's bus as a `ProgressEvent`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_desktop.core import fit, hardware
from llm_desktop.core.catalog import EMBEDDING_POOLING_TYPES
from llm_desktop.core.events import (
    ERROR_MESSAGES,
    ErrorInfo,
    ErrorKind,
    ModelError,
    ModelState,
    ProgressEvent,
    Reason,
    Stage,
    stage_pct,
)
from llm_desktop.core.generation import FINISH_ERROR, FairQueue, Reply, host_failure
from llm_desktop.core.gguf_header import GGUFInfo, read_gguf
from llm_desktop.core.host.client import HostExited, HostMessage, HostProcess
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.preflight import preflight

if TYPE_CHECKING:
    from llm_desktop.core.engine import Engine

log = logging.getLogger(__name__)

__all__ = ["LLAMA_MAX_LAYERS", "ModelSession", "Request"]

# llama.cpp's LLAMA_MAX_LAYERS: a file with more aborts the engine on a GGML_ASSERT.
LLAMA_MAX_LAYERS = 512
# While a stage llama.cpp does not measure runs, an event this often says how long it has run.
TICK_S = 0.5
# The stages of a load that a timeline reports, and what it calls them.
TIMELINE = {Stage.LOADING: "read", Stage.OPTIMIZING: "context", Stage.FINALIZING: "warm-up"}


@dataclass(frozen=True)
class Request:
    """A request from the engine's API to a session's thread."""

    action: str
    payload: Any = None


class _Cancelled(Exception):
    pass


class _RateMeter:
    """Bytes per second over the last second of samples, and the ETA that follows."""

    WINDOW_S = 1.0

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()
        self.started = time.monotonic()

    def add(self, done: int) -> None:
        now = time.monotonic()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.WINDOW_S:
            self.samples.popleft()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        if t1 - t0 < 0.01:
            elapsed = t1 - self.started
            return b1 / elapsed if elapsed > 0 else None
        return (b1 - b0) / (t1 - t0)


class ModelSession:
    """One model's host and the thread that drives it."""

    def __init__(
        self,
        engine: Engine,
        model: str,
        path: str,
        options: LoadOptions,
        reason: Reason | None = None,
    ):
        self.engine = engine
        self.model = model
        self.path = path
        self.options = options
        self.state = ModelState.LOADING
        self.host: HostProcess | None = None
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.settled = threading.Event()
        self._cancel_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"session-{model}", daemon=True)
        self._pct = 0.0
        self._stage: Stage | None = None
        self._last_emit = 0.0
        self._op = "load"
        self._load_sent = False
        self._stage_started = time.monotonic()
        self._durations: dict[str, float] = {}
        self._times_key = ""
        self._tick_message = ""
        self.reason = reason  # why this load or unload happened, when the engine chose it
        self.embedding = False  # an embedding model: it answers `embed`, not `generate`
        # Replies: the one the host is answering, and those waiting their turn. `last_used`
        # is when the model last finished (or began) a reply; the keep-alive counts from it.
        self.waiting = FairQueue()
        self.active: Reply | None = None
        self.last_used = time.monotonic()

    @property
    def in_use(self) -> bool:
        """A reply is being answered or waits: the model must not be unloaded under it."""
        return self.active is not None or len(self.waiting) > 0

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def request(self, api: Request) -> None:
        host = self.host
        if api.action in ("cancel", "shutdown"):
            self._cancel_requested.set()
            if host is not None and self._load_sent:
                host.send({"op": "cancel"})  # at once: the host aborts at its next tensor
        (host.inbox if host is not None else self.inbox).put(api)

    # -- events ------------------------------------------------------------------------------

    def emit(
        self, stage: Stage, message: str, *, fraction: float = 0.0, force: bool = False, **fields
    ) -> None:
        now = time.monotonic()
        if stage is self._stage and not force and now - self._last_emit < self.engine.throttle_s:
            return
        if stage is not self._stage:
            self._close_stage(now)
            self._stage_started = now
        if self._op == "load" and stage in (Stage.FAILED, Stage.CANCELLED):
            pct = self._pct
        elif stage is Stage.UNLOADING:
            pct = 0.0
        else:
            pct = max(self._pct, stage_pct(stage, fraction))
        self._pct, self._stage, self._last_emit = pct, stage, now
        event = ProgressEvent(
            model=self.model,
            seq=0,  # the bus numbers it
            stage=stage,
            pct=pct,
            message=message,
            op=self._op,
            ts=time.time(),
            reason=self.reason,
            **fields,
        )
        if stage.is_terminal or stage is Stage.UNLOADING:
            self.state = event.state
        self.engine.bus.publish(event)

    # -- the session's thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._load()
        except _Cancelled:
            self._end_host(kill=True)
            self.emit(
                Stage.CANCELLED,
                ERROR_MESSAGES[ErrorKind.CANCELLED],
                error=ErrorInfo(ErrorKind.CANCELLED, ERROR_MESSAGES[ErrorKind.CANCELLED]),
            )
        except ModelError as exc:
            self._end_host(kill=True)
            self.emit(Stage.FAILED, exc.info.message, error=exc.info)
        except Exception as exc:  # a bug must still end in an event, never a silent thread
            log.exception("load of %s failed unexpectedly", self.model)
            self._end_host(kill=True)
            info = ErrorInfo(ErrorKind.ENGINE_CRASHED, f"Unexpected error: {exc}")
            self.emit(Stage.FAILED, info.message, error=info)
        else:
            self.last_used = time.monotonic()  # the keep-alive counts from the end of the load
            self.settled.set()
            self._serve()
        self.settled.set()

    def _end_host(self, *, kill: bool) -> None:
        if self.host is None:
            return
        if not self._load_sent and not self._cancel_requested.is_set() and self.host.alive:
            # The file was refused before llama.cpp saw it: the host is as fresh as a new one.
            self.engine._pool.release(self.host)
            self.host = None
            return
        if kill:
            self.host.kill()
        self.host.reap()

    def _check_cancel(self) -> None:
        if self._cancel_requested.is_set():
            raise _Cancelled

    def _load(self) -> None:
        try:
            self.host = self.engine._pool.acquire()
        except OSError as exc:
            raise ModelError(
                ErrorKind.ENGINE_CRASHED, f"Could not start a model host: {exc}"
            ) from None
        # Requests that arrived before the host existed follow it to its inbox.
        while not self.inbox.empty():
            self.host.inbox.put(self.inbox.get_nowait())
        self._check_cancel()
        # The host may still be starting (no warm one, as in the CLI): the file checks and the
        # header below run meanwhile, and the load waits for it only when it is sent.

        self.emit(Stage.INITIALIZING, "Checking the model file")
        parts = preflight(self.path)
        ram = hardware.read_ram()
        self._check_cancel()

        self.emit(Stage.PARSING, "Reading model metadata")
        infos = [read_gguf(part, tensors=True) for part in parts]
        layers = infos[0].block_count
        if layers is not None and layers > LLAMA_MAX_LAYERS:
            raise ModelError(
                ErrorKind.UNSUPPORTED_MODEL,
                f"The model has {layers} layers; llama.cpp supports at most {LLAMA_MAX_LAYERS}",
            )
        verdict = self._assess(infos[0], ram)
        self._check_cancel()
        if verdict.verdict == "no" and not self.options.force:
            raise ModelError(ErrorKind.OUT_OF_MEMORY, f"Out of memory - {verdict.summary}")
        total = sum(info.tensor_bytes or 0 for info in infos)
        self.embedding = infos[0].pooling_type in EMBEDDING_POOLING_TYPES
        n_ctx = self._context_length(infos[0])
        gpu_layers = (
            self.options.n_gpu_layers
            if self.options.n_gpu_layers is not None
            else verdict.gpu_layers
        )
        self.emit(
            Stage.PARSING,
            f"{infos[0].architecture}, {infos[0].quantization}; {verdict.summary}",
            fraction=1.0,
            force=True,
            bytes_total=total,
        )

        self._times_key = self.engine.stage_times.key(
            self.model, n_ctx, gpu_layers, self.options.use_mmap
        )
        self._await("ready", timeout=max(self.engine.stall_timeout_s, 30.0))
        self._check_cancel()
        self._load_sent = True
        self.host.send(
            {
                "op": "load",
                "path": str(parts[0]),
                "parts": [str(part) for part in parts],
                "n_ctx": n_ctx,
                "n_gpu_layers": gpu_layers,
                "use_mmap": self.options.use_mmap,
                "n_threads": self.options.n_threads,
                "embedding": self.embedding,
            }
        )
        meter = _RateMeter()
        self.emit(
            Stage.LOADING,
            "Loading weights",
            force=True,
            bytes_done=0,
            bytes_total=total,
        )
        while True:
            message = self._receive(tick=self._tick)
            kind = message.get("t")
            if kind == "progress":
                fraction = float(message.get("f", 0.0))
                done = int(total * fraction)
                meter.add(done)
                rate = meter.rate()
                eta = (total - done) / rate if rate else None
                self.emit(
                    Stage.LOADING,
                    "Loading weights",
                    fraction=fraction,
                    force=fraction >= 1.0,
                    bytes_done=done,
                    bytes_total=total,
                    rate_bps=rate,
                    eta_s=eta,
                )
            elif kind == "stage" and message.get("stage") == "optimizing":
                self._unmeasured(Stage.OPTIMIZING, f"Creating context ({n_ctx} tokens)")
            elif kind == "stage" and message.get("stage") == "finalizing":
                self._unmeasured(Stage.FINALIZING, "Warming up: first decode")
            elif kind == "loaded":
                rss = self.host.rss()
                self._close_stage(time.monotonic())  # the timeline goes out with `complete`
                timeline = tuple(
                    (name, round(self._durations[name], 3))
                    for name in TIMELINE.values()
                    if name in self._durations
                )
                self.engine.stage_times.record(self._times_key, dict(timeline))
                self.emit(
                    Stage.COMPLETE,
                    f"Ready ({message.get('n_ctx', n_ctx)}-token context)",
                    bytes_done=total,
                    bytes_total=total,
                    memory_bytes=rss,
                    timeline=timeline,
                )
                return
            elif kind == "cancelled":
                raise _Cancelled
            elif kind == "error":
                raise ModelError.from_info(ErrorInfo.from_dict(message))

    def _unmeasured(self, stage: Stage, message: str) -> None:
        """Enter a stage llama.cpp reports no fraction for: say what it usually takes."""
        expected = self.engine.stage_times.expected(self._times_key, TIMELINE[stage])
        self._tick_message = message
        self.emit(stage, message, force=True, elapsed_s=0.0, expected_s=expected)

    def _tick(self) -> None:
        """While an unmeasured stage runs: the same stage again, with how long it has run."""
        stage = self._stage
        if stage not in (Stage.OPTIMIZING, Stage.FINALIZING):
            return
        elapsed = round(time.monotonic() - self._stage_started, 2)
        expected = self.engine.stage_times.expected(self._times_key, TIMELINE[stage])
        self.emit(stage, self._tick_message, elapsed_s=elapsed, expected_s=expected)

    def _close_stage(self, now: float) -> None:
        """Note how long the running stage took, if it is one a timeline reports."""
        if self._stage in TIMELINE:
            self._durations[TIMELINE[self._stage]] = now - self._stage_started

    def _assess(self, info: GGUFInfo, ram: hardware.RamInfo) -> fit.FitVerdict:
        gpus = self.engine.gpu_monitor.read()
        return fit.assess(
            fit.ModelShape.from_gguf(info),
            self._context_length(info),
            ram,
            gpus,
            gpu_layers=self.options.n_gpu_layers,
            llama_build=self.engine.gpu_monitor.llama_build,
        )

    def _context_length(self, info: GGUFInfo) -> int:
        if self.options.n_ctx:
            return self.options.n_ctx
        return fit.default_context(info.context_length)

    def _await(self, kind: str, timeout: float) -> dict[str, Any]:
        while True:
            message = self._receive(timeout)
            if message.get("t") == kind:
                return message

    def _receive(self, timeout: float | None = None, tick=None) -> dict[str, Any]:
        """The next host message of a load; raises on cancel, crash or stall. With `tick`,
        calls it every TICK_S while waiting (the stall limit still counts from the start)."""
        assert self.host is not None
        timeout = timeout or self.engine.stall_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                wait = min(remaining, TICK_S) if tick is not None else remaining
                item = self.host.inbox.get(timeout=wait)
            except queue.Empty:
                if tick is not None and time.monotonic() < deadline:
                    tick()
                    continue
                raise ModelError(
                    ErrorKind.TIMEOUT,
                    f"Loading stalled: no progress for {timeout:.0f} s",
                    tuple(self.host.log_tail)[-10:],
                ) from None
            if isinstance(item, HostMessage):
                return item.data
            if isinstance(item, HostExited):
                raise ModelError.from_info(self.host.crash_info(item.returncode))
            if isinstance(item, Request) and item.action in ("cancel", "shutdown"):
                self._cancel_in_host()

    def _cancel_in_host(self) -> None:
        """Ask the host to abort (its progress callback returns False), then make sure."""
        assert self.host is not None
        if not self._load_sent:
            raise _Cancelled
        self.host.send({"op": "cancel"})
        deadline = time.monotonic() + self.engine.cancel_grace_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self.host.inbox.get(timeout=remaining)
            except queue.Empty:
                break
            if isinstance(item, HostExited):
                break
            if isinstance(item, HostMessage) and item.data.get("t") in ("cancelled", "error"):
                break
        raise _Cancelled

    def _serve(self) -> None:
        """Loaded: answer replies one at a time, clients taking turns, until unload, shutdown
        or the host's death."""
        assert self.host is not None
        while True:
            item = self.host.inbox.get()
            if isinstance(item, Request) and item.action in ("unload", "shutdown", "cancel"):
                self._end_replies(ErrorInfo(ErrorKind.CANCELLED, "The model was unloaded"))
                self._unload(item.payload if item.action == "unload" else None)
                return
            if isinstance(item, Request) and item.action == "reply":
                self.waiting.push(item.payload)
                self.last_used = time.monotonic()
            elif isinstance(item, Request) and item.action == "stop":
                self._stop(item.payload)
            elif isinstance(item, HostMessage) and self.active is not None:
                self._on_reply_message(item.data)
            elif isinstance(item, HostExited):
                info = self.host.crash_info(item.returncode)
                self._end_replies(info)
                self._op = "load"
                self.reason = None
                self.emit(Stage.FAILED, info.message, error=info)
                return
            if self.active is None:
                self._start_next()

    def _start_next(self) -> None:
        assert self.host is not None
        while (reply := self.waiting.pop()) is not None:
            if reply.cancelled:
                reply.finish("cancelled")
                continue
            self.active = reply
            reply.started_at = time.monotonic()
            self.host.send(reply.request.host_command(reply.id))
            return

    def _stop(self, reply: Reply) -> None:
        """A reply's client went away or pressed Stop: out of the queue, or stopped in the
        host between two tokens."""
        if self.waiting.remove(reply):
            reply.finish("cancelled")
        elif reply is self.active and self.host is not None:
            self.host.send({"op": "stop", "id": reply.id})

    def _on_reply_message(self, data: dict[str, Any]) -> None:
        reply = self.active
        assert reply is not None
        if data.get("id") not in (None, reply.id):
            return  # the end of a reply already given up on
        kind = data.get("t")
        if kind == "token":
            reply.put(str(data.get("text", "")))
            return
        if kind not in ("generated", "embedded"):
            return
        self.active = None
        self.last_used = time.monotonic()
        if data.get("error"):
            reply.finish(FINISH_ERROR, error=host_failure(data))
            return
        if kind == "embedded":
            reply.vectors = data.get("vectors")
        reason = str(data.get("reason") or "stop")
        reply.finish(
            "cancelled" if reason == "stopped" else reason,
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            completion_tokens=int(data.get("completion_tokens") or 0),
        )

    def _end_replies(self, error: ErrorInfo) -> None:
        for reply in (self.active, *self.waiting.drain()):
            if reply is not None:
                reply.finish(FINISH_ERROR, error=error)
        self.active = None

    def _unload(self, reason: Reason | None = None) -> None:
        assert self.host is not None
        self._op = "unload"
        self._pct = 0.0
        self.reason = reason
        rss = self.host.rss()
        self.emit(Stage.UNLOADING, "Unloading", force=True, memory_bytes=rss)
        self.host.stop(grace_s=5.0)
        freed = fit.format_bytes(rss) if rss else "its memory"
        self.emit(Stage.UNLOADED, f"Unloaded; freed {freed}", memory_bytes=rss)
