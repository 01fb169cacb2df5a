"""The local HTTP/SSE server: the engine's events for the llm.js page and any browser.

It publishes the engine's events; it computes no progress of its own. Models are named by
catalog id only. See `guard.py` for the checks every request passes first.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import ModelState, ProgressEvent, Stage
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.resources import resource_path
from llm_desktop.server.guard import BodyTooLarge, Guard, RateLimiter
from llm_desktop.server.hub import EventHub, Numbered

# The only files served: a fixed map, so no request path ever reaches the filesystem.
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/js/llm.js": ("static/js/llm.js", "text/javascript; charset=utf-8"),
    "/static/css/llm-progress.css": ("static/css/llm-progress.css", "text/css; charset=utf-8"),
    "/test_llm_progress.html": ("test_llm_progress.html", "text/html; charset=utf-8"),
}
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,159}$")
LOAD_TERMINAL = frozenset({Stage.COMPLETE, Stage.FAILED, Stage.CANCELLED})
PING_S = 15


def web_root() -> Path:
    return resource_path("web")


@dataclass
class ServerConfig:
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    hosts: tuple[str, ...] = ("127.0.0.1",)
    load_rate: tuple[int, float] = (30, 60.0)  # load requests per client per window (s)
    max_streams_per_client: int = 128
    port_ref: list[int] = field(default_factory=lambda: [0])


def error(status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"kind": kind, "message": message}}, status_code=status, headers=headers
    )


def sse(item: Numbered | ProgressEvent, *, number: bool = False) -> ServerSentEvent:
    event = item.event if isinstance(item, Numbered) else item
    ident = str(item.number) if number and isinstance(item, Numbered) else str(event.seq)
    return ServerSentEvent(data=event.to_json(), event="progress", id=ident)


class LlmServer:
    """Handlers bound to one engine, library and configuration."""

    def __init__(self, engine: Engine, library: ModelLibrary, config: ServerConfig):
        self.engine = engine
        self.library = library
        self.config = config
        self.hub = EventHub(engine)
        self.load_limiter = RateLimiter(*config.load_rate)
        self.streams: dict[str, int] = {}
        self.closing = threading.Event()

    async def next_item(self, subscription) -> Numbered | None:
        """The next event of a stream, or None once the server is stopping (streams end then,
        so shutdown never waits on a viewer that keeps its connection open)."""
        while not self.closing.is_set():
            try:
                return await asyncio.wait_for(subscription.get(), 0.25)
            except TimeoutError:
                continue
        return None

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def client_key(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def _rate_limited(self, request: Request) -> JSONResponse | None:
        wait = self.load_limiter.check(self.client_key(request))
        if wait:
            return error(
                429,
                "rate_limited",
                "Too many load requests; try again shortly",
                {"Retry-After": str(max(1, round(wait)))},
            )
        return None

    def _open_stream(self, request: Request) -> JSONResponse | None:
        key = self.client_key(request)
        if self.streams.get(key, 0) >= self.config.max_streams_per_client:
            return error(
                429,
                "too_many_streams",
                f"At most {self.config.max_streams_per_client} open streams per client",
                {"Retry-After": "5"},
            )
        self.streams[key] = self.streams.get(key, 0) + 1
        return None

    def _close_stream(self, request: Request) -> None:
        key = self.client_key(request)
        self.streams[key] = max(0, self.streams.get(key, 0) - 1)

    async def _model(self, model_id: str | None):
        if not model_id or not MODEL_ID.match(model_id):
            return None, error(400, "bad_model_id", "A model id from /api/llm/models is required")
        model = self.library.get(model_id)
        if model is None:
            await anyio.to_thread.run_sync(self.library.refresh)
            model = self.library.get(model_id)
        if model is None:
            return None, error(404, "unknown_model", f"No model with id {model_id!r}")
        return model, None

    async def _json_body(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        try:
            raw = await request.body()
        except BodyTooLarge:
            return None, error(413, "body_too_large", "The request body is too large")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None, error(400, "bad_json", "The body is not JSON")
        if not isinstance(body, dict):
            return None, error(400, "bad_json", "The body must be a JSON object")
        return body, None

    @staticmethod
    def _options(values: dict[str, Any]) -> LoadOptions | JSONResponse:
        try:
            n_ctx = values.get("n_ctx")
            gpu_layers = values.get("gpu_layers")
            use_mmap = values.get("use_mmap", True)
            if n_ctx is not None:
                n_ctx = int(n_ctx)
                if not 0 <= n_ctx <= 1_048_576:
                    raise ValueError
            if gpu_layers is not None:
                gpu_layers = int(gpu_layers)
                if not -1 <= gpu_layers <= 4096:
                    raise ValueError
            if isinstance(use_mmap, str):
                use_mmap = use_mmap.lower() not in ("0", "false", "no")
        except (TypeError, ValueError):
            return error(400, "bad_options", "n_ctx, gpu_layers or use_mmap is out of range")
        return LoadOptions(
            n_ctx=n_ctx or None,
            n_gpu_layers=None if gpu_layers is None or gpu_layers < 0 else gpu_layers,
            use_mmap=bool(use_mmap),
        )

    def _start_load(self, model, options: LoadOptions) -> list[ProgressEvent]:
        """Start (or attach to) a load; the events of it that already happened."""
        model_id = model.entry.id
        before = self.engine.state(model_id)
        self.engine.load(model.entry.path, options, model=model_id)
        history = self.engine.history(model_id)
        if before is not None and before.state in (ModelState.LOADING, ModelState.LOADED):
            # Attached: replay the current load from its first step.
            starts = [i for i, event in enumerate(history) if event.stage is Stage.CONNECTING]
            return history[starts[-1] :] if starts else history[-1:]
        after = before.seq if before is not None else 0
        return [event for event in history if event.seq > after]

    # -- endpoints -----------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        models = await anyio.to_thread.run_sync(self.library.refresh)
        states = self.engine.states()
        hardware = self.library.hardware
        return JSONResponse(
            {
                "models": [
                    {
                        **model.to_dict(),
                        "state": str(
                            states[model.entry.id].state
                            if model.entry.id in states
                            else ModelState.UNLOADED
                        ),
                        "last_event": states[model.entry.id].to_dict()
                        if model.entry.id in states
                        else None,
                    }
                    for model in models
                ],
                "hardware": hardware.to_dict() if hardware else None,
            }
        )

    async def status(self, request: Request) -> Response:
        return JSONResponse(
            {"models": {key: event.to_dict() for key, event in self.engine.states().items()}}
        )

    async def load_stream(self, request: Request) -> Response:
        model, refusal = await self._model(request.query_params.get("model"))
        if refusal:
            return refusal
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        if last_id is not None and not last_id.isdigit():
            return error(400, "bad_last_event_id", "Last-Event-ID must be a number")
        options = self._options(dict(request.query_params))
        if isinstance(options, JSONResponse):
            return options
        if last_id is None and (refusal := self._rate_limited(request)):
            return refusal
        if refusal := self._open_stream(request):
            return refusal
        subscription = self.hub.subscribe(model.entry.id)
        if last_id is None:
            backlog = self._start_load(model, options)
        else:
            backlog = [e for e in self.engine.history(model.entry.id) if e.seq > int(last_id)]

        async def stream():
            sent = int(last_id) if last_id is not None else 0
            try:
                for event in backlog:
                    sent = event.seq
                    yield sse(event)
                    if event.stage in LOAD_TERMINAL:
                        return
                while (item := await self.next_item(subscription)) is not None:
                    if item.event.seq <= sent:
                        continue
                    sent = item.event.seq
                    yield sse(item)
                    if item.event.stage in LOAD_TERMINAL:
                        return
            finally:
                subscription.close()
                self._close_stream(request)

        return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-cache"})

    async def events(self, request: Request) -> Response:
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        if last_id is not None and not last_id.isdigit():
            return error(400, "bad_last_event_id", "Last-Event-ID must be a number")
        if refusal := self._open_stream(request):
            return refusal
        subscription, missed = self.hub.subscribe_after(int(last_id) if last_id else 1 << 62)

        async def stream():
            try:
                if last_id is None:
                    states = {key: e.to_dict() for key, e in self.engine.states().items()}
                    yield ServerSentEvent(data=json.dumps({"models": states}), event="snapshot")
                sent = 0
                for item in missed:
                    sent = item.number
                    yield sse(item, number=True)
                while (item := await self.next_item(subscription)) is not None:
                    if item.number <= sent:
                        continue
                    sent = item.number
                    yield sse(item, number=True)
            finally:
                subscription.close()
                self._close_stream(request)

        return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-cache"})

    async def load(self, request: Request) -> Response:
        body, refusal = await self._json_body(request)
        if refusal:
            return refusal
        model, refusal = await self._model(body.get("model"))
        if refusal:
            return refusal
        options = self._options(body)
        if isinstance(options, JSONResponse):
            return options
        if refusal := self._rate_limited(request):
            return refusal
        with self.hub.subscribe(model.entry.id) as subscription:
            backlog = self._start_load(model, options)
            for event in backlog:
                if event.stage in LOAD_TERMINAL:
                    return JSONResponse(event.to_dict())
            while (item := await self.next_item(subscription)) is not None:
                if item.event.stage in LOAD_TERMINAL:
                    return JSONResponse(item.event.to_dict())
        return error(503, "shutting_down", "The server is stopping")

    async def _body_model(self, request: Request):
        """The catalog model named by a JSON body's "model", or the refusal to answer."""
        body, refusal = await self._json_body(request)
        if refusal:
            return None, refusal
        return await self._model(body.get("model"))

    async def cancel(self, request: Request) -> Response:
        model, refusal = await self._body_model(request)
        if refusal:
            return refusal
        return JSONResponse({"cancelled": self.engine.cancel(model.entry.id)})

    async def unload(self, request: Request) -> Response:
        model, refusal = await self._body_model(request)
        if refusal:
            return refusal
        return JSONResponse({"unloading": self.engine.unload(model.entry.id)})

    async def static(self, request: Request) -> Response:
        name, media_type = STATIC_FILES[request.url.path]
        return FileResponse(
            web_root() / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
        )

    async def not_found(self, request: Request, _exc: Exception) -> Response:
        return error(404, "not_found", "Nothing here")

    async def not_allowed(self, request: Request, _exc: Exception) -> Response:
        return error(405, "method_not_allowed", "That method is not allowed here")

    def close(self) -> None:
        self.hub.close()


def create_app(
    engine: Engine, library: ModelLibrary, config: ServerConfig | None = None
) -> tuple[Guard, LlmServer]:
    config = config or ServerConfig()
    server = LlmServer(engine, library, config)
    routes = [
        Route("/api/llm/models", server.models, methods=["GET"]),
        Route("/api/llm/status", server.status, methods=["GET"]),
        Route("/api/llm/load_stream", server.load_stream, methods=["GET"]),
        Route("/api/llm/events", server.events, methods=["GET"]),
        Route("/api/llm/load", server.load, methods=["POST"]),
        Route("/api/llm/cancel", server.cancel, methods=["POST"]),
        Route("/api/llm/unload", server.unload, methods=["POST"]),
        *(Route(path, server.static, methods=["GET", "HEAD"]) for path in STATIC_FILES),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: server.not_found, 405: server.not_allowed},
    )
    guarded = Guard(app, token=config.token, hosts=config.hosts, port_ref=config.port_ref)
    return guarded, server
