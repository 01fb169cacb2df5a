"""A fake engine for UI tests: the real `EventBus` and the real engine's stage sequence, no hosts.

`FakeEngine` meets `EngineApi`. It records every call (`loads` with their `LoadOptions` and
reasons, `cancels`, `unloads`, `requests` with each `ReplyRequest`, `stops`) and publishes what
`Engine` would publish, but only when the test says so:

- `load` publishes `connecting` at once, in the caller's thread, as `Engine.load` does;
- `step(model)` publishes the next event of the model's operation, `advance(model, stage)` up to
  the first event of `stage`, `finish(model)` all of them; `fail(model, kind)` ends it with a
  failure (on a loaded model: a crash, as when the real host dies).
- `cancel` and `unload` only queue what the session would publish (`cancelled`; `unloading`,
  `unloaded`): the test steps them like the rest.
- `reply` gives `pieces` (cut at the request's max_tokens) to the sink at once, in the caller's
  thread, and ends the reply as the real one would ("length" when cut, else "stop"); with
  `hold_replies`, it stays open after its pieces until stopped (`stop_generation`, its
  `cancel`) or ended (`end_replies`), so a test can press Stop mid-reply. An unload, a crash or
  a shutdown ends open replies with an error, as the real session does.

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
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llm_desktop.core import generation
from llm_desktop.core.bus import EventBus
from llm_desktop.core.engine import ModelUsage
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
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.generation import (
    EMBEDDING,
    FINISH_ERROR,
    FINISH_LENGTH,
    FINISH_STOP,
    Reply,
    ReplyRequest,
)
from llm_desktop.core.hardware import GpuMonitor
from llm_desktop.core.model_names import model_id as file_model_id
from llm_desktop.core.options import LoadOptions
from tests.helpers.fake_nvml import FakeNvml

MiB = 1024 * 1024
PUBLISH_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LoadCall:
    model: str
    path: str
    options: LoadOptions
    reason: Reason | None = None


@dataclass(frozen=True)
class _Step:
    """One event a session would publish; its pct is worked out when it is published."""

    stage: Stage
    message: str
    fraction: float = 0.0
    op: str | None = None  # the operation it belongs to from now on (None: unchanged)
    fields: dict[str, Any] = field(default_factory=dict)
    reason: Reason | None = None  # with `op`: why the engine began it on its own


class _Session:
    def __init__(self, model: str, threaded: bool) -> None:
        self.model = model
        self.pct = 0.0
        self.op = "load"
        self.reason: Reason | None = None  # on every event of the operation, as the real one
        self.pending: deque[_Step] = deque()
        self.replies: list[Reply] = []  # open: answered, or held open by `hold_replies`
        self.last_used = 0.0
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
        pieces: Iterable[str] = ("Hello", ",", " world"),
        hold_replies: bool = False,
        bus: EventBus | None = None,
        gpu_monitor: GpuMonitor | None = None,
    ) -> None:
        self.bus = bus or EventBus()
        # No GPU, and no model host asked what llama.cpp can use.
        self.gpu_monitor = gpu_monitor or GpuMonitor(nvml=FakeNvml([]), llama_build=lambda: None)
        self.threaded = threaded
        self.bytes_total = bytes_total
        self.fractions = tuple(fractions)
        self.rate_bps = rate_bps
        self.memory_bytes = memory_bytes
        self.default_n_ctx = default_n_ctx
        self.pieces = tuple(pieces)
        self.hold_replies = hold_replies
        self.loads: list[LoadCall] = []
        self.cancels: list[str] = []
        self.unloads: list[str] = []
        self.requests: list[tuple[str, ReplyRequest]] = []
        self.stops: list[tuple[str, str]] = []  # (model, client)
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
        reason: Reason | None = None,
    ) -> str:
        model = model or file_model_id(path)
        options = options or LoadOptions()
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            self.loads.append(LoadCall(model, os.fspath(path), options, reason))
            if self._state(model) in (ModelState.LOADING, ModelState.LOADED):
                return model  # attaches to the running load or the loaded model
            session = self._sessions.get(model)
            if session is None:
                session = self._sessions[model] = _Session(model, self.threaded)
            session.pct, session.op, session.reason = 0.0, "load", reason
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

    def unload(self, model: str, reason: Reason | None = None) -> bool:
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
                session.pending = deque(self._unload_steps(reason))
        self._end_replies(session, ErrorInfo(ErrorKind.CANCELLED, "The model was unloaded"))
        return True

    def reply(self, model: str, request: ReplyRequest, sink: Callable[[str | None], None]) -> Reply:
        if self._state(model) is not ModelState.LOADED:
            raise ModelError(ErrorKind.NOT_FOUND, "The model is not loaded")
        if request.mode == EMBEDDING:  # the fake's models all generate
            raise ModelError(ErrorKind.CANNOT_EMBED, ERROR_MESSAGES[ErrorKind.CANNOT_EMBED])
        reply = Reply(request, sink)
        reply.started_at = time.monotonic()
        with self._lock:
            session = self._sessions[model]
            self.requests.append((model, request))
            session.replies.append(reply)
            session.last_used = time.monotonic()
        reply.on_cancel = lambda cancelled: self._end(session, cancelled, FINISH_STOP)
        limit = len(self.pieces) if request.max_tokens is None else request.max_tokens
        for piece in self.pieces[:limit]:
            if reply.done.is_set():
                break
            reply.put(piece)
            reply.completion_tokens += 1
        if not self.hold_replies:
            self._end(session, reply, FINISH_LENGTH if limit < len(self.pieces) else FINISH_STOP)
        return reply

    def generate(
        self, model: str, request: ReplyRequest | str, max_tokens: int = 64
    ) -> Iterator[str]:
        return generation.stream(self.reply, model, request, max_tokens)

    def stop_generation(self, model: str, client: str = "app") -> None:
        with self._lock:
            self.stops.append((model, client))
            session = self._sessions.get(model)
            replies = list(session.replies) if session is not None else []
        for reply in replies:
            if reply.request.client == client:
                reply.cancel()

    def end_replies(self, model: str) -> None:
        """End the replies `hold_replies` keeps open, as a model that said all it had to."""
        with self._lock:
            session = self._sessions[model]
            replies = list(session.replies)
        for reply in replies:
            self._end(session, reply, FINISH_STOP)

    def usage(self, model: str) -> ModelUsage | None:
        if self._state(model) is not ModelState.LOADED:
            return None
        with self._lock:
            session = self._sessions[model]
            return ModelUsage(
                in_use=bool(session.replies),
                last_used=session.last_used,
                memory_bytes=self.memory_bytes,
                makes_embeddings=False,
            )

    def loaded_models(self) -> list[str]:
        with self._lock:
            models = list(self._sessions)
        return [model for model in models if self._state(model) is ModelState.LOADED]

    def host_baseline_bytes(self) -> int:
        return 0  # no model host was measured, as the real one before its first host

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
            self._end_replies(session, ErrorInfo(ErrorKind.CANCELLED, "The model was unloaded"))
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
            session.reason = None
        self._end_replies(session, info)
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

    def _unload_steps(self, reason: Reason | None = None) -> list[_Step]:
        memory = {"memory_bytes": self.memory_bytes}
        return [
            _Step(Stage.UNLOADING, "Unloading", op="unload", fields=memory, reason=reason),
            _Step(
                Stage.UNLOADED,
                f"Unloaded; freed {format_bytes(self.memory_bytes)}",
                op="unload",
                fields=memory,
                reason=reason,
            ),
        ]

    @staticmethod
    def _queue_cancel(session: _Session) -> None:
        message = ERROR_MESSAGES[ErrorKind.CANCELLED]
        error = ErrorInfo(ErrorKind.CANCELLED, message)
        session.pending = deque([_Step(Stage.CANCELLED, message, fields={"error": error})])

    # -- replies -------------------------------------------------------------------------------

    def _end(self, session: _Session, reply: Reply, reason: str) -> None:
        """End an open reply (a cancelled one ends "cancelled", as `Reply.finish` says)."""
        with self._lock:
            if reply not in session.replies:
                return
            session.replies.remove(reply)
            session.last_used = time.monotonic()
        reply.finish(reason, prompt_tokens=_prompt_tokens(reply.request))

    def _end_replies(self, session: _Session, error: ErrorInfo) -> None:
        with self._lock:
            replies, session.replies = session.replies, []
        for reply in replies:
            reply.finish(FINISH_ERROR, error=error)

    # -- publishing ----------------------------------------------------------------------------

    def _state(self, model: str) -> ModelState | None:
        latest = self.bus.latest(model)
        return latest.state if latest is not None else None

    def _publish(self, session: _Session, step: _Step) -> ProgressEvent:
        """`ModelSession.emit`: the pct rule, then the bus, from the session's thread unless
        this is `connecting` (which `Engine.load` publishes from the caller's)."""

        def publish() -> ProgressEvent:
            if step.op is not None:
                session.op, session.reason = step.op, step.reason
            if step.stage is Stage.COMPLETE:
                session.last_used = time.monotonic()  # keep-alive counts from the load's end
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
                reason=session.reason,
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


def _prompt_tokens(request: ReplyRequest) -> int:
    """A stand-in for the tokenizer: one token a word of what was sent."""
    texts = [content for _role, content in request.messages] or [request.prompt]
    return sum(len(text.split()) for text in texts)
