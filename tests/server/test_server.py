"""The local server over real loopback HTTP, with real loads of generated models."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from pathlib import Path

import httpx
import pytest

from llm_desktop.core import catalog, presenter
from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ProgressEvent, Stage
from llm_desktop.core.library import ModelLibrary
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from tests.helpers.library import make_library

TIMEOUT = httpx.Timeout(60.0)


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory, tiny_model, big_model) -> Path:
    return make_library(tmp_path_factory.mktemp("served"), tiny_model, big_model)


def start_server(library_dir: Path, **config) -> tuple[ServerThread, Engine]:
    engine = Engine(warm_hosts=1)
    library = ModelLibrary([library_dir], include_known=False)
    server = ServerThread(engine, library, config=ServerConfig(**config)).start()
    return server, engine


@pytest.fixture(scope="module")
def served(library_dir):
    server, engine = start_server(library_dir)
    yield server
    server.stop()
    engine.shutdown()


@pytest.fixture
def client(served):
    headers = {"Authorization": f"Bearer {served.config.token}"}
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=TIMEOUT) as session:
        yield session


def model_ids(client: httpx.Client) -> dict[str, str]:
    models = client.get("/api/llm/models").json()["models"]
    return {Path(model["path"]).stem: model["id"] for model in models}


def iter_sse(response: httpx.Response):
    """Yield each SSE message of a body as {id, event, data} while it arrives."""
    current: dict = {}
    for line in response.iter_lines():
        if line == "":
            if current:
                yield current
                current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        current[field] = value.removeprefix(" ")
    if current:
        yield current


def read_sse(response: httpx.Response, limit: int | None = None) -> list[dict]:
    """The messages of a stream until it ends, or the first `limit` of them."""
    messages = []
    for message in iter_sse(response):
        messages.append(message)
        if limit and len(messages) >= limit:
            break
    return messages


def events_of(messages: list[dict]) -> list[ProgressEvent]:
    return [ProgressEvent.from_json(m["data"]) for m in messages if m.get("event") == "progress"]


def unload(client, model_id):
    client.post("/api/llm/unload", json={"model": model_id})
    with client.stream(
        "GET", "/api/llm/events", params={"token": client.headers["authorization"][7:]}
    ) as response:
        for message in iter_sse(response):
            data = json.loads(message["data"])
            if message.get("event") == "snapshot":
                state = data["models"].get(model_id, {}).get("state")
                if state in (None, "unloaded"):
                    return
            elif data["model"] == model_id and data["stage"] == "unloaded":
                return


def test_models_lists_the_catalog_with_fit_and_state(client):
    models = client.get("/api/llm/models").json()["models"]
    by_stem = {Path(m["path"]).stem: m for m in models}
    assert set(by_stem) == {"tiny", "big", "broken"}
    assert by_stem["tiny"]["fit"]["verdict"] == "cpu"
    assert by_stem["tiny"]["state"] == "unloaded"
    assert by_stem["broken"]["error"]
    # The presenter's views come with the list: the page decides no words of its own.
    tiny, broken = by_stem["tiny"]["view"], by_stem["broken"]["view"]
    assert tiny["title"] == "llm-desktop demo (tiny.gguf)", "two files share a name"
    assert [a["id"] for a in tiny["actions"]] == ["load"]
    assert broken["state"] == "unreadable"
    assert [a["id"] for a in broken["actions"]] == ["details", "remove"]


def test_load_stream_frames_every_event_in_order_then_closes(client):
    ids = model_ids(client)
    with client.stream("GET", "/api/llm/load_stream", params={"model": ids["tiny"]}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        messages = read_sse(response)
    events = events_of(messages)
    assert all(m["event"] == "progress" for m in messages)
    assert [int(m["id"]) for m in messages] == [e.seq for e in events]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    stages = [e.stage for e in events]
    assert stages[0] is Stage.CONNECTING and stages[-1] is Stage.COMPLETE
    assert stages.index(Stage.LOADING) < stages.index(Stage.OPTIMIZING)
    # Each frame carries the presenter's view of its event and, at the end, its one notice.
    frames = [json.loads(m["data"]) for m in messages]
    (entry,) = catalog.scan([frames[0]["view"]["path"]], include_known=False)
    for frame, event in zip(frames, events, strict=True):
        assert frame["view"]["seq"] == event.seq
        expected = presenter.card_view(entry, event, title=frame["view"]["title"])
        assert frame["view"]["progress_text"] == expected.progress_text
        assert frame["view"]["detail"] == expected.detail
    assert [f["notice"]["kind"] for f in frames if f["notice"]] == ["success"]
    unload(client, ids["tiny"])


def test_fallback_post_answers_the_outcome(client):
    ids = model_ids(client)
    final = client.post("/api/llm/load", json={"model": ids["tiny"], "n_ctx": 256}).json()
    assert final["stage"] == "complete" and final["pct"] == 100
    failed = client.post("/api/llm/load", json={"model": ids["broken"]}).json()
    assert failed["stage"] == "failed"
    assert failed["error"]["kind"] == "invalid_model"
    unload(client, ids["tiny"])


def test_cancel_ends_the_stream_cancelled(client):
    ids = model_ids(client)
    params = {"model": ids["big"], "use_mmap": "false"}
    with client.stream("GET", "/api/llm/load_stream", params=params) as response:
        messages = iter_sse(response)
        first = next(messages)
        assert client.post("/api/llm/cancel", json={"model": ids["big"]}).json() == {
            "cancelled": True
        }
        rest = list(messages)
    events = events_of([first, *rest])
    assert events[-1].stage is Stage.CANCELLED


def test_reconnect_with_last_event_id_gets_every_missed_event(client):
    ids = model_ids(client)
    params = {"model": ids["big"], "use_mmap": "false"}
    with client.stream("GET", "/api/llm/load_stream", params=params) as response:
        first = events_of(read_sse(response, limit=2))
    # The browser dropped; the load goes on. It reconnects with the last id it saw.
    last = first[-1].seq
    with client.stream(
        "GET",
        "/api/llm/load_stream",
        params={"model": ids["big"]},
        headers={"Last-Event-ID": str(last)},
    ) as response:
        resumed = events_of(read_sse(response))
    seqs = [e.seq for e in first + resumed]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "no event lost, none repeated"
    assert resumed[-1].stage is Stage.COMPLETE, "the drop did not cancel the load"
    unload(client, ids["big"])


def test_fifty_viewers_all_get_every_event(served, client):
    ids = model_ids(client)
    token = served.config.token
    viewers = 50

    async def watch(session: httpx.AsyncClient, ready: asyncio.Event, counter: list) -> list:
        seen = []
        async with session.stream("GET", "/api/llm/events", params={"token": token}) as response:
            kind = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                if kind == "snapshot" and line.startswith("data: "):
                    counter.append(1)
                    if len(counter) == viewers:
                        ready.set()
                if kind == "progress" and line.startswith("data: "):
                    event = ProgressEvent.from_json(line[6:])
                    if event.model == ids["tiny"]:
                        seen.append(event.seq)
                        if event.stage is Stage.COMPLETE:
                            return seen
        return seen

    async def main():
        limits = httpx.Limits(max_connections=viewers + 5)
        async with httpx.AsyncClient(
            base_url=served.base_url, timeout=TIMEOUT, limits=limits
        ) as session:
            ready, counter = asyncio.Event(), []
            tasks = [asyncio.create_task(watch(session, ready, counter)) for _ in range(viewers)]
            await asyncio.wait_for(ready.wait(), 30)
            response = await session.post(
                "/api/llm/load",
                json={"model": ids["tiny"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.json()["stage"] == "complete"
            return await asyncio.wait_for(asyncio.gather(*tasks), 60)

    results = asyncio.run(main())
    expected = [
        e.seq
        for e in served.state.engine.history(ids["tiny"])
        if e.op == "load" and e.seq >= results[0][0]
    ]
    assert all(seen == expected for seen in results)
    unload(client, ids["tiny"])
    # Each viewer that went away took its feed with it: nothing keeps queueing for it.
    deadline = time.monotonic() + 10
    while served.state.hub.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.state.hub.subscriber_count == 0


# -- refusals ----------------------------------------------------------------------------------


def raw_request(server: ServerThread, method: str, path: str, headers=None, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), payload


def test_api_needs_the_right_token(served):
    status, headers, body = raw_request(served, "GET", "/api/llm/models")
    assert headers.get("www-authenticate") == "Bearer"
    assert status == 401 and json.loads(body)["error"]["kind"] == "unauthorized"
    status, _, _ = raw_request(served, "GET", "/api/llm/models", {"Authorization": "Bearer wrong"})
    assert status == 403
    status, _, _ = raw_request(served, "GET", f"/api/llm/status?token={served.config.token}")
    assert status == 200
    status, _, _ = raw_request(served, "GET", "/static/js/llm.js")
    assert status == 200, "static files need no token"


def test_foreign_host_and_origin_are_refused(served):
    token = {"Authorization": f"Bearer {served.config.token}"}
    status, _, body = raw_request(
        served, "GET", "/api/llm/status", {**token, "Host": "evil.example:80"}
    )
    assert status == 421 and json.loads(body)["error"]["kind"] == "host_not_allowed"
    status, _, _ = raw_request(
        served, "GET", "/api/llm/status", {**token, "Origin": "http://evil.example"}
    )
    assert status == 403
    own = f"http://127.0.0.1:{served.port}"
    status, headers, _ = raw_request(served, "GET", "/api/llm/status", {**token, "Origin": own})
    assert status == 200 and headers["access-control-allow-origin"] == own
    assert "*" not in headers["access-control-allow-origin"]
    status, headers, _ = raw_request(served, "OPTIONS", "/api/llm/load", {"Origin": own})
    assert status == 204 and headers["access-control-allow-origin"] == own


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/%252e%252e/etc/passwd",
        "/static/js/llm.js%00.png",
        "/static\\..\\README.md",
        "/api/llm/models/../status",
    ],
)
def test_traversal_attempts_touch_no_file(served, path):
    status, _, body = raw_request(served, "GET", path)
    assert status in (400, 404)
    assert json.loads(body)["error"]["kind"] in ("bad_path", "not_found")


def test_unknown_and_malformed_ids_are_refused(client):
    assert client.get("/api/llm/load_stream", params={"model": "nope-0000"}).status_code == 404
    response = client.get("/api/llm/load_stream", params={"model": "../../etc/passwd"})
    assert response.status_code == 400
    assert client.post("/api/llm/cancel", json={"model": "x" * 500}).status_code == 400
    assert client.post("/api/llm/load", content=b"[1, 2]").status_code == 400
    assert client.post("/api/llm/load", content=b"{nope").status_code == 400
    assert client.delete("/api/llm/models").status_code == 405
    assert client.get("/nothing/here").json()["error"]["kind"] == "not_found"


def test_oversized_bodies_are_refused(served):
    token = {"Authorization": f"Bearer {served.config.token}", "Content-Type": "application/json"}
    body = json.dumps({"model": "a", "pad": "x" * 20_000})
    status, _, payload = raw_request(served, "POST", "/api/llm/load", token, body)
    assert status == 413 and json.loads(payload)["error"]["kind"] == "body_too_large"


def test_load_requests_and_streams_are_rate_limited(library_dir, no_leaked_processes):
    server, engine = start_server(library_dir, load_rate=(2, 60.0), max_streams_per_client=2)
    try:
        headers = {"Authorization": f"Bearer {server.config.token}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=TIMEOUT) as client:
            ids = model_ids(client)
            assert client.post("/api/llm/load", json={"model": ids["tiny"]}).status_code == 200
            assert client.post("/api/llm/load", json={"model": ids["tiny"]}).status_code == 200
            refused = client.post("/api/llm/load", json={"model": ids["tiny"]})
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["kind"] == "rate_limited"
            with (
                client.stream("GET", "/api/llm/events") as one,
                client.stream("GET", "/api/llm/events") as two,
            ):
                assert one.status_code == two.status_code == 200
                third = client.get("/api/llm/events")
                assert third.status_code == 429
                assert third.json()["error"]["kind"] == "too_many_streams"
    finally:
        server.stop()
        engine.shutdown()
