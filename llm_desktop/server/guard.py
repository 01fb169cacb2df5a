"""The server's front door: every request passes these checks before any handler runs.

- Host header must name the server itself (defeats DNS rebinding).
- Origin, when sent, must be the server's own (no cross-site use of the API; CORS only for it).
- /api/, /actions/ and /v1/ (the OpenAI-compatible API) need the per-launch token:
  `Authorization: Bearer T`, `?token=T`, or the strict same-site cookie the page sets (so the
  page, with scripts or without, needs no token in its address after the first visit). Other
  paths learn whether the token came with them.
- Paths with NUL, backslashes or `..` (also percent-encoded) are refused before routing.
- Request bodies over the limit are refused (the API's chat requests carry whole conversations,
  so /v1/ has a larger one), except where `streamed(path)` says the handler
  streams the body to disk under a limit of its own (uploads).
Every refusal is a JSON error with a status that says why, in the one shape every route uses:
ours (`kind`, `message`) and OpenAI's (`type`, `code`, `param`), so its clients read it too.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, unquote

TOKEN_COOKIE = "llm_desktop_token"
API_PREFIX = "/v1/"
PROTECTED_PREFIXES = ("/api/", "/actions/", API_PREFIX)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
MAX_BODY_BYTES = 16 * 1024
MAX_API_BODY_BYTES = 16 * 1024 * 1024  # a long conversation, or a batch of texts to embed


def body_limit(path: str) -> int:
    return MAX_API_BODY_BYTES if path.startswith(API_PREFIX) else MAX_BODY_BYTES


def error_type(status: int) -> str:
    """OpenAI's error `type` for a status."""
    if status in (401, 403):
        return "authentication_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_payload(status: int, kind: str, message: str, param: str | None = None) -> dict:
    return {
        "error": {
            "kind": kind,
            "message": message,
            "type": error_type(status),
            "code": kind,
            "param": param,
        }
    }


def error_body(status: int, kind: str, message: str) -> bytes:
    return json.dumps(error_payload(status, kind, message)).encode()


async def send_error(send, status: int, kind: str, message: str, headers=()) -> None:
    body = error_body(status, kind, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def split_host(value: str) -> str:
    """`127.0.0.1:8080` → `127.0.0.1`; `[::1]:8080` → `[::1]`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RateLimiter:
    """At most `limit` events per `window_s` per key; answers how long to wait when over."""

    def __init__(self, limit: int, window_s: float):
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """0 when allowed (and counted); otherwise seconds until the next is allowed."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return self.window_s - (now - hits[0])
            hits.append(now)
            return 0.0


class Guard:
    """ASGI middleware applying the checks above."""

    def __init__(
        self,
        app,
        *,
        token: str,
        hosts: Iterable[str],
        port_ref: list[int],
        streamed: Callable[[str], bool] = lambda _path: False,
    ):
        self.app = app
        self.streamed = streamed
        self.token = token.encode()
        self.hosts = {split_host(host) for host in hosts} | LOOPBACK_NAMES
        self.port_ref = port_ref  # the bound port, known only once the socket is bound

    def own_origins(self) -> set[str]:
        port = self.port_ref[0]
        return {f"http://{host}:{port}" for host in self.hosts if host != "::1"}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = split_host(headers.get("host", ""))
        if host not in self.hosts:
            await send_error(send, 421, "host_not_allowed", f"Host {host!r} is not this server")
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.own_origins():
            await send_error(send, 403, "origin_not_allowed", "Cross-origin requests are refused")
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if not self._path_is_sane(raw_path):
            await send_error(send, 400, "bad_path", "The path is not allowed")
            return
        if scope["method"] == "OPTIONS":
            await self._preflight(send, origin)
            return
        authorized = self._authorized(scope, headers)
        scope.setdefault("state", {})["authorized"] = authorized
        if scope["path"].startswith(PROTECTED_PREFIXES) and not authorized:
            presented = self._presented_token(scope, headers) is not None
            message = "The token is wrong" if presented else "A token is required"
            # OpenAI's clients expect 401 invalid_api_key for a wrong key; the page's API
            # tells a missing token (401) from a wrong one (403).
            if scope["path"].startswith(API_PREFIX):
                status, kind = 401, "invalid_api_key"
            else:
                status, kind = (403 if presented else 401), "unauthorized"
            await send_error(send, status, kind, message, [(b"www-authenticate", b"Bearer")])
            return
        if self.streamed(scope["path"]):  # protected (above); the handler limits the size
            await self.app(scope, receive, self._with_cors(send, origin))
            return
        length = headers.get("content-length")
        limit = body_limit(scope["path"])
        if length is not None and (not length.isdigit() or int(length) > limit):
            await send_error(
                send, 413, "body_too_large", f"Request bodies are limited to {limit} bytes"
            )
            return
        await self.app(scope, self._limited(receive, limit), self._with_cors(send, origin))

    @staticmethod
    def _path_is_sane(raw_path: bytes) -> bool:
        decoded = unquote(unquote(raw_path.decode("latin-1")))
        return not any(bad in decoded for bad in ("\x00", "\\", "/..", "../")) and decoded != ".."

    def _presented_token(self, scope, headers) -> bytes | None:
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            return authorization[7:].strip().encode()
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0].encode()
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:
            return None
        if TOKEN_COOKIE in cookies:
            return cookies[TOKEN_COOKIE].value.encode()
        return None

    def _authorized(self, scope, headers) -> bool:
        presented = self._presented_token(scope, headers)
        return presented is not None and hmac.compare_digest(presented, self.token)

    async def _preflight(self, send, origin: str | None) -> None:
        headers = [(b"content-length", b"0")]
        if origin in self.own_origins():
            headers += [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-allow-methods", b"GET, POST"),
                (b"access-control-allow-headers", b"authorization, content-type, last-event-id"),
                (b"vary", b"Origin"),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _with_cors(self, send, origin: str | None):
        if origin is None:
            return send

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"access-control-allow-origin", origin.encode()),
                    (b"vary", b"Origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        return send_with_cors

    @staticmethod
    def _limited(receive, limit: int):
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        return limited_receive


class BodyTooLarge(Exception):
    pass
