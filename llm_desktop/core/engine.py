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
from collections.abc import Iterator

from llm_desktop.core import hardware
from llm_desktop.core.bus import EventBus, EventStream
from llm_desktop.core.events import ErrorKind, ModelError, ModelState, ProgressEvent, Stage
from llm_desktop.core.host.client import HostPool
from llm_desktop.core.model_names import model_id as file_model_id
from llm_desktop.core.model_names import split_parts
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.preflight import preflight
from llm_desktop.core.session import Generation, ModelSession, Request
from llm_desktop.core.timings import StageTimes

# What callers import from here; the session and the preflight have their own modules.
__all__ = ["Engine", "LoadOptions", "preflight", "split_parts"]


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

    def unload(self, model: str) -> bool:
        session = self._session(model)
        if session is None:
            return False
        if session.state is ModelState.LOADING:
            session.request(Request("cancel"))
            return True
        if session.state is not ModelState.LOADED:
            return False
        session.request(Request("unload"))
        return True

    def generate(self, model: str, prompt: str, max_tokens: int = 64) -> Iterator[str]:
        """Stream the loaded model's reply to `prompt`, piece by piece."""
        session = self._session(model)
        if session is None or session.state is not ModelState.LOADED:
            raise ModelError(ErrorKind.NOT_FOUND, "The model is not loaded")
        generation = Generation(prompt, max_tokens)
        session.request(Request("generate", generation))
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
