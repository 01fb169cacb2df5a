"""The engine: loads models in model hosts and reports every step as `ProgressEvent`s.

`Engine` is the facade the CLI, the server and the window drive: it keeps one `ModelSession`
per model (`core.session`, the thread that owns that model's host), hands each session its
requests, and records every event on one `EventBus`. Files are checked before loading by
`core.preflight`. Views subscribe to events; nothing here knows about Qt, HTTP or terminals.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from llm_desktop.core import generation, hardware
from llm_desktop.core.bus import EventBus, EventStream
from llm_desktop.core.events import (
    ErrorKind,
    ModelError,
    ModelState,
    ProgressEvent,
    Reason,
    Stage,
)
from llm_desktop.core.generation import Reply, ReplyRequest
from llm_desktop.core.host.client import HostPool
from llm_desktop.core.model_names import model_id as file_model_id
from llm_desktop.core.model_names import split_parts
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.preflight import preflight
from llm_desktop.core.session import ModelSession, Request
from llm_desktop.core.timings import StageTimes

# What callers import from here; the session and the preflight have their own modules.
__all__ = ["Engine", "LoadOptions", "ModelUsage", "preflight", "split_parts"]


@dataclass(frozen=True)
class ModelUsage:
    """What keep-alive and eviction need to know of a loaded model."""

    in_use: bool  # a reply is being answered or waits
    last_used: float  # time.monotonic() of its last reply (or of its load)
    memory_bytes: int | None  # its host's memory when it finished loading
    makes_embeddings: bool


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
        stage_times: StageTimes | None = None,
    ):
        self.stall_timeout_s = stall_timeout_s
        # What unmeasured stages took before (StageTimes.default() keeps them across runs).
        self.stage_times = stage_times or StageTimes()
        self.throttle_s = throttle_s
        self.cancel_grace_s = cancel_grace_s
        self.gpu_monitor = gpu_monitor or hardware.GpuMonitor()
        self._pool = HostPool(warm_hosts, host_command)
        self._lock = threading.RLock()
        self._sessions: dict[str, ModelSession] = {}
        self.bus = bus or EventBus()
        self._closed = False

    # -- events: the bus is the one record; these read it --------------------------------------

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

    def prestart_host(self, process: subprocess.Popen | None = None) -> None:
        """Start a model host now, or take over one started already, for the next load."""
        self._pool.prestart(process)

    def model_id(self, path: str | os.PathLike[str]) -> str:
        return file_model_id(path)

    def load(
        self,
        path: str | os.PathLike[str],
        options: LoadOptions | None = None,
        *,
        model: str | None = None,
        reason: Reason | None = None,
    ) -> str:
        """Start loading (or attach to the load or loaded model of) `path`; returns its id.
        `reason` says why when the engine's owner loads it on its own (an API request)."""
        model = model or self.model_id(path)
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            session = self._sessions.get(model)
            if session is not None and session.state in (ModelState.LOADING, ModelState.LOADED):
                return model
            session = ModelSession(self, model, os.fspath(path), options or LoadOptions(), reason)
            self._sessions[model] = session
        # Published before the thread starts, outside the engine's lock: a caller inside
        # `EventBus.operation_or_start` sees the new operation's first event at once.
        session.emit(Stage.CONNECTING, "Attaching a model host")
        session.start()
        return model

    def cancel(self, model: str) -> bool:
        session = self._session(model)
        if session is None or session.state is not ModelState.LOADING:
            return False
        session.request(Request("cancel"))
        return True

    def unload(self, model: str, reason: Reason | None = None) -> bool:
        """Unload a loaded model (or cancel its load); `reason` says why when nobody asked
        (keep-alive, eviction). Replies in progress end with an error."""
        session = self._session(model)
        if session is None:
            return False
        if session.state is ModelState.LOADING:
            session.request(Request("cancel"))
            return True
        if session.state is not ModelState.LOADED:
            return False
        session.request(Request("unload", reason))
        return True

    def reply(self, model: str, request: ReplyRequest, sink: Callable[[str | None], None]) -> Reply:
        """Queue a reply of the loaded `model`: `sink` gets each piece of text (on the model's
        thread), then None when it has ended (the outcome is on the returned `Reply`)."""
        session = self._session(model)
        if session is None or session.state is not ModelState.LOADED:
            raise ModelError(ErrorKind.NOT_FOUND, "The model is not loaded")
        generation.check_mode(session.embedding, request.mode)
        reply = Reply(request, sink)
        reply.on_cancel = lambda cancelled: session.request(Request("stop", cancelled))
        session.request(Request("reply", reply))
        return reply

    def generate(
        self, model: str, request: ReplyRequest | str, max_tokens: int = 64
    ) -> Iterator[str]:
        """Stream a reply piece by piece (a plain `prompt` string: a raw completion). Leaving
        the loop early stops the reply in the host; a failure is raised as `ModelError`."""
        return generation.stream(self.reply, model, request, max_tokens)

    def stop_generation(self, model: str, client: str = "app") -> None:
        """Stop every reply `client` asked of `model` (the window's Stop button)."""
        session = self._session(model)
        if session is None:
            return
        for reply in (session.active, *session.waiting):
            if reply is not None and reply.request.client == client:
                reply.cancel()

    def usage(self, model: str) -> ModelUsage | None:
        """How a loaded model is used (None when it is not loaded)."""
        session = self._session(model)
        if session is None or session.state is not ModelState.LOADED:
            return None
        loaded = self.state(model)
        return ModelUsage(
            in_use=session.in_use,
            last_used=session.last_used,
            memory_bytes=loaded.memory_bytes if loaded is not None else None,
            makes_embeddings=session.embedding,
        )

    def host_baseline_bytes(self) -> int:
        """What a model host holds before loading anything (0 when none was measured yet)."""
        return self._pool.baseline_rss() or 0

    def loaded_models(self) -> list[str]:
        with self._lock:
            return [m for m, s in self._sessions.items() if s.state is ModelState.LOADED]

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
            session.request(Request("shutdown"))
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
