"""The management page in a bare QWebEngineView against the server `llm-desktop serve` runs:
axe-core finds no accessibility violation in the light or the dark look with cards in several
states, the layout keeps a loading card's name readable and the toasts out of the way, and the
dev page drives real loads through llm.js."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import WAIT_MS, model_ids

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def api(server, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.config.token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        return client.request(method, path, **kwargs)


def open_page(page_view, server, theme: str | None = None) -> None:
    query = f"&theme={theme}" if theme else ""
    page_view.open(f"{server.page_url}{query}")
    page_view.wait_for("window.llmManager && llmManager.connection === 'live'")
    # The events stream's snapshot: the manager has every card's view.
    page_view.wait_for(
        "llmManager.store.views.size === document.querySelectorAll('.model-card').length"
    )


def axe_violations(page_view) -> list[dict]:
    if not AXE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing: run make setup (npm ci)")
        pytest.skip("axe-core is not installed (npm ci)")
    page_view.run(AXE.read_text(encoding="utf-8"))
    page_view.run(
        "window.__axe = null; axe.run(document, {resultTypes: ['violations']}).then(r => {"
        " window.__axe = r.violations.map(v => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)})) })"
    )
    page_view.wait_for("window.__axe !== null", timeout=WAIT_MS)
    return page_view.js("window.__axe")


@pytest.fixture
def page_in_states(page_server):
    """tiny loaded, broken failed (with its details), big never loaded."""
    ids = model_ids(page_server)
    for stem, outcome in (("tiny", "complete"), ("broken", "failed")):
        answer = api(page_server, "POST", "/api/llm/load", json={"model": ids[stem]}).json()
        assert answer["stage"] == outcome, answer
    yield page_server, ids
    api(page_server, "POST", "/api/llm/unload", json={"model": ids["tiny"]})
    page_server.state.engine.wait(ids["tiny"], 60.0)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_page_has_no_axe_violations(page_view, page_in_states, theme):
    page_server, ids = page_in_states
    open_page(page_view, page_server, theme)
    assert page_view.js("document.documentElement.dataset.theme") == theme
    states = page_view.js(
        "Object.fromEntries([...document.querySelectorAll('.model-card')]"
        ".map(c => [c.dataset.modelId, c.dataset.state]))"
    )
    assert states == {ids["tiny"]: "loaded", ids["broken"]: "failed", ids["big"]: "unloaded"}
    # Everything a person may see at once: open details, and a toast of each kind.
    page_view.run(
        "document.querySelector('.error-details:not([hidden])').open = true;"
        "for (const kind of ['success', 'error', 'warning', 'info'])"
        " llmManager.showToast('A ' + kind + ' toast', kind,"
        " {title: kind === 'error' ? 'Title' : ''})"
    )
    violations = axe_violations(page_view)
    assert violations == [], json.dumps(violations, indent=1)


def test_favicon_and_scripts_are_served(page_server):
    favicon = api(page_server, "GET", "/favicon.ico")
    assert favicon.status_code == 200
    assert favicon.headers["content-type"].startswith("image/")
    for name in ("main.js", "llm.js", "page.js", "sse.js", "store.js", "transport.js", "views.js"):
        script = api(page_server, "GET", f"/static/js/{name}")
        assert script.status_code == 200, name
        assert script.headers["content-type"].startswith("text/javascript"), name


def rects(page_view, card_id: str) -> dict:
    card = f"document.getElementById({json.dumps(card_id)})"
    return page_view.js(
        "Object.fromEntries(['.model-name', '.model-facts', '.model-spinner', '.progress-bar']"
        f".map(s => {{ const r = {card}.querySelector(s).getBoundingClientRect();"
        " return [s, [r.left, r.top, r.right, r.bottom]]; }))"
    )


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_a_loading_card_keeps_its_name_and_facts_readable(page_view, page_server):
    ids = model_ids(page_server)
    open_page(page_view, page_server)
    # The card as a load shows it: the server's view of a loading model, bound by llm.js.
    page_view.run(
        f"const card = llmManager.getCard({json.dumps(ids['big'])});"
        f"const view = llmManager.store.view({json.dumps(ids['big'])});"
        "llmManager.binder.bind(card, {...view, state: 'loading', busy: true,"
        " busy_message: 'Loading weights', show_progress: true, pct: 40, actions: []})"
    )
    boxes = rects(page_view, f"model-{ids['big']}")
    spinner = boxes[".model-spinner"]
    assert spinner[3] > spinner[1], "the busy line is shown"
    for element in (".model-name", ".model-facts"):
        assert not overlap(spinner, boxes[element]), f"the busy line covers {element}: {boxes}"
    hidden_by = page_view.js(
        f"(() => {{ const name = llmManager.getCard({json.dumps(ids['big'])})"
        ".querySelector('.model-name'); const r = name.getBoundingClientRect();"
        " return document.elementFromPoint(r.left + 4, r.top + r.height / 2) === name; })()"
    )
    assert hidden_by, "something lies over the card's name"


def test_toasts_stay_out_of_the_header_and_the_cards_can_scroll_clear(page_view, page_server):
    open_page(page_view, page_server)
    page_view.run(
        "for (let n = 0; n < 5; n++) llmManager.showToast('Toast number ' + n, 'info',"
        " {key: 'k' + n, timeout_ms: 600000})"
    )
    geometry = page_view.js(
        "(() => { const box = document.getElementById('toast-container').getBoundingClientRect();"
        " const header = document.querySelector('.app-header').getBoundingClientRect();"
        " const first = document.querySelector('.model-card').getBoundingClientRect();"
        " const page = getComputedStyle(document.querySelector('.page'));"
        " return {box: [box.left, box.top, box.right, box.bottom], header: header.bottom,"
        " first: [first.left, first.top, first.right, first.bottom], height: innerHeight,"
        " padding: parseFloat(page.paddingBottom)}; })()"
    )
    box = geometry["box"]
    assert box[1] > geometry["header"], geometry
    assert not overlap(box, geometry["first"]), f"the toasts cover the first card: {geometry}"
    assert abs(box[3] - geometry["height"]) < 40, "the stack sits in the bottom corner"
    assert geometry["padding"] >= box[3] - box[1], "the page keeps room below for the stack"


def test_the_dev_page_drives_real_loads_through_llm_js(page_view, dev_page_server):
    ids = model_ids(dev_page_server)
    page_view.open(
        f"{dev_page_server.base_url}/test_llm_progress.html?token={dev_page_server.config.token}"
    )
    page_view.wait_for("window.llmManager && llmManager.connection === 'live'")
    page_view.wait_for("document.querySelectorAll('#model-grid .model-card').length === 3")
    page_view.run(
        f"document.getElementById('model-select').value = {json.dumps(ids['tiny'])};"
        "document.querySelector('button[data-run=load]').click()"
    )
    tiny = json.dumps(ids["tiny"])
    page_view.wait_for(f"(llmManager.getProgress({tiny}) || {{}}).state === 'loaded'")
    stages = page_view.js(
        f"llmManager.progressLog.filter(e => e.model === {tiny}).map(e => e.stage)"
    )
    assert stages[0] == "connecting" and stages[-1] == "complete", stages
    assert "loading" in stages
    kinds = page_view.js("llmManager.visibleToasts().map(t => t.type)")
    assert kinds == ["success"]
    page_view.run("document.querySelector('button[data-run=unload]').click()")
    page_view.wait_for(f"llmManager.getProgress({tiny}).state === 'unloaded'")
    # Served only in development.
    assert api(dev_page_server, "GET", "/test_llm_progress.html").status_code == 200


def test_the_dev_page_is_not_served_without_dev(page_server):
    assert api(page_server, "GET", "/test_llm_progress.html").status_code == 404
