"""Remote GGUF headers read with HTTP Range requests from a loopback server: the same header as
the local file's, a fraction of its bytes, redirects without leaking credentials, named errors,
a server that ignores Range, and the same fit verdict as the local catalog's."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub.constants
import pytest
from gguf import GGMLQuantizationType

from llm_desktop.core import gguf_remote
from llm_desktop.core.catalog import ModelEntry, scan
from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.fit import ModelShape, assess
from llm_desktop.core.gguf_header import GGUFInfo, read_gguf
from llm_desktop.core.gguf_remote import (
    FIRST_FETCH_BYTES,
    RemoteHeader,
    read_remote_gguf,
    remote_entry,
)
from llm_desktop.core.hardware import GpuInfo, RamInfo
from tests.core.test_gguf_header import late_keys_parameters, write_late_keys_model

GiB = 1024**3
TOKEN = "Bearer hf_secret_token"
BODY_PIECE = 64 * 1024


# --- a file server on loopback ---------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    host: str  # the Host header: "127.0.0.1:port" or "localhost:port"
    headers: dict[str, str]  # names in lower case

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class WholeBody:
    """What the server managed to send of a whole-file answer (Range ignored)."""

    size: int
    sent: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    completed: bool = False  # every byte written before the client closed


class FileServer:
    """Files served on 127.0.0.1, route by route:

    - `/files/NAME`: Range (`bytes=a-b`, `bytes=a-`) answered 206 with Content-Range, 416 past
      the end, 200 without a Range header.
    - `/unsized/NAME`: the same, with the total left out of Content-Range (`bytes a-b/*`).
    - `/whole/NAME`: ignores Range, answers 200 with the whole file in 64 KiB writes and records
      how far it got (`whole`).
    - `/moved/NAME`: 302 to `/files/NAME` on `localhost`, another host than 127.0.0.1.
    - `/status/CODE`: that status, with `Retry-After: 7` on a 429.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.seen: list[Seen] = []
        self.whole: list[WholeBody] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(
                    Seen(
                        self.path,
                        self.headers.get("Host", ""),
                        {name.lower(): value for name, value in self.headers.items()},
                    )
                )
                route, _, rest = self.path.lstrip("/").partition("/")
                if route == "status":
                    self._status(int(rest))
                elif rest not in server.files:
                    self._status(404)
                elif route in ("files", "unsized"):
                    self._ranged(server.files[rest], sized=route == "files")
                elif route == "whole":
                    self._whole(server.files[rest])
                elif route == "moved":
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{server.port}/files/{rest}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._status(404)

            def _status(self, code: int) -> None:
                self.send_response(code)
                if code == 429:
                    self.send_header("Retry-After", "7")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _ranged(self, data: bytes, *, sized: bool) -> None:
                asked = self.headers.get("Range")
                if asked is None:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                first_text, _, last_text = asked.removeprefix("bytes=").partition("-")
                first = int(first_text)
                last = min(int(last_text) if last_text else len(data) - 1, len(data) - 1)
                if first >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                total = len(data) if sized else "*"
                self.send_header("Content-Range", f"bytes {first}-{last}/{total}")
                self.send_header("Content-Length", str(last - first + 1))
                self.end_headers()
                self.wfile.write(data[first : last + 1])

            def _whole(self, data: bytes) -> None:
                record = WholeBody(len(data))
                server.whole.append(record)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    for start in range(0, len(data), BODY_PIECE):
                        self.wfile.write(data[start : start + BODY_PIECE])
                        record.sent = start + len(data[start : start + BODY_PIECE])
                    self.wfile.flush()
                    record.completed = True
                except OSError:  # the client closed the connection: what this test wants
                    pass
                finally:
                    record.finished.set()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test reads `seen`

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        # A short poll: shutdown() waits for it, and every test starts and stops a server.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, route: str, name: str = "", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{route}/{name}".rstrip("/")

    def add(self, name: str, path_or_bytes: Path | bytes) -> str:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
        self.files[name] = data
        return self.url("files", name)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture(autouse=True)
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub's session refuses every request in offline mode; these tests need it on
    whatever the environment says (the one offline test turns it off again)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as running:
        yield running


@pytest.fixture(scope="module")
def late_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """general.file_type after the vocabulary, as the real Gemma-3 270M Q4_K_M file has it."""
    return write_late_keys_model(tmp_path_factory.mktemp("late") / "late.gguf")


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 68 MB of weights behind a 2.4 MB header (120,000 tokens): more than the loopback
    socket buffers hold, so a server sending it whole cannot finish before the client closes."""
    return write_late_keys_model(
        tmp_path_factory.mktemp("big") / "big.gguf",
        matrix_type=GGMLQuantizationType.Q8_0,
        vocab=120_000,
        embedding=512,
        layers=2,
    )


def assert_same_header(remote: GGUFInfo, local: GGUFInfo) -> None:
    assert remote.metadata == local.metadata
    assert remote.parameter_count == local.parameter_count
    assert remote.quantization == local.quantization
    assert remote.file_size == local.file_size
    assert remote.tensor_count == local.tensor_count
    assert remote.data_offset == local.data_offset
    assert remote.tensor_bytes == local.tensor_bytes
    assert remote.complete and local.complete


# --- the header ------------------------------------------------------------------------------


def test_remote_header_is_the_local_files(server: FileServer, late_model: Path) -> None:
    url = server.add("late.gguf", late_model)

    remote = read_remote_gguf(url)

    local = read_gguf(late_model)
    assert_same_header(remote.info, local)
    assert remote.info.quantization == "Q4_K_M"
    assert remote.info.parameter_count == late_keys_parameters(2)
    assert remote.info.path == url
    assert remote.file_size == late_model.stat().st_size
    # A file under the first fetch: one request, asking for the first MiB.
    assert remote.requests == 1
    assert [seen.headers["range"] for seen in server.seen] == [f"bytes=0-{FIRST_FETCH_BYTES - 1}"]
    assert remote.bytes_fetched == FIRST_FETCH_BYTES < late_model.stat().st_size


def test_quantization_guessed_remotely_as_locally(server: FileServer, tmp_path: Path) -> None:
    path = write_late_keys_model(tmp_path / "unmarked.gguf", file_type=None)
    url = server.add("unmarked.gguf", path)

    remote = read_remote_gguf(url)

    assert_same_header(remote.info, read_gguf(path))
    assert remote.info.quantization == "Q4_K_M (guessed)"


def test_a_big_model_costs_its_header_not_its_weights(server: FileServer, big_model: Path) -> None:
    url = server.add("big.gguf", big_model)
    local = read_gguf(big_model)

    remote = read_remote_gguf(url)

    assert_same_header(remote.info, local)
    size = big_model.stat().st_size
    assert local.data_offset > FIRST_FETCH_BYTES  # the first fetch was not enough
    assert remote.bytes_fetched < 2 * local.data_offset < size // 10
    ranges = [seen.headers["range"] for seen in server.seen]
    assert len(ranges) == remote.requests == 3  # 1 MiB, then 2 MiB, then 4 MiB held
    assert ranges[0] == f"bytes=0-{FIRST_FETCH_BYTES - 1}"
    held = FIRST_FETCH_BYTES
    for asked in ranges[1:]:
        first, last = (int(end) for end in asked.removeprefix("bytes=").split("-"))
        assert first == held  # each request goes on where the bytes held end
        assert last + 1 >= 2 * held  # and at least doubles them
        held = last + 1


def test_a_split_models_first_part_has_the_keys(server: FileServer, tmp_path: Path) -> None:
    first = write_demo_model(tmp_path / "split" / "big.gguf", DemoSpec(split_max_tensors=10))
    parts = sorted((tmp_path / "split").iterdir())
    urls = [server.add(part.name, part) for part in parts]
    total = sum(part.stat().st_size for part in parts)
    (local,) = scan([tmp_path / "split"], include_known=False)

    entry, header = remote_entry(
        urls[0], display_name="big", file_size=total, parts=urls, headers=None
    )

    assert entry.parts == tuple(urls) and entry.file_size == total == local.file_size
    assert header.file_size == first.stat().st_size  # the first part's, from Content-Range
    assert same_model_facts(entry, local)


def test_the_size_given_is_used_when_the_server_does_not_say(
    server: FileServer, late_model: Path, tmp_path: Path
) -> None:
    server.add("late.gguf", late_model)
    unsized = server.url("unsized", "late.gguf")

    with pytest.raises(ModelError) as caught:
        read_remote_gguf(unsized)
    assert caught.value.kind is ErrorKind.NETWORK
    assert "did not say how large" in str(caught.value)

    size = late_model.stat().st_size
    assert_same_header(read_remote_gguf(unsized, size=size).info, read_gguf(late_model))
    # The size is what the data section is checked against.
    with pytest.raises(ModelError) as too_small:
        read_remote_gguf(unsized, size=size - 1)
    assert "truncated: tensor" in str(too_small.value)


# --- redirects and credentials ---------------------------------------------------------------


def test_redirect_to_another_host_does_not_carry_the_token(
    server: FileServer, big_model: Path
) -> None:
    server.add("big.gguf", big_model)
    moved = server.url("moved", "big.gguf")

    remote = read_remote_gguf(moved, headers={"Authorization": TOKEN})

    assert_same_header(remote.info, read_gguf(big_model))
    first, *landed = server.seen
    assert first.path == "/moved/big.gguf" and first.host == f"127.0.0.1:{server.port}"
    assert first.authorization == TOKEN  # the original host gets it
    # The redirect target and the later range requests: localhost, never the token.
    assert len(landed) == 3
    assert {seen.host for seen in landed} == {f"localhost:{server.port}"}
    assert {seen.path for seen in landed} == {"/files/big.gguf"}
    assert [seen.authorization for seen in landed] == [None, None, None]
    assert remote.requests == 4  # the redirect counts


def test_the_session_is_huggingface_hubs(server: FileServer, late_model: Path) -> None:
    url = server.add("late.gguf", late_model)
    read_remote_gguf(url)
    (seen,) = server.seen
    assert "x-amzn-trace-id" in seen.headers  # huggingface_hub's request hook adds it


def test_offline_mode_is_honoured(
    server: FileServer, late_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.add("late.gguf", late_model)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    with pytest.raises(ModelError) as caught:
        read_remote_gguf(url)

    assert caught.value.kind is ErrorKind.NETWORK
    assert "offline" in str(caught.value).lower()
    assert server.seen == []


# --- named errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "fragment"),
    [
        (404, ErrorKind.NOT_FOUND, "no file"),
        (401, ErrorKind.UNAUTHORIZED, "gated or private"),
        (403, ErrorKind.UNAUTHORIZED, "gated or private"),
        (429, ErrorKind.RATE_LIMITED, "try again in 7 s"),
        (500, ErrorKind.NETWORK, "HTTP 500"),
        (503, ErrorKind.NETWORK, "HTTP 503"),
    ],
)
def test_http_errors_are_named(
    server: FileServer, status: int, kind: ErrorKind, fragment: str
) -> None:
    with pytest.raises(ModelError) as caught:
        read_remote_gguf(server.url("status", str(status)))
    assert caught.value.kind is kind
    assert fragment in str(caught.value)
    assert f"HTTP {status}" in str(caught.value)


def test_a_missing_file_behind_a_redirect_is_not_found(server: FileServer) -> None:
    with pytest.raises(ModelError) as caught:
        read_remote_gguf(server.url("files", "absent.gguf"))
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_connection_refused_is_a_network_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ModelError) as caught:
        read_remote_gguf(f"http://127.0.0.1:{port}/files/model.gguf")

    assert caught.value.kind is ErrorKind.NETWORK
    assert f"127.0.0.1:{port}" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"This is a text file that someone renamed to .gguf.\n" * 40, "GGUF signature"),
    ],
)
def test_not_a_gguf_is_an_invalid_model(server: FileServer, content: bytes, fragment: str) -> None:
    url = server.add("bad.gguf", content)
    with pytest.raises(ModelError) as caught:
        read_remote_gguf(url)
    assert caught.value.kind is ErrorKind.INVALID_MODEL
    assert fragment in str(caught.value)


def test_truncated_files_are_invalid_models(
    server: FileServer, late_model: Path, tmp_path: Path
) -> None:
    raw = late_model.read_bytes()
    data_offset = read_gguf(late_model).data_offset
    # Cut in the counts, in the vocabulary, and in the weights: there the header is whole but
    # the data section is checked against the remote file's size, without fetching it.
    for cut in (300, 20_000, data_offset + 1000):
        url = server.add(f"cut-{cut}.gguf", raw[:cut])
        local = tmp_path / f"cut-{cut}.gguf"
        local.write_bytes(raw[:cut])
        with pytest.raises(ModelError) as remote_error:
            read_remote_gguf(url)
        with pytest.raises(ModelError) as local_error:
            read_gguf(local)
        assert remote_error.value.kind is ErrorKind.INVALID_MODEL
        assert str(remote_error.value) == str(local_error.value)
    assert "truncated: tensor" in str(remote_error.value)
    assert all(seen.headers["range"] == f"bytes=0-{FIRST_FETCH_BYTES - 1}" for seen in server.seen)


def test_a_header_past_the_cap_is_an_invalid_model(
    server: FileServer, big_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gguf_remote, "MAX_HEADER_BYTES", FIRST_FETCH_BYTES)
    url = server.add("big.gguf", big_model)

    with pytest.raises(ModelError) as caught:
        read_remote_gguf(url)

    assert caught.value.kind is ErrorKind.INVALID_MODEL
    assert "header goes on past 1 MiB" in str(caught.value)
    assert len(server.seen) == 1


# --- a server that ignores Range -------------------------------------------------------------


def test_a_server_ignoring_range_is_read_only_as_far_as_the_header(
    server: FileServer, big_model: Path
) -> None:
    server.add("big.gguf", big_model)
    url = server.url("whole", "big.gguf")

    remote = read_remote_gguf(url)

    assert_same_header(remote.info, read_gguf(big_model))
    size = big_model.stat().st_size
    assert remote.requests == 1  # the body was kept open, not asked for again
    assert remote.bytes_fetched < 2 * remote.info.data_offset < size // 10
    (body,) = server.whole
    assert body.finished.wait(30)  # a guard against a hang, not a measurement
    assert not body.completed and body.sent < size  # the client closed it


# --- the fit verdict -------------------------------------------------------------------------

RAM = RamInfo(total=64 * GiB, available=48 * GiB, used=16 * GiB)
GPU = GpuInfo(0, "Test GPU", 8 * GiB, 1 * GiB, 7 * GiB, None, None)


def same_model_facts(remote: ModelEntry, local: ModelEntry) -> bool:
    """The entries agree on everything but where the model is and what it is called."""
    where = {"id", "path", "parts", "source", "display_name", "mtime"}
    return all(
        getattr(remote, name) == getattr(local, name)
        for name in ModelEntry.__dataclass_fields__
        if name not in where
    )


def test_remote_entry_gets_the_local_catalogs_verdict(server: FileServer, late_model: Path) -> None:
    url = server.add("late.gguf", late_model)
    (local,) = scan([late_model], include_known=False)

    entry, header = remote_entry(
        url,
        display_name="acme/Late-GGUF",
        file_size=late_model.stat().st_size,
        parts=[url],
        headers={"Authorization": TOKEN},
    )

    assert isinstance(header, RemoteHeader)
    assert (entry.id, entry.path, entry.parts) == (url, url, (url,))
    assert entry.source == "huggingface" and entry.display_name == "acme/Late-GGUF"
    assert entry.error is None
    assert same_model_facts(entry, local)
    assert entry.quantization == "Q4_K_M" and entry.parameter_count == late_keys_parameters(2)
    for n_ctx in (512, 2048):
        for gpus in ([], [GPU]):
            remote_verdict = assess(ModelShape.from_entry(entry), n_ctx, RAM, gpus)
            local_verdict = assess(ModelShape.from_entry(local), n_ctx, RAM, gpus)
            assert remote_verdict == local_verdict
