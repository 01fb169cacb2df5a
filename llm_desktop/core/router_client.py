"""HTTP to one llama.cpp router (`llama-server` started with a models folder and no model).

The router's own API, as llama.cpp b11434 serves it: `GET /models` (each model's id and status),
`POST /models/load` and `POST /models/unload` (`{"model": id}`; no per-load options), `GET /props`
(`role: router`, `max_instances`, `build_info`) and `GET /models/sse`, a stream of
`data: {"model", "event", "data"}` frames with no heartbeat: a quiet stream may be idle or
stalled, which is why `core.remote_engine` checks `GET /models` when the stream says nothing.

Every failure is a `ModelError` a person can read, named after the source ("lab-gpu"): not
reachable (`network`), a refused key (`unauthorized`), an unknown model (`not_found`).

The standard library's `http.client` is used on purpose, as in `core.transfer`: the engine's
thread can shut the stream's socket down under a blocked read when it stops.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llm_desktop.core.events import ErrorKind, ModelError

REQUEST_TIMEOUT_S = 10.0


class RouterStateConflict(ModelError):
    """The router is already where a request would take it (loading a running model,
    unloading a stopped one): its own frames tell the state, so no failure is shown."""


class StreamSilent(Exception):
    """The event stream sent nothing for the read timeout: idle, or stalled."""


class StreamClosed(Exception):
    """The router ended the event stream (it is stopping, or the connection broke)."""


@dataclass(frozen=True)
class RouterAddress:
    """Where a router is, checked once: scheme, host, port and an optional path prefix."""

    url: str
    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> RouterAddress:
        text = url.strip()
        if "://" not in text:
            text = "http://" + text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Not a router address: {url!r} (expected http://host:port)")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"Not a router address: {url!r} ({exc})") from None
        prefix = parts.path.rstrip("/")
        clean = f"{parts.scheme}://{parts.netloc}{prefix}"
        return cls(clean, parts.scheme, parts.hostname, port, prefix)


class RouterClient:
    """The router's HTTP API for one source; safe to share between threads (one connection
    per call)."""

    def __init__(
        self, name: str, url: str, api_key: str | None = None, timeout: float = REQUEST_TIMEOUT_S
    ):
        self.name = name
        self.address = RouterAddress.parse(url)
        self.api_key = api_key or None
        self.timeout = timeout
        self._stream_lock = threading.Lock()
        self._stream_sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return self.address.url

    # -- requests ------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        data = self.request("GET", "/models")
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise self._error(ErrorKind.INVALID_REQUEST, "answered /models with no model list")
        return [model for model in models if isinstance(model, dict) and "id" in model]

    def props(self) -> dict[str, Any]:
        data = self.request("GET", "/props")
        return data if isinstance(data, dict) else {}

    def load(self, model_id: str) -> None:
        self.request("POST", "/models/load", {"model": model_id})

    def unload(self, model_id: str) -> None:
        self.request("POST", "/models/unload", {"model": model_id})

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        connection = self._connection(self.timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, self.address.prefix + path, payload, self._headers(body))
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None
        finally:
            connection.close()
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            data = None
        if response.status >= 400:
            raise self._refusal(response.status, data, path)
        return data

    # -- the event stream ----------------------------------------------------------------------

    @contextlib.contextmanager
    def events(self, read_timeout: float) -> Iterator[EventReader]:
        """`GET /models/sse`, open: a reader of its frames (`EventReader.next`).

        The stream is read from a plain socket with `select`, not through `http.client`: a
        socket file that once timed out refuses every later read, and a quiet stream times
        out all the time (the router sends no heartbeat)."""
        try:
            sock = socket.create_connection((self.address.host, self.address.port), self.timeout)
        except OSError as exc:
            raise self._unreachable(exc) from None
        try:
            if self.address.scheme == "https":
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self.address.host)
            lines = [
                f"GET {self.address.prefix}/models/sse HTTP/1.1",
                f"Host: {self.address.host}:{self.address.port}",
                "Accept: text/event-stream",
                "Connection: close",
                *(
                    f"{name}: {value}"
                    for name, value in self._headers().items()
                    if name != "Accept"
                ),
            ]
            reader = EventReader(sock, read_timeout)
            try:
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                status, chunked = reader.read_head(self.timeout)
            except (OSError, ValueError) as exc:
                raise self._unreachable(exc) from None
            if status >= 400:
                raw = reader.read_rest(self.timeout)
                try:
                    data = json.loads(raw or b"null")
                except ValueError:
                    data = None
                raise self._refusal(status, data, "/models/sse")
            reader.chunked = chunked
            with self._stream_lock:
                self._stream_sock = sock
            yield reader
        finally:
            with self._stream_lock:
                self._stream_sock = None
            with contextlib.suppress(OSError):
                sock.close()

    def break_stream(self) -> None:
        """Shut the open stream's socket down (from another thread): its read ends at once."""
        with self._stream_lock:
            sock = self._stream_sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- helpers -------------------------------------------------------------------------------

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.address.scheme == "https":
            return http.client.HTTPSConnection(
                self.address.host, self.address.port, timeout=timeout
            )
        return http.client.HTTPConnection(self.address.host, self.address.port, timeout=timeout)

    def _headers(self, body: dict[str, Any] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _error(self, kind: ErrorKind, words: str, detail: tuple[str, ...] = ()) -> ModelError:
        return ModelError(kind, f"{self.name} {words}", detail)

    def _unreachable(self, exc: BaseException) -> ModelError:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or "no answer"
        if isinstance(exc, TimeoutError):
            why = f"no answer in {self.timeout:g} s"
        return self._error(
            ErrorKind.NETWORK, f"cannot be reached at {self.url}: {why.lower()}", (repr(exc),)
        )

    def _refusal(self, status: int, data: Any, path: str) -> ModelError:
        """A router's error answer as a named error: its words, our kind."""
        error = data.get("error") if isinstance(data, dict) else None
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        detail = (f"HTTP {status} from {path}", message) if message else (f"HTTP {status}",)
        return router_refusal(self.name, status, message, detail)


def router_refusal(name: str, status: int, message: str, detail: tuple[str, ...]) -> ModelError:
    """What a router's refusal means to a person. The router's own words are kept as the
    detail; our kind says what can be done about it."""
    lowered = message.lower()
    if status in (401, 403):
        return ModelError(ErrorKind.UNAUTHORIZED, f"{name} refused the API key", detail)
    if status == 404 or "not found" in lowered:
        return ModelError(ErrorKind.NOT_FOUND, f"{name} has no such model", detail)
    if "memory" in lowered or "alloc" in lowered:
        return ModelError(ErrorKind.OUT_OF_MEMORY, f"{name} is out of memory: {message}", detail)
    if "model limit reached" in lowered:
        return ModelError(
            ErrorKind.INVALID_REQUEST,
            f"{name} already runs as many models as it may (--models-max); unload one first",
            detail,
        )
    if "already running" in lowered:
        return RouterStateConflict(
            ErrorKind.INVALID_REQUEST, f"{name}: the model is already loaded", detail
        )
    if "not running" in lowered:
        return RouterStateConflict(
            ErrorKind.INVALID_REQUEST, f"{name}: the model is not loaded", detail
        )
    words = message or f"answered HTTP {status}"
    return ModelError(ErrorKind.INVALID_REQUEST, f"{name} refused: {words}", detail)


class EventReader:
    """Frames of an open `/models/sse` stream, one `next()` at a time, from the socket itself:
    HTTP/1.1 chunks decoded here, a frame's lines kept across timeouts."""

    def __init__(self, sock: socket.socket, read_timeout: float):
        self._sock = sock
        self._timeout = read_timeout
        self._raw = b""  # bytes received and not yet decoded
        self._text = b""  # the stream's body, decoded, not yet split into lines
        self._chunk_left: int | None = None  # bytes left of the current chunk; None: a size next
        self._ended = False
        self._data: list[str] = []
        self.chunked = False

    def set_timeout(self, seconds: float) -> None:
        self._timeout = seconds

    def read_head(self, timeout: float) -> tuple[int, bool]:
        """The status and whether the body is chunked."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._raw:
            if not self._receive(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("no answer")
        head, self._raw = self._raw.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines)
        }
        return status, "chunked" in headers.get("transfer-encoding", "").lower()

    def read_rest(self, timeout: float) -> bytes:
        """An error answer's body (the router closes after it)."""
        deadline = time.monotonic() + timeout
        while self._receive(max(0.0, deadline - time.monotonic())):
            pass
        body = self._raw
        if body[:1] not in (b"{", b"["):  # a chunked body: drop the size lines
            body = b"".join(part for part in body.split(b"\r\n")[1::2])
        return body

    def next(self) -> dict[str, Any]:
        """The next frame; `StreamSilent` when nothing came for the read timeout, and
        `StreamClosed` when the stream ended."""
        while True:
            while b"\n" in self._text:
                raw_line, self._text = self._text.split(b"\n", 1)
                frame = self._line(raw_line.decode("utf-8", "replace").rstrip("\r"))
                if frame is not None:
                    return frame
            if self._ended:
                raise StreamClosed("the router ended the stream")
            try:
                received = self._receive(self._timeout)
            except OSError as exc:
                raise StreamClosed(str(exc)) from None
            if received is None:
                raise StreamSilent()
            if not received:
                raise StreamClosed("the router closed the stream")
            self._decode()

    def _receive(self, timeout: float) -> bytes | None:
        """Bytes from the socket (b"" at its end), or None when none came within `timeout`."""
        pending = isinstance(self._sock, ssl.SSLSocket) and self._sock.pending()
        if not pending:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                return None
        try:
            data = self._sock.recv(65536)
        except ssl.SSLWantReadError:
            return None
        self._raw += data
        return data

    def _decode(self) -> None:
        if not self.chunked:
            self._text += self._raw
            self._raw = b""
            return
        while self._raw:
            if self._chunk_left is None:
                if b"\r\n" not in self._raw:
                    return
                size_line, self._raw = self._raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._ended = True
                    return
                self._chunk_left = size
            if self._chunk_left > 0:
                part = self._raw[: self._chunk_left]
                self._raw = self._raw[len(part) :]
                self._text += part
                self._chunk_left -= len(part)
            if self._chunk_left == 0:
                if len(self._raw) < 2:
                    return
                self._raw = self._raw[2:]  # the CRLF after the chunk
                self._chunk_left = None

    def _line(self, text: str) -> dict[str, Any] | None:
        if text.startswith("data:"):
            self._data.append(text[5:].lstrip())
            return None
        if text == "" and self._data:
            payload, self._data = "\n".join(self._data), []
            try:
                frame = json.loads(payload)
            except ValueError:
                return None  # not a frame we can read; the next resync corrects any gap
            return frame if isinstance(frame, dict) else None
        return None
