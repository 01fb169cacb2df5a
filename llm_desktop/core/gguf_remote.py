"""Read a remote GGUF file's header over HTTP, before a byte of its weights is downloaded.

The header says what the catalog says of a local file (architecture, shape, quantization,
parameter count), so the app can show the same memory-fit verdict for a model it has not
downloaded. The bytes come with HTTP Range requests, from byte 0: a first megabyte, then as much
as the parser asks for (`gguf_header.NeedMoreBytes`), at least doubling each time; the parser is
the one local files go through, with the bounds checked against the remote file's real size.
A model with a 262k-token vocabulary has a header of about 6.5 MB, so a few requests read it
whatever the size of the weights behind it.

Requests go through the HTTP client `huggingface_hub` itself uses (`get_session()`), so its
proxy settings, offline mode and request ids apply. Redirects are followed (the hub answers a
large file's `resolve` URL with a redirect to a CDN); the client drops `Authorization` when a
redirect leaves the original host, and so do the later requests this module sends to where the
first one landed. A server that ignores Range answers with the whole file: its body is read only
as far as the header goes and then closed.

No Qt here: the core layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2

from llm_desktop.core.catalog import ModelEntry, entry_from_header, summarize_header
from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.gguf_header import GGUFInfo, NeedMoreBytes, parse_gguf

MiB = 1024 * 1024
FIRST_FETCH_BYTES = 1 * MiB
# Real headers stay far below this (the largest vocabularies make about 10 MB); a header that
# goes on past it is a corrupt length, not a model.
MAX_HEADER_BYTES = 64 * MiB
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
BODY_CHUNK_BYTES = 64 * 1024
REMOTE_SOURCE = "huggingface"

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RemoteHeader:
    """A remote file's parsed header and what reading it cost."""

    info: GGUFInfo  # `info.path` is the URL
    bytes_fetched: int  # body bytes received, whatever the server sent
    requests: int  # HTTP requests sent, redirects included
    file_size: int  # the whole remote file's


def read_remote_gguf(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    size: int | None = None,
    session: httpx2.Client | None = None,
) -> RemoteHeader:
    """Read the header of the GGUF file at `url` with Range requests.

    `headers` go with each request (a hub token as `Authorization`, for one); `size` is the
    file's size where the caller knows it, used when the server does not say it; `session`
    defaults to huggingface_hub's. Raises `ModelError`: NOT_FOUND (404), UNAUTHORIZED (401,
    403), RATE_LIMITED (429), NETWORK (no connection, a timeout, a server error) or
    INVALID_MODEL (the bytes are not a GGUF header).
    """
    client = session if session is not None else _hub_session()
    with ExitStack() as open_responses:
        fetch = _Fetch(client, url, headers or {}, open_responses)
        try:
            info = _parse_as_it_arrives(fetch, url, size)
        except httpx2.TimeoutException:
            raise _network(f"{_host(url)} did not answer in time") from None
        except httpx2.TooManyRedirects:
            raise _network(f"{url} redirects too many times") from None
        except httpx2.ConnectError as error:
            raise _network(f"Could not connect to {_host(url)}: {error}") from None
        except (httpx2.HTTPError, httpx2.InvalidURL) as error:
            raise _network(f"The connection to {_host(url)} failed: {error}") from None
        except ConnectionError as error:  # huggingface_hub's offline mode among others
            raise _network(f"Could not reach {_host(url)}: {error}") from None
    return RemoteHeader(info, fetch.bytes_fetched, fetch.requests, info.file_size)


def remote_entry(
    url: str,
    *,
    display_name: str,
    file_size: int,
    parts: Sequence[str],
    headers: dict[str, str] | None = None,
) -> tuple[ModelEntry, RemoteHeader]:
    """The catalog entry a remote model would have once downloaded, from its header alone.

    `url` is the model's (first) file; `parts` are the URLs of all its files (the one URL for a
    single-file model) and `file_size` their total. The first part of a split model holds the
    keys; the fit estimate counts the whole `file_size`. Raises what `read_remote_gguf` raises.
    """
    parts = tuple(parts)
    first_size = file_size if len(parts) <= 1 else None
    header = read_remote_gguf(url, headers=headers, size=first_size)
    summary = summarize_header(header.info)
    entry = entry_from_header(
        summary,
        id=url,
        path=url,
        parts=parts,
        source=REMOTE_SOURCE,
        display_name=display_name,
        file_size=file_size,
        mtime=0.0,  # not on this machine
    )
    return entry, header


def _parse_as_it_arrives(fetch: _Fetch, url: str, size: int | None) -> GGUFInfo:
    wanted = FIRST_FETCH_BYTES
    while True:
        fetch.extend_to(wanted)
        file_size = fetch.total if fetch.total is not None else size
        if file_size is None:
            raise _network(f"{_host(url)} did not say how large {url} is")
        try:
            return parse_gguf(bytes(fetch.data[:file_size]), file_size=file_size, path=url)
        except NeedMoreBytes as more:
            if more.end > MAX_HEADER_BYTES:
                raise ModelError(
                    ErrorKind.INVALID_MODEL,
                    f"Not a valid GGUF model: its header goes on past {MAX_HEADER_BYTES // MiB} "
                    "MiB, more than any model's",
                ) from None
            # Doubling keeps the request count logarithmic when the parser asks a little at a time.
            wanted = min(max(more.end, 2 * len(fetch.data)), MAX_HEADER_BYTES, file_size)


class _Fetch:
    """The bytes of a remote file from byte 0, fetched as far as they are needed."""

    def __init__(
        self, client: httpx2.Client, url: str, headers: dict[str, str], responses: ExitStack
    ):
        self.data = bytearray()
        self.bytes_fetched = 0
        self.requests = 0
        self.total: int | None = None  # the file's size, where the server said it
        self._client = client
        self._origin = _origin(url)
        self._url = url
        self._headers = dict(headers)
        self._responses = responses
        # The body of an answer that ignored Range, kept open: it goes on where it stopped.
        self._whole_file: Iterator[bytes] | None = None

    def extend_to(self, end: int) -> None:
        """Fetch until the first `end` bytes are here, or the file ends."""
        held = len(self.data)
        if self._whole_file is not None:
            self._take(self._whole_file, end)
        else:
            self._request(held, end)
        if len(self.data) == held and (self.total is None or held < self.total):
            raise _network(f"{_host(self._url)} sent no data for bytes {held} to {end - 1}")

    def _request(self, start: int, end: int) -> None:
        headers = {**self._headers, "Range": f"bytes={start}-{end - 1}"}
        # A compressed body's ranges would count compressed bytes.
        headers["Accept-Encoding"] = "identity"
        response = self._responses.enter_context(
            self._client.stream(
                "GET",
                self._url,
                headers=headers,
                follow_redirects=True,
                timeout=httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            )
        )
        self.requests += 1 + len(response.history)
        _raise_for_status(response, self._url)
        self._follow_to(str(response.url))
        body = response.iter_bytes(BODY_CHUNK_BYTES)
        if response.status_code == 416:  # nothing at `start`: the file is shorter
            self.total = _content_range(response)[2]
        elif response.status_code == 206:
            first, _last, self.total = _content_range(response)
            if first != start:
                raise _network(f"{_host(self._url)} sent bytes from {first}, not from {start}")
            self._take(body, end)
            response.close()  # read whole: the connection goes back to the pool
        else:  # 200: the server ignored Range and sends the whole file from byte 0
            self.total = _content_length(response)
            self._whole_file = body
            self._take(body, end, skip=start)

    def _follow_to(self, final_url: str) -> None:
        # Later requests go where the redirects led, and not with the credentials meant for
        # the original host, as the client's own redirect handling does.
        self._url = final_url
        if _origin(final_url) != self._origin:
            self._headers = {
                name: value
                for name, value in self._headers.items()
                if name.lower() != "authorization"
            }

    def _take(self, body: Iterator[bytes], end: int, skip: int = 0) -> None:
        while len(self.data) < end:
            chunk = next(body, None)
            if chunk is None:
                return
            self.bytes_fetched += len(chunk)
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
            self.data += chunk


def _raise_for_status(response: httpx2.Response, url: str) -> None:
    status = response.status_code
    if status in (200, 206, 416):
        return
    if status in (404, 410):
        raise ModelError(ErrorKind.NOT_FOUND, f"There is no file at {url} (HTTP {status})")
    if status in (401, 403):
        raise ModelError(
            ErrorKind.UNAUTHORIZED,
            f"Access to {url} was refused (HTTP {status}): the repository is gated or private, "
            "or the token was not accepted",
        )
    if status == 429:
        retry_after = response.headers.get("Retry-After", "").strip()
        when = f"try again in {retry_after} s" if retry_after.isdigit() else "try again later"
        raise ModelError(
            ErrorKind.RATE_LIMITED,
            f"{_host(url)} is limiting requests (HTTP 429); {when}",
        )
    if status >= 500:
        raise _network(f"{_host(url)} failed to answer (HTTP {status}) for {url}")
    raise _network(f"{_host(url)} answered HTTP {status} for {url}")


def _content_range(response: httpx2.Response) -> tuple[int | None, int | None, int | None]:
    """(first byte, last byte, total) of a Content-Range header; None where it says "*"."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match is None:
        raise _network(f"{_host(str(response.url))} sent a range without a valid Content-Range")
    first, last, total = match.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total != "*" else None,
    )


def _content_length(response: httpx2.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _network(message: str) -> ModelError:
    return ModelError(ErrorKind.NETWORK, message)


def _hub_session() -> httpx2.Client:
    # Imported here: huggingface_hub is only needed once something remote is read.
    from huggingface_hub.utils import get_session

    return get_session()
