"""The engine: loads models in model hosts and reports every step as `ProgressEvent`s.

Each model has a `ModelSession` with one thread that owns its host for the host's whole life:
it runs the load's stages, then serves prompts until unload, crash or shutdown. Everything that
reaches a session (host messages, the host's end, cancel, unload, prompts) arrives in one queue,
so a session is a plain sequential state machine. Views subscribe to events; nothing here knows
about Qt, HTTP or terminals.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_desktop.core import fit, hardware
from llm_desktop.core.bus import EventBus, EventStream, Subscription
from llm_desktop.core.catalog import model_id as catalog_model_id
from llm_desktop.core.catalog import split_parts
from llm_desktop.core.events import (
    ERROR_MESSAGES,
    ErrorInfo,
    ErrorKind,
    ModelError,
    ModelState,
    ProgressEvent,
    Stage,
    stage_pct,
)
from llm_desktop.core.gguf_header import GGUFInfo, read_gguf
from llm_desktop.core.host.client import HostExited, HostMessage, HostPool, HostProcess
from llm_desktop.core.options import LoadOptions

log = logging.getLogger(__name__)

Subscriber = Callable[[ProgressEvent], None]
__all__ = ["Engine", "EventStream", "LoadOptions", "ModelSession", "preflight", "split_parts"]

# llama.cpp's LLAMA_MAX_LAYERS: a file with more aborts the engine on a GGML_ASSERT.
LLAMA_MAX_LAYERS = 512


@dataclass(frozen=True)
class _Api:
    """A request from the engine's API to a session's thread."""

    action: str
    payload: Any = None


@dataclass
class Generation:
    prompt: str
    max_tokens: int
    pieces: queue.Queue[str | None] = field(default_factory=queue.Queue)
    reason: str | None = None
    error: str | None = None


class _Cancelled(Exception):
    pass


class Engine:
    """Loads, cancels, unloads and runs models; reports progress to subscribers."""

    def __init__(
        self,
        *,
        warm_hosts: int = 1,
        stall_timeout_s: float = 60.0,
        throttle_s: float = 0.05,
        cancel_grace_s: float = 2.0,
        host_command: list[str] | None = None,
        gpu_monitor: hardware.GpuMonitor | None = None,
        bus: EventBus | None = None,
    ):
        self.stall_timeout_s = stall_timeout_s
        self.throttle_s = throttle_s
        self.cancel_grace_s = cancel_grace_s
        self.gpu_monitor = gpu_monitor or hardware.GpuMonitor()
        self._pool = HostPool(warm_hosts, host_command)
        self._lock = threading.RLock()
        self._sessions: dict[str, ModelSession] = {}
        self.bus = bus or EventBus()
        self._closed = False

    # -- events: the bus is the one record; these read it --------------------------------------

    def subscribe(self, subscriber: Subscriber, model: str | None = None) -> Subscription:
        """Call `subscriber(event)` for every later event, from engine threads."""
        return self.bus.subscribe(subscriber, model)

    def events(self, model: str | None = None, *, after_seq: int | None = None) -> EventStream:
        """A blocking stream of live events; with `after_seq`, first the recorded ones after it."""
        return self.bus.stream(model, after=after_seq)

    def history(self, model: str | None = None) -> list[ProgressEvent]:
        return self.bus.history(model)

    def state(self, model: str) -> ProgressEvent | None:
        return self.bus.latest(model)

    def states(self) -> dict[str, ProgressEvent]:
        return self.bus.states()

    # -- operations ----------------------------------------------------------------------------

    def model_id(self, path: str | os.PathLike[str]) -> str:
        return catalog_model_id(path)

    def load(
        self,
        path: str | os.PathLike[str],
        options: LoadOptions | None = None,
        *,
        model: str | None = None,
    ) -> str:
        """Start loading (or attach to the load or loaded model of) `path`; returns its id."""
        model = model or self.model_id(path)
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            session = self._sessions.get(model)
            if session is not None and session.state in (ModelState.LOADING, ModelState.LOADED):
                return model
            session = ModelSession(self, model, os.fspath(path), options or LoadOptions())
            self._sessions[model] = session
        # Published before the thread starts, outside the engine's lock: a caller inside
        # `EventBus.attach_or_start` sees the new operation's first event at once.
        session.emit(Stage.CONNECTING, "Attaching a model host")
        session.start()
        return model

    def cancel(self, model: str) -> bool:
        session = self._session(model)
        if session is None or session.state is not ModelState.LOADING:
            return False
        session.request(_Api("cancel"))
        return True

    def unload(self, model: str) -> bool:
        session = self._session(model)
        if session is None:
            return False
        if session.state is ModelState.LOADING:
            session.request(_Api("cancel"))
            return True
        if session.state is not ModelState.LOADED:
            return False
        session.request(_Api("unload"))
        return True

    def generate(self, model: str, prompt: str, max_tokens: int = 64) -> Iterator[str]:
        """Stream the loaded model's reply to `prompt`, piece by piece."""
        session = self._session(model)
        if session is None or session.state is not ModelState.LOADED:
            raise ModelError(ErrorKind.NOT_FOUND, "The model is not loaded")
        generation = Generation(prompt, max_tokens)
        session.request(_Api("generate", generation))
        while (piece := generation.pieces.get()) is not None:
            yield piece
        if generation.error:
            raise ModelError(ErrorKind.ENGINE_CRASHED, generation.error)

    def stop_generation(self, model: str) -> None:
        session = self._session(model)
        if session is not None and session.host is not None:
            session.host.send({"op": "stop"})

    def host_pid(self, model: str) -> int | None:
        session = self._session(model)
        return session.host.pid if session and session.host else None

    def wait(self, model: str, timeout: float | None = None) -> ProgressEvent | None:
        """Block until the model's current operation ends; its terminal event."""
        session = self._session(model)
        if session is not None:
            session.settled.wait(timeout)
        return self.state(model)

    def _session(self, model: str) -> ModelSession | None:
        with self._lock:
            return self._sessions.get(model)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel loads, end every host, and wait for the sessions to finish."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions.values())
        for session in sessions:
            session.request(_Api("shutdown"))
        deadline = time.monotonic() + timeout
        for session in sessions:
            session.join(max(0.1, deadline - time.monotonic()))
        self._pool.close()
        for session in sessions:
            if session.host is not None:
                session.host.kill()
                session.host.reap()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()


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

    def __init__(self, engine: Engine, model: str, path: str, options: LoadOptions):
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

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def request(self, api: _Api) -> None:
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
        self._await("ready", timeout=max(self.engine.stall_timeout_s, 30.0))
        self._check_cancel()

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

        self._load_sent = True
        self.host.send(
            {
                "op": "load",
                "path": str(parts[0]),
                "n_ctx": n_ctx,
                "n_gpu_layers": gpu_layers,
                "use_mmap": self.options.use_mmap,
                "n_threads": self.options.n_threads,
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
            message = self._receive()
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
                self.emit(Stage.OPTIMIZING, f"Creating context ({n_ctx} tokens)")
            elif kind == "stage" and message.get("stage") == "finalizing":
                self.emit(Stage.FINALIZING, "Warming up: first decode")
            elif kind == "loaded":
                rss = self.host.rss()
                self.emit(
                    Stage.COMPLETE,
                    f"Ready ({message.get('n_ctx', n_ctx)}-token context)",
                    bytes_done=total,
                    bytes_total=total,
                    memory_bytes=rss,
                )
                return
            elif kind == "cancelled":
                raise _Cancelled
            elif kind == "error":
                raise ModelError.from_info(ErrorInfo.from_dict(message))

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

    def _receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next host message of a load; raises on cancel, crash or stall."""
        assert self.host is not None
        timeout = timeout or self.engine.stall_timeout_s
        while True:
            try:
                item = self.host.inbox.get(timeout=timeout)
            except queue.Empty:
                raise ModelError(
                    ErrorKind.TIMEOUT,
                    f"Loading stalled: no progress for {timeout:.0f} s",
                    tuple(self.host.log_tail)[-10:],
                ) from None
            if isinstance(item, HostMessage):
                return item.data
            if isinstance(item, HostExited):
                raise ModelError.from_info(self.host.crash_info(item.returncode))
            if isinstance(item, _Api) and item.action in ("cancel", "shutdown"):
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
        """Loaded: answer prompts, one at a time, until unload, shutdown or the host's death."""
        assert self.host is not None
        waiting: deque[Generation] = deque()
        active: Generation | None = None
        while True:
            item = self.host.inbox.get()
            if isinstance(item, _Api) and item.action in ("unload", "shutdown", "cancel"):
                for generation in (active, *waiting):
                    if generation is not None:
                        generation.pieces.put(None)
                self._unload()
                return
            if isinstance(item, _Api) and item.action == "generate":
                waiting.append(item.payload)
            elif isinstance(item, HostMessage) and active is not None:
                kind = item.data.get("t")
                if kind == "token":
                    active.pieces.put(str(item.data.get("text", "")))
                elif kind == "generated":
                    active.reason = item.data.get("reason")
                    active.error = item.data.get("error")
                    active.pieces.put(None)
                    active = None
            elif isinstance(item, HostExited):
                info = self.host.crash_info(item.returncode)
                for generation in (active, *waiting):
                    if generation is not None:
                        generation.error = info.message
                        generation.pieces.put(None)
                self._op = "load"
                self.emit(Stage.FAILED, info.message, error=info)
                return
            if active is None and waiting:
                active = waiting.popleft()
                self.host.send(
                    {"op": "generate", "prompt": active.prompt, "max_tokens": active.max_tokens}
                )

    def _unload(self) -> None:
        assert self.host is not None
        self._op = "unload"
        self._pct = 0.0
        rss = self.host.rss()
        self.emit(Stage.UNLOADING, "Unloading", force=True, memory_bytes=rss)
        self.host.stop(grace_s=5.0)
        freed = fit.format_bytes(rss) if rss else "its memory"
        self.emit(Stage.UNLOADED, f"Unloaded; freed {freed}", memory_bytes=rss)


def preflight(path: str) -> list[Path]:
    """Check the model file(s) before anything reads them; the parts of a split model."""
    location = Path(path)
    try:
        status = os.stat(location)
    except FileNotFoundError:
        if location.is_symlink():
            raise ModelError(
                ErrorKind.NOT_FOUND, f"Model file not found: {path} is a broken symbolic link"
            ) from None
        raise ModelError(ErrorKind.NOT_FOUND, f"Model file not found: {path}") from None
    except PermissionError:
        raise ModelError(
            ErrorKind.PERMISSION_DENIED, f"Permission denied accessing model file: {path}"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelError(
                ErrorKind.NOT_FOUND, f"Model file not found: {path} is a symbolic link loop"
            ) from None
        raise ModelError(ErrorKind.NOT_FOUND, f"Model file not found: {path} ({exc})") from None
    if stat.S_ISDIR(status.st_mode):
        raise ModelError(
            ErrorKind.INVALID_MODEL, f"Not a valid GGUF model: {path} is a directory, not a file"
        )
    if not stat.S_ISREG(status.st_mode):
        raise ModelError(
            ErrorKind.INVALID_MODEL, f"Not a valid GGUF model: {path} is not a regular file"
        )
    parts = split_parts(location)
    for part in parts:
        try:
            with open(part, "rb") as handle:
                handle.read(1)
        except FileNotFoundError:
            raise ModelError(
                ErrorKind.NOT_FOUND, f"Model file not found: part {part.name} is missing"
            ) from None
        except PermissionError:
            raise ModelError(
                ErrorKind.PERMISSION_DENIED, f"Permission denied accessing model file: {part}"
            ) from None
        except IsADirectoryError:
            raise ModelError(
                ErrorKind.INVALID_MODEL, f"Not a valid GGUF model: {part} is a directory"
            ) from None
    return parts
