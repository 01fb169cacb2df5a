"""The fake hub against the real `huggingface_hub` client: what the app's search and download
code will meet, on loopback. Raw requests (httpx) check what the client does not expose: the
faults, ranges, the CDN's signature and headers."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, snapshot_download
from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import get_session, hf_raise_for_status
from tqdm import tqdm

from tests.helpers.fake_hub import (
    CorruptByte,
    DropAfter,
    FakeHub,
    StallAfter,
    Status,
    Throttle,
)

TINY = "acme/Tiny-GGUF"
GATED = "acme/Gated-GGUF"
PRIVATE = "acme/Private-GGUF"
MODEL = "Tiny-Q4_K_M.gguf"
README = b"# Tiny\n"
PAYLOAD = bytes(range(256)) * 256  # 64 KiB, every byte value at known offsets


@pytest.fixture
def hub(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub(tmp_path / "hub") as running:
        running.add_repo(
            TINY,
            {MODEL: tiny_model, "payload.gguf": PAYLOAD, "README.md": README},
            downloads=100,
            likes=5,
        )
        running.add_repo(GATED, {"Gated-Q4_K_M.gguf": PAYLOAD}, gated=True, downloads=50)
        running.add_repo(PRIVATE, {"Private-Q4_K_M.gguf": PAYLOAD}, private=True)
        running.add_repo("acme/notes", {"notes.txt": b"no weights"}, tags=("text",))
        yield running


@pytest.fixture
def api(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=False)


class SilentProgress(tqdm):
    """No bar in the test output, and no `tqdm_monitor` thread outliving the test (tqdm starts
    it in `__new__`, even for a disabled bar)."""

    monitor_interval = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "disable": True})


def download(hub: FakeHub, repo_id: str, filename: str, cache: Path, **options) -> Path:
    options.setdefault("token", False)
    path = hf_hub_download(
        repo_id,
        filename,
        endpoint=hub.endpoint,
        cache_dir=cache,
        tqdm_class=SilentProgress,
        **options,
    )
    return Path(path)


def cdn_url(hub: FakeHub, repo_id: str, filename: str) -> str:
    answer = httpx.head(hub.resolve_url(repo_id, filename))
    assert answer.status_code == 302
    return answer.headers["Location"]


def fetch(url: str, **headers: str) -> tuple[httpx.Response, bytes, Exception | None]:
    """A GET that keeps what arrived before the connection broke."""
    received = bytearray()
    with (
        httpx.Client(follow_redirects=True, timeout=10) as client,
        client.stream("GET", url, headers=headers) as answer,
    ):
        try:
            for chunk in answer.iter_raw():
                received += chunk
        except httpx.HTTPError as error:
            return answer, bytes(received), error
    return answer, bytes(received), None


# -- search and metadata ----------------------------------------------------------------------


def test_search_matches_repo_ids_case_insensitively_within_the_gguf_filter(api: HfApi):
    assert [model.id for model in api.list_models(search="tiny", filter="gguf")] == [TINY]
    assert [model.id for model in api.list_models(search="GGUF", filter="gguf")] == [TINY, GATED]
    assert [model.id for model in api.list_models(search="notes", filter="gguf")] == []


def test_search_sorts_limits_and_hides_private_repos_from_strangers(api: HfApi, hub: FakeHub):
    by_downloads = api.list_models(filter="gguf", sort="downloads", limit=1)
    assert [model.id for model in by_downloads] == [TINY]
    # The client also stops after `limit`: only a raw request shows the hub honours it.
    listed = httpx.get(f"{hub.endpoint}/api/models", params={"limit": 2}).json()
    assert len(listed) == 2
    owner = HfApi(endpoint=hub.endpoint, token=hub.token)
    assert PRIVATE in [model.id for model in owner.list_models(filter="gguf")]


def test_search_gives_the_hubs_fields_and_more_when_asked(api: HfApi, hub: FakeHub):
    (listed,) = api.list_models(search="tiny")
    assert (listed.downloads, listed.likes, listed.library_name) == (100, 5, "gguf")
    assert listed.created_at is not None and listed.tags == ["gguf"]
    assert listed.gated is None and listed.sha is None  # as on the real hub: not by default

    (expanded,) = api.list_models(search="gated", expand=["gated", "sha", "lastModified"])
    assert expanded.gated == "manual"
    assert expanded.sha == hub.repo(GATED).head.sha
    assert expanded.last_modified is not None
    (full,) = api.list_models(search="tiny", full=True)
    assert full.gated is False
    assert sorted(s.rfilename for s in full.siblings) == ["README.md", MODEL, "payload.gguf"]


def test_model_info_gives_sizes_lfs_hashes_and_the_gguf_header(
    api: HfApi, hub: FakeHub, tiny_model: Path
):
    info = api.model_info(TINY, files_metadata=True)

    assert info.sha == hub.repo(TINY).head.sha
    assert (info.private, info.gated, info.downloads) == (False, False, 100)
    siblings = {sibling.rfilename: sibling for sibling in info.siblings}
    assert siblings[MODEL].size == tiny_model.stat().st_size
    assert siblings[MODEL].lfs.sha256 == hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    assert siblings[MODEL].lfs.sha256 == hub.sha256(TINY, MODEL)
    assert siblings["README.md"].lfs is None and siblings["README.md"].size == len(README)
    assert info.gguf["architecture"] == "llama"
    assert info.gguf["context_length"] == 2048
    assert info.gguf["total"] > 0


def test_repo_tree_and_paths_info_describe_the_files(api: HfApi, hub: FakeHub):
    tree = {entry.path: entry for entry in api.list_repo_tree(TINY, recursive=True)}
    assert sorted(tree) == ["README.md", MODEL, "payload.gguf"]
    assert tree["payload.gguf"].size == len(PAYLOAD)
    assert tree["payload.gguf"].lfs.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert tree["README.md"].lfs is None
    assert tree["README.md"].blob_id == hashlib.sha1(b"blob 7\0" + README).hexdigest()

    described = api.get_paths_info(TINY, ["payload.gguf", "missing.gguf"], expand=True)
    assert [entry.path for entry in described] == ["payload.gguf"]
    assert described[0].last_commit.oid == hub.repo(TINY).head.sha


# -- downloads with the real client -----------------------------------------------------------


def test_download_lands_in_the_cache_layout_with_the_right_bytes(
    hub: FakeHub, tmp_path: Path, tiny_model: Path
):
    path = download(hub, TINY, MODEL, tmp_path / "cache")

    commit = hub.repo(TINY).head.sha
    storage = tmp_path / "cache" / "models--acme--Tiny-GGUF"
    assert path == storage / "snapshots" / commit / MODEL
    assert path.is_symlink()
    assert path.resolve() == (storage / "blobs" / hub.sha256(TINY, MODEL)).resolve()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hub.sha256(TINY, MODEL)
    assert (storage / "refs" / "main").read_text() == commit
    assert hub.bytes_served(MODEL) == tiny_model.stat().st_size


def test_file_metadata_names_the_commit_the_sha256_and_a_cdn_location(hub: FakeHub):
    metadata = get_hf_file_metadata(hub.resolve_url(TINY, "payload.gguf"), token=False)

    assert metadata.commit_hash == hub.repo(TINY).head.sha
    assert metadata.etag == hub.sha256(TINY, "payload.gguf")
    assert metadata.size == len(PAYLOAD)
    assert metadata.location.startswith(f"{hub.cdn_endpoint}/cdn/")
    assert metadata.xet_file_data is None


def test_a_small_file_is_served_by_the_resolve_route_itself(hub: FakeHub, tmp_path: Path):
    metadata = get_hf_file_metadata(hub.resolve_url(TINY, "README.md"), token=False)
    assert metadata.location == hub.resolve_url(TINY, "README.md")
    assert download(hub, TINY, "README.md", tmp_path / "cache").read_bytes() == README


def test_gated_repo_needs_the_token_and_the_cdn_gets_no_authorization(
    api: HfApi, hub: FakeHub, tmp_path: Path
):
    with pytest.raises(GatedRepoError):
        api.model_info(GATED)
    with pytest.raises(GatedRepoError):
        download(hub, GATED, "Gated-Q4_K_M.gguf", tmp_path / "cache")

    with pytest.raises(GatedRepoError):
        api.auth_check(GATED)
    owner = HfApi(endpoint=hub.endpoint, token=hub.token)
    owner.auth_check(GATED)
    assert owner.model_info(GATED).gated == "manual"
    path = download(hub, GATED, "Gated-Q4_K_M.gguf", tmp_path / "cache", token=hub.token)
    assert path.read_bytes() == PAYLOAD
    (cdn_get,) = [r for r in hub.requests if r.server == "cdn" and r.method == "GET"]
    assert "authorization" not in cdn_get.headers
    resolves = [r for r in hub.requests if r.path.startswith(f"/{GATED}/resolve/")]
    assert resolves[-1].headers["authorization"] == f"Bearer {hub.token}"


def test_private_repo_is_not_found_without_the_token(api: HfApi, hub: FakeHub):
    with pytest.raises(RepositoryNotFoundError) as raised:
        api.model_info(PRIVATE)
    assert not isinstance(raised.value, GatedRepoError)
    assert HfApi(endpoint=hub.endpoint, token=hub.token).model_info(PRIVATE).private is True


def test_a_wrong_token_is_refused_even_on_a_public_repo(hub: FakeHub):
    with pytest.raises(HfHubHTTPError) as raised:
        HfApi(endpoint=hub.endpoint, token="hf_wrong").model_info(TINY)
    assert raised.value.response.status_code == 401
    assert not isinstance(raised.value, RepositoryNotFoundError)
    assert "Invalid credentials" in str(raised.value)


def test_snapshot_download_fetches_a_whole_repo(hub: FakeHub, tmp_path: Path):
    folder = snapshot_download(
        TINY,
        endpoint=hub.endpoint,
        cache_dir=tmp_path / "cache",
        token=False,
        tqdm_class=SilentProgress,
        max_workers=1,
    )
    assert sorted(path.name for path in Path(folder).iterdir()) == [
        "README.md",
        MODEL,
        "payload.gguf",
    ]
    assert (Path(folder) / "payload.gguf").read_bytes() == PAYLOAD


def test_a_missing_file_is_entry_not_found(hub: FakeHub, tmp_path: Path):
    with pytest.raises(RemoteEntryNotFoundError):
        download(hub, TINY, "nope.gguf", tmp_path / "cache")


def test_a_replaced_file_gets_a_new_commit_and_the_old_commit_keeps_its_bytes(
    hub: FakeHub, tmp_path: Path
):
    old_commit = hub.repo(TINY).head.sha
    new_commit = hub.replace_file(TINY, "payload.gguf", b"new bytes")

    assert new_commit != old_commit and len(new_commit) == 40
    assert hub.sha256(TINY, "payload.gguf") == hashlib.sha256(b"new bytes").hexdigest()
    latest = download(hub, TINY, "payload.gguf", tmp_path / "cache")
    assert latest.read_bytes() == b"new bytes"
    assert new_commit in latest.parts
    old = download(hub, TINY, "payload.gguf", tmp_path / "cache", revision=old_commit)
    assert old.read_bytes() == PAYLOAD


def test_the_client_resumes_a_dropped_download_with_a_range(hub: FakeHub, tmp_path: Path):
    # huggingface_hub writes in 10 MiB chunks: a drop after the first one makes it resume.
    content = os.urandom(DOWNLOAD_CHUNK_SIZE + 65536)
    hub.add_repo("acme/Large-GGUF", {"large.gguf": content})
    hub.inject("large.gguf", DropAfter(DOWNLOAD_CHUNK_SIZE + 1000))

    path = download(hub, "acme/Large-GGUF", "large.gguf", tmp_path / "cache")

    assert path.read_bytes() == content
    gets = [r for r in hub.requests if r.server == "cdn" and r.method == "GET"]
    assert [r.range for r in gets] == [None, f"bytes={DOWNLOAD_CHUNK_SIZE}-"]
    assert [r.status for r in gets] == [200, 206]
    assert hub.bytes_served("large.gguf") == DOWNLOAD_CHUNK_SIZE + 1000 + 65536


# -- the CDN, ranges and faults, with raw requests --------------------------------------------


def test_the_cdn_refuses_an_unsigned_url_and_needs_no_authorization(hub: FakeHub):
    signed = cdn_url(hub, TINY, "payload.gguf")
    assert httpx.get(signed.split("?")[0]).status_code == 403
    assert httpx.get(signed.replace("sig=", "sig=0")).status_code == 403

    answer = httpx.get(signed)
    assert answer.status_code == 200 and answer.content == PAYLOAD
    assert answer.headers["ETag"] == f'"{hub.sha256(TINY, "payload.gguf")}"'
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert "Last-Modified" in answer.headers
    assert not [name for name in answer.headers if "xet" in name.lower()]


def test_resolve_redirects_with_the_linked_headers(hub: FakeHub):
    answer = httpx.head(hub.resolve_url(TINY, "payload.gguf"))

    assert answer.status_code == 302
    assert answer.headers["X-Repo-Commit"] == hub.repo(TINY).head.sha
    assert answer.headers["X-Linked-Etag"] == f'"{hub.sha256(TINY, "payload.gguf")}"'
    assert answer.headers["X-Linked-Size"] == str(len(PAYLOAD))
    assert not [name for name in answer.headers if "xet" in name.lower()]


def test_ranges_give_206_with_the_right_bytes_416_past_the_end(hub: FakeHub):
    url = cdn_url(hub, TINY, "payload.gguf")
    etag = f'"{hub.sha256(TINY, "payload.gguf")}"'

    part = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == PAYLOAD[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(PAYLOAD)}"
    rest = httpx.get(url, headers={"Range": "bytes=65000-"})
    assert rest.status_code == 206 and rest.content == PAYLOAD[65000:]
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.content == PAYLOAD[-10:]
    past = httpx.get(url, headers={"Range": f"bytes={len(PAYLOAD)}-"})
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{len(PAYLOAD)}"
    same = httpx.get(url, headers={"Range": "bytes=10-", "If-Range": etag})
    assert same.status_code == 206 and same.content == PAYLOAD[10:]
    stale = httpx.get(url, headers={"Range": "bytes=10-", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == PAYLOAD


def test_drop_after_sends_that_many_bytes_then_closes(hub: FakeHub):
    hub.inject("payload.gguf", DropAfter(5000))
    url = hub.resolve_url(TINY, "payload.gguf")

    answer, received, error = fetch(url)
    assert answer.headers["Content-Length"] == str(len(PAYLOAD))
    assert isinstance(error, httpx.RemoteProtocolError)
    assert received == PAYLOAD[:5000]
    assert fetch(url)[1] == PAYLOAD  # times=1: the next GET is whole
    assert hub.bytes_served("payload.gguf") == 5000 + len(PAYLOAD)


def test_drop_after_counts_bytes_of_the_range_asked_for(hub: FakeHub):
    hub.inject("payload.gguf", DropAfter(100))
    answer, received, error = fetch(hub.resolve_url(TINY, "payload.gguf"), Range="bytes=300-")
    assert answer.status_code == 206 and error is not None
    assert received == PAYLOAD[300:400]


def test_stall_after_sends_that_many_bytes_then_nothing(hub: FakeHub):
    hub.inject("payload.gguf", StallAfter(3000, seconds=60))
    received = bytearray()
    url = cdn_url(hub, TINY, "payload.gguf")
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=0.5)) as client,
        client.stream("GET", url) as answer,
        pytest.raises(httpx.ReadTimeout),
    ):
        for chunk in answer.iter_raw():
            received += chunk
    assert bytes(received) == PAYLOAD[:3000]
    # Stopping the hub (the fixture) ends the stall: no thread is left sleeping.


def test_corrupt_byte_flips_exactly_that_byte_in_whole_and_ranged_answers(hub: FakeHub):
    hub.inject("payload.gguf", CorruptByte(4242))
    url = hub.resolve_url(TINY, "payload.gguf")

    _, received, _ = fetch(url)
    differing = [i for i, (a, b) in enumerate(zip(received, PAYLOAD, strict=True)) if a != b]
    assert differing == [4242]
    assert received[4242] == PAYLOAD[4242] ^ 0xFF
    _, ranged, _ = fetch(url, Range="bytes=4240-4243")
    assert ranged == PAYLOAD[4240:4242] + bytes([PAYLOAD[4242] ^ 0xFF]) + PAYLOAD[4243:4244]


def test_status_429_says_retry_after_once_then_serves(hub: FakeHub):
    hub.inject("payload.gguf", Status(429, times=1, retry_after=7))
    url = cdn_url(hub, TINY, "payload.gguf")

    limited = httpx.get(url)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.headers["X-Error-Message"] == limited.json()["error"]
    assert httpx.get(url).content == PAYLOAD
    assert hub.bytes_served("payload.gguf") == len(PAYLOAD)


def test_status_faults_carry_the_error_codes_the_client_maps(hub: FakeHub):
    url = cdn_url(hub, TINY, "payload.gguf")
    for code, error in ((404, RemoteEntryNotFoundError), (401, GatedRepoError)):
        hub.inject("payload.gguf", Status(code, times=1))
        with pytest.raises(error):
            hf_raise_for_status(get_session().get(url))
    hub.inject("payload.gguf", Status(503, times=2))
    assert [httpx.get(url).status_code for _ in range(3)] == [503, 503, 200]


def test_throttle_paces_the_body(hub: FakeHub):
    # A lower bound only: the pacing sleeps make the answer at least this slow on any machine.
    hub.inject("payload.gguf", Throttle(bytes_per_s=256 * 1024))
    began = time.monotonic()
    _, received, _ = fetch(hub.resolve_url(TINY, "payload.gguf"))
    assert received == PAYLOAD
    assert time.monotonic() - began >= 0.15  # 64 KiB at 256 KiB/s, the first send unpaced


def test_clear_faults_disarms_everything(hub: FakeHub):
    hub.inject("payload.gguf", Status(500))
    hub.clear_faults()
    assert fetch(hub.resolve_url(TINY, "payload.gguf"))[1] == PAYLOAD


# -- plain files ------------------------------------------------------------------------------


def test_plain_files_have_validators_and_ranges(hub: FakeHub):
    url = hub.add_plain_file("model.gguf", PAYLOAD)
    assert url == hub.file_url("model.gguf")

    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(PAYLOAD))
    etag, modified = head.headers["ETag"], head.headers["Last-Modified"]
    assert httpx.get(url, headers={"Range": "bytes=5-9"}).content == PAYLOAD[5:10]
    by_date = httpx.get(url, headers={"Range": "bytes=5-", "If-Range": modified})
    assert by_date.status_code == 206

    hub.add_plain_file("model.gguf", b"changed upstream")
    changed = httpx.get(url, headers={"Range": "bytes=5-", "If-Range": etag})
    assert changed.status_code == 200 and changed.content == b"changed upstream"
    assert changed.headers["ETag"] != etag
    hub.inject("model.gguf", DropAfter(3))
    assert fetch(url)[1] == b"cha"
    assert httpx.get(hub.file_url("absent.gguf")).status_code == 404


# -- another process --------------------------------------------------------------------------


def test_main_serves_the_demo_repos_until_sigterm(tmp_path: Path):
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.fake_hub", "--root", str(tmp_path), "--demo"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = server.stdout.readline().split()
        assert first[0] == "ENDPOINT"
        api = HfApi(endpoint=first[1], token=False)
        names = {model.id: model for model in api.list_models(search="demo", filter="gguf")}
        assert sorted(names) == [
            "llm-desktop/Big-Demo-GGUF",
            "llm-desktop/Gated-Demo-GGUF",
            "llm-desktop/Tiny-Demo-GGUF",
        ]
        files = api.list_repo_files("llm-desktop/Big-Demo-GGUF")
        assert "Big-Demo-Q4_K_M-00001-of-00002.gguf" in files
        assert "Big-Demo-Q4_K_M-00002-of-00002.gguf" in files
        tiny = api.model_info("llm-desktop/Tiny-Demo-GGUF")
        assert {"Tiny-Demo-Q4_K_M.gguf", "Tiny-Demo-Q8_0.gguf"} <= {
            sibling.rfilename for sibling in tiny.siblings
        }
        with pytest.raises(GatedRepoError):
            api.model_info("llm-desktop/Gated-Demo-GGUF")
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        server.stdout.close()
