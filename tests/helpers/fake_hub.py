"""A Hugging Face Hub on loopback, with fault injection, for tests, the demo and the bench.

The real `huggingface_hub` client (2.4) talks to it as it talks to huggingface.co: pass
`endpoint=hub.endpoint` to `HfApi(...)`, `hf_hub_download(...)` and friends (the client reads
`HF_ENDPOINT` once, at import). What it serves, route by route, as the client calls it:

- `GET /api/models` (`search`, `author`, repeated `filter`, `sort`, `direction`, `limit`, `full`,
  repeated `expand`): the fields the real hub sends; `lastModified`, `gated`, `sha` and `siblings`
  only with `full=true` or when named in `expand`, as on the real hub, so code that needs them
  must ask for them. Private repos are listed only for the right token.
- `GET /api/models/{repo}` and `/api/models/{repo}/revision/{rev}` (`blobs=true` adds sizes,
  `blobId` and `lfs` to `siblings`; `expand` picks fields); `gguf` holds `total`,
  `architecture` and `context_length` when the first GGUF file's header reads.
- `GET /api/models/{repo}/tree/{rev}[/{path}]` (`recursive`, `expand`) and
  `POST /api/models/{repo}/paths-info/{rev}` (form fields `paths`, `expand`).
- `GET /api/models/{repo}/auth-check` (what `HfApi.auth_check` asks) and `GET /api/whoami-v2`.
- `HEAD`/`GET /{repo}/resolve/{rev}/{path}`: a GGUF file (or any file of 10 MiB or more) is an
  LFS file and answers 302 with `X-Repo-Commit`, `X-Linked-Etag: "<sha256>"`, `X-Linked-Size`
  and a signed `Location` on the CDN; a small file is served right there, its ETag its git oid.
  `rev` is `main` or any commit sha the repo ever had: after `replace_file` the old commit still
  resolves, and serves, the old bytes (blobs are stored by content).
- The CDN, `HEAD`/`GET /cdn/{sha256}/{path}?sig=...`: bytes with `ETag: "<sha256>"`, Range
  (`bytes=a-`, `bytes=a-b`, `bytes=-n`; 206 with Content-Range, 416 out of range), If-Range
  (a stale validator gets the whole file, 200). It checks the signature (403 without it) and never
  the Authorization header.
- `HEAD`/`GET /files/{name}`: a plain web server's file (ETag, Last-Modified, Range, If-Range).

The CDN listens on a port of its own (`cdn_endpoint`), so it is another origin, as
cdn-lfs.hf.co is for huggingface.co: the client then stops its metadata HEAD at the 302 (it
follows redirects within one origin, and the CDN's answer carries no `X-Repo-Commit`) and drops
the Authorization header before fetching from the CDN, both as against the real hub. No answer
carries an Xet header, so downloads are plain HTTP even with `hf_xet` installed.

Gated and private repos answer every route 401 (`X-Error-Code: GatedRepo`, or `RepoNotFound` for
a private one) unless `Authorization: Bearer <hub.token>`; any other token is refused everywhere
but on the CDN and `/files` with the real hub's "Invalid credentials in Authorization header".
Call the client with `token=False` for an anonymous request: a token found in the environment or
in the user's Hugging Face folder would otherwise be sent, and refused.

Faults (`inject(path_in_repo_or_plain_name, fault)`) act on GETs that serve that file's bytes:
the CDN, a small file's resolve, `/files`. Every such GET uses up one of each armed fault's
`times` (None: never used up), whether or not the fault changes that answer, except that a GET
answered by a `Status` uses up that `Status` alone. `DropAfter` and `StallAfter` count bytes of
the answer's body (of the range asked for), `CorruptByte` an absolute offset in the file. A
dropped connection ends with a FIN after the headers promised more: the client sees a
`RemoteProtocolError`, as when a real download is cut.

Run it for another process with `python -m tests.helpers.fake_hub --root DIR [--demo]`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import email.utils
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.events import ModelError
from llm_desktop.core.gguf_header import read_gguf

DEFAULT_TOKEN = "hf_test_token"
# Reads and sends of 1 MiB serve a 1 GB file over loopback at GB/s, as fast as os.sendfile here.
READ_CHUNK = 1 << 20
LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")
LFS_MIN_SIZE = 10 << 20
THROTTLE_SENDS_PER_S = 20
SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
# The error code the real hub sends with each status, where it sends one.
ERROR_CODES = {401: "GatedRepo", 403: "GatedRepo", 404: "EntryNotFound"}
ERROR_MESSAGES = {
    401: "Access to this resource is restricted. Please log in.",
    403: "Access to this resource is restricted: your token has not been granted access.",
    404: "Entry not found",
    429: "You have been rate-limited; you can retry this action later.",
    500: "Internal Error - We're working hard to fix this as soon as possible!",
    503: "Service Unavailable",
}
LIST_FIELDS = (
    "_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
    "library_name", "createdAt", "modelId",
)  # fmt: skip
FULL_LIST_FIELDS = (*LIST_FIELDS, "author", "sha", "lastModified", "gated", "disabled", "siblings")
SORT_FIELDS = {"downloads", "likes", "trendingScore", "lastModified", "createdAt"}


@dataclass(frozen=True)
class DropAfter:
    """Send the headers and `bytes` body bytes, then close the connection."""

    bytes: int
    times: int | None = 1


@dataclass(frozen=True)
class StallAfter:
    """Send `bytes` body bytes, then nothing for `seconds` with the socket open, then close."""

    bytes: int
    seconds: float
    times: int | None = 1


@dataclass(frozen=True)
class CorruptByte:
    """Send the byte at file offset `offset` XOR 0xFF."""

    offset: int
    times: int | None = None


@dataclass(frozen=True)
class Status:
    """Answer `code` with the real hub's error headers and JSON body. `error_code` replaces the
    `X-Error-Code` the hub sends with that status (see `ERROR_CODES`); "" sends none."""

    code: int
    times: int | None = None
    retry_after: int | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Throttle:
    """A slow link: the body goes out in small sends paced to `bytes_per_s`."""

    bytes_per_s: int
    times: int | None = None


Fault = DropAfter | StallAfter | CorruptByte | Status | Throttle


@dataclass(frozen=True)
class RequestRecord:
    """One request as the hub saw it, recorded once answered. `headers` has lower-case names;
    `path` has no query (`query` has it); `server` is "hub" or "cdn"; `filename` names the file
    whose bytes the answer carried, if any, and `body_bytes` how many of them were sent."""

    method: str
    path: str
    headers: dict[str, str]
    range: str | None
    status: int
    query: str = ""
    server: str = "hub"
    filename: str | None = None
    body_bytes: int = 0


@dataclass(frozen=True)
class Blob:
    path: Path
    size: int
    sha256: str
    git_oid: str  # git's blob id of the bytes themselves
    last_modified: str  # an HTTP date


@dataclass(frozen=True)
class RepoEntry:
    path: str
    blob: Blob
    lfs: bool

    @property
    def pointer(self) -> bytes:
        return (
            "version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{self.blob.sha256}\nsize {self.blob.size}\n"
        ).encode()

    @property
    def oid(self) -> str:
        """What git stores: the pointer for an LFS file, the bytes otherwise."""
        return git_blob_oid(self.pointer) if self.lfs else self.blob.git_oid


@dataclass(frozen=True)
class Commit:
    sha: str
    title: str
    date: datetime
    files: dict[str, RepoEntry]
    gguf: dict[str, Any] | None


@dataclass
class Repo:
    repo_id: str
    gated: bool
    private: bool
    downloads: int
    likes: int
    tags: tuple[str, ...]
    created: datetime
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def commit(self, revision: str) -> Commit | None:
        if revision == "main":
            return self.head
        return next((commit for commit in self.commits if commit.sha == revision), None)


@dataclass
class _ArmedFault:
    fault: Fault
    remaining: int | None


class HubError(Exception):
    """An answer in the real hub's error shape."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class _Aborted(Exception):
    """The hub is stopping: drop the answer half-way."""


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def iso_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_DIGESTS: dict[tuple[str, int, int], tuple[str, str]] = {}
_DIGESTS_LOCK = threading.Lock()


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, git blob oid) of a file, read in chunks; remembered while the file is unchanged,
    so a 1 GB fixture is hashed once per process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _DIGESTS_LOCK:
        if key in _DIGESTS:
            return _DIGESTS[key]
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % stat.st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(8 * READ_CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
    digests = (sha256.hexdigest(), sha1.hexdigest())
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digests
    return digests


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end exclusive) of a single `bytes=` range; None to ignore the header (malformed
    or several ranges: the whole file is the allowed answer); False when unsatisfiable."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size
    start = int(first)
    end = size if not last else int(last) + 1
    if last and end <= start:
        return None
    if start >= size:
        return False
    return start, min(end, size)


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("true", "1")


class FakeHub:
    """A Hugging Face–compatible hub on 127.0.0.1 (see the module's docstring). A context
    manager; or `start()` and `stop()`. `stop()` ends every connection and thread it started."""

    def __init__(self, root: Path, token: str = DEFAULT_TOKEN, *, port: int = 0):
        self.root = Path(root)
        self.token = token
        self.port = port
        self.endpoint = ""
        self.cdn_endpoint = ""
        self.requests: list[RequestRecord] = []
        self._repos: dict[str, Repo] = {}
        self._blobs: dict[str, Blob] = {}
        self._plain: dict[str, Blob] = {}
        self._faults: dict[str, list[_ArmedFault]] = {}
        self._served: dict[str, int] = {}
        self._secret = os.urandom(16)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> FakeHub:
        if self._servers:
            return self
        self._stopping.clear()
        self.root.mkdir(parents=True, exist_ok=True)
        hub_server = _Server(self, "hub", self.port)
        cdn_server = _Server(self, "cdn", 0)
        self._servers = [hub_server, cdn_server]
        self.endpoint = f"http://127.0.0.1:{hub_server.server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{cdn_server.server_address[1]}"
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-hub-{server.role}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        for server in self._servers:
            server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive connections would block the join
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for server in self._servers:
            server.server_close()  # joins the connections' threads
        for thread in self._threads:
            thread.join()
        self._servers, self._threads = [], []

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- content ------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, Path | bytes],
        *,
        gated: bool = False,
        private: bool = False,
        downloads: int = 0,
        likes: int = 0,
        tags: tuple[str, ...] = ("gguf",),
    ) -> str:
        """Create (or replace) a repo with one commit holding `files`; returns its sha. A Path
        is served where it lies (keep it unchanged); bytes are written under `root` first."""
        entries = {name: self._entry(name, content) for name, content in files.items()}
        now = datetime.now(UTC)
        repo = Repo(repo_id, gated, private, downloads, likes, tuple(tags), created=now)
        repo.commits.append(self._commit(repo_id, "", "Initial commit", entries, now))
        with self._lock:
            self._repos[repo_id] = repo
        return repo.head.sha

    def replace_file(self, repo_id: str, filename: str, content: Path | bytes) -> str:
        """A new commit on main where `filename` (added if new) holds `content`; returns its sha.
        Older commits keep their bytes."""
        entry = self._entry(filename, content)
        with self._lock:
            repo = self._repos[repo_id]
            files = {**repo.head.files, filename: entry}
            title = f"Upload {filename}"
            commit = self._commit(repo_id, repo.head.sha, title, files, datetime.now(UTC))
            repo.commits.append(commit)
        return commit.sha

    def add_plain_file(self, name: str, content: Path | bytes) -> str:
        """Serve `content` at /files/<name> (adding it again replaces it); returns its URL."""
        if not self.endpoint:
            raise RuntimeError("start the hub before adding plain files: their URL needs its port")
        blob = self._blob(content)
        with self._lock:
            self._plain[name] = blob
        return self.file_url(name)

    def sha256(self, repo_id: str, filename: str) -> str:
        with self._lock:
            return self._repos[repo_id].head.files[filename].blob.sha256

    def resolve_url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"

    def file_url(self, name: str) -> str:
        return f"{self.endpoint}/files/{quote(name)}"

    def cdn_url(self, entry: RepoEntry) -> str:
        """The signed CDN address of an LFS file, as a resolve's `Location` gives it."""
        name = quote(entry.path, safe="")
        return f"{self.cdn_endpoint}/cdn/{entry.blob.sha256}/{name}?sig={self._signature(entry)}"

    # -- faults and counters ------------------------------------------------------------------

    def inject(self, filename: str, fault: Fault) -> None:
        """Arm `fault` for GETs of `filename`: a path in a repo (in any repo that has it) or a
        plain file's name."""
        with self._lock:
            self._faults.setdefault(filename, []).append(_ArmedFault(fault, fault.times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def bytes_served(self, filename: str) -> int:
        with self._lock:
            return self._served.get(filename, 0)

    def take_faults(self, filename: str) -> list[Fault]:
        """The faults that act on this GET; each has one use fewer left."""
        with self._lock:
            armed = [a for a in self._faults.get(filename, []) if a.remaining != 0]
            statuses = [a for a in armed if isinstance(a.fault, Status)]
            taken = statuses[:1] or armed
            for fault in taken:
                if fault.remaining is not None:
                    fault.remaining -= 1
            return [fault.fault for fault in taken]

    def count_served(self, filename: str, sent: int) -> None:
        with self._lock:
            self._served[filename] = self._served.get(filename, 0) + sent

    def record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    # -- what the routes read -----------------------------------------------------------------

    def repo(self, repo_id: str) -> Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def repos(self) -> list[Repo]:
        with self._lock:
            return list(self._repos.values())

    def blob_by_sha256(self, sha256: str) -> Blob | None:
        with self._lock:
            return self._blobs.get(sha256)

    def plain(self, name: str) -> Blob | None:
        with self._lock:
            return self._plain.get(name)

    def signature_for(self, sha256: str, path: str) -> str:
        message = f"{sha256}/{path}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def _signature(self, entry: RepoEntry) -> str:
        return self.signature_for(entry.blob.sha256, entry.path)

    def connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            if self._stopping.is_set():
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.add(connection)

    def connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    # -- building blocks ----------------------------------------------------------------------

    def _entry(self, name: str, content: Path | bytes) -> RepoEntry:
        blob = self._blob(content)
        with self._lock:
            self._blobs.setdefault(blob.sha256, blob)
        lfs = name.endswith(LFS_SUFFIXES) or blob.size >= LFS_MIN_SIZE
        return RepoEntry(name, blob, lfs)

    def _blob(self, content: Path | bytes) -> Blob:
        """Bytes are stored by their sha256, so a replaced file's old bytes stay servable."""
        if isinstance(content, bytes):
            sha256 = hashlib.sha256(content).hexdigest()
            path = self.root / "blobs" / sha256
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(content)
            digests = (sha256, git_blob_oid(content))
        else:
            path = Path(content)
            digests = file_digests(path)
        modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
        return Blob(path, path.stat().st_size, digests[0], digests[1], modified)

    def _commit(
        self, repo_id: str, parent: str, title: str, files: dict[str, RepoEntry], date: datetime
    ) -> Commit:
        listing = "".join(f"{path} {entry.oid}\n" for path, entry in sorted(files.items()))
        sha = hashlib.sha1(f"{repo_id}\n{parent}\n{title}\n{listing}".encode()).hexdigest()
        return Commit(sha, title, date, dict(files), gguf_summary(files))


def gguf_summary(files: dict[str, RepoEntry]) -> dict[str, Any] | None:
    """The hub's `gguf` field from the first GGUF file's header (all parts of a split model);
    None when there is none or it does not read."""
    names = sorted(name for name in files if name.endswith(".gguf"))
    if not names:
        return None
    first = names[0]
    split = SPLIT_NAME.match(first)
    parts = [first]
    if split:
        prefix = f"{split['stem']}-"
        parts = [name for name in names if name.startswith(prefix) and SPLIT_NAME.match(name)]
    try:
        infos = [read_gguf(files[name].blob.path) for name in parts]
    except (ModelError, OSError):
        return None
    summary: dict[str, Any] = {"total": sum(info.parameter_count or 0 for info in infos)}
    summary["architecture"] = infos[0].architecture
    if infos[0].context_length is not None:
        summary["context_length"] = infos[0].context_length
    return summary


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: FakeHub, role: str, port: int):
        self.hub = hub
        self.role = role
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away, or the hub is stopping: nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    disable_nagle_algorithm = True  # headers then body in two sends: no 40 ms delayed-ACK wait
    server: _Server

    # -- plumbing -----------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.hub.connection_opened(self.connection)

    def finish(self) -> None:
        self.server.hub.connection_closed(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # `requests` is the log

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self._status = 0
        self._filename: str | None = None
        self._body_bytes = 0
        self._form: dict[str, list[str]] = {}
        self._query = parse_qs(url.query, keep_blank_values=True)
        segments = [unquote(segment) for segment in url.path.split("/")[1:]]
        try:
            self._read_request_body()
            if self.server.role == "cdn":
                self._route_cdn(segments)
            else:
                self._route_hub(segments)
        except HubError as error:
            self._send_error(error)
        except (_Aborted, ConnectionError):
            self._close_abruptly()
        except Exception as error:  # a bug here: say so to the client too, not only on stderr
            traceback.print_exc()
            if self._status:
                self._close_abruptly()
            else:
                self._send_error(HubError(500, None, f"fake hub failed: {error!r}"))
        finally:
            self.hub.record(
                RequestRecord(
                    method=self.command,
                    path=url.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    range=self.headers.get("Range"),
                    status=self._status,
                    query=url.query,
                    server=self.server.role,
                    filename=self._filename,
                    body_bytes=self._body_bytes,
                )
            )

    def _read_request_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        if body and content_type.startswith("application/x-www-form-urlencoded"):
            self._form = parse_qs(body.decode(), keep_blank_values=True)
        elif body and content_type.startswith("application/json"):
            data = json.loads(body)
            self._form = {
                key: [str(v) for v in value] if isinstance(value, list) else [str(value)]
                for key, value in data.items()
            }

    def _close_abruptly(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, error: HubError) -> None:
        headers = {"X-Error-Message": error.message, **error.headers}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._send_json(error.status, {"error": error.message}, headers)

    # -- auth ---------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        """True for the hub's token, False for none; any other token is refused, as the real
        hub refuses an invalid token even on a public repo."""
        header = self.headers.get("Authorization")
        if not header:
            return False
        if header == f"Bearer {self.hub.token}":
            return True
        raise HubError(401, None, INVALID_CREDENTIALS)

    def _open_repo(self, segments: list[str]) -> tuple[Repo, list[str], bool]:
        """The repo named by the first one or two segments, the segments after it, and whether
        the request is authorized; raises the hub's 401/404 where it may not be seen."""
        authorized = self._authorized()
        for length in (2, 1):
            repo = self.hub.repo("/".join(segments[:length]))
            if repo is not None:
                break
        if repo is None or (repo.private and not authorized):
            raise HubError(404 if authorized else 401, "RepoNotFound", "Repository not found")
        if repo.gated and not authorized:
            raise HubError(
                401,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted. You must have access to it and "
                "be authenticated to access it. Please log in.",
            )
        return repo, segments[length:], authorized

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.commit(revision)
        if commit is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # -- routes -------------------------------------------------------------------------------

    def _route_hub(self, segments: list[str]) -> None:
        method = self.command
        if segments[:2] == ["api", "models"] and len(segments) == 2 and method == "GET":
            return self._list_models()
        if segments == ["api", "whoami-v2"] and method == "GET":
            return self._whoami()
        if segments[:2] == ["api", "models"] and len(segments) > 2:
            return self._repo_api(segments[2:])
        if segments[:1] == ["files"] and len(segments) > 1 and method in ("GET", "HEAD"):
            return self._plain_file("/".join(segments[1:]))
        if "resolve" in segments[1:3] and method in ("GET", "HEAD"):
            return self._resolve(segments)
        raise HubError(404, None, f"fake hub: no route for {method} {self.path}")

    def _list_models(self) -> None:
        query = self._query
        authorized = self._authorized()
        search = (query.get("search") or [""])[-1].lower()
        author = (query.get("author") or [""])[-1]
        filters = query.get("filter", [])
        wanted_gated = query.get("gated")
        pipeline_tag = (query.get("pipeline_tag") or [""])[-1]
        models = []
        for repo in self.hub.repos():
            info = model_fields(repo, repo.head, blobs=False)
            labels = {*repo.tags, info["library_name"], info["pipeline_tag"]}
            if repo.private and not authorized:
                continue
            if search and search not in repo.repo_id.lower():
                continue
            if author and not repo.repo_id.startswith(f"{author}/"):
                continue
            if any(value not in labels for value in filters):
                continue
            if wanted_gated and _truthy(wanted_gated) != repo.gated:
                continue
            if pipeline_tag and pipeline_tag != info["pipeline_tag"]:
                continue
            models.append(info)
        sort = (query.get("sort") or [""])[-1]
        if sort in SORT_FIELDS:
            ascending = (query.get("direction") or ["-1"])[-1] == "1"
            models.sort(key=lambda info: info[sort], reverse=not ascending)
        if query.get("limit"):
            models = models[: int(query["limit"][-1])]
        expand = query.get("expand") or query.get("expand[]")
        if expand:
            fields: Iterable[str] = ("_id", "id", *expand)
        elif _truthy(query.get("full")):
            fields = FULL_LIST_FIELDS
        else:
            fields = LIST_FIELDS
        listed = [{key: info[key] for key in fields if key in info} for info in models]
        for info in listed:
            if "siblings" in info:
                info["siblings"] = [{"rfilename": s["rfilename"]} for s in info["siblings"]]
        self._send_json(200, listed)

    def _whoami(self) -> None:
        if not self._authorized():
            raise HubError(401, None, INVALID_CREDENTIALS)
        self._send_json(
            200,
            {
                "type": "user",
                "id": "0" * 24,
                "name": "fake-user",
                "fullname": "Fake User",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "fake hub", "role": "read"},
                },
            },
        )

    def _repo_api(self, segments: list[str]) -> None:
        repo, rest, _ = self._open_repo(segments)
        method = self.command
        if not rest and method == "GET":
            return self._model_info(repo, self._commit(repo, "main"))
        if len(rest) == 2 and rest[0] == "revision" and method == "GET":
            return self._model_info(repo, self._commit(repo, rest[1]))
        if len(rest) >= 2 and rest[0] == "tree" and method == "GET":
            return self._tree(self._commit(repo, rest[1]), "/".join(rest[2:]))
        if len(rest) == 2 and rest[0] == "paths-info" and method == "POST":
            return self._paths_info(self._commit(repo, rest[1]))
        if rest == ["auth-check"] and method == "GET":
            return self._send_json(200, {})  # `_open_repo` has already refused a stranger
        raise HubError(404, None, f"fake hub: no route for {method} {self.path}")

    def _model_info(self, repo: Repo, commit: Commit) -> None:
        info = model_fields(repo, commit, blobs=_truthy(self._query.get("blobs")))
        expand = self._query.get("expand") or self._query.get("expand[]")
        if expand:
            info = {key: info[key] for key in ("_id", "id", *expand) if key in info}
        self._send_json(200, info)

    def _tree(self, commit: Commit, folder: str) -> None:
        folder = folder.strip("/")
        recursive = _truthy(self._query.get("recursive"))
        expand = _truthy(self._query.get("expand"))
        files, folders = tree_paths(commit)
        if folder and folder not in folders:
            raise HubError(404, "EntryNotFound", f"{folder} does not exist on {commit.sha}")
        prefix = f"{folder}/" if folder else ""

        def listed(path: str) -> bool:
            if not path.startswith(prefix):
                return False
            return recursive or "/" not in path[len(prefix) :]

        entries = [folder_entry(commit, path, expand) for path in sorted(folders) if listed(path)]
        entries += [
            file_entry(commit, commit.files[path], expand) for path in files if listed(path)
        ]
        self._send_json(200, entries)

    def _paths_info(self, commit: Commit) -> None:
        expand = _truthy(self._form.get("expand"))
        _, folders = tree_paths(commit)
        entries = []
        for path in self._form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                entries.append(file_entry(commit, commit.files[path], expand))
            elif path in folders:
                entries.append(folder_entry(commit, path, expand))
        self._send_json(200, entries)

    def _resolve(self, segments: list[str]) -> None:
        at = segments.index("resolve", 1)
        repo, _, _ = self._open_repo(segments[:at])
        if len(segments) < at + 3:
            raise HubError(404, None, f"fake hub: no route for {self.command} {self.path}")
        commit = self._commit(repo, segments[at + 1])
        path = "/".join(segments[at + 2 :])
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha}
        if not entry.lfs:
            return self._serve(entry.blob, path, f'"{entry.oid}"', headers)
        self.send_response(302)
        self.send_header("Location", self.hub.cdn_url(entry))
        self.send_header("X-Repo-Commit", commit.sha)
        self.send_header("X-Linked-Etag", f'"{entry.blob.sha256}"')
        self.send_header("X-Linked-Size", str(entry.blob.size))
        self.send_header("ETag", f'"{entry.oid}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _plain_file(self, name: str) -> None:
        blob = self.hub.plain(name)
        if blob is None:
            raise HubError(404, None, f"{name} not found")
        self._serve(blob, name, f'"{blob.sha256}"', {})

    def _route_cdn(self, segments: list[str]) -> None:
        if len(segments) < 3 or segments[0] != "cdn" or self.command not in ("GET", "HEAD"):
            raise HubError(404, None, f"fake CDN: no route for {self.command} {self.path}")
        sha256, path = segments[1], "/".join(segments[2:])
        signature = (self._query.get("sig") or [""])[-1]
        expected = self.hub.signature_for(sha256, path)
        if not hmac.compare_digest(signature, expected):
            raise HubError(403, None, "AccessDenied: the request's signature does not match")
        blob = self.hub.blob_by_sha256(sha256)
        if blob is None:
            raise HubError(404, None, "NoSuchKey")
        name = path.rsplit("/", 1)[-1]
        disposition = f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"
        self._serve(blob, path, f'"{sha256}"', {"Content-Disposition": disposition})

    # -- bytes --------------------------------------------------------------------------------

    def _serve(self, blob: Blob, filename: str, etag: str, headers: dict[str, str]) -> None:
        """A file's bytes with Range and If-Range, through the faults armed for `filename`."""
        self._filename = filename
        faults = self.hub.take_faults(filename) if self.command == "GET" else []
        for fault in faults:
            if isinstance(fault, Status):
                raise status_error(fault, headers)
        start, end, status = 0, blob.size, 200
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if range_header and (if_range is None or if_range in (etag, blob.last_modified)):
            wanted = parse_range(range_header, blob.size)
            if wanted is False:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{blob.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if wanted:
                start, end = wanted
                status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", blob.last_modified)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{blob.size}")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "GET":
            self._send_body(blob, filename, start, end, faults)

    def _send_body(
        self, blob: Blob, filename: str, start: int, end: int, faults: list[Fault]
    ) -> None:
        cuts = [fault for fault in faults if isinstance(fault, DropAfter | StallAfter)]
        cut = min(cuts, key=lambda fault: fault.bytes, default=None)
        corrupt = [fault.offset for fault in faults if isinstance(fault, CorruptByte)]
        rates = [fault.bytes_per_s for fault in faults if isinstance(fault, Throttle)]
        stop = end if cut is None else min(end, start + cut.bytes)
        with blob.path.open("rb") as handle:
            self._send_chunks(handle, filename, start, stop, corrupt, min(rates, default=0))
        if stop < end:
            if isinstance(cut, StallAfter):
                self.hub.stopping.wait(cut.seconds)
            self._close_abruptly()

    def _send_chunks(
        self,
        handle: Any,
        filename: str,
        start: int,
        stop: int,
        corrupt: list[int],
        bytes_per_s: int,
    ) -> None:
        chunk = READ_CHUNK
        if bytes_per_s:
            chunk = max(1, min(READ_CHUNK, bytes_per_s // THROTTLE_SENDS_PER_S))
        handle.seek(start)
        began, offset = time.monotonic(), start
        while offset < stop:
            data = handle.read(min(chunk, stop - offset))
            if not data:
                break
            hit = [at - offset for at in corrupt if offset <= at < offset + len(data)]
            if hit:
                changed = bytearray(data)
                for index in hit:
                    changed[index] ^= 0xFF
                data = bytes(changed)
            self.connection.sendall(data)
            self._sent(filename, len(data))
            offset += len(data)
            if bytes_per_s and offset < stop:
                pause = began + (offset - start) / bytes_per_s - time.monotonic()
                if pause > 0 and self.hub.stopping.wait(pause):
                    raise _Aborted
        if self.hub.stopping.is_set() and offset < stop:
            raise _Aborted

    def _sent(self, filename: str, count: int) -> None:
        self._body_bytes += count
        self.hub.count_served(filename, count)


def status_error(fault: Status, headers: dict[str, str]) -> HubError:
    code = ERROR_CODES.get(fault.code) if fault.error_code is None else fault.error_code
    message = ERROR_MESSAGES.get(fault.code, f"Error {fault.code}")
    extra = {k: v for k, v in headers.items() if k == "X-Repo-Commit"}
    if fault.retry_after is not None:
        extra["Retry-After"] = str(fault.retry_after)
    return HubError(fault.code, code or None, message, extra)


def model_fields(repo: Repo, commit: Commit, *, blobs: bool) -> dict[str, Any]:
    """Every field the hub's model info has; list and expand answers pick from these."""
    siblings = []
    for path, entry in sorted(commit.files.items()):
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            sibling["size"] = entry.blob.size
            sibling["blobId"] = entry.oid
            if entry.lfs:
                sibling["lfs"] = {
                    "sha256": entry.blob.sha256,
                    "size": entry.blob.size,
                    "pointerSize": len(entry.pointer),
                }
        siblings.append(sibling)
    info: dict[str, Any] = {
        "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
        "sha": commit.sha,
        "lastModified": iso_date(commit.date),
        "createdAt": iso_date(repo.created),
        "private": repo.private,
        "gated": "manual" if repo.gated else False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "trendingScore": repo.likes,
        "library_name": "gguf" if "gguf" in repo.tags else None,
        "pipeline_tag": "text-generation",
        "tags": list(repo.tags),
        "cardData": {},
        "siblings": siblings,
        "spaces": [],
        "usedStorage": sum(entry.blob.size for entry in commit.files.values()),
    }
    if commit.gguf is not None:
        info["gguf"] = commit.gguf
    return info


def tree_paths(commit: Commit) -> tuple[list[str], set[str]]:
    files = sorted(commit.files)
    folders = {path.rsplit("/", i)[0] for path in files for i in range(1, path.count("/") + 1)}
    return files, folders


def last_commit(commit: Commit) -> dict[str, str]:
    return {"id": commit.sha, "title": commit.title, "date": iso_date(commit.date)}


def file_entry(commit: Commit, entry: RepoEntry, expand: bool) -> dict[str, Any]:
    listed: dict[str, Any] = {
        "type": "file",
        "oid": entry.oid,
        "size": entry.blob.size,
        "path": entry.path,
    }
    if entry.lfs:
        listed["lfs"] = {
            "oid": entry.blob.sha256,
            "size": entry.blob.size,
            "pointerSize": len(entry.pointer),
        }
    if expand:
        listed["lastCommit"] = last_commit(commit)
        listed["securityFileStatus"] = {
            "status": "safe",
            "avScan": {"virusFound": False, "virusNames": None},
            "pickleImportScan": None,
        }
    return listed


def folder_entry(commit: Commit, path: str, expand: bool) -> dict[str, Any]:
    oid = hashlib.sha1(f"{commit.sha}/{path}".encode()).hexdigest()
    listed: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if expand:
        listed["lastCommit"] = last_commit(commit)
    return listed


# -- the demo hub -----------------------------------------------------------------------------

DEMO_OWNER = "llm-desktop"


def add_demo_repos(hub: FakeHub, folder: Path) -> list[str]:
    """Generate a few small GGUF models into `folder` and publish them; returns the repo ids.

    Every file is an F32 model whatever its name says (`DemoSpec` has no quantization), sized so
    that the 'Q4' file is the smallest: enough for a list, a progress bar and a load."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny = {
        "Tiny-Demo-Q4_K_M.gguf": spec_for_size(12, seed=11, name="Tiny Demo"),
        "Tiny-Demo-Q8_0.gguf": spec_for_size(20, seed=12, name="Tiny Demo"),
        "Tiny-Demo-F16.gguf": spec_for_size(32, seed=13, name="Tiny Demo"),
    }
    tiny_files: dict[str, Path | bytes] = {
        name: write_demo_model(folder / name, spec) for name, spec in tiny.items()
    }
    tiny_files["README.md"] = b"# Tiny Demo\n\nRandom weights: it loads, and writes gibberish.\n"

    big = spec_for_size(40, seed=14, name="Big Demo")
    tensors = 3 + 9 * big.layer_count()  # embeddings, output norm, output; 9 per layer
    big = dataclasses.replace(big, split_max_tensors=(tensors + 1) // 2)
    write_demo_model(folder / "Big-Demo-Q4_K_M.gguf", big)
    parts = sorted(folder.glob("Big-Demo-Q4_K_M-*-of-*.gguf"))
    assert len(parts) == 2, f"the split demo model has {len(parts)} parts, not 2"
    big_files: dict[str, Path | bytes] = {part.name: part for part in parts}
    big_files["README.md"] = b"# Big Demo\n\nOne model in two files.\n"

    gated = spec_for_size(8, seed=15, name="Gated Demo")
    gated_files: dict[str, Path | bytes] = {
        "Gated-Demo-Q4_K_M.gguf": write_demo_model(folder / "Gated-Demo-Q4_K_M.gguf", gated)
    }

    repos = {
        f"{DEMO_OWNER}/Tiny-Demo-GGUF": (tiny_files, {"downloads": 1520, "likes": 42}),
        f"{DEMO_OWNER}/Big-Demo-GGUF": (big_files, {"downloads": 310, "likes": 7}),
        f"{DEMO_OWNER}/Gated-Demo-GGUF": (gated_files, {"downloads": 88, "gated": True}),
    }
    for repo_id, (files, options) in repos.items():
        hub.add_repo(repo_id, files, **options)
    return list(repos)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="where repo files are written")
    parser.add_argument("--port", type=int, default=0, help="the hub's port (0: any free one)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the token gated repos accept")
    parser.add_argument("--demo", action="store_true", help="publish the demo repos")
    parser.add_argument("--throttle", type=int, metavar="BYTES_PER_S", help="slow every file")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    hub = FakeHub(args.root, token=args.token, port=args.port)
    repo_ids = add_demo_repos(hub, args.root / "demo-models") if args.demo else []
    if args.throttle:
        for repo in hub.repos():
            for filename in repo.head.files:
                hub.inject(filename, Throttle(args.throttle))
    with hub:
        # The first line is the contract: a parent reads it to find the port.
        print(f"ENDPOINT {hub.endpoint}", flush=True)
        print(f"CDN {hub.cdn_endpoint}", flush=True)
        print(f"TOKEN {hub.token}", flush=True)
        for repo_id in repo_ids:
            print(f"REPO {repo_id}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
