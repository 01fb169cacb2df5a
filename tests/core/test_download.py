"""Downloads against a Hugging Face–compatible hub on loopback: real HTTP, real files, faults.

Every fault ends in its named error or in an automatic resume, never in a listed broken model;
bytes already on disk are never fetched twice.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest

from llm_desktop.core import catalog, download
from llm_desktop.core.bus import EventBus
from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.download import DownloadJob, DownloadManager, DownloadSpec
from llm_desktop.core.events import ErrorKind, ProgressEvent, Stage
from llm_desktop.core.transfer import RetryPolicy
from tests.helpers.fake_hub import CorruptByte, DropAfter, FakeHub, StallAfter, Status, Throttle

REPO = "acme/Tiny-GGUF"
FILE = "Tiny-Q8_0.gguf"
FAST = RetryPolicy(stall_s=5.0, attempts=4, backoff_s=0.05, backoff_cap_s=0.2)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_demo_model(tmp_path_factory.mktemp("models") / FILE, spec_for_size(6))


@pytest.fixture
def hub(tmp_path, model_file, monkeypatch):
    with FakeHub(tmp_path / "hub") as hub:
        hub.add_repo(REPO, {FILE: model_file})
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
        yield hub


def run(spec: DownloadSpec, policy: RetryPolicy = FAST, **kwargs) -> list[ProgressEvent]:
    bus = EventBus()
    job = DownloadJob(spec, bus, policy=policy, **kwargs)
    with bus.stream(spec.key) as stream:
        job.start()
        events = list(stream.until_terminal(timeout=60))
    job.wait(10)
    return events


def stages(events: list[ProgressEvent]) -> list[Stage]:
    seen: list[Stage] = []
    for event in events:
        if not seen or seen[-1] is not event.stage:
            seen.append(event.stage)
    return seen


def cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def listed(cache: Path) -> list[catalog.ModelEntry]:
    return catalog.scan([str(cache)], include_known=False)


def test_a_hub_model_arrives_verified_in_the_hub_cache_layout(hub, tmp_path, model_file):
    events = run(DownloadSpec(f"{REPO}:Q8_0"))
    final = events[-1]
    assert final.stage is Stage.COMPLETE, final.message
    assert stages(events)[0] is Stage.CONNECTING
    assert Stage.DOWNLOADING in stages(events) and Stage.VERIFYING in stages(events)
    assert stages(events)[-2:] == [Stage.FINALIZING, Stage.COMPLETE]
    link = Path(final.result_path)
    commit = link.parent.name
    assert (
        link
        == tmp_path / "cache" / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit / FILE
    )
    assert link.is_symlink() and link.resolve().name == hub.sha256(REPO, FILE)
    assert hashlib.sha256(link.read_bytes()).hexdigest() == hub.sha256(REPO, FILE)
    assert final.bytes_total == model_file.stat().st_size
    (entry,) = listed(tmp_path / "cache")
    assert entry.error is None and entry.path == str(link)
    # The real client agrees: huggingface_hub finds our download in its own cache.
    from huggingface_hub import scan_cache_dir

    (repo,) = scan_cache_dir(tmp_path / "cache").repos
    assert repo.repo_id == REPO and repo.nb_files == 1


def test_progress_is_bytes_with_a_rate_and_an_eta(hub, model_file):
    hub.inject(FILE, Throttle(2_000_000))  # about 3 s for the 6 MB file: several ticks
    events = run(DownloadSpec(REPO))
    downloading = [e for e in events if e.stage is Stage.DOWNLOADING]
    assert len(downloading) >= 3
    done = [e.bytes_done for e in downloading]
    assert done == sorted(done) and done[-1] > done[0]
    assert all(e.bytes_total == model_file.stat().st_size for e in downloading)
    rated = [e for e in downloading if e.rate_bps]
    assert rated and all(e.eta_s is not None for e in rated)
    # The rate is what the link allows, not a made-up number: within the throttle's reach.
    assert max(e.rate_bps for e in rated) < 4_000_000
    pcts = [e.pct for e in events if not e.is_terminal]
    assert pcts == sorted(pcts)


def test_a_dropped_connection_resumes_where_it_stopped(hub, model_file):
    size = model_file.stat().st_size
    hub.inject(FILE, DropAfter(size // 3))
    events = run(DownloadSpec(REPO))
    assert events[-1].stage is Stage.COMPLETE, events[-1].message
    assert Stage.RETRYING in stages(events)
    assert hub.bytes_served(FILE) == size  # nothing fetched twice
    ranged = [r for r in hub.requests if r.method == "GET" and r.range]
    assert ranged and ranged[-1].range == f"bytes={size // 3}-"


def test_a_stall_shows_as_a_stall_then_resumes(hub, model_file):
    size = model_file.stat().st_size
    hub.inject(FILE, StallAfter(size // 2, seconds=3.0))
    events = run(DownloadSpec(REPO), RetryPolicy(stall_s=2.5, attempts=4, backoff_s=0.05))
    assert events[-1].stage is Stage.COMPLETE, events[-1].message
    stalled = [e for e in events if e.stage is Stage.DOWNLOADING and e.stalled_s]
    assert stalled, "the readout must say the bytes stopped"
    assert Stage.RETRYING in stages(events)
    assert hub.bytes_served(FILE) == size


def test_a_corrupt_byte_is_a_checksum_error_and_nothing_is_kept(hub, tmp_path):
    hub.inject(FILE, CorruptByte(offset=4096))
    events = run(DownloadSpec(REPO))
    final = events[-1]
    assert final.stage is Stage.FAILED and final.error.kind is ErrorKind.CHECKSUM_MISMATCH
    assert cache_files(tmp_path / "cache") == [] or not any(
        f.endswith((".incomplete", FILE)) for f in cache_files(tmp_path / "cache")
    )
    assert listed(tmp_path / "cache") == []


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Status(404), ErrorKind.NOT_FOUND),
        (Status(401), ErrorKind.UNAUTHORIZED),
        (Status(429, retry_after=0), ErrorKind.RATE_LIMITED),
        (Status(503), ErrorKind.NETWORK),
    ],
)
def test_server_refusals_are_named(hub, tmp_path, fault, kind):
    hub.inject(FILE, fault)
    events = run(DownloadSpec(REPO), RetryPolicy(stall_s=5, attempts=2, backoff_s=0.01))
    final = events[-1]
    assert final.stage is Stage.FAILED and final.error.kind is kind, final.message
    assert listed(tmp_path / "cache") == []


def test_a_gated_repository_needs_the_token(hub, tmp_path, model_file, monkeypatch):
    hub.add_repo("acme/Gated-GGUF", {"Gated-Q8_0.gguf": model_file}, gated=True)
    refused = run(DownloadSpec("acme/Gated-GGUF"))
    assert refused[-1].error.kind is ErrorKind.UNAUTHORIZED
    monkeypatch.setenv("HF_TOKEN", hub.token)
    allowed = run(DownloadSpec("acme/Gated-GGUF"))
    assert allowed[-1].stage is Stage.COMPLETE, allowed[-1].message
    # The token went to the hub, never to the CDN the hub redirected to.
    cdn = [r for r in hub.requests if r.path.startswith("/cdn/")]
    assert cdn and not any("authorization" in {k.lower() for k in r.headers} for r in cdn)


def test_an_unknown_quantization_names_what_there_is(hub):
    events = run(DownloadSpec(f"{REPO}:Q2_K"))
    assert events[-1].error.kind is ErrorKind.NOT_FOUND
    assert "Q8_0" in events[-1].error.message


def test_pause_keeps_the_bytes_and_resume_continues(hub, model_file):
    size = model_file.stat().st_size
    hub.inject(FILE, Throttle(1_500_000))
    bus = EventBus()
    job = DownloadJob(DownloadSpec(REPO), bus, policy=FAST)
    with bus.stream(job.key) as stream:
        job.start()
        events = []
        for event in stream.until_terminal(timeout=60):
            events.append(event)
            first_time = not job.paused and Stage.PAUSED not in stages(events)
            if first_time and event.stage is Stage.DOWNLOADING and event.bytes_done > size // 4:
                assert job.pause()
            if event.stage is Stage.PAUSED:
                paused_at = event.bytes_done
                assert job.resume()
    assert events[-1].stage is Stage.COMPLETE
    assert 0 < paused_at < size
    assert hub.bytes_served(FILE) <= size + 1024 * 1024  # at most a chunk in flight twice


def test_cancel_keeps_or_deletes_the_partial_file(hub, tmp_path, model_file):
    size = model_file.stat().st_size
    hub.inject(FILE, Throttle(1_500_000))
    bus = EventBus()
    job = DownloadJob(DownloadSpec(REPO), bus, policy=FAST)
    with bus.stream(job.key) as stream:
        job.start()
        for event in stream.until_terminal(timeout=60):
            if event.stage is Stage.DOWNLOADING and (event.bytes_done or 0) > size // 4:
                job.cancel(keep_partial=True)
    final = job.wait(10)
    assert final.stage is Stage.CANCELLED and final.bytes_done > 0
    partials = list((tmp_path / "cache").rglob("*.incomplete"))
    assert len(partials) == 1 and partials[0].stat().st_size == final.bytes_done
    assert listed(tmp_path / "cache") == []

    # Run again: it resumes from the kept bytes, asking only for the rest.
    hub.clear_faults()
    requests_before = answered(hub, cdn_gets=1)
    events = run(DownloadSpec(REPO))
    assert events[-1].stage is Stage.COMPLETE
    assert byte_requests(hub, since=requests_before) == [f"bytes={final.bytes_done}-"]

    # Cancel-and-delete leaves nothing.
    hub.inject(FILE, Throttle(1_500_000))
    other = DownloadJob(DownloadSpec(f"{REPO}:{FILE}"), bus, policy=FAST)
    shutil.rmtree(tmp_path / "cache")
    with bus.stream(other.key) as stream:
        other.start()
        for event in stream.until_terminal(timeout=60):
            if event.stage is Stage.DOWNLOADING and (event.bytes_done or 0) > 0:
                other.cancel(keep_partial=False)
    assert other.wait(10).stage is Stage.CANCELLED
    assert list((tmp_path / "cache").rglob("*.incomplete*")) == []


def test_a_split_model_downloads_its_parts_together_and_lists_once(hub, tmp_path):
    parts = {}
    for index in (1, 2):
        name = f"Big-Q4_K_M-{index:05d}-of-00002.gguf"
        parts[name] = write_demo_model(tmp_path / "src" / name, spec_for_size(2 + index))
    hub.add_repo("acme/Split-GGUF", parts)
    events = run(DownloadSpec("acme/Split-GGUF"))
    final = events[-1]
    assert final.stage is Stage.COMPLETE, final.message
    assert final.bytes_total == sum(p.stat().st_size for p in parts.values())
    assert final.result_path.endswith("Big-Q4_K_M-00001-of-00002.gguf")
    (entry,) = listed(tmp_path / "cache")
    assert len(entry.parts) == 2


def test_not_enough_disk_space_is_named_before_a_byte_is_written(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "free_bytes", lambda folder: 1024)
    events = run(DownloadSpec(REPO))
    assert events[-1].error.kind is ErrorKind.DISK_FULL
    assert "free" in events[-1].error.message
    assert hub.bytes_served(FILE) == 0


def test_a_changed_hub_file_starts_over_cleanly(hub, tmp_path, model_file):
    size = model_file.stat().st_size
    hub.inject(FILE, DropAfter(size // 2, times=None))
    failed = run(DownloadSpec(REPO), RetryPolicy(stall_s=5, attempts=1, backoff_s=0.01))
    assert failed[-1].error.kind is ErrorKind.NETWORK
    assert len(list((tmp_path / "cache").rglob("*.incomplete"))) == 1
    hub.clear_faults()
    changed = write_demo_model(tmp_path / "v2" / FILE, spec_for_size(5))
    hub.replace_file(REPO, FILE, changed)
    events = run(DownloadSpec(REPO))
    assert events[-1].stage is Stage.COMPLETE
    link = Path(events[-1].result_path)
    assert (
        hashlib.sha256(link.read_bytes()).hexdigest()
        == hashlib.sha256(changed.read_bytes()).hexdigest()
    )
    assert list((tmp_path / "cache").rglob("*.incomplete")) == []


def test_a_direct_link_resumes_with_if_range_and_restarts_when_the_file_changed(
    hub, tmp_path, model_file
):
    url = hub.add_plain_file("direct.gguf", model_file)
    size = model_file.stat().st_size
    hub.inject("direct.gguf", DropAfter(size // 2, times=None))
    dest = tmp_path / "dest"
    spec = DownloadSpec(url, dest_dir=str(dest), sha256=hub_sha(model_file))
    first = run(spec, RetryPolicy(stall_s=5, attempts=1, backoff_s=0.01))
    assert first[-1].error.kind is ErrorKind.NETWORK
    assert (dest / "direct.gguf.part").stat().st_size == size // 2
    hub.clear_faults()
    events = run(spec)
    assert events[-1].stage is Stage.COMPLETE
    assert (dest / "direct.gguf").read_bytes() == model_file.read_bytes()
    ranged = [r for r in hub.requests if r.path.endswith("direct.gguf") and r.range]
    assert ranged[-1].range == f"bytes={size // 2}-"
    assert "if-range" in {k.lower() for k in ranged[-1].headers}

    # The file changes between the two runs: If-Range gets the whole new file, not a splice.
    (dest / "direct.gguf").unlink()
    hub.inject("direct.gguf", DropAfter(size // 2, times=1))
    run(DownloadSpec(url, dest_dir=str(dest)), RetryPolicy(stall_s=5, attempts=1))
    changed = write_demo_model(tmp_path / "v2.gguf", spec_for_size(5))
    hub.add_plain_file("direct.gguf", changed)
    events = run(DownloadSpec(url, dest_dir=str(dest)))
    assert events[-1].stage is Stage.COMPLETE
    assert (dest / "direct.gguf").read_bytes() == changed.read_bytes()


def test_a_direct_link_that_is_not_gguf_leaves_nothing(hub, tmp_path):
    url = hub.add_plain_file("fake.gguf", b"<html>not a model</html>" * 100)
    events = run(DownloadSpec(url, dest_dir=str(tmp_path / "dest")))
    assert events[-1].error.kind is ErrorKind.INVALID_MODEL
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_restarted_manager_resumes_unfinished_downloads(hub, tmp_path, model_file):
    size = model_file.stat().st_size
    hub.inject(FILE, Throttle(1_500_000))
    state = tmp_path / "downloads.json"
    bus = EventBus()
    first = DownloadManager(bus, state, policy=FAST)
    with bus.stream() as stream:
        job = first.start(DownloadSpec(REPO))
        for event in stream.until_terminal(timeout=60):
            if event.stage is Stage.DOWNLOADING and (event.bytes_done or 0) > size // 4:
                break
    first.shutdown()
    assert job.last_event.stage is not Stage.COMPLETE
    kept = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.incomplete"))
    assert kept > 0

    hub.clear_faults()
    requests_before = answered(hub, cdn_gets=1)
    second_bus = EventBus()
    second = DownloadManager(second_bus, state, policy=FAST)
    with second_bus.stream() as stream:
        (resumed,) = second.resume_pending()
        events = list(stream.until_terminal(timeout=60))
    assert events[-1].stage is Stage.COMPLETE, events[-1].message
    assert byte_requests(hub, since=requests_before) == [f"bytes={kept}-"]
    assert resumed.plan is not None
    second.shutdown()
    assert DownloadManager(EventBus(), state).resume_pending() == []


def answered(hub: FakeHub, cdn_gets: int) -> int:
    """How many requests the hub has recorded, once it has recorded `cdn_gets` byte requests
    (it records a request when it is done with it, which for a connection cut by a cancel can
    be a moment after the client let go)."""
    deadline = time.monotonic() + 30
    while len(byte_requests(hub, since=0)) < cdn_gets and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(hub.requests)


def byte_requests(hub: FakeHub, since: int) -> list[str | None]:
    """The Range of each request for the file's bytes (the CDN's) made after `since`."""
    return [r.range for r in hub.requests[since:] if r.method == "GET" and "/cdn/" in r.path]


def hub_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_downloads_of_one_file_never_write_the_same_partial(hub, model_file):
    hub.inject(FILE, Throttle(1_500_000))
    bus = EventBus()
    first = DownloadJob(DownloadSpec(REPO), bus, policy=FAST)
    with bus.stream(first.key) as stream:
        first.start()
        for event in stream.until_terminal(timeout=60):
            if event.stage is Stage.DOWNLOADING:
                break
        # The same file under another name (its quantization), while the first is writing.
        second = run(DownloadSpec(f"{REPO}:Q8_0"))
        assert second[-1].error.kind is ErrorKind.IN_USE
        hub.clear_faults()
        events = list(stream.until_terminal(timeout=60))
    assert events[-1].stage is Stage.COMPLETE
    assert hub_sha(Path(events[-1].result_path)) == hub.sha256(REPO, FILE)
    assert not list(Path(events[-1].result_path).parents[2].rglob("*.lock"))
