"""Reliability of the server: reconnecting viewers, many loads and viewers at once, API fuzzing.

Marked `slow`; CI still runs them.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.events import ProgressEvent, Stage
from tests.server.test_server import start_server

pytestmark = pytest.mark.slow
TIMEOUT = httpx.Timeout(120.0)


@pytest.fixture(scope="module")
def many_models(tmp_path_factory, big_model) -> Path:
    folder = tmp_path_factory.mktemp("many")
    for index in range(10):
        write_demo_model(folder / f"m{index}.gguf", DemoSpec(size_mb=6, seed=100 + index))
    shutil.copyfile(big_model, folder / "big.gguf")
    return folder


@pytest.fixture(scope="module")
def served(many_models):
    server, engine = start_server(many_models)
    yield server
    server.stop()
    engine.shutdown()


async def _models(session, token) -> dict[str, str]:
    response = await session.get("/api/llm/models", headers={"Authorization": f"Bearer {token}"})
    return {Path(m["path"]).stem: m["id"] for m in response.json()["models"]}


def test_viewers_that_drop_and_resume_lose_no_event(served):
    token = served.config.token
    rng = random.Random(3)
    viewers, loads = 20, 3

    async def viewer(session, done: asyncio.Event, numbers: list[int]) -> None:
        last = None
        while not done.is_set():
            headers = {"Last-Event-ID": str(last)} if last is not None else {}
            budget = rng.randint(3, 25)  # events before this viewer "drops"
            async with session.stream(
                "GET", "/api/llm/events", params={"token": token}, headers=headers
            ) as response:
                message: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line:
                        field, _, value = line.partition(": ")
                        message[field] = value
                        continue
                    # A blank line ends a message: its fields come in any order.
                    if message.get("event") == "progress":
                        last = int(message["id"])
                        numbers.append(last)
                        budget -= 1
                    message = {}
                    if budget == 0 or done.is_set():
                        break
            await asyncio.sleep(rng.uniform(0, 0.05))

    async def main():
        limits = httpx.Limits(max_connections=viewers + 10)
        async with httpx.AsyncClient(
            base_url=served.base_url, timeout=TIMEOUT, limits=limits
        ) as session:
            ids = await _models(session, token)
            done = asyncio.Event()
            seen = [[] for _ in range(viewers)]
            tasks = [asyncio.create_task(viewer(session, done, seen[i])) for i in range(viewers)]
            await asyncio.sleep(0.5)
            first = served.state.engine.bus.last_seq
            auth = {"Authorization": f"Bearer {token}"}
            for _ in range(loads):
                await session.post(
                    "/api/llm/load", json={"model": ids["big"], "use_mmap": False}, headers=auth
                )
                await session.post("/api/llm/unload", json={"model": ids["big"]}, headers=auth)
                await asyncio.sleep(0.3)
            last = served.state.engine.bus.last_seq
            while any((max(s) if s else 0) < last for s in seen):
                await asyncio.sleep(0.05)
            done.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return first, last, seen

    first, last, seen = asyncio.run(main())
    expected = set(range(first + 1, last + 1))
    for numbers in seen:
        got = {n for n in numbers if n > first}
        assert got >= expected, f"lost {sorted(expected - got)[:10]}"
        assert len(numbers) == len(set(numbers)), "an event was delivered twice"


def test_ten_loads_at_once_with_a_hundred_viewers(served):
    token = served.config.token
    viewers = 100

    async def viewer(session, ready, counter, wanted) -> dict[str, list[int]]:
        seen: dict[str, list[int]] = {}
        completed = set()
        async with session.stream("GET", "/api/llm/events", params={"token": token}) as response:
            kind = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "snapshot":
                    counter.append(1)
                    if len(counter) == viewers:
                        ready.set()
                elif line.startswith("data: ") and kind == "progress":
                    event = ProgressEvent.from_json(line[6:])
                    seen.setdefault(event.model, []).append(event.seq)
                    if event.stage is Stage.COMPLETE:
                        completed.add(event.model)
                        if completed >= wanted:
                            return seen
        return seen

    async def main():
        limits = httpx.Limits(max_connections=viewers + 20)
        async with httpx.AsyncClient(
            base_url=served.base_url, timeout=TIMEOUT, limits=limits
        ) as session:
            ids = await _models(session, token)
            wanted = {ids[f"m{i}"] for i in range(10)}
            ready, counter = asyncio.Event(), []
            tasks = [
                asyncio.create_task(viewer(session, ready, counter, wanted)) for _ in range(viewers)
            ]
            await asyncio.wait_for(ready.wait(), 60)
            auth = {"Authorization": f"Bearer {token}"}
            outcomes = await asyncio.gather(
                *(session.post("/api/llm/load", json={"model": m}, headers=auth) for m in wanted)
            )
            results = await asyncio.wait_for(asyncio.gather(*tasks), 120)
            for model in wanted:
                await session.post("/api/llm/unload", json={"model": model}, headers=auth)
            return wanted, [o.json() for o in outcomes], results

    wanted, outcomes, results = asyncio.run(main())
    assert all(outcome["stage"] == "complete" for outcome in outcomes), outcomes
    engine = served.state.engine
    for model in wanted:
        history = [e.seq for e in engine.history(model) if e.op == "load"]
        bad = [
            (i, sorted(set(history) - set(seen[model])))
            for i, seen in enumerate(results)
            if seen[model] != history
        ]
        assert not bad, (model, len(bad), bad[:5], history[:4])


# -- API fuzzing -------------------------------------------------------------------------------

OPENED: list[str] = []
_AUDITING = [False]


def _audit(event: str, args) -> None:
    if _AUDITING[0] and event == "open" and isinstance(args[0], str | bytes):
        OPENED.append(str(args[0]))


sys.addaudithook(_audit)

SECRET_NAME = "secret-outside-library.gguf"
paths = st.one_of(
    st.sampled_from(
        [
            "/api/llm/models",
            "/api/llm/status",
            "/api/llm/load",
            "/api/llm/load_stream",
            "/api/llm/cancel",
            "/api/llm/unload",
            "/api/llm/events",
            "/",
            "/static/js/llm.js",
            f"/static/../{SECRET_NAME}",
            f"/static/%2e%2e/%2e%2e/{SECRET_NAME}",
            "/static/js/llm.js%00",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40).map(
        lambda text: "/" + text
    ),
)
model_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from([f"../{SECRET_NAME}", "/etc/passwd", "..", "a" * 300, "tiny-0", ""]),
    st.integers(),
    st.none(),
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]),
    path=paths,
    model=model_values,
    with_token=st.booleans(),
    extra=st.dictionaries(
        st.sampled_from(["n_ctx", "gpu_layers", "use_mmap", "x"]),
        st.one_of(st.integers(), st.text(max_size=8), st.booleans()),
    ),
)
def test_api_fuzzing_never_errors_or_touches_files_outside(
    served, many_models, method, path, model, with_token, extra
):
    secret = many_models.parent / SECRET_NAME
    secret.write_bytes(b"GGUF secret")
    headers = {"Authorization": f"Bearer {served.config.token}"} if with_token else {}
    body = {"model": model, **extra}
    OPENED.clear()
    _AUDITING[0] = True
    try:
        with httpx.Client(base_url=served.base_url, timeout=TIMEOUT) as client:
            request = client.build_request(
                method,
                served.base_url + path,
                headers=headers,
                params={"model": str(model)} if method in ("GET", "HEAD") else None,
                json=body if method in ("POST", "PUT") else None,
            )
            if "load_stream" in path or "events" in path:
                response = client.send(request, stream=True)
                status = response.status_code
                response.close()  # a stream that opened: what matters is how it answered
            else:
                status = client.send(request).status_code
    except httpx.InvalidURL:
        return  # the client itself refuses to send such a URL
    finally:
        _AUDITING[0] = False
    assert status < 500, (method, path, model, status)
    assert not [p for p in OPENED if SECRET_NAME in p], "a file outside the library was opened"
    assert "/etc/passwd" not in OPENED, "a path from the request reached the filesystem"
