"""The local HTTP/SSE server: the engine's events for the llm.js page and any browser.

It publishes the engine's events; it computes no progress of its own. Models are named by
catalog id only. See `guard.py` for the checks every request passes first.

The engine may be this machine's alone (`Engine`) or an `EngineSet` that adds remote engines
(llama.cpp routers on other machines): their models are listed, loaded, cancelled and unloaded
like this machine's, each card saying where it runs; `GET /api/engines` lists the engines with
their connections, and the page learns of a connection change from a `sources` message on the
events stream (see `SourceWatch`). Serving other programs (`/v1`) stays with this machine's
models: a router serves its own API.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio
import platformdirs
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from llm_desktop.core import palette, presenter
from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.engine import Engine
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.events import TRANSFER_OPS, ModelState, ProgressEvent, Stage
from llm_desktop.core.library import LibraryModel, ModelLibrary
from llm_desktop.core.model_locations import APP_NAME, default_models_dir
from llm_desktop.core.options import InvalidOptions, LoadOptions
from llm_desktop.core.presenter import ActionId
from llm_desktop.core.resources import resource_path
from llm_desktop.core.serving import ModelServing, ServingPolicy
from llm_desktop.core.source_sections import engine_view, source_sections
from llm_desktop.core.store import ModelStore
from llm_desktop.core.transfers import Transfers
from llm_desktop.core.upload import DEFAULT_UPLOAD_LIMIT
from llm_desktop.server import page, page_getting
from llm_desktop.server.getting import Getting
from llm_desktop.server.guard import (
    TOKEN_COOKIE,
    BodyTooLarge,
    Guard,
    RateLimiter,
    error_payload,
)
from llm_desktop.server.hub import EventHub, Feed, Message
from llm_desktop.server.openai_api import OpenAiApi
from llm_desktop.server.sources import SourceWatch, follows_remote_engines

log = logging.getLogger(__name__)

MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,159}$")
LOAD_TERMINAL = frozenset({Stage.COMPLETE, Stage.FAILED, Stage.CANCELLED})
PING_S = 15


def is_upload_path(path: str) -> bool:
    """Request bodies streamed to disk: the guard's size limit for JSON and forms does not
    apply (an upload has its own, `ServerConfig.upload_limit`)."""
    if path in ("/api/uploads", "/actions/upload"):
        return True
    return path.startswith("/api/uploads/") and path != "/api/uploads/start"


# What the page can carry out: everything but "Try it", which is the desktop's prompt panel.
PAGE_ACTIONS = frozenset(ActionId) - {ActionId.TRY}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".ico": "image/vnd.microsoft.icon",
}


def web_root() -> Path:
    return resource_path("web")


def static_files(dev: bool) -> dict[str, Path]:
    """URL path → file: a map fixed when the server starts, so no request path ever reaches
    the filesystem. The seed's standalone test page is served only in development."""
    root = web_root()
    files = {
        f"/static/{path.relative_to(root / 'static').as_posix()}": path
        for path in sorted((root / "static").rglob("*"))
        if path.is_file() and path.suffix in MEDIA_TYPES
    }
    files["/favicon.ico"] = resource_path("icons", "llm-desktop.ico")
    if dev:
        files["/test_llm_progress.html"] = root / "test_llm_progress.html"
    return files


@dataclass
class ServerConfig:
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    hosts: tuple[str, ...] = ("127.0.0.1",)
    load_rate: tuple[int, float] = (30, 60.0)  # load requests per client per window (s)
    max_streams_per_client: int = 128
    port_ref: list[int] = field(default_factory=lambda: [0])
    dev: bool = False  # serve the seed's standalone test page
    upload_limit: int = DEFAULT_UPLOAD_LIMIT  # the largest file the page may upload
    serving: ServingPolicy = field(default_factory=ServingPolicy)  # keep-alive, eviction


def error(status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_payload(status, kind, message), status_code=status, headers=headers)


class LlmServer:
    """Handlers bound to one engine, library and configuration."""

    def __init__(
        self,
        engine: Engine | EngineSet,
        library: ModelLibrary,
        config: ServerConfig,
        transfers: Transfers | None = None,
        serving: ModelServing | None = None,
    ):
        self.engine = engine
        self.library = library
        self.config = config
        self.store = ModelStore(offers=PAGE_ACTIONS)
        # Remote engines (an `EngineSet`): the library lists their models as last heard from
        # them, and the store knows their connections before the first view is made.
        self.remote = follows_remote_engines(engine)
        if self.remote:
            library.remote_entries = engine.remote_entries
        self.store.set_library(library.models())
        self._sync_connections()
        # Subscribed before the hub, so the view of a remote load's end has what the router
        # told of the model with it (its parameters, type, context, size).
        self._facts = engine.bus.subscribe(self._remote_facts) if self.remote else None
        self.hub = EventHub(engine.bus, self.store)
        # Downloads, uploads and quantizing: the app's own service when it passes one (its
        # new models then reach this server through `model_added`), else one of our own.
        self.owns_transfers = transfers is None
        self.transfers = transfers or Transfers(
            engine.bus,
            models_dir=library.folders[0] if library.folders else default_models_dir(),
            state_dir=platformdirs.user_data_path(APP_NAME),
            upload_limit=config.upload_limit,
            on_model_added=self.model_added,
        )
        self.getting = Getting(self)
        # Load on request, keep-alive and eviction: the app's own when it passes one (its Try
        # it panel then shares the same leases and request log), else one of our own.
        self.owns_serving = serving is None
        self.serving = serving or ModelServing(
            engine, self.local_entry_of, config.serving, options=self.store.options
        )
        self.openai = OpenAiApi(self, self.serving)
        self.load_limiter = RateLimiter(*config.load_rate)
        self.streams: dict[str, int] = {}
        self.closing = threading.Event()
        self.files = static_files(config.dev)
        # A remote engine that connects, drops or lists other models: listed again off its
        # thread, and told to every page.
        self.sources = SourceWatch(self.sources_changed) if self.remote else None
        if self.sources is not None:
            engine.on_change(self.sources.poke)
            self.sources.poke()  # what changed between the engine's start and this server's

    async def next_event(self, feed: Feed) -> ProgressEvent | None:
        """The next event of a feed, or None once the server is stopping (streams end then,
        so shutdown never waits on a viewer that keeps its connection open)."""
        if self.closing.is_set():
            return None
        return await feed.get()

    async def next_frames(self, feed: Feed, *, until_load_ends: bool = False):
        """The SSE messages of the feed's next burst as one write, and whether a load's end
        was among them; None once the server is stopping."""
        if self.closing.is_set():
            return None
        batch = await feed.get_batch()
        if batch is None:
            return None
        frames = []
        for event in batch:
            if isinstance(event, Message):
                frames.append(event.frame)
                continue
            frames.append(self.sse(event))
            if until_load_ends and event.stage in LOAD_TERMINAL:
                return b"".join(frames), True
        return b"".join(frames), False

    def sse(self, event: ProgressEvent) -> bytes:
        """The event's SSE message, encoded once for every viewer."""
        return self.hub.frame(event)

    def stop_streams(self) -> None:
        """Thread-safe: every open stream ends now."""
        self.closing.set()
        self.hub.end_feeds()

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

    def entry_of(self, model_id: str) -> ModelEntry | None:
        """The catalog entry of a model id (thread-safe; the library as last scanned)."""
        model = self.store.model(model_id) or self.library.get(model_id)
        return model.entry if model is not None else None

    def local_entry_of(self, model_id: str) -> ModelEntry | None:
        """The entry of one of this machine's models (what `/v1` serves), else None."""
        entry = self.entry_of(model_id)
        return entry if entry is not None and entry.engine is None else None

    # -- remote engines ------------------------------------------------------------------------

    def sources_changed(self) -> None:
        """A remote engine connected, dropped or changed its list (on the watch's thread): list
        the models again, give the store the connections, and tell every page. The folders are
        read again only when a remote model came or went."""
        listed = {model.entry.id for model in self.library.models() if model.entry.engine}
        if {entry.id for entry in self.engine.remote_entries()} != listed:
            self.refresh_now()
        with self.engine.bus.lock:  # between events: the views are those of the events sent
            self._remote_entries_now()
            self.hub.broadcast("sources", self.sources_payload())

    def _remote_facts(self, event: ProgressEvent) -> None:
        """A remote model loaded (on the engine's thread, under the bus's lock): its entry as
        its engine lists it now, with the facts the router reported."""
        if event.engine is None or event.stage is not Stage.COMPLETE:
            return
        try:
            self._remote_entries_now()
        except Exception:  # the bus drops a subscriber that raises: say so, and stay
            log.exception("could not list the facts of %s", event.model)

    def _remote_entries_now(self) -> None:
        """The library's remote models as their engines list them now (in memory: no disk
        read), and the engines' connections."""
        fresh = {entry.id: entry for entry in self.engine.remote_entries()}
        models = self.library.models()
        if all(fresh.get(model.entry.id, model.entry) == model.entry for model in models):
            self._sync_connections()
            return
        self._set_library(
            [
                LibraryModel(fresh[model.entry.id], None) if model.entry.id in fresh else model
                for model in models
            ]
        )

    def sources_payload(self) -> dict[str, Any]:
        """Every card's view in the library's order, the summary line and the groups: what a
        page needs to list the models again (the `sources` message, `/api/engines`)."""
        views = self.store.views()
        return {
            "views": [view.to_dict() for view in views],
            "summary": presenter.library_summary(views, self.library.hardware),
            "sources": self.sections(views),
        }

    def sections(self, views=None) -> list[dict[str, Any]]:
        views = self.store.views() if views is None else views
        return [section.to_dict() for section in source_sections(views, self.store.connections())]

    def model_added(self, path: str) -> None:
        """A transfer made a new model file: list it (called on the transfer's thread, off
        the event loop; thread-safe)."""
        self.refresh_now()

    def refresh_now(self) -> list[LibraryModel]:
        """`refresh` for a thread that is not the event loop's."""
        models = self.library.refresh()
        self._set_library(models)
        return models

    def _set_library(self, models: list[LibraryModel]) -> None:
        """The store's library after a scan: models that are loaded or busy stay listed even
        when their file went away, except a remote engine's (its engine lists what it has)."""
        busy = self.store.in_state(ModelState.LOADING, ModelState.LOADED, ModelState.UNLOADING)
        self.store.set_library(models, keep=[key for key in busy if not self._remote_key(key)])
        self._sync_connections()

    def _sync_connections(self) -> None:
        """The remote engines' connections as they stand now, for the cards of their models."""
        if self.remote:
            self.store.set_connections(self.engine.statuses())

    def _remote_key(self, model_id: str) -> bool:
        model = self.store.model(model_id)
        return model is not None and model.entry.engine is not None

    def model_states(self) -> dict[str, dict[str, Any]]:
        """The last event of every model (transfers have their own list)."""
        return {
            key: event.to_dict()
            for key, event in self.engine.states().items()
            if event.op not in TRANSFER_OPS
        }

    def transfer_views(self) -> list[dict[str, Any]]:
        return [view.to_dict() for view in self.store.transfers()]

    async def refresh(self) -> list[LibraryModel]:
        """Scan the library again (off the loop) and give the store the result; models that
        are loaded or busy stay listed even when their file went away."""
        models = await anyio.to_thread.run_sync(self.library.refresh)
        self._set_library(models)
        return models

    async def _model(self, model_id: str | None):
        if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
            return None, error(400, "bad_model_id", "A model id from /api/llm/models is required")
        model = self.store.model(model_id)
        if model is None:
            await self.refresh()
            model = self.store.model(model_id)
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

    def _options(self, model_id: str, values: dict[str, Any]) -> LoadOptions | JSONResponse:
        try:
            options = LoadOptions.parse(values)
        except InvalidOptions as exc:
            return error(400, "bad_options", str(exc))
        self.store.set_options(model_id, options)
        return options

    def _attach_or_start(
        self, model: LibraryModel, options: LoadOptions
    ) -> tuple[Feed, list[ProgressEvent]]:
        """Follow the model's running load (or its loaded state) or start one."""
        entry = model.entry
        return self.hub.attach_or_start(
            entry.id, lambda: self.engine.load(entry.path, options, model=entry.id)
        )

    async def _until_loaded(
        self, model: LibraryModel, options: LoadOptions
    ) -> ProgressEvent | None:
        """Start or attach to a load and wait for its end (None: the server is stopping)."""
        feed, backlog = self._attach_or_start(model, options)
        with feed:
            for event in backlog:
                if event.stage in LOAD_TERMINAL:
                    return event
            while (event := await self.next_event(feed)) is not None:
                if event.stage in LOAD_TERMINAL:
                    return event
        return None

    def _model_dict(self, model: LibraryModel) -> dict[str, Any]:
        view = self.store.view(model.entry.id)
        last = self.store.last_event(model.entry.id)
        return {
            **model.to_dict(),
            "state": str(view.state) if view else str(ModelState.UNLOADED),
            "last_event": last.to_dict() if last else None,
            "view": view.to_dict() if view else None,
        }

    # -- the page ------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        """The page, rendered from the views: it works with scripts off. Opened with
        `?token=`, it sets the token as a strict same-site cookie and redirects to a clean
        address, so the token leaves the address bar (and history) at once."""
        query = dict(request.query_params)
        if "token" in query:
            token = query.pop("token")
            response = RedirectResponse("/" + (f"?{urlencode(query)}" if query else ""), 303)
            if request.state.authorized:
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
            return response
        authorized = request.state.authorized
        views = []
        notice = None
        getting: dict[str, Any] = {}
        if authorized:
            await self.refresh()
            getting = await self.getting.page_state(query)
            views = self.store.views()
            notice_model = query.get("notice")
            if notice_model:
                view = self.store.view(notice_model)
                last = self.store.last_event(notice_model)
                if view is not None and last is not None:
                    notice = presenter.notice_for(view, last)
        html = page.page_html(
            views,
            summary=presenter.library_summary(views, self.library.hardware) if authorized else "",
            notice=notice,
            theme=query.get("theme"),
            authorized=authorized,
            transfers=self.store.transfers() if authorized else [],
            getting=getting,
            quantizable=page_getting.quantizable_models(
                self.library.models(), {view.model: view.title for view in views}
            ),
            upload_limit=min(self.transfers.upload_limit, self.config.upload_limit),
            connections=self.store.connections() if authorized else (),
        )
        return HTMLResponse(
            html,
            status_code=200 if authorized else 401,
            headers={"Cache-Control": "no-store"},
        )

    async def action(self, request: Request) -> Response:
        """A card's form, posted without scripts: do it, then show the page again. A load
        answers when it ends, so the page that follows shows its outcome."""
        try:
            raw = await request.body()
        except BodyTooLarge:
            return error(413, "body_too_large", "The request body is too large")
        form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        action = request.path_params["action"]
        model, refusal = await self._model(form.get("model"))
        if refusal:
            return refusal
        model_id = model.entry.id
        if action in (ActionId.LOAD, ActionId.RETRY):
            options = self._options(model_id, form)
            if isinstance(options, JSONResponse):
                return options
            if refusal := self._rate_limited(request):
                return refusal
            await self._until_loaded(model, options)
        elif action == ActionId.CANCEL:
            await self._until_settled(model_id, self.engine.cancel)
        elif action == ActionId.UNLOAD:
            await self._until_settled(model_id, self.engine.unload)
        elif action == ActionId.REMOVE:
            if refusal := self._remote_refusal(model):
                return refusal
            await self._remove(model_id)
            return RedirectResponse("/", 303)
        else:
            return error(404, "not_found", "Nothing here")
        return RedirectResponse(f"/?notice={model_id}#model-{model_id}", 303)

    async def _until_settled(self, model_id: str, act) -> None:
        """Do `act(model_id)` (cancel, unload) and wait for the operation it ends to end."""
        with self.hub.follow(model_id, after=self.engine.bus.last_seq) as feed:
            if not act(model_id):
                return  # nothing to cancel or unload: the page shows the state as it is
            while (event := await self.next_event(feed)) is not None:
                if event.is_terminal:
                    return

    @staticmethod
    def _remote_refusal(model: LibraryModel) -> JSONResponse | None:
        """A remote engine's files are its own: they are not removed or quantized from here."""
        if model.entry.engine is None:
            return None
        return error(
            409,
            "remote_model",
            f"{model.entry.display_name} is on {model.entry.engine}: its files are its own",
        )

    async def _remove(self, model_id: str) -> bool:
        if self.store.in_state(ModelState.LOADING, ModelState.LOADED).get(model_id):
            return False  # a model in use stays; unload it first
        removed = self.library.remove(model_id)
        self._set_library(self.library.models())
        return removed

    # -- the API ---------------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        models = await self.refresh()
        hardware = self.library.hardware
        views = self.store.views()
        return JSONResponse(
            {
                "models": [self._model_dict(model) for model in models],
                "summary": presenter.library_summary(views, hardware),
                "hardware": hardware.to_dict() if hardware else None,
                "sources": self.sections(views),
                "seq": self.engine.bus.last_seq,
            }
        )

    async def engines(self, request: Request) -> Response:
        """The remote engines with their connections (and each one's line in words), and the
        groups of the models list."""
        statuses = self.engine.statuses() if self.remote else []
        self._sync_connections()
        return JSONResponse(
            {
                "engines": [engine_view(status) for status in statuses],
                "sources": self.sections(),
            }
        )

    async def status(self, request: Request) -> Response:
        return JSONResponse(
            {
                "models": self.model_states(),
                "views": {view.model: view.to_dict() for view in self.store.views()},
                "transfers": self.transfer_views(),
                "sources": self.sections(),
                "seq": self.engine.bus.last_seq,
            }
        )

    async def load_stream(self, request: Request) -> Response:
        model, refusal = await self._model(request.query_params.get("model"))
        if refusal:
            return refusal
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        if last_id is not None and not last_id.isdigit():
            return error(400, "bad_last_event_id", "Last-Event-ID must be a number")
        options = self._options(model.entry.id, dict(request.query_params))
        if isinstance(options, JSONResponse):
            return options
        if last_id is None and (refusal := self._rate_limited(request)):
            return refusal
        if refusal := self._open_stream(request):
            return refusal
        if last_id is None:
            feed, backlog = self._attach_or_start(model, options)
        else:  # a reconnect: what it missed, then live; never a second load
            feed, backlog = self.hub.follow(model.entry.id, after=int(last_id)), []

        async def stream():
            try:
                for event in backlog:
                    yield self.sse(event)
                    if event.stage in LOAD_TERMINAL:
                        return
                while (burst := await self.next_frames(feed, until_load_ends=True)) is not None:
                    frames, ended = burst
                    yield frames
                    if ended:
                        return
            finally:
                feed.close()
                self._close_stream(request)

        return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-cache"})

    async def events(self, request: Request) -> Response:
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        if last_id is not None and not last_id.isdigit():
            return error(400, "bad_last_event_id", "Last-Event-ID must be a number")
        if refusal := self._open_stream(request):
            return refusal
        if last_id is None:
            # A snapshot of every card, then what happens after it (replayed from the bus, so
            # an event published while the snapshot was taken is not lost).
            with self.engine.bus.lock:
                after = self.engine.bus.last_seq
                views = self.store.views()
                snapshot = {
                    "seq": after,
                    "views": [view.to_dict() for view in views],
                    "models": self.model_states(),
                    "transfers": self.transfer_views(),
                    "sources": self.sections(views),
                }
                feed = self.hub.follow(after=after, messages=True)
            listing = None
        else:
            # A resumed stream: the events it missed follow, but a connection that changed
            # meanwhile is in no event; the cards and groups as they are now come first.
            snapshot = None
            with self.engine.bus.lock:
                listing = self.sources_payload() if self.remote else None
                feed = self.hub.follow(after=int(last_id), messages=True)

        async def stream():
            try:
                if snapshot is not None:
                    yield ServerSentEvent(data=json.dumps(snapshot), event="snapshot")
                if listing is not None:
                    yield ServerSentEvent(data=json.dumps(listing), event="sources")
                while (burst := await self.next_frames(feed)) is not None:
                    yield burst[0]
            finally:
                feed.close()
                self._close_stream(request)

        return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-cache"})

    async def load(self, request: Request) -> Response:
        body, refusal = await self._json_body(request)
        if refusal:
            return refusal
        model, refusal = await self._model(body.get("model"))
        if refusal:
            return refusal
        options = self._options(model.entry.id, body)
        if isinstance(options, JSONResponse):
            return options
        if refusal := self._rate_limited(request):
            return refusal
        event = await self._until_loaded(model, options)
        if event is None:
            return error(503, "shutting_down", "The server is stopping")
        return Response(self.hub.payload(event), media_type="application/json")

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

    async def remove(self, request: Request) -> Response:
        model, refusal = await self._body_model(request)
        if refusal:
            return refusal
        if refusal := self._remote_refusal(model):
            return refusal
        if not await self._remove(model.entry.id):
            return error(409, "model_in_use", "Unload the model before removing it")
        return JSONResponse({"removed": True})

    async def serving_status(self, request: Request) -> Response:
        """What the API serves: its base URL, the policy, the loaded models with their
        keep-alive, and the last requests of each model."""
        return JSONResponse(self.serving_snapshot(request.url.hostname or self.config.hosts[0]))

    def serving_snapshot(self, host: str) -> dict[str, Any]:
        serving = self.serving
        return {
            "base_url": f"http://{host}:{self.config.port_ref[0]}/v1",
            "policy": serving.policy.to_dict(),
            "loaded": [
                {
                    "model": resident.model,
                    "memory": resident.memory,
                    "in_use": resident.in_use,
                    "keep_alive_s": serving.keep_alive_of(resident.model),
                }
                for resident in serving.residents()
            ],
            "requests": [record.to_dict() for record in serving.requests()],
        }

    async def palette(self, request: Request) -> Response:
        """The desktop's colours as the page's CSS variables (one palette, two renderers)."""
        return Response(
            palette.css(), media_type=MEDIA_TYPES[".css"], headers={"Cache-Control": "no-cache"}
        )

    async def static(self, request: Request) -> Response:
        path = self.files[request.url.path]
        return FileResponse(
            path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": "no-cache"}
        )

    async def not_found(self, request: Request, _exc: Exception) -> Response:
        return error(404, "not_found", "Nothing here")

    async def not_allowed(self, request: Request, _exc: Exception) -> Response:
        return error(405, "method_not_allowed", "That method is not allowed here")

    def close(self) -> None:
        if self._facts is not None:
            self._facts.close()
        if self.sources is not None:
            self.sources.close()
        self.getting.close()
        if self.owns_serving:
            self.serving.close()
        if self.owns_transfers:
            self.transfers.shutdown()
        self.hub.close()


def create_app(
    engine: Engine | EngineSet,
    library: ModelLibrary,
    config: ServerConfig | None = None,
    transfers: Transfers | None = None,
    serving: ModelServing | None = None,
) -> tuple[Guard, LlmServer]:
    config = config or ServerConfig()
    server = LlmServer(engine, library, config, transfers, serving)
    getting = server.getting
    api = server.openai
    routes = [
        Route("/", server.index, methods=["GET", "HEAD"]),
        Route("/index.html", server.index, methods=["GET", "HEAD"]),
        Route("/actions/download", getting.form_download, methods=["POST"]),
        Route("/actions/upload", getting.form_upload, methods=["POST"]),
        Route("/actions/quantize", getting.form_quantize, methods=["POST"]),
        Route("/actions/transfer/{action}", getting.form_steer, methods=["POST"]),
        Route("/actions/{action}", server.action, methods=["POST"]),
        Route("/static/css/palette.css", server.palette, methods=["GET", "HEAD"]),
        Route("/api/llm/models", server.models, methods=["GET"]),
        Route("/api/llm/status", server.status, methods=["GET"]),
        Route("/api/llm/load_stream", server.load_stream, methods=["GET"]),
        Route("/api/llm/events", server.events, methods=["GET"]),
        Route("/api/llm/load", server.load, methods=["POST"]),
        Route("/api/llm/cancel", server.cancel, methods=["POST"]),
        Route("/api/llm/unload", server.unload, methods=["POST"]),
        Route("/api/llm/remove", server.remove, methods=["POST"]),
        Route("/api/engines", server.engines, methods=["GET"]),
        Route("/api/hub/search", getting.api_search, methods=["GET"]),
        Route("/api/hub/repo", getting.api_repo, methods=["GET"]),
        Route("/api/hub/fit", getting.api_fit, methods=["GET"]),
        Route("/api/downloads", getting.api_download, methods=["POST"]),
        Route("/api/quantize", getting.api_quantize, methods=["POST"]),
        Route("/api/transfers", getting.api_transfers, methods=["GET"]),
        Route("/api/transfers/{action}", getting.api_steer, methods=["POST"]),
        Route("/api/uploads", getting.api_upload, methods=["POST"]),
        Route("/api/uploads/start", getting.api_upload_start, methods=["POST"]),
        Route("/api/uploads/{key}", getting.api_upload_body, methods=["POST"]),
        Route("/api/serving", server.serving_status, methods=["GET"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/models/{model:path}", api.model, methods=["GET"]),
        Route("/v1/chat/completions", api.chat, methods=["POST"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        *(Route(path, server.static, methods=["GET", "HEAD"]) for path in server.files),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: server.not_found, 405: server.not_allowed},
    )
    guarded = Guard(
        app,
        token=config.token,
        hosts=config.hosts,
        port_ref=config.port_ref,
        streamed=is_upload_path,
    )
    return guarded, server
