"""A fake engine for UI tests: the real `EventBus` and the real engine's stage sequence, no hosts.

`FakeEngine` meets `EngineApi`. It records every call (`loads` with their `LoadOptions`,
`cancels`, `unloads`, `prompts`, `stops`) and publishes what `Engine` would publish, but only
when the test says so:

- `load` publishes `connecting` at once, in the caller's thread, as `Engine.load` does;
- `step(model)` publishes the next event of the model's operation, `advance(model, stage)` up to
  the first event of `stage`, `finish(model)` all of them; `fail(model, kind)` ends it with a
  failure (on a loaded model: a crash, as when the real host dies).
- `cancel` and `unload` only queue what the session would publish (`cancelled`; `unloading`,
  `unloaded`): the test steps them like the rest.

Like `ModelSession` (`llm_desktop.core.session`), a model's events after `connecting` come
from a thread of its own (with `threaded=False`, from the caller's), so a Qt bridge must relay
them across threads; `step` returns once its event is on the bus, numbered. The sequence and the
pct rule follow `Engine.load` and `ModelSession`: connecting → initializing → parsing (start,
then with bytes_total) → loading (0 bytes, then one event per entry of `fractions`, with bytes,
rate and ETA; the first has no rate yet) → optimizing → finalizing → complete. A failure or a
cancel keeps the pct reached; an unload goes unloading (pct 0) → unloaded (pct 100).
`tests/ui/test_fake_engine.py` holds it to the real engine.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llm_desktop.core.bus import EventBus
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
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.model_names import model_id as file_model_id
from llm_desktop.core.options import LoadOptions

MiB = 1024 * 1024
PUBLISH_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LoadCall:
    model: str
    path: str
    options: LoadOptions


@dataclass(frozen=True)
class _Step:
    """One event a session would publish; its pct is worked out when it is published."""

    stage: Stage
    message: str
    fraction: float = 0.0
    op: str | None = None  # the operation it belongs to from now on (None: unchanged)
    fields: dict[str, Any] = field(default_factory=dict)


class _Session:
    def __init__(self, model: str, threaded: bool) -> None:
        self.model = model
        self.pct = 0.0
        self.op = "load"
        self.pending: deque[_Step] = deque()
        self.executor = (
            ThreadPoolExecutor(1, thread_name_prefix=f"fake-session-{model}") if threaded else None
        )


class FakeEngine:
    """An `EngineApi` whose operations move only when the test steps them."""

    def __init__(
        self,
        *,
        threaded: bool = True,
        bytes_total: int = 64 * MiB,
        fractions: Iterable[float] = (0.25, 0.5, 0.75, 1.0),
        rate_bps: float = 32 * MiB,
        memory_bytes: int = 96 * MiB,
        default_n_ctx: int = 2048,
        reply: Iterable[str] = ("Hello", ",", " world"),
        bus: EventBus | None = None,
    ) -> None:
        self.bus = bus or EventBus()
        self.threaded = threaded
        self.bytes_total = bytes_total
        self.fractions = tuple(fractions)
        self.rate_bps = rate_bps
        self.memory_bytes = memory_bytes
        self.default_n_ctx = default_n_ctx
        self.reply = tuple(reply)
        self.loads: list[LoadCall] = []
        self.cancels: list[str] = []
        self.unloads: list[str] = []
        self.prompts: list[tuple[str, str, int]] = []
        self.stops: list[str] = []
        self.shutdowns = 0
        self._lock = threading.RLock()
        self._published = threading.Condition()
        self._sessions: dict[str, _Session] = {}
        self._closed = False

    # -- EngineApi -----------------------------------------------------------------------------

    def load(
        self,
        path: str | os.PathLike[str],
        options: LoadOptions | None = None,
        *,
        model: str | None = None,
    ) -> str:
        model = model or file_model_id(path)
        options = options or LoadOptions()
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            self.loads.append(LoadCall(model, os.fspath(path), options))
            if self._state(model) in (ModelState.LOADING, ModelState.LOADED):
                return model  # attaches to the running load or the loaded model
            session = self._sessions.get(model)
            if session is None:
                session = self._sessions[model] = _Session(model, self.threaded)
            session.pct, session.op = 0.0, "load"
            session.pending = deque(self._load_steps(options))
        self._publish(session, _Step(Stage.CONNECTING, "Attaching a model host"))
        return model

    def cancel(self, model: str) -> bool:
        with self._lock:
            self.cancels.append(model)
            if self._state(model) is not ModelState.LOADING:
                return False
            self._queue_cancel(self._sessions[model])
            return True

    def unload(self, model: str) -> bool:
        with self._lock:
            self.unloads.append(model)
            state = self._state(model)
            if state is ModelState.LOADING:  # as the real one: an unload mid-load cancels it
                self._queue_cancel(self._sessions[model])
                return True
            if state is not ModelState.LOADED:
                return False
            session = self._sessions[model]
            if not session.pending:
                session.pending = deque(self._unload_steps())
            return True

    def generate(self, model: str, prompt: str, max_tokens: int = 64) -> Iterator[str]:
        if self._state(model) is not ModelState.LOADED:
            raise ModelError(ErrorKind.NOT_FOUND, "The model is not loaded")
        with self._lock:
            self.prompts.append((model, prompt, max_tokens))
        yield from self.reply[:max_tokens]

    def stop_generation(self, model: str) -> None:
        with self._lock:
            self.stops.append(model)

    def state(self, model: str) -> ProgressEvent | None:
        return self.bus.latest(model)

    def host_pid(self, model: str) -> int | None:
        return None  # no model host: nothing for a process monitor to read

    def wait(self, model: str, timeout: float | None = None) -> ProgressEvent | None:
        def settled() -> bool:
            latest = self.bus.latest(model)
            return latest is None or latest.is_terminal

        with self._published:
            self._published.wait_for(settled, timeout)
        return self.state(model)

    def shutdown(self, timeout: float = 10.0) -> None:
        """As the real one: loads end cancelled, loaded models unloaded; then its threads end."""
        with self._lock:
            self._closed = True
            self.shutdowns += 1
            sessions = list(self._sessions.values())
            for session in sessions:
                state = self._state(session.model)
                if state is ModelState.LOADING:
                    self._queue_cancel(session)
                elif state is ModelState.LOADED and not session.pending:
                    session.pending = deque(self._unload_steps())
        for session in sessions:
            while session.pending:
                self.step(session.model)
            if session.executor is not None:
                session.executor.shutdown(wait=True)

    # -- driving it ------------------------------------------------------------------------------

    def step(self, model: str) -> ProgressEvent:
        """Publish the next event of `model`'s operation (from its session's thread)."""
        with self._lock:
            session = self._sessions.get(model)
            if session is None or not session.pending:
                raise LookupError(f"{model}: nothing to publish")
            step = session.pending.popleft()
            if step.stage.is_terminal:
                session.pending.clear()
        return self._publish(session, step)

    def advance(self, model: str, stage: Stage) -> list[ProgressEvent]:
        """Step until the first event of `stage` is published; the events published."""
        published = []
        while not published or published[-1].stage is not stage:
            published.append(self.step(model))
        return published

    def finish(self, model: str) -> list[ProgressEvent]:
        """Publish the rest of `model`'s operation, to its terminal event."""
        published = []
        while self.pending(model):
            published.append(self.step(model))
        return published

    def fail(
        self,
        model: str,
        kind: ErrorKind,
        message: str | None = None,
        detail: Iterable[str] = (),
    ) -> ProgressEvent:
        """End the running load (or kill the loaded model's host) with an `ErrorInfo`."""
        info = ErrorInfo(kind, message or ERROR_MESSAGES[kind], tuple(detail))
        with self._lock:
            state = self._state(model)
            if state not in (ModelState.LOADING, ModelState.LOADED):
                raise LookupError(f"{model}: nothing running to fail ({state})")
            session = self._sessions[model]
            session.pending.clear()
        # A loaded host that dies reports as a load that failed, as the real session does.
        step = _Step(Stage.FAILED, info.message, op="load", fields={"error": info})
        return self._publish(session, step)

    def pending(self, model: str) -> tuple[Stage, ...]:
        """The stages still to be published in `model`'s operation."""
        with self._lock:
            session = self._sessions.get(model)
            return tuple(step.stage for step in session.pending) if session else ()

    # -- the sequence, as `ModelSession` makes it ----------------------------------------------

    def _load_steps(self, options: LoadOptions) -> list[_Step]:
        total = self.bytes_total
        n_ctx = options.n_ctx or self.default_n_ctx
        steps = [
            _Step(Stage.INITIALIZING, "Checking the model file"),
            _Step(Stage.PARSING, "Reading model metadata"),
            _Step(
                Stage.PARSING,
                "llama, Q8_0; CPU only: fits in RAM",
                fraction=1.0,
                fields={"bytes_total": total},
            ),
            _Step(Stage.LOADING, "Loading weights", fields={"bytes_done": 0, "bytes_total": total}),
        ]
        for index, fraction in enumerate(self.fractions):
            done = int(total * fraction)
            rate = self.rate_bps if index else None  # one sample gives no rate yet
            fields = {
                "bytes_done": done,
                "bytes_total": total,
                "rate_bps": rate,
                "eta_s": (total - done) / rate if rate else None,
            }
            steps.append(_Step(Stage.LOADING, "Loading weights", fraction, fields=fields))
        return [
            *steps,
            _Step(Stage.OPTIMIZING, f"Creating context ({n_ctx} tokens)"),
            _Step(Stage.FINALIZING, "Warming up: first decode"),
            _Step(
                Stage.COMPLETE,
                f"Ready ({n_ctx}-token context)",
                fields={
                    "bytes_done": total,
                    "bytes_total": total,
                    "memory_bytes": self.memory_bytes,
                },
            ),
        ]

    def _unload_steps(self) -> list[_Step]:
        memory = {"memory_bytes": self.memory_bytes}
        return [
            _Step(Stage.UNLOADING, "Unloading", op="unload", fields=memory),
            _Step(
                Stage.UNLOADED,
                f"Unloaded; freed {format_bytes(self.memory_bytes)}",
                op="unload",
                fields=memory,
            ),
        ]

    @staticmethod
    def _queue_cancel(session: _Session) -> None:
        message = ERROR_MESSAGES[ErrorKind.CANCELLED]
        error = ErrorInfo(ErrorKind.CANCELLED, message)
        session.pending = deque([_Step(Stage.CANCELLED, message, fields={"error": error})])

    # -- publishing ----------------------------------------------------------------------------

    def _state(self, model: str) -> ModelState | None:
        latest = self.bus.latest(model)
        return latest.state if latest is not None else None

    def _publish(self, session: _Session, step: _Step) -> ProgressEvent:
        """`ModelSession.emit`: the pct rule, then the bus, from the session's thread unless
        this is `connecting` (which `Engine.load` publishes from the caller's)."""

        def publish() -> ProgressEvent:
            if step.op is not None:
                session.op = step.op
            if session.op == "load" and step.stage in (Stage.FAILED, Stage.CANCELLED):
                pct = session.pct
            elif step.stage is Stage.UNLOADING:
                pct = 0.0
            else:
                pct = max(session.pct, stage_pct(step.stage, step.fraction))
            session.pct = pct
            event = ProgressEvent(
                model=session.model,
                seq=0,  # the bus numbers it
                stage=step.stage,
                pct=pct,
                message=step.message,
                op=session.op,
                **step.fields,
            )
            published = self.bus.publish(event)
            with self._published:
                self._published.notify_all()
            return published

        run: Callable[[], ProgressEvent] = publish
        if session.executor is None or step.stage is Stage.CONNECTING:
            return run()
        return session.executor.submit(run).result(PUBLISH_TIMEOUT_S)
