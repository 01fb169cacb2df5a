"""Getting models over HTTP: the hub (search, a repository's models, fit), downloads, uploads,
quantizing, and the transfers they make, for the page with scripts and without.

Every transfer runs in the shared `core.transfers.Transfers` and publishes on the engine's bus,
so its progress reaches the page through the same event stream as loads, each event with its
`TransferView`. The handlers here only start, steer and answer; they decide no words (the hub's
come from `core.hub_presenter`, the transfers' from the transfer presenter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from llm_desktop.core import hf_hub, hub_presenter
from llm_desktop.core.events import ErrorInfo, ErrorKind, ModelError, Stage
from llm_desktop.core.presenter import FitBadge
from llm_desktop.core.quantize import QUANT_TYPES
from llm_desktop.core.remote_fit import remote_fit
from llm_desktop.core.upload import UploadJob
from llm_desktop.server.guard import BodyTooLarge
from llm_desktop.server.uploads import (
    UPLOAD_STATUS,
    BadMultipart,
    MultipartFile,
    UploadStopped,
    body_chunks,
    multipart_boundary,
    write_batched,
)

if TYPE_CHECKING:
    from llm_desktop.server.app import LlmServer

log = logging.getLogger(__name__)

# A hub failure as an HTTP status.
HUB_STATUS: dict[ErrorKind, int] = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.NETWORK: 502,
    ErrorKind.INVALID_MODEL: 422,
    ErrorKind.UNSUPPORTED_MODEL: 422,
}
TRANSFER_ACTIONS = frozenset({"pause", "resume", "cancel", "discard", "dismiss", "load"})
LISTING_TTL_S = 300.0
LISTING_MEMO = 32
# How long an upload started with POST /api/uploads/start waits for its body.
UPLOAD_START_TTL_S = 120.0
# The page without scripts reads fits for this many of a repository's models at once.
PAGE_FITS = 24
MAX_REFERENCE = 512
REPO_ID_LIMIT = 200


def _status_for(info: ErrorInfo, table: dict[ErrorKind, int], default: int) -> int:
    return table.get(info.kind, default)


class Getting:
    """The handlers, bound to one `LlmServer` (its transfers, store, library and hub)."""

    def __init__(self, server: LlmServer):
        self.server = server
        self._listings: dict[str, tuple[float, hf_hub.RepoListing]] = {}
        # Uploads begun by POST /api/uploads/start, waiting for their body: key → job.
        self._waiting: dict[str, tuple[UploadJob, asyncio.TimerHandle]] = {}
        # Uploads whose body is arriving: key → the event that stops the reading.
        self._receiving: dict[str, asyncio.Event] = {}

    @property
    def transfers(self):
        return self.server.transfers

    def error(self, status: int, kind: str, message: str, headers: dict | None = None):
        from llm_desktop.server.app import error

        return error(status, kind, message, headers)

    def hub_error(self, exc: ModelError) -> JSONResponse:
        info = exc.info
        return self.error(_status_for(info, HUB_STATUS, 502), str(info.kind), info.message)

    # -- the hub ---------------------------------------------------------------------------

    async def listing(self, repo_id: str) -> hf_hub.RepoListing:
        """A repository's models, remembered for a few minutes (a fit reads its commit)."""
        now = time.monotonic()
        memo = self._listings.get(repo_id)
        if memo is not None and now - memo[0] < LISTING_TTL_S:
            return memo[1]
        listing = await anyio.to_thread.run_sync(hf_hub.list_models, repo_id)
        self._listings[repo_id] = (now, listing)
        while len(self._listings) > LISTING_MEMO:
            self._listings.pop(next(iter(self._listings)))
        return listing

    async def search_view(self, query: str) -> hub_presenter.SearchView:
        hits = await anyio.to_thread.run_sync(hf_hub.search, query)
        return hub_presenter.search_view(query, hits)

    async def fit(self, repo_id: str, file: str):
        """(model, verdict) of a repository's model named by its (first) file."""
        listing = await self.listing(repo_id)
        model = hf_hub.choose(listing, file)
        verdict = await anyio.to_thread.run_sync(
            lambda: remote_fit(model, self.server.library.hardware, self.server.library.n_ctx)
        )
        return model, verdict

    async def repo_view(self, repo_id: str, *, with_fits: bool) -> hub_presenter.RepoView:
        """The listing with its models; `with_fits` (the page without scripts) reads the first
        models' fits here, else each is left to read (the page's script reads them)."""
        listing = await self.listing(repo_id)
        if not with_fits:
            models = hub_presenter.model_views(listing, fit=hub_presenter.fit_checking())
            return hub_presenter.repo_view(listing, models)
        fits: dict[str, FitBadge] = {}

        async def one(model: hf_hub.RemoteModel) -> None:
            key = hub_presenter.download_key(model)
            try:
                fits[key] = hub_presenter.fit_of((await self.fit(repo_id, model.first.path))[1])
            except Exception as exc:  # one unreadable header must not hide the others
                fits[key] = hub_presenter.fit_unknown(hub_presenter.fit_failure_text(exc))

        async with anyio.create_task_group() as group:
            for model in listing.models[:PAGE_FITS]:
                group.start_soon(one, model)
        return hub_presenter.repo_view(listing, hub_presenter.model_views(listing, fits))

    @staticmethod
    def _repo_id(value: str | None) -> str | None:
        value = (value or "").strip()
        if not value or len(value) > REPO_ID_LIMIT:
            return None
        try:
            repo_id, selector = hf_hub.parse_reference(value)
        except ModelError:
            return None
        return repo_id if selector is None else None

    async def api_search(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        if len(query) > REPO_ID_LIMIT:
            return self.error(400, "bad_query", "The search text is too long")
        try:
            hits = await anyio.to_thread.run_sync(hf_hub.search, query)
        except ModelError as exc:
            return self.hub_error(exc)
        return JSONResponse(
            {
                "hits": [hit.to_dict() for hit in hits],
                "view": hub_presenter.search_view(query, hits).to_dict(),
            }
        )

    async def api_repo(self, request: Request) -> Response:
        repo_id = self._repo_id(request.query_params.get("id"))
        if repo_id is None:
            return self.error(400, "bad_repo", "A repository id (org/name) is required")
        try:
            listing = await self.listing(repo_id)
        except ModelError as exc:
            return self.hub_error(exc)
        view = await self.repo_view(repo_id, with_fits=False)
        return JSONResponse({"listing": listing.to_dict(), "view": view.to_dict()})

    async def api_fit(self, request: Request) -> Response:
        repo_id = self._repo_id(request.query_params.get("repo"))
        file = request.query_params.get("file", "").strip()
        if repo_id is None or not file or len(file) > MAX_REFERENCE:
            return self.error(400, "bad_model", "A repository (org/name) and a file are required")
        try:
            model, verdict = await self.fit(repo_id, file)
        except ModelError as exc:
            return _fit_refusal(exc, _status_for(exc.info, HUB_STATUS, 502), str(exc.info.kind))
        except Exception as exc:  # a header the parser could not make sense of
            log.warning("fit of %s:%s: %s", repo_id, file, exc)
            return _fit_refusal(exc, 502, "fit_unknown")
        return JSONResponse(hub_presenter.fit_answer(model, verdict))

    # -- downloads, quantizing, and steering transfers -------------------------------------

    def start_download(self, body: dict[str, Any]) -> str | JSONResponse:
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference.strip():
            return self.error(
                400, "bad_reference", "A hub model (org/name[:file]) or link is required"
            )
        if len(reference) > MAX_REFERENCE:
            return self.error(400, "bad_reference", "The reference is too long")
        dest_dir = body.get("dest_dir") or None
        sha256 = body.get("sha256") or None
        if dest_dir is not None and (
            not isinstance(dest_dir, str)
            or not os.path.isabs(dest_dir)
            or not Path(dest_dir).is_dir()
        ):
            return self.error(
                400, "bad_dest_dir", "dest_dir must be an existing folder's full path"
            )
        if sha256 is not None and (not isinstance(sha256, str) or len(sha256) != 64):
            return self.error(400, "bad_sha256", "sha256 must be 64 hexadecimal digits")
        return self.transfers.download(reference, dest_dir=dest_dir, sha256=sha256)

    async def api_download(self, request: Request) -> Response:
        body, refusal = await self.server._json_body(request)
        if refusal:
            return refusal
        key = self.start_download(body)
        if isinstance(key, Response):
            return key
        return JSONResponse({"key": key}, status_code=202)

    async def start_quantize(self, body: dict[str, Any]) -> str | Response:
        type_name = str(body.get("type") or "").strip().upper()
        if type_name not in QUANT_TYPES:
            offered = ", ".join(QUANT_TYPES)
            return self.error(400, "bad_type", f"Quantize to one of: {offered}")
        model, refusal = await self.server._model(body.get("model"))
        if refusal:
            return refusal
        if refusal := self.server._remote_refusal(model):
            return refusal
        return self.transfers.quantize(model.entry.path, type_name)

    async def api_quantize(self, request: Request) -> Response:
        body, refusal = await self.server._json_body(request)
        if refusal:
            return refusal
        key = await self.start_quantize(body)
        if isinstance(key, Response):
            return key
        return JSONResponse({"key": key}, status_code=202)

    async def api_transfers(self, request: Request) -> Response:
        return JSONResponse(
            {
                "transfers": [view.to_dict() for view in self.server.store.transfers()],
                "seq": self.server.engine.bus.last_seq,
            }
        )

    async def steer(self, action: str, key: str, keep: bool = True) -> dict[str, Any] | Response:
        """Pause, resume, cancel, discard, dismiss or load (the new model of) a transfer."""
        store = self.server.store
        if store.transfer(key) is None and key not in self._waiting:
            return self.error(404, "unknown_transfer", f"No transfer with key {key!r}")
        if action == "dismiss":
            return {"dismissed": store.dismiss_transfer(key)}
        if action == "load":
            return await self._model_of(key)
        if action in ("cancel", "discard") and key in self._waiting:
            self._expire(key, "Upload cancelled")
            return {"ok": True}
        if action == "cancel" and keep:
            done = self.transfers.cancel(key, keep_partial=True)
        elif action in ("cancel", "discard"):
            done = await anyio.to_thread.run_sync(self.transfers.discard, key)
        elif action == "pause":
            done = self.transfers.pause(key)
        else:
            done = self.transfers.resume(key)
        stop = self._receiving.get(key)
        if stop is not None and action in ("cancel", "discard"):
            stop.set()
        return {"ok": bool(done)}

    async def _model_of(self, key: str) -> dict[str, Any] | Response:
        """The library model a finished transfer made (scanning the folders again)."""
        view = self.server.store.transfer(key)
        path = view.result_path if view is not None and view.stage is Stage.COMPLETE else None
        if not path:
            return self.error(409, "not_complete", "The transfer has made no model yet")
        wanted = {path, os.path.realpath(path)}
        for model in await self.server.refresh():
            if wanted & {*model.entry.parts, model.entry.path}:
                return {"model": model.entry.id}
        return self.error(
            404, "model_not_listed", f"{path} is not in the library's folders; add its folder"
        )

    async def api_steer(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in TRANSFER_ACTIONS:
            return self.error(404, "not_found", "Nothing here")
        body, refusal = await self.server._json_body(request)
        if refusal:
            return refusal
        key = body.get("key")
        if not isinstance(key, str) or not key:
            return self.error(400, "bad_key", "A transfer key from /api/transfers is required")
        answer = await self.steer(action, key, keep=body.get("keep", True) is not False)
        return answer if isinstance(answer, Response) else JSONResponse(answer)

    # -- uploads ---------------------------------------------------------------------------

    def _new_upload(self, name: str, size: int | None) -> UploadJob:
        job = self.transfers.upload(name, size)
        # The server's own limit may be lower than the shared service's.
        job.limit = min(job.limit, self.server.config.upload_limit)
        return job

    @staticmethod
    def _declared_size(request: Request) -> int | None:
        for header in ("content-length", "x-file-size"):
            value = request.headers.get(header)
            if value is not None and value.isdigit():
                return int(value)
        return None

    async def _begin(self, job: UploadJob) -> Response | None:
        try:
            await anyio.to_thread.run_sync(job.begin)
        except ModelError as exc:
            self.transfers.upload_finished(job)
            return self._upload_refusal(job, exc.info)
        return None

    def _upload_refusal(self, job: UploadJob, info: ErrorInfo) -> JSONResponse:
        last = job.last_event
        message = last.message if last is not None and last.is_terminal else info.message
        return JSONResponse(
            {"key": job.key, "error": {"kind": str(info.kind), "message": message}},
            status_code=_status_for(info, UPLOAD_STATUS, 400),
        )

    async def _receive(
        self, job: UploadJob, chunks, stop: asyncio.Event
    ) -> tuple[Path | None, Response | None]:
        """Stream `chunks` into the begun `job` and finish it: (the new file, None), or
        (None, the refusal). `stop` is set by Cancel. Whatever happens, the job ends and the
        service forgets it."""
        self._receiving[job.key] = stop
        info: ErrorInfo | None = None
        try:
            await write_batched(chunks, job.write)
            if job.cancelled:
                raise ModelError(ErrorKind.CANCELLED, "Upload cancelled")
            path = await anyio.to_thread.run_sync(job.finish)
            return path, None
        except UploadStopped:
            info = ErrorInfo(ErrorKind.CANCELLED, "Upload cancelled")
        except ClientDisconnect:
            info = ErrorInfo(ErrorKind.CANCELLED, "The page went away before the file was sent")
        except ModelError as exc:
            info = exc.info
        except BadMultipart as exc:
            info = ErrorInfo(ErrorKind.INVALID_MODEL, f"The upload form was not readable: {exc}")
        finally:
            self._receiving.pop(job.key, None)
            if job.last_event is None or not job.last_event.is_terminal:
                # The stream ended the job (a disconnect, a cancel between chunks, a bad form).
                job.abort(info or ErrorInfo(ErrorKind.CANCELLED, "Upload cancelled"))
            self.transfers.upload_finished(job)
        return None, self._upload_refusal(job, info)

    async def api_upload(self, request: Request) -> Response:
        """POST /api/uploads?name=FILE.gguf, the file as the body (Content-Length)."""
        name = request.query_params.get("name", "")
        size = self._declared_size(request)
        if not name:
            return self.error(400, "bad_name", "The file's name is required (?name=FILE.gguf)")
        if size is None:
            return self.error(411, "length_required", "The upload must say its size")
        job = self._new_upload(name, size)
        if refusal := await self._begin(job):
            return refusal
        return await self._answer_upload(request, job)

    async def _answer_upload(self, request: Request, job: UploadJob) -> Response:
        stop = asyncio.Event()
        path, refusal = await self._receive(job, body_chunks(request.receive, stop), stop)
        if refusal:
            return refusal
        return JSONResponse({"key": job.key, "path": str(path)}, status_code=201)

    async def api_upload_start(self, request: Request) -> Response:
        """POST /api/uploads/start {name, size}: the name, size and free space are checked
        before a byte is sent; the answer's key names the upload at once (so Cancel works
        while the body is still on its way) and POST /api/uploads/{key} sends the body."""
        body, refusal = await self.server._json_body(request)
        if refusal:
            return refusal
        name, size = body.get("name"), body.get("size")
        if not isinstance(name, str) or not name:
            return self.error(400, "bad_name", "The file's name is required")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return self.error(400, "bad_size", "The file's size in bytes is required")
        job = self._new_upload(name, size)
        if refusal := await self._begin(job):
            return refusal
        timer = asyncio.get_running_loop().call_later(
            UPLOAD_START_TTL_S, self._expire, job.key, "No file arrived for the upload"
        )
        self._waiting[job.key] = (job, timer)
        return JSONResponse({"key": job.key}, status_code=201)

    def _expire(self, key: str, why: str) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is None:
            return
        job, timer = waiting
        timer.cancel()
        job.abort(ErrorInfo(ErrorKind.CANCELLED, why))
        self.transfers.upload_finished(job)

    async def api_upload_body(self, request: Request) -> Response:
        key = request.path_params["key"]
        waiting = self._waiting.pop(key, None)
        if waiting is None:
            return self.error(404, "unknown_upload", "Start the upload first (or it expired)")
        job, timer = waiting
        timer.cancel()
        size = self._declared_size(request)
        if size is not None and size != job.size:
            job.abort(ErrorInfo(ErrorKind.NETWORK, "The body is not the size the upload announced"))
            self.transfers.upload_finished(job)
            return self._upload_refusal(job, job.last_event.error)  # type: ignore[union-attr]
        return await self._answer_upload(request, job)

    async def form_upload(self, request: Request) -> Response:
        """POST /actions/upload: the page without scripts sends its form (multipart)."""
        boundary = multipart_boundary(request.headers.get("content-type", ""))
        length = request.headers.get("content-length", "")
        if boundary is None or not length.isdigit():
            return self.error(400, "bad_form", "Send the file with the page's upload form")
        parser = MultipartFile(boundary)
        stop = asyncio.Event()
        stream = parser.parts(body_chunks(request.receive, stop))
        try:
            name = await anext(stream)
        except (StopAsyncIteration, BadMultipart, ClientDisconnect):
            return self.error(400, "bad_form", "The form carried no file")
        if not isinstance(name, str) or not name:
            return self.error(400, "bad_form", "Choose a .gguf file to upload")
        size = int(length) - parser.head_bytes - parser.trailer_bytes
        job = self._new_upload(name, max(size, 0))
        if await self._begin(job) is None:
            await self._receive(job, _data_only(stream), stop)
        return RedirectResponse("/#transfers", 303)

    # -- forms of the page without scripts ---------------------------------------------------

    async def _form(self, request: Request) -> dict[str, str] | Response:
        try:
            raw = await request.body()
        except BodyTooLarge:
            return self.error(413, "body_too_large", "The request body is too large")
        return dict(parse_qsl(raw.decode("utf-8", "replace")))

    async def form_download(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        key = self.start_download(form)
        if isinstance(key, Response):
            return key
        return RedirectResponse("/#transfers", 303)

    async def form_quantize(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        key = await self.start_quantize(form)
        if isinstance(key, Response):
            return key
        return RedirectResponse("/#transfers", 303)

    async def form_steer(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in TRANSFER_ACTIONS:
            return self.error(404, "not_found", "Nothing here")
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        key = form.get("key", "")
        shown = self.server.store.transfer(key)
        answer = await self.steer(action, key)
        if isinstance(answer, Response):
            return answer
        if action == "load":
            model_id = answer["model"]
            model, refusal = await self.server._model(model_id)
            if refusal:
                return refusal
            options = self.server.store.options(model_id)
            if refusal := self.server._rate_limited(request):
                return refusal
            await self.server._until_loaded(model, options)
            return RedirectResponse(f"/?notice={model_id}#model-{model_id}", 303)
        if action in ("pause", "cancel", "discard") and answer.get("ok") and shown is not None:
            await self._until_settled(key, shown.seq)
        return RedirectResponse("/#transfers", 303)

    async def _until_settled(self, key: str, after_seq: int, timeout_s: float = 10.0) -> None:
        """Wait (a little) until the transfer shows what a form did: an event after `after_seq`
        that ends it or pauses it, so the page that follows shows the outcome."""
        with contextlib.suppress(TimeoutError), anyio.fail_after(timeout_s):
            while True:
                view = self.server.store.transfer(key)
                if view is None:
                    return
                if view.seq > after_seq and (not view.active or view.stage is Stage.PAUSED):
                    return
                await anyio.sleep(0.05)

    # -- the page ----------------------------------------------------------------------------

    async def page_state(self, query: dict[str, str]) -> dict[str, Any]:
        """What the "Get models" section shows for `?q=` and `?repo=` (the page without
        scripts searches and lists with them; llm.js keeps the address in step)."""
        state: dict[str, Any] = {"query": query.get("q", "")[:REPO_ID_LIMIT]}
        if "q" in query:
            try:
                state["search"] = await self.search_view(state["query"])
            except ModelError as exc:
                state["search_error"] = exc.info.message
        repo_id = self._repo_id(query.get("repo"))
        if repo_id is not None:
            try:
                state["repo"] = await self.repo_view(repo_id, with_fits=True)
            except ModelError as exc:
                state["repo_error"] = exc.info.message
        return state

    def close(self) -> None:
        for key in list(self._waiting):
            self._expire(key, "The server stopped")


def _fit_refusal(exc: BaseException, status: int, kind: str) -> JSONResponse:
    """A fit that could not be read: the error, and the "Fit unknown" badge that says why."""
    message = hub_presenter.fit_failure_text(exc)
    badge = hub_presenter.fit_unknown(message)
    return JSONResponse(
        {"error": {"kind": kind, "message": message}, "badge": asdict(badge)}, status_code=status
    )


async def _data_only(stream):
    async for part in stream:
        if isinstance(part, bytes):
            yield part
