"""Fetching one file over HTTP into a partial file that survives anything: resumable, stoppable.

`fetch()` appends to `<partial>` with `Range` requests from where it stopped, so a dropped
connection, a stall, a pause, a cancel that keeps the bytes or a killed process all resume with
the bytes already on disk. The partial's sidecar (`<partial>.json`) records which file version
those bytes belong to (ETag and size); a server that says the file changed (`If-Range` answered
with the whole file) or a sidecar that does not match starts over from zero instead of splicing
two versions together.

The standard library's `http.client` is used on purpose: the control thread can shut the socket
down under a blocked read, which is what makes pause and cancel immediate even mid-stall.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urljoin, urlsplit

from llm_desktop.core.events import ErrorKind, ModelError

CHUNK_BYTES = 1 << 20
MAX_REDIRECTS = 8
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class RetryPolicy:
    """When a connection counts as stalled, and how often and how patiently to try again."""

    stall_s: float = 20.0  # no byte for this long: the connection is dropped and resumed
    attempts: int = 6  # failures in a row (without a byte between them) before giving up
    backoff_s: float = 1.0  # first wait; doubles each time
    backoff_cap_s: float = 30.0


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class RemoteSource:
    url: str
    headers: dict[str, str]  # sent to the first host only (a token must not follow a redirect)
    size: int | None = None
    etag: str | None = None  # the version the bytes must belong to, when known beforehand


@dataclass
class PartialState:
    """What the sidecar says of a partial file."""

    url: str
    etag: str | None
    size: int | None


class Stopped(Exception):  # a signal between threads, not an error a person sees
    """The control stopped the transfer (pause or cancel); the partial file is intact."""


class RetryableError(Exception):
    """A failure worth another attempt from where the bytes stopped."""


class TransferControl:
    """Shared between a transfer's threads and whoever pauses or cancels it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop every connection now, even one blocked in a read."""
        self._stop.set()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        self._stop.clear()

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds` unless stopped first; True when stopped."""
        return self._stop.wait(seconds)

    def check(self) -> None:
        if self._stop.is_set():
            raise Stopped()

    def track(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.add(sock)
        if self._stop.is_set():
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def untrack(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sockets.discard(sock)


def read_sidecar(partial: str) -> PartialState | None:
    try:
        with open(partial + SIDECAR_SUFFIX, encoding="utf-8") as handle:
            data = json.load(handle)
        return PartialState(str(data["url"]), data.get("etag"), data.get("size"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_sidecar(partial: str, state: PartialState) -> None:
    temporary = partial + SIDECAR_SUFFIX + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(asdict(state), handle)
    os.replace(temporary, partial + SIDECAR_SUFFIX)


def remove_partial(partial: str) -> None:
    for path in (partial, partial + SIDECAR_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def partial_size(partial: str) -> int:
    try:
        return os.path.getsize(partial)
    except OSError:
        return 0


def resumable_bytes(partial: str, source: RemoteSource) -> int:
    """How many bytes of `partial` belong to `source`'s version (0 when unknown or changed)."""
    state = read_sidecar(partial)
    size = partial_size(partial)
    if state is None or size == 0:
        return 0
    if source.etag and state.etag and source.etag != state.etag:
        return 0
    if source.size is not None and state.size is not None and source.size != state.size:
        return 0
    if source.size is not None and size > source.size:
        return 0
    return size


def fetch(
    source: RemoteSource,
    partial: str,
    *,
    control: TransferControl,
    on_bytes: Callable[[int], None],
    on_restart: Callable[[int, str], None],
    on_retry: Callable[[int, float, str], None],
    policy: RetryPolicy = DEFAULT_POLICY,
) -> int:
    """Download `source` into `partial`, resuming; returns the file's size when it is whole.

    `on_bytes(n)` is called for every chunk written; `on_restart(dropped, why)` when bytes
    already counted are thrown away (the file changed); `on_retry(attempt, wait_s, why)` before
    waiting to try again. Raises `Stopped` when the control stops it, `ModelError` for what
    retrying cannot mend (not found, unauthorized, disk full, out of attempts).
    """
    have = resumable_bytes(partial, source)
    if have == 0:
        remove_partial(partial)
    elif have < partial_size(partial):
        os.truncate(partial, have)
    # A direct link's version is learnt from its first answer and kept in the sidecar: it is
    # what `If-Range` must name for the server to resume rather than splice two versions.
    kept = read_sidecar(partial) if have else None
    etag = source.etag or (kept.etag if kept else None)
    size = source.size if source.size is not None else (kept.size if kept else None)
    if have == 0 or kept is None:
        write_sidecar(partial, PartialState(source.url, etag, size))
    failures = 0
    while True:
        control.check()
        try:
            have, etag, size = _attempt(
                source, partial, have, etag, size, control, on_bytes, on_restart, policy
            )
            return have
        except Stopped:
            raise
        except RetryableError as exc:
            if control.stopped:
                raise Stopped() from exc
            got = partial_size(partial)
            have_before_attempt = have
            failures = 1 if got > have else failures + 1
            have = got
            if failures >= policy.attempts and isinstance(exc, RateLimited):
                raise ModelError(
                    ErrorKind.RATE_LIMITED,
                    f"The server kept limiting requests after {failures} tries; "
                    f"the {have:,} bytes received are kept: try again later to resume",
                ) from exc
            if failures >= policy.attempts:
                raise ModelError(
                    ErrorKind.NETWORK,
                    f"The download failed {failures} times in a row ({exc}); "
                    f"the {have:,} bytes received are kept: try again to resume",
                ) from exc
            # A connection that delivered bytes before it broke is resumed at once; only
            # failures in a row (no byte between them) wait, longer each time.
            delivered = got > have_before_attempt
            wait_s = 0.0 if delivered else wait_time(failures, policy)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                wait_s = max(wait_s, min(float(retry_after), policy.backoff_cap_s))
            on_retry(failures, wait_s, str(exc))
            if control.wait(wait_s):
                raise Stopped() from exc


class RateLimited(RetryableError):
    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


def _attempt(
    source: RemoteSource,
    partial: str,
    have: int,
    etag: str | None,
    size: int | None,
    control: TransferControl,
    on_bytes: Callable[[int], None],
    on_restart: Callable[[int, str], None],
    policy: RetryPolicy,
) -> tuple[int, str | None, int | None]:
    if size is not None and have >= size:
        return size, etag, size
    headers = dict(source.headers)
    if have:
        headers["Range"] = f"bytes={have}-"
        if etag:
            headers["If-Range"] = etag
    connection, response = _open(source.url, headers, control, policy)
    sock = connection.sock
    try:
        status = response.status
        if status == 416 and size is not None and have >= size:
            return size, etag, size
        _raise_for_status(status, response)
        served_etag = response.getheader("ETag") or etag
        if status == 200 and have:
            # The server sent the whole file: it changed (If-Range) or ignores ranges.
            on_restart(
                have,
                "the file changed on the server"
                if etag and served_etag != etag
                else "the server cannot resume",
            )
            have = 0
        length = response.getheader("Content-Length")
        total = size
        if status == 206:
            _start, total = _content_range(response.getheader("Content-Range"), have)
        elif length is not None:
            total = int(length)
        changed = (etag and served_etag and served_etag != etag) or (
            size is not None and total is not None and total != size
        )
        if status == 206 and changed:
            # Resumed, but from another version of the file: never splice two versions.
            on_restart(have, "the file changed on the server")
            remove_partial(partial)
            raise RetryableError("the file changed on the server; starting over")
        if have == 0:
            write_sidecar(partial, PartialState(source.url, served_etag, total))
        _receive(response, partial, have, control, on_bytes)
        got = partial_size(partial)
        if total is not None and got < total:
            raise RetryableError(f"the connection closed after {got:,} of {total:,} bytes")
        return got, served_etag, total
    finally:
        control.untrack(sock)
        connection.close()


def _receive(
    response: http.client.HTTPResponse,
    partial: str,
    have: int,
    control: TransferControl,
    on_bytes: Callable[[int], None],
) -> None:
    with open(partial, "r+b" if have else "wb") as out:
        out.seek(have)
        out.truncate()
        while True:
            try:
                # One socket read at a time: a read that fills a whole buffer would lose what
                # it gathered when the stall timeout strikes, and those bytes would be fetched
                # twice.
                chunk = response.read1(CHUNK_BYTES)
            except TimeoutError as exc:
                control.check()
                raise RetryableError("no data arrived for too long (stalled)") from exc
            except (OSError, http.client.HTTPException) as exc:
                control.check()
                raise RetryableError(f"the connection broke ({exc or type(exc).__name__})") from exc
            if not chunk:
                control.check()
                return
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    out.flush()
                    raise ModelError(
                        ErrorKind.DISK_FULL,
                        f"The disk filled up while writing {os.path.dirname(partial)}; "
                        "the bytes so far are kept: free some space and resume",
                    ) from exc
                raise
            on_bytes(len(chunk))
            control.check()


def _open(
    url: str, headers: dict[str, str], control: TransferControl, policy: RetryPolicy
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    first_host = urlsplit(url).netloc
    for _ in range(MAX_REDIRECTS):
        control.check()
        parts = urlsplit(url)
        if parts.netloc != first_host:
            # A redirect to a CDN: its URL is signed; the hub's token stays with the hub.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        connection = _connection(parts.scheme, parts.netloc, policy.stall_s)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.connect()
            control.track(connection.sock)
            connection.request("GET", target or "/", headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            control.untrack(connection.sock)
            connection.close()
            control.check()
            raise RetryableError(f"could not connect to {parts.netloc} ({exc})") from exc
        if response.status in (301, 302, 303, 307, 308):
            location = response.getheader("Location")
            control.untrack(connection.sock)
            connection.close()
            if not location:
                raise ModelError(ErrorKind.NETWORK, f"{parts.netloc} redirected nowhere")
            url = urljoin(url, location)
            continue
        return connection, response
    raise ModelError(ErrorKind.NETWORK, "Too many redirects")


def _connection(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(
            netloc, timeout=timeout, context=ssl.create_default_context()
        )
    if scheme == "http":
        return http.client.HTTPConnection(netloc, timeout=timeout)
    raise ModelError(
        ErrorKind.NOT_FOUND, f"Only http and https links can be downloaded, not {scheme}"
    )


def _raise_for_status(status: int, response: http.client.HTTPResponse) -> None:
    if status in (200, 206):
        return
    with contextlib.suppress(Exception):
        response.read(64 * 1024)
    if status == 404:
        raise ModelError(ErrorKind.NOT_FOUND, "The file is not on the server (404)")
    if status in (401, 403):
        raise ModelError(
            ErrorKind.UNAUTHORIZED,
            f"The server refused access ({status}): the repository is gated or private; "
            "log in (hf auth login) or set HF_TOKEN",
        )
    if status == 429:
        retry_after = response.getheader("Retry-After")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise RateLimited("the server is limiting requests (429)", seconds)
    if status >= 500:
        raise RetryableError(f"the server had an error ({status})")
    raise ModelError(ErrorKind.NETWORK, f"The server answered {status} {response.reason}")


def _content_range(header: str | None, expected_start: int) -> tuple[int, int | None]:
    # "bytes 100-199/1000"
    try:
        unit, _, spec = (header or "").partition(" ")
        span, _, total = spec.partition("/")
        start = int(span.split("-")[0])
        if unit != "bytes" or start != expected_start:
            raise ValueError
        return start, (int(total) if total.isdigit() else None)
    except ValueError:
        raise RetryableError(f"the server sent a range that does not fit ({header!r})") from None


def wait_time(failures: int, policy: RetryPolicy) -> float:
    """The wait after `failures` failures in a row: backoff_s, then doubling, up to the cap."""
    return min(policy.backoff_s * 2 ** (failures - 1), policy.backoff_cap_s)
