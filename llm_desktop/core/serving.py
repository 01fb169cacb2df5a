"""Serving models to other programs: load on request, keep-alive, memory-aware eviction, and
the log of recent requests.

`ModelServing` stands between a client's request (the OpenAI-compatible API, the window's Try
it, the CLI) and the engine. `acquire(model)` returns a `Lease` on a loaded model: a model not
loaded is loaded first (its load is an ordinary engine operation, on every card and stream,
with `Reason(kind="request")`). Before a load it plans the room (`plan_room`):

- at most `max_loaded` models (None: no limit) and, with a `memory_budget`, at most that many
  bytes held by loaded models together; always no more than the machine has (`fit`'s rule,
  RAM and the GPU's VRAM);
- when the new model does not fit, idle models are unloaded first, least recently used first,
  each with a `Reason(kind="evicted")` saying for whom and which limit;
- a model in use (a lease, a reply running or waiting) is never unloaded: the request waits
  for it, up to `room_wait_s`;
- when even unloading every loaded model would not make room, the request fails with
  out_of_memory at once, and nothing is unloaded.

Keep-alive: a model loaded on request is unloaded once idle for `keep_alive_s` (Ollama's
`keep_alive`, LM Studio's TTL). A per-model setting applies to any loaded model; a request's
own `keep_alive` applies to the model it asks for, until the next request says otherwise. A
model loaded by hand has no keep-alive unless one of those gives it one. The unload carries
`Reason(kind="idle")`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from llm_desktop.core import fit, hardware
from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.engine import Engine
from llm_desktop.core.events import (
    LIMIT_COUNT,
    LIMIT_MEMORY,
    REASON_EVICTED,
    REASON_IDLE,
    REASON_REQUEST,
    ErrorKind,
    ModelError,
    ModelState,
    Reason,
    Stage,
)
from llm_desktop.core.generation import Reply
from llm_desktop.core.options import LoadOptions

log = logging.getLogger(__name__)

DEFAULT_KEEP_ALIVE_S = 15 * 60.0
DEFAULT_LOAD_TIMEOUT_S = 600.0  # a request waits this long for its model to load
DEFAULT_ROOM_WAIT_S = 120.0  # …and this long for models in use to finish, to make room
REQUEST_LOG_LENGTH = 20  # requests kept per model
CHECK_INTERVAL_S = 1.0  # the keep-alive check's longest sleep
FOREVER = None
UNSET = object()  # a request that says nothing of keep_alive


class InvalidDuration(ValueError):
    pass


class InvalidSize(ValueError):
    pass


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATIONS = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: Any) -> float | None:
    """Ollama's keep_alive: seconds as a number, or a duration ("5m", "1h30m", "90s"); a
    negative value keeps the model loaded for good (None); 0 unloads it right after."""
    if isinstance(value, bool) or value is None:
        raise InvalidDuration(f"keep_alive must be seconds or a duration, not {value!r}")
    if isinstance(value, int | float):
        return None if value < 0 else float(value)
    text = str(value).strip().lower()
    try:
        number = float(text)
    except ValueError:
        negative = text.startswith("-")
        units = text.lstrip("-")
        if not units or not _DURATIONS.fullmatch(units):
            raise InvalidDuration(
                f"keep_alive {value!r} is not a duration: use seconds (300) or units (5m, 1h30m)"
            ) from None
        number = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(units))
        return None if negative else number
    return None if number < 0 else number


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)b?")
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(value: str) -> int:
    """Bytes from "12G", "800MB", "1.5g" or a plain number: decimal units, as every size in
    the app is shown."""
    match = _SIZE.fullmatch(str(value).strip().lower())
    if match is None:
        raise InvalidSize(f"{value!r} is not a size: use bytes or units (800M, 12G)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


@dataclass(frozen=True)
class ServingPolicy:
    keep_alive_s: float | None = DEFAULT_KEEP_ALIVE_S  # models loaded on request; None: forever
    max_loaded: int | None = None  # models loaded at once; None: as many as fit
    memory_budget: int | None = None  # bytes all loaded models may hold; None: what fits
    load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S
    room_wait_s: float = DEFAULT_ROOM_WAIT_S

    def to_dict(self) -> dict[str, Any]:
        return {
            "keep_alive_s": self.keep_alive_s,
            "max_loaded": self.max_loaded,
            "memory_budget": self.memory_budget,
        }


# -- planning room for a load ---------------------------------------------------------------


@dataclass(frozen=True)
class Resident:
    """A loaded model, as eviction sees it."""

    model: str
    memory: int  # bytes its host holds (measured when it finished loading)
    vram: int  # bytes of GPU memory it was expected to use (0 on the CPU)
    in_use: bool
    last_used: float


@dataclass(frozen=True)
class Room:
    """What to unload before a load, each with the limit it is unloaded for."""

    evict: tuple[tuple[Resident, str], ...] = ()


class NoRoom(Exception):
    """The model cannot be loaded now. `wait` is True when models in use hold the room (it
    may come once they are idle); False when it would not fit even with nothing loaded."""

    def __init__(self, message: str, *, wait: bool):
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class Need:
    """What a model needs to load: its estimate, and `fits(ram_free, vram_free)`, the fit
    rule asked of hypothetical free memory (after some unloads)."""

    ram: int
    vram: int  # expected on the GPU (0 on the CPU): recorded, so evicting it later counts it
    fits: Callable[[int, int], bool]
    title: str


def plan_room(
    need: Need,
    residents: Iterable[Resident],
    *,
    max_loaded: int | None,
    memory_budget: int | None,
    ram_free: int,
    vram_free: int,
) -> Room:
    """The least recently used idle models to unload so that `need` fits, or NoRoom."""
    residents = list(residents)
    idle = sorted((r for r in residents if not r.in_use), key=lambda r: r.last_used)
    busy = [r for r in residents if r.in_use]
    over_count = 0 if max_loaded is None else max(0, len(residents) + 1 - max_loaded)
    if max_loaded is not None and max_loaded < 1:
        raise NoRoom("The limit of loaded models is 0", wait=False)

    def fits_after(evicted: list[Resident]) -> bool:
        freed_ram = sum(r.memory for r in evicted)
        freed_vram = sum(r.vram for r in evicted)
        if memory_budget is not None:
            held = sum(r.memory for r in residents) - freed_ram
            if held + need.ram > memory_budget:
                return False
        return need.fits(ram_free + freed_ram, vram_free + freed_vram)

    # Would it fit with every model unloaded? If not, unloading anything is pointless.
    if not fits_after(residents) or (memory_budget is not None and need.ram > memory_budget):
        budget = f" (budget {fit.format_bytes(memory_budget)})" if memory_budget else ""
        raise NoRoom(
            f"Out of memory - {need.title} needs about {fit.format_bytes(need.ram)}, more than "
            f"this machine can give it even with no other model loaded{budget}",
            wait=False,
        )
    for count in range(len(idle) + 1):
        evicted = idle[:count]
        if count >= over_count and fits_after(evicted):
            return Room(
                tuple(
                    (r, LIMIT_COUNT if index < over_count else LIMIT_MEMORY)
                    for index, r in enumerate(evicted)
                )
            )
    in_use = ", ".join(r.model for r in busy)
    raise NoRoom(f"The models in use ({in_use}) hold the room {need.title} needs", wait=True)


def gpu_share(verdict: fit.FitVerdict) -> int:
    """The GPU memory a load judged so is expected to take: all of the estimate on the GPU,
    the offloaded layers' share of it when split, none on the CPU."""
    if verdict.verdict == "gpu":
        return verdict.estimate.total
    if verdict.verdict == "partial" and verdict.total_layers:
        return verdict.estimate.total * verdict.gpu_layers // (verdict.total_layers + 1)
    return 0


# -- the log of requests --------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One finished request to a model, as the window's list and `/api/serving` show it."""

    model: str
    endpoint: str  # "chat", "completion", "embedding"
    client: str
    started: float  # time.time()
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # from the request's arrival to its last piece
    first_token_s: float | None  # from its arrival to its first piece (waiting and loading too)
    tokens_per_second: float | None
    finish_reason: str
    error_kind: str | None = None
    loaded_for_it: bool = False  # the request waited for its model to load

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "endpoint": self.endpoint,
            "client": self.client,
            "started": self.started,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 4),
            "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 4),
            "tokens_per_second": (
                None if self.tokens_per_second is None else round(self.tokens_per_second, 2)
            ),
            "finish_reason": self.finish_reason,
            "error_kind": self.error_kind,
            "loaded_for_it": self.loaded_for_it,
        }


# -- the service ----------------------------------------------------------------------------


@dataclass
class Lease:
    """A hold on a loaded model while a request uses it: while any lease is open, neither
    keep-alive nor eviction unloads the model. Release it when the request ends."""

    serving: ModelServing
    model: str
    loaded_for_it: bool
    arrived: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    _released: bool = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.serving._release(self)

    def record(
        self, endpoint: str, client: str, reply: Reply | None, error_kind: str | None = None
    ) -> RequestRecord:
        """Log the request (once its reply ended, or failed before it began)."""
        now = time.monotonic()
        first = reply.first_piece_at if reply is not None else None
        record = RequestRecord(
            model=self.model,
            endpoint=endpoint,
            client=client,
            started=self.started_wall,
            prompt_tokens=reply.prompt_tokens if reply else 0,
            completion_tokens=reply.completion_tokens if reply else 0,
            seconds=((reply.ended_at or now) if reply else now) - self.arrived,
            first_token_s=None if first is None else first - self.arrived,
            tokens_per_second=reply.tokens_per_second if reply else None,
            finish_reason=(reply.finish_reason or "error") if reply else "error",
            error_kind=error_kind or (str(reply.error.kind) if reply and reply.error else None),
            loaded_for_it=self.loaded_for_it,
        )
        self.serving._log(record)
        return record

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


class ModelServing:
    """Load on request, keep-alive and eviction over one engine (see the module's doc)."""

    def __init__(
        self,
        engine: Engine,
        lookup: Callable[[str], ModelEntry | None],
        policy: ServingPolicy | None = None,
        *,
        options: Callable[[str], LoadOptions] | None = None,
        read_ram: Callable[[], hardware.RamInfo] = hardware.read_ram,
    ):
        self.engine = engine
        self.lookup = lookup  # model id → its catalog entry (None: not in the library)
        self.policy = policy or ServingPolicy()
        self.options = options or (lambda _model: LoadOptions())
        self.read_ram = read_ram
        self._lock = threading.RLock()  # plans and starts loads one at a time
        self._changed = threading.Condition()
        self._leases: dict[str, int] = {}
        self._requested: set[str] = set()  # loaded on request: the global keep-alive applies
        self._model_keep_alive: dict[str, float | None] = {}  # the per-model setting
        self._request_keep_alive: dict[str, float | None] = {}  # the last request's own
        self._vram: dict[str, int] = {}
        self._log_lock = threading.Lock()
        self._requests: dict[str, deque[RequestRecord]] = {}
        self._listeners: list[Callable[[RequestRecord], None]] = []
        self._closed = threading.Event()
        self._subscription = engine.bus.subscribe(self._on_event)
        self._monitor = threading.Thread(target=self._watch, name="keep-alive", daemon=True)
        self._monitor.start()

    # -- settings -------------------------------------------------------------------------

    def set_policy(self, policy: ServingPolicy) -> None:
        self.policy = policy
        self._notify()

    def set_keep_alive(self, model: str, seconds: float | None, *, clear: bool = False) -> None:
        """The model's own keep-alive (None: forever); `clear` goes back to the global one."""
        if clear:
            self._model_keep_alive.pop(model, None)
        else:
            self._model_keep_alive[model] = seconds
        self._notify()

    def keep_alive_of(self, model: str) -> float | None:
        """Seconds of idleness after which `model` is unloaded (None: never)."""
        if model in self._request_keep_alive:
            return self._request_keep_alive[model]
        if model in self._model_keep_alive:
            return self._model_keep_alive[model]
        return self.policy.keep_alive_s if model in self._requested else FOREVER

    # -- leases ---------------------------------------------------------------------------

    def acquire(
        self,
        model: str,
        *,
        keep_alive_s: float | object | None = UNSET,
        client: str = "api",
    ) -> Lease:
        """A lease on `model`, loaded: loading it (after making room) when it is not. Blocks
        until it is loaded; raises `ModelError` with the load's own named failure, or
        out_of_memory when no room can be made. `keep_alive_s` (when given) is the request's
        own keep-alive for the model."""
        arrived, arrived_wall = time.monotonic(), time.time()  # the log counts the load too
        entry = self.lookup(model)
        if entry is None:
            raise ModelError(ErrorKind.NOT_FOUND, f"No model with id {model!r}")
        if entry.error is not None:
            raise ModelError(ErrorKind.INVALID_MODEL, entry.error)
        deadline = time.monotonic() + self.policy.load_timeout_s
        room_deadline = time.monotonic() + self.policy.room_wait_s
        loaded_for_it = False
        while True:
            with self._lock:
                state = self.engine.state(model)
                if state is not None and state.stage is Stage.COMPLETE:
                    lease = Lease(self, model, loaded_for_it, arrived, arrived_wall)
                    return self._hold(lease, keep_alive_s)
                busy = state is not None and state.state in (
                    ModelState.LOADING,
                    ModelState.UNLOADING,
                )
                if busy:
                    after = state.seq
                elif need := self._make_room(entry, time.monotonic() >= room_deadline):
                    self._vram[model] = need.vram  # what unloading it later gives back
                    after = self.engine.bus.last_seq
                    self.engine.load(
                        entry.path,
                        self.options(model),
                        model=model,
                        reason=Reason(REASON_REQUEST, client=client),
                    )
                    self._requested.add(model)
                else:
                    after = None
            if after is None:  # models in use hold the room: wait for one to be idle
                self._wait_for_change(room_deadline - time.monotonic())
                continue
            loaded_for_it = True
            self._await_settled(model, after, deadline)

    def _hold(self, lease: Lease, keep_alive_s) -> Lease:
        self._leases[lease.model] = self._leases.get(lease.model, 0) + 1
        if keep_alive_s is not UNSET:
            self._request_keep_alive[lease.model] = keep_alive_s
        return lease

    def _release(self, lease: Lease) -> None:
        with self._lock:
            left = self._leases.get(lease.model, 1) - 1
            if left > 0:
                self._leases[lease.model] = left
            else:
                self._leases.pop(lease.model, None)
        self._notify()

    def _await_settled(self, model: str, after: int, deadline: float) -> None:
        """Wait for the model's load (or unload) to end; raise its failure."""
        with self.engine.bus.stream(model, after=after) as stream:
            while True:
                current = self.engine.state(model)
                if current is not None and current.is_terminal:
                    event = current
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        limit = self.policy.load_timeout_s
                        raise ModelError(
                            ErrorKind.TIMEOUT, f"The model did not finish loading in {limit:.0f} s"
                        )
                    event = stream.get(min(remaining, 1.0))
                    if event is None or not event.is_terminal:
                        continue
                if event.stage is Stage.COMPLETE or event.stage is Stage.UNLOADED:
                    return  # loaded (the caller takes its lease) or unloaded (it loads again)
                if event.error is not None:
                    raise ModelError.from_info(event.error)
                raise ModelError(ErrorKind.CANCELLED, "The load was cancelled")

    # -- room -----------------------------------------------------------------------------

    def residents(self) -> list[Resident]:
        residents = []
        for model in self.engine.loaded_models():
            usage = self.engine.usage(model)
            if usage is None:
                continue
            residents.append(
                Resident(
                    model=model,
                    memory=usage.memory_bytes or 0,
                    vram=self._vram.get(model, 0),
                    in_use=usage.in_use or self._leases.get(model, 0) > 0,
                    last_used=usage.last_used,
                )
            )
        return residents

    def need_of(self, entry: ModelEntry) -> Need:
        """What loading `entry` takes: the fit estimate for its load options, plus what a model
        host itself holds (measured on a host that has loaded nothing)."""
        options = self.options(entry.id)
        shape = fit.ModelShape.from_entry(entry)
        n_ctx = options.n_ctx or fit.default_context(entry.context_length)
        host = self.engine.host_baseline_bytes()
        gpus = self.engine.gpu_monitor.read()
        build = self.engine.gpu_monitor.llama_build
        ram = self.read_ram()

        def fits(ram_free: int, vram_free: int) -> bool:
            room = hardware.RamInfo(total=ram.total, available=max(0, ram_free - host), used=0)
            devices = [replace(gpu, memory_free=vram_free) for gpu in gpus[:1]]
            verdict = fit.assess(
                shape, n_ctx, room, devices, gpu_layers=options.n_gpu_layers, llama_build=build
            )
            return verdict.verdict != "no"

        estimate = fit.estimate(shape, n_ctx)
        now = fit.assess(
            shape, n_ctx, ram, gpus, gpu_layers=options.n_gpu_layers, llama_build=build
        )
        return Need(
            ram=estimate.total + host, vram=gpu_share(now), fits=fits, title=entry.display_name
        )

    def _make_room(self, entry: ModelEntry, last_try: bool) -> Need | None:
        """Unload what `plan_room` says and return what the model needs; None when models in
        use hold the room (the caller waits for them); out_of_memory when no room can be
        made, or when waiting has lasted long enough (`last_try`)."""
        need = self.need_of(entry)
        ram = self.read_ram()
        gpus = self.engine.gpu_monitor.read()
        try:
            room = plan_room(
                need,
                self.residents(),
                max_loaded=self.policy.max_loaded,
                memory_budget=self.policy.memory_budget,
                ram_free=ram.available,
                vram_free=max((gpu.memory_free for gpu in gpus), default=0),
            )
        except NoRoom as exc:
            if exc.wait and not last_try:
                return None
            raise ModelError(ErrorKind.OUT_OF_MEMORY, str(exc)) from None
        for resident, limit in room.evict:
            reason = Reason(
                REASON_EVICTED,
                for_model=entry.id,
                for_title=entry.display_name,
                limit=limit,
                max_loaded=self.policy.max_loaded if limit == LIMIT_COUNT else None,
            )
            self._unload_and_wait(resident.model, reason)
        return need

    def _unload_and_wait(self, model: str, reason: Reason) -> None:
        after = self.engine.bus.last_seq
        if not self.engine.unload(model, reason):
            return
        with self.engine.bus.stream(model, after=after) as stream:
            for _event in stream.until_terminal(timeout=30.0):
                pass

    def _wait_for_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout=max(0.05, min(timeout, CHECK_INTERVAL_S)))

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _on_event(self, event) -> None:
        if event.op != "load" and event.op != "unload":
            return
        if event.stage is Stage.UNLOADED or event.stage is Stage.FAILED:
            self._request_keep_alive.pop(event.model, None)
            self._requested.discard(event.model)
        if event.is_terminal:
            self._notify()

    # -- keep-alive -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed.is_set():
            try:
                self.expire_idle()
            except Exception:
                log.exception("keep-alive check failed")
            with self._changed:
                self._changed.wait(timeout=CHECK_INTERVAL_S)

    def expire_idle(self, now: float | None = None) -> list[str]:
        """Unload the models idle for longer than their keep-alive; the ones it unloaded."""
        now = time.monotonic() if now is None else now
        unloaded = []
        with self._lock:
            for resident in self.residents():
                keep_alive = self.keep_alive_of(resident.model)
                idle = now - resident.last_used
                if resident.in_use or keep_alive is None or idle < keep_alive:
                    continue
                if self.engine.unload(resident.model, Reason(REASON_IDLE, idle_s=round(idle, 1))):
                    unloaded.append(resident.model)
        return unloaded

    # -- the request log ------------------------------------------------------------------

    def _log(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._requests.setdefault(record.model, deque(maxlen=REQUEST_LOG_LENGTH)).append(record)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(record)
            except Exception:
                log.exception("a request-log listener failed")

    def requests(self, model: str | None = None) -> list[RequestRecord]:
        """The last requests (of `model`, or of every model), newest first."""
        with self._log_lock:
            lines = [self._requests.get(model, ())] if model else list(self._requests.values())
            records = [record for line in lines for record in line]
        return sorted(records, key=lambda record: record.started, reverse=True)

    def on_request(self, listener: Callable[[RequestRecord], None]) -> None:
        """Call `listener` (on the request's thread) with each finished request."""
        with self._log_lock:
            self._listeners.append(listener)

    def close(self) -> None:
        self._closed.set()
        self._notify()
        self._subscription.close()
        self._monitor.join(timeout=2.0)
