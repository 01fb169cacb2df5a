"""A remote engine: the models of one llama.cpp router, as events on our one bus.

`RemoteEngine` is the second implementation of the engine seam (`EngineApi`'s load, cancel,
unload, state and wait): above it, a remote model is a card like any other, keyed by
`remote_key(source, router_id)`. Under it, one thread per router keeps the router's event
stream (`GET /models/sse`) open and turns each frame into our events through `RouterTranslator`,
a pure mapping tested without a router.

What the mapping promises:
- Only what the router reports. A router load reports its start, one progress value (0, then
  1.0 once the weights are in, measured) and its end; the card shows that and no invented
  stages (`engine` on each event tells the presenter the progress is the router's).
- Named failures. A model process that exits with a code is `engine_crashed`, with the code and
  the state it was in; a refusal of the router's is its own kind (`router_client`).
- No card left loading. When the connection drops, a loading model fails with `network`
  ("lost contact"); on reconnecting, `GET /models` resynchronises every model and says how long
  the gap was. The stream has no heartbeat, so while it is quiet the engine reads `GET /models`
  every `check_s`: a router whose state moved on without a frame (two checks in a row) has a
  stalled stream, which is reopened.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm_desktop.core import catalog
from llm_desktop.core.bus import EventBus
from llm_desktop.core.events import (
    LIMIT_COUNT,
    OP_DOWNLOAD,
    OP_LOAD,
    OP_UNLOAD,
    REASON_EVICTED,
    ErrorInfo,
    ErrorKind,
    ModelError,
    ProgressEvent,
    Reason,
    Stage,
)
from llm_desktop.core.model_names import slug
from llm_desktop.core.presenter import format_seconds
from llm_desktop.core.router_client import (
    RouterClient,
    RouterStateConflict,
    StreamClosed,
    StreamSilent,
)

# Router statuses (llama.cpp's server_model_status).
UNLOADED = "unloaded"
LOADING = "loading"
LOADED = "loaded"
SLEEPING = "sleeping"
DOWNLOADING = "downloading"
RUNNING = frozenset({LOADING, LOADED, SLEEPING})

RATE_WINDOW_S = 5.0


def remote_key(source: str, router_id: str) -> str:
    """The card key of a router's model: readable, unique per source, and of the same shape as
    a local model id (a slug and hex digits), so every surface takes it as it is."""
    digest = hashlib.sha1(f"{source}\0{router_id}".encode()).hexdigest()[:10]
    return f"{slug(source)}-{slug(router_id)}-{digest}"


def transfer_key(source: str, router_id: str) -> str:
    return f"download:{source}:{router_id}"


@dataclass(frozen=True)
class ConnectionStatus:
    """Where a source's connection stands, for the sources list and the cards."""

    name: str
    url: str
    state: str  # "connecting", "connected" or "disconnected"
    since: float  # time.time() of the last change
    error: ErrorInfo | None = None
    retry_in_s: float | None = None  # disconnected: the next attempt
    gap_s: float | None = None  # connected again: how long the connection was down
    models: int = 0
    loaded: int = 0
    max_loaded: int | None = None  # the router's --models-max (0: no limit)
    build: str | None = None  # the router's build_info

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in self.__dataclass_fields__},
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass
class RouterModel:
    """What we know of one of the router's models."""

    router_id: str
    key: str
    status: str = UNLOADED
    failed: bool = False
    exit_code: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # info.meta once loaded
    args: tuple[str, ...] = ()
    load_started: float | None = None
    progress_values: list[float] = field(default_factory=list)
    unload_requested: bool = False
    cancel_requested: bool = False
    lost_at: float | None = None  # time.monotonic() when contact was lost during an operation
    download: deque = field(default_factory=deque)  # (monotonic, bytes done) samples


# The router's flags for what a person sets per model (in its preset file or its command line).
CONTEXT_FLAGS = ("-c", "--ctx-size")
GPU_LAYER_FLAGS = ("-ngl", "--n-gpu-layers", "--gpu-layers")


def router_options(args: tuple[str, ...]) -> tuple[int | None, int | None]:
    """The context size and GPU layers a router's model process is started with (its
    `status.args`), None where they are left to llama.cpp's defaults."""

    def value_of(flags: tuple[str, ...]) -> int | None:
        for index, arg in enumerate(args[:-1]):
            if arg in flags:
                try:
                    return int(args[index + 1])
                except ValueError:
                    return None  # "auto", "all": not a number to show as one
        return None

    return value_of(CONTEXT_FLAGS), value_of(GPU_LAYER_FLAGS)


def model_entry(source: str, model: RouterModel) -> catalog.ModelEntry:
    """The card's catalog entry: only what the router lists. It reads no GGUF metadata before
    a load, so shape fields stay unknown until the loaded model's `meta` tells some."""
    meta = model.meta
    context = meta.get("n_ctx_train") or meta.get("n_ctx")
    quantization = str(meta.get("ftype", "")).removeprefix("all ").strip() or "?"
    context_option, gpu_layers_option = router_options(model.args)
    return catalog.ModelEntry(
        id=model.key,
        path=model.router_id,
        parts=(),
        source="remote",
        display_name=model.router_id,
        architecture="",
        size_label=None,
        parameter_count=meta.get("n_params"),
        quantization=quantization,
        context_length=int(context) if context else None,
        block_count=None,
        embedding_length=meta.get("n_embd"),
        head_count=None,
        head_count_kv=None,
        key_length=None,
        value_length=None,
        vocab_size=meta.get("n_vocab"),
        file_size=int(meta.get("size") or 0),
        mtime=0.0,
        engine=source,
        engine_context=context_option,
        engine_gpu_layers=gpu_layers_option,
    )


class RouterTranslator:
    """Router frames and listings → our events (as `ProgressEvent` field dicts, unnumbered).
    Pure: no I/O, the clock passed in."""

    def __init__(self, source: str):
        self.source = source
        self.models: dict[str, RouterModel] = {}
        self.max_loaded: int | None = None
        self.pending_load: str | None = None  # the router id our own load asked for

    # -- the listing ---------------------------------------------------------------------------

    def model(self, router_id: str) -> RouterModel:
        model = self.models.get(router_id)
        if model is None:
            model = RouterModel(router_id, remote_key(self.source, router_id))
            self.models[router_id] = model
        return model

    def by_key(self, key: str) -> RouterModel | None:
        return next((model for model in self.models.values() if model.key == key), None)

    def differs(self, listing: list[dict[str, Any]]) -> bool:
        """Whether the router's listing says something our events have not: a state moved on
        without a frame, or a model came or went."""
        seen = {str(item["id"]): listed_status(item) for item in listing}
        if set(seen) != set(self.models):
            return True
        return any(self.models[router_id].status != status for router_id, status in seen.items())

    def resync(self, listing: list[dict[str, Any]], now: float, *, first: bool) -> list[dict]:
        """Events that bring every card to the router's listed state (after a connect, a
        reconnect or a stalled stream). On the first connect, unloaded models need none."""
        out: list[dict] = []
        listed = set()
        for item in listing:
            router_id = str(item["id"])
            listed.add(router_id)
            model = self.model(router_id)
            status = listed_status(item)
            listed_state = item.get("status") if isinstance(item.get("status"), dict) else {}
            model.args = tuple(str(arg) for arg in listed_state.get("args", ()) or ())
            if isinstance(item.get("meta"), dict):
                model.meta = item["meta"]
            failed = bool(listed_state.get("failed"))
            exit_code = listed_state.get("exit_code")
            was, lost_at = model.status, model.lost_at
            gap = f" after a gap of {format_seconds(now - lost_at)}" if lost_at is not None else ""
            model.lost_at = None
            if status == was and not (lost_at is not None and status == UNLOADED):
                model.failed, model.exit_code = failed, exit_code
                continue
            model.status, model.failed, model.exit_code = status, failed, exit_code
            if status == LOADED:
                out.append(self._event(model, Stage.COMPLETE, f"Loaded on {self.source}{gap}"))
            elif status == SLEEPING:
                out.append(self._sleeping(model))
            elif status == LOADING:
                model.load_started, model.progress_values = now, []
                message = f"Loading on {self.source} (under way when we connected{gap})"
                out.append(self._event(model, Stage.LOADING, message, pct=0.0, elapsed_s=0.0))
            elif status == UNLOADED and not (first and was == UNLOADED):
                if failed and was == LOADING:
                    out.append(self._crashed(model, exit_code, LOADING))
                else:
                    words = f"Not loaded on {self.source}"
                    if lost_at is not None:
                        words += f" (found so on reconnecting{gap})"
                    out.append(self._event(model, Stage.UNLOADED, words, op=OP_UNLOAD))
        for router_id in set(self.models) - listed:
            model = self.models.pop(router_id)
            if model.status in RUNNING:
                words = f"No longer listed on {self.source}"
                out.append(self._event(model, Stage.UNLOADED, words, op=OP_UNLOAD))
        return out

    def lost(self, now: float, error: ErrorInfo) -> list[dict]:
        """The connection dropped: no operation stays under way on a card. A loading or
        unloading model fails (`network`); loaded ones stay as they were last seen."""
        out = []
        for model in self.models.values():
            if model.status == LOADING or model.unload_requested or model.cancel_requested:
                model.lost_at = now
                was = "loading" if model.status == LOADING else "unloading"
                model.status = UNLOADED if model.status == LOADING else model.status
                model.unload_requested = model.cancel_requested = False
                info = ErrorInfo(
                    ErrorKind.NETWORK,
                    f"Lost contact with {self.source} while {was}; its state shows on reconnecting",
                    (error.message,),
                )
                out.append(self._event(model, Stage.FAILED, info.message, error=info))
            elif model.status in (LOADED, SLEEPING):
                model.lost_at = now
        return out

    # -- frames --------------------------------------------------------------------------------

    def frame(self, frame: dict[str, Any], now: float) -> list[dict]:
        event = frame.get("event")
        router_id = frame.get("model")
        data = frame.get("data") if isinstance(frame.get("data"), dict) else {}
        if not isinstance(router_id, str):
            return []
        if event in ("status_change", "model_status"):
            return self._status_change(self.model(router_id), data, now)
        if event == "download_progress":
            return self._download_progress(router_id, data, now)
        if event in ("download_finished", "download_failed"):
            return self._download_end(router_id, event == "download_finished")
        if event == "model_remove":
            model = self.models.pop(router_id, None)
            if model is not None and model.status in RUNNING:
                return [self._event(model, Stage.UNLOADED, f"Removed from {self.source}")]
        return []

    def tick(self, now: float) -> list[dict]:
        """While a load runs, how long it has run (the router reports nothing in between)."""
        return [
            self._loading(model, now)
            for model in self.models.values()
            if model.status == LOADING and model.load_started is not None
        ]

    def _status_change(self, model: RouterModel, data: dict, now: float) -> list[dict]:
        status = data.get("status")
        if status == DOWNLOADING:
            return []  # the download's own frames follow
        was = model.status
        if status == LOADING:
            progress = data.get("progress") if isinstance(data.get("progress"), dict) else {}
            value = progress.get("value")
            if was != LOADING:
                model.status, model.load_started, model.progress_values = LOADING, now, []
                model.failed, model.exit_code = False, None
            if self.pending_load == model.router_id:
                self.pending_load = None  # evictions for it came before this frame
            if isinstance(value, int | float):
                model.progress_values.append(float(value))
            return [self._loading(model, now)]
        if status == LOADED:
            model.status = LOADED
            info = data.get("info") if isinstance(data.get("info"), dict) else {}
            if isinstance(info.get("meta"), dict):
                model.meta = info["meta"]
            if was == SLEEPING:
                return [self._event(model, Stage.COMPLETE, f"Awake on {self.source}")]
            took = now - model.load_started if model.load_started is not None else None
            model.load_started = None
            timeline = (("load", round(took, 3)),) if took else None
            return [
                self._event(model, Stage.COMPLETE, f"Loaded on {self.source}", timeline=timeline)
            ]
        if status == SLEEPING:
            model.status = SLEEPING
            return [self._sleeping(model)]
        if status == UNLOADED:
            return [self._unloaded(model, data, was)]
        return []

    def _unloaded(self, model: RouterModel, data: dict, was: str) -> dict:
        exit_code = data.get("exit_code", 0)
        cancel, unload = model.cancel_requested, model.unload_requested
        model.status, model.load_started = UNLOADED, None
        model.cancel_requested = model.unload_requested = False
        model.exit_code, model.failed = exit_code, bool(exit_code)
        if cancel and was == LOADING:
            # The router ends a loading model by killing its process: its exit code is ours.
            model.failed = False
            return self._event(model, Stage.CANCELLED, f"Loading cancelled on {self.source}")
        if unload:
            # Asked for: the router force-kills a process that does not stop within its
            # timeout, so a code here is how it stopped, not a crash.
            model.failed = False
            words = f"Unloaded on {self.source}"
            if exit_code:
                words += f" (its process was stopped with exit code {exit_code})"
            return self._event(model, Stage.UNLOADED, words, op=OP_UNLOAD)
        if exit_code:
            return self._crashed(model, exit_code, was)
        running = sum(1 for other in self.models.values() if other.status in RUNNING)
        if self.max_loaded and running + 1 >= self.max_loaded:
            # Nobody here asked: the router unloads its least recently used model when a load
            # would pass --models-max, before the new load's first frame.
            pending = self.models.get(self.pending_load) if self.pending_load else None
            reason = Reason(
                REASON_EVICTED,
                for_model=pending.key if pending else None,
                for_title=pending.router_id if pending else "another model",
                limit=LIMIT_COUNT,
                max_loaded=self.max_loaded,
            )
            return self._event(
                model, Stage.UNLOADED, f"Unloaded by {self.source}", op=OP_UNLOAD, reason=reason
            )
        return self._event(
            model, Stage.UNLOADED, f"Unloaded on {self.source} by another client", op=OP_UNLOAD
        )

    def _crashed(self, model: RouterModel, exit_code: Any, was: str) -> dict:
        during = {LOADING: "while loading", SLEEPING: "while asleep"}.get(was, "")
        words = f"The model's process on {self.source} exited with code {exit_code}"
        if during:
            words += f" {during}"
        info = ErrorInfo(
            ErrorKind.ENGINE_CRASHED,
            words,
            (
                f"{self.source} reports only the exit code; its own log says why",
                *model.args,
            ),
        )
        return self._event(model, Stage.FAILED, words, error=info)

    def _loading(self, model: RouterModel, now: float) -> dict:
        value = model.progress_values[-1] if model.progress_values else 0.0
        elapsed = now - model.load_started if model.load_started is not None else 0.0
        return self._event(
            model,
            Stage.LOADING,
            f"Loading on {self.source}",
            pct=round(min(value, 1.0) * 99, 2),  # the end is the router's `loaded`
            elapsed_s=round(elapsed, 3),
        )

    def _sleeping(self, model: RouterModel) -> dict:
        words = f"Asleep on {self.source}: its next request wakes it"
        return self._event(model, Stage.SLEEPING, words)

    def _download_progress(self, router_id: str, data: dict, now: float) -> list[dict]:
        parts = data.get("progress") if isinstance(data.get("progress"), dict) else {}
        done = sum(int(part.get("done") or 0) for part in parts.values() if isinstance(part, dict))
        total = sum(
            int(part.get("total") or 0) for part in parts.values() if isinstance(part, dict)
        )
        model = self.model(router_id)
        model.status = DOWNLOADING
        samples = model.download
        samples.append((now, done))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_S:
            samples.popleft()
        rate = None
        if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
            rate = max(0.0, (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0]))
        eta = (total - done) / rate if rate and total else None
        fraction = done / total if total else 0.0
        return [
            self._transfer(
                router_id,
                Stage.DOWNLOADING,
                f"Downloading on {self.source}",
                pct=round(1 + 94 * fraction, 2),
                bytes_done=done,
                bytes_total=total or None,
                rate_bps=rate,
                eta_s=round(eta, 1) if eta is not None else None,
            )
        ]

    def _download_end(self, router_id: str, ok: bool) -> list[dict]:
        model = self.models.get(router_id)
        if model is not None and model.status == DOWNLOADING:
            model.status = UNLOADED
            model.download.clear()
        if ok:
            return [self._transfer(router_id, Stage.COMPLETE, f"Downloaded on {self.source}")]
        info = ErrorInfo(ErrorKind.NETWORK, f"The download on {self.source} failed")
        return [self._transfer(router_id, Stage.FAILED, info.message, error=info)]

    # -- event fields --------------------------------------------------------------------------

    def _event(self, model: RouterModel, stage: Stage, message: str, **fields: Any) -> dict:
        fields.setdefault("op", OP_LOAD)
        if "pct" not in fields:
            fields["pct"] = 100.0 if stage in (Stage.COMPLETE, Stage.UNLOADED) else 0.0
        return {"model": model.key, "stage": stage, "message": message, **fields}

    def _transfer(self, router_id: str, stage: Stage, message: str, **fields: Any) -> dict:
        fields.setdefault("pct", 100.0 if stage is Stage.COMPLETE else 0.0)
        return {
            "model": transfer_key(self.source, router_id),
            "stage": stage,
            "message": message,
            "op": OP_DOWNLOAD,
            "label": f"{router_id} · on {self.source}",
            **fields,
        }


def listed_status(item: dict[str, Any]) -> str:
    status = item.get("status")
    value = status.get("value") if isinstance(status, dict) else status
    return value if value in (UNLOADED, LOADING, LOADED, SLEEPING, DOWNLOADING) else UNLOADED


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnects: doubling from `first_s` up to `cap_s`."""

    first_s: float = 0.5
    cap_s: float = 15.0

    def delay(self, failures: int) -> float:
        return min(self.cap_s, self.first_s * (2 ** max(0, failures - 1)))


class RemoteEngine:
    """One router's models, loaded, cancelled and unloaded over HTTP; events on `bus`."""

    def __init__(
        self,
        client: RouterClient,
        bus: EventBus | None = None,
        *,
        check_s: float = 5.0,
        tick_s: float = 0.5,
        backoff: Backoff | None = None,
        on_change: Callable[[RemoteEngine], None] | None = None,
    ):
        self.client = client
        self.name = client.name
        self.bus = bus or EventBus()
        self.check_s = check_s
        self.tick_s = tick_s
        self.backoff = backoff or Backoff()
        self.on_change = on_change
        self._translator = RouterTranslator(self.name)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._connected_once = False
        self._connected = threading.Event()
        self._down_since: float | None = None  # time.monotonic() of the first failed attempt
        self._status = ConnectionStatus(self.name, client.url, "connecting", time.time())
        self._thread = threading.Thread(target=self._run, name=f"remote-{self.name}", daemon=True)
        self._commands: list[threading.Thread] = []

    # -- the engine seam -------------------------------------------------------------------------

    def start(self) -> RemoteEngine:
        self._thread.start()
        return self

    def wait_connected(self, timeout: float) -> ConnectionStatus:
        """Block until the first listing is in (or `timeout`); the status either way."""
        self._connected.wait(timeout)
        return self.status()

    def owns(self, key: str) -> bool:
        with self._lock:
            return self._translator.by_key(key) is not None

    def entries(self) -> list[catalog.ModelEntry]:
        with self._lock:
            models = [
                model for model in self._translator.models.values() if model.status != DOWNLOADING
            ]
            return [model_entry(self.name, model) for model in models]

    def status(self) -> ConnectionStatus:
        with self._lock:
            return self._status

    def load(self, path: str, options: Any = None, *, model: str | None = None, reason=None) -> str:
        """Ask the router to load a model (by card key, or by the router's id as `path`);
        returns the card key. The request runs on its own thread: its failure is an event."""
        with self._lock:
            target = self._translator.by_key(model) if model else None
            if target is None:
                target = self._translator.model(path)
            if target.status in RUNNING:
                return target.key
            self._translator.pending_load = target.router_id
            key, router_id = target.key, target.router_id
        self._publish(
            {
                "model": key,
                "stage": Stage.CONNECTING,
                "message": f"Asking {self.name} to load it",
                "pct": 0.0,
                "op": OP_LOAD,
            }
        )
        self._command(key, lambda: self.client.load(router_id), failing=True)
        return key

    def cancel(self, model: str) -> bool:
        with self._lock:
            target = self._translator.by_key(model)
            if target is None or target.status != LOADING:
                return False
            target.cancel_requested = True
            router_id = target.router_id
        self._command(model, lambda: self.client.unload(router_id))
        return True

    def unload(self, model: str, reason: Reason | None = None) -> bool:
        with self._lock:
            target = self._translator.by_key(model)
            if target is None or target.status not in (LOADED, SLEEPING):
                return False
            target.unload_requested = True
            router_id = target.router_id
        self._publish(
            {
                "model": model,
                "stage": Stage.UNLOADING,
                "message": f"Unloading on {self.name}",
                "pct": 0.0,
                "op": OP_UNLOAD,
            }
        )
        self._command(model, lambda: self.client.unload(router_id), failing=True, unloading=True)
        return True

    def state(self, model: str) -> ProgressEvent | None:
        return self.bus.latest(model)

    def wait(self, model: str, timeout: float | None = None) -> ProgressEvent | None:
        """Block until the model's current operation ends; its terminal event."""
        with self.bus.stream(model) as stream:
            latest = self.bus.latest(model)
            if latest is not None and latest.is_terminal:
                return latest
            for event in stream.until_terminal(timeout):
                if event.is_terminal:
                    return event
        return self.bus.latest(model)

    def host_pid(self, model: str) -> int | None:
        return None  # the model's process runs on another machine

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop following the router (its models stay as they are there)."""
        self._stopping.set()
        self._wake.set()
        self.client.break_stream()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for command in list(self._commands):
            command.join(max(0.1, timeout))

    # -- the connection's thread -----------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._follow()
                failures = 0  # the stream was open: the next attempt starts quick again
            except ModelError as exc:
                failures += 1
                self._lose(exc.info, self.backoff.delay(failures))
            except StreamClosed as exc:
                failures += 1
                info = ErrorInfo(ErrorKind.NETWORK, f"The event stream of {self.name} ended")
                self._lose(ErrorInfo(info.kind, info.message, (str(exc),)), self.backoff.delay(1))
            if self._stopping.is_set():
                return
            self._wake.wait(self.status().retry_in_s or self.backoff.first_s)
            self._wake.clear()
            # An unreachable engine stays "Unreachable" while it is tried again: flipping to
            # "Connecting" at each attempt would make its chip flicker (and be announced).
            if self.status().state != "disconnected":
                self._set_status(state="connecting", retry_in_s=None)

    def _follow(self) -> None:
        """One connection: open the stream, resynchronise, translate frames until it ends."""
        with self.client.events(self.check_s) as reader:
            # The listing is read after the stream opened, so no change falls between them.
            self._resync(first=not self._connected_once)
            self._connected_once = True
            last_check = time.monotonic()
            mismatches = 0
            while not self._stopping.is_set():
                loading = self._any_loading()
                reader.set_timeout(self.tick_s if loading else self.check_s)
                try:
                    frame = reader.next()
                except StreamSilent:
                    now = time.monotonic()
                    if loading:
                        self._translate(lambda translator, now=now: translator.tick(now))
                    if now - last_check < self.check_s:
                        continue
                    last_check = now
                    listing = self.client.models()
                    with self._lock:
                        stale = self._translator.differs(listing)
                    mismatches = mismatches + 1 if stale else 0
                    if mismatches >= 2:
                        # The router moved on and the stream said nothing twice in a row: it
                        # stalled. Its state comes from the listing; the stream is reopened.
                        self._resync(first=False, listing=listing, stalled=True)
                        return
                    continue
                mismatches = 0
                now = time.monotonic()
                self._translate(
                    lambda translator, frame=frame, now=now: translator.frame(frame, now)
                )
                if frame.get("event") in ("models_reload", "download_finished", "model_remove"):
                    self._resync(first=False)
        if self._stopping.is_set():
            return
        raise StreamClosed("the router closed the event stream")

    def _resync(
        self, *, first: bool, listing: list[dict] | None = None, stalled: bool = False
    ) -> None:
        listing = self.client.models() if listing is None else listing
        # The router's limit and build change only with a restart: read once per connection,
        # not at every reload frame or stall.
        props = self._props() if self.status().state != "connected" else {}
        now = time.monotonic()
        with self._lock:
            if props:
                max_loaded = props.get("max_instances")
                self._translator.max_loaded = max_loaded if isinstance(max_loaded, int) else None
            events = self._translator.resync(listing, now, first=first)
            was = self._status
        for fields in events:
            self._publish(fields)
        gap = time.monotonic() - self._down_since if self._down_since is not None else None
        self._down_since = None
        error = None
        if stalled:
            error = ErrorInfo(
                ErrorKind.NETWORK,
                f"The event stream of {self.name} stalled; state read from its model list",
            )
        build = props.get("build_info") if props else None
        self._set_status(
            state="connected",
            error=error,
            retry_in_s=None,
            gap_s=gap if gap is not None else was.gap_s,
            build=build if isinstance(build, str) else was.build,
            max_loaded=self._translator.max_loaded,
        )
        self._connected.set()

    def _props(self) -> dict[str, Any]:
        try:
            return self.client.props()
        except ModelError:
            return {}  # older routers: nothing made up in its place

    def _lose(self, error: ErrorInfo, retry_in_s: float) -> None:
        with self._lock:
            events = self._translator.lost(time.monotonic(), error)
        for fields in events:
            self._publish(fields)
        self._connected.clear()
        if self._down_since is None:
            self._down_since = time.monotonic()
        since = time.time() - (time.monotonic() - self._down_since)
        self._set_status(state="disconnected", error=error, retry_in_s=retry_in_s, since=since)

    def _set_status(self, **changes: Any) -> None:
        with self._lock:
            current = self._status
            state = changes.get("state", current.state)
            if "since" not in changes and state != current.state:
                changes["since"] = time.time()
            values = {**current.__dict__, **changes}
            models = self._translator.models.values()
            values["models"] = sum(1 for model in models if model.status != DOWNLOADING)
            values["loaded"] = sum(1 for model in models if model.status in (LOADED, SLEEPING))
            self._status = ConnectionStatus(**values)
            changed = self._status != current
        if changed and self.on_change is not None:
            self.on_change(self)

    def _any_loading(self) -> bool:
        with self._lock:
            return any(model.status == LOADING for model in self._translator.models.values())

    def _translate(self, step: Callable[[RouterTranslator], list[dict]]) -> None:
        with self._lock:
            before = {model.key: model.status for model in self._translator.models.values()}
            events = step(self._translator)
            after = {model.key: model.status for model in self._translator.models.values()}
        for fields in events:
            self._publish(fields)
        if before != after:
            self._set_status()  # the counts changed: listeners refresh the listing and lines

    def _publish(self, fields: dict[str, Any]) -> ProgressEvent:
        return self.bus.publish(ProgressEvent(seq=0, engine=self.name, ts=time.time(), **fields))

    def _command(
        self,
        key: str,
        call: Callable[[], None],
        *,
        failing: bool = False,
        unloading: bool = False,
    ) -> None:
        """Send a request on its own thread; a refusal becomes the card's failure."""

        def run() -> None:
            try:
                call()
            except RouterStateConflict:
                return  # the router is there already: its frames tell the state
            except ModelError as exc:
                with self._lock:
                    target = self._translator.by_key(key)
                    if target is not None:
                        target.unload_requested = target.cancel_requested = False
                        if exc.kind is ErrorKind.NOT_FOUND and target.status == UNLOADED:
                            # An id the router does not list: keep no entry for it, or the
                            # next check would take the difference for a stalled stream.
                            self._translator.models.pop(target.router_id, None)
                if failing:
                    op = OP_UNLOAD if unloading else OP_LOAD
                    self._publish(
                        {
                            "model": key,
                            "stage": Stage.FAILED,
                            "message": exc.info.message,
                            "pct": 0.0,
                            "op": op,
                            "error": exc.info,
                        }
                    )
                    if target is not None and self._translator.pending_load == target.router_id:
                        self._translator.pending_load = None

        thread = threading.Thread(target=run, name=f"remote-{self.name}-call", daemon=True)
        self._commands = [command for command in self._commands if command.is_alive()]
        self._commands.append(thread)
        thread.start()
