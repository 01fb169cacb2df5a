"""Getting models in a real browser engine (a bare QWebEngineView, console errors fail the test)
against the server and a Hugging Face-compatible hub on loopback: the page searches, lists a
repository with each model's fit read from its remote header, downloads one, shows the finished
transfer with Load and loads it; a file sent with the page's XMLHttpRequest upload becomes a
model; axe-core finds no violation in the section and the list."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.library import ModelLibrary
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from tests.helpers.fake_hub import FakeHub, Throttle
from tests.web.test_page import axe_violations

REPO = "acme/Tiny-GGUF"


@pytest.fixture
def getting_server(tmp_path: Path, monkeypatch, no_leaked_processes):
    files = tmp_path / "files"
    q8 = write_demo_model(files / "Tiny-Q8_0.gguf", spec_for_size(6, seed=3))
    f16 = write_demo_model(files / "Tiny-F16.gguf", spec_for_size(12, seed=4))
    with FakeHub(tmp_path / "hub") as hub:
        hub.add_repo(REPO, {q8.name: q8, f16.name: f16}, downloads=1520, likes=42)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
        models = tmp_path / "models"
        models.mkdir()
        (tmp_path / "cache").mkdir()
        engine = Engine(warm_hosts=0)
        library = ModelLibrary([models, tmp_path / "cache"], include_known=False)
        server = ServerThread(engine, library, config=ServerConfig()).start()
        server.hub = hub
        server.models = models
        yield server
        server.stop()
        engine.shutdown()


def open_page(page_view, server) -> None:
    page_view.open(server.page_url)
    page_view.wait_for("window.llmManager && llmManager.connection === 'live'")


def test_the_page_searches_downloads_and_loads_from_the_hub(page_view, getting_server):
    open_page(page_view, getting_server)
    page_view.run(
        "document.getElementById('hub-q').value = 'acme';"
        "document.getElementById('hub-search').requestSubmit()"
    )
    page_view.wait_for("document.querySelectorAll('#hub-results .hub-hit').length === 1")
    assert page_view.js("location.search") == "?q=acme"
    page_view.run("document.querySelector('#hub-results .hub-open').click()")
    page_view.wait_for("document.querySelectorAll('#hub-repo .remote-model').length === 2")
    # Each model's fit, read from its header on the hub after the listing ("Checking fit…"
    # until then).
    page_view.wait_for(
        "[...document.querySelectorAll('#hub-repo .fit-badge')]"
        ".every(b => !b.hidden && b.dataset.verdict !== 'pending')"
    )
    badges = page_view.js(
        "[...document.querySelectorAll('#hub-repo .fit-badge')].map(b => b.dataset.verdict)"
    )
    assert badges == ["cpu", "cpu"]
    reference = json.dumps(f"{REPO}:Tiny-Q8_0.gguf")
    page_view.run(
        f"document.querySelector(`.remote-model[data-reference=${{JSON.stringify({reference})}}]"
        " button[data-action=download]`).click()"
    )
    key = json.dumps(f"download:{REPO}:Tiny-Q8_0.gguf")
    row = f"llmManager.transfers.row({key})"
    page_view.wait_for(f"!!{row} && {row}.dataset.stage === 'complete'")
    shown = page_view.js(
        f"({{stage: {row}.querySelector('.transfer-stage').textContent,"
        f" value: {row}.querySelector('progress').value,"
        f" buttons: [...{row}.querySelectorAll('.transfer-actions button')]"
        ".map(b => b.textContent),"
        " toasts: llmManager.visibleToasts().map(t => t.type)})"
    )
    assert shown == {
        "stage": "Done",
        "value": 100,
        "buttons": ["Load", "Dismiss"],
        "toasts": ["success"],
    }
    # Load: the new model's card appears and loads.
    page_view.run(f"{row}.querySelector('button[data-action=load]').click()")
    page_view.wait_for(
        "[...document.querySelectorAll('.model-card')].some(c => c.dataset.state === 'loaded')"
    )
    loaded = page_view.js(
        "[...document.querySelectorAll('.model-card')].filter(c => c.dataset.state === 'loaded')"
        ".map(c => c.querySelector('.model-path').textContent)"
    )
    assert [Path(path).name for path in loaded] == ["Tiny-Q8_0.gguf"]
    model = page_view.js("document.querySelector('.model-card[data-state=loaded]').dataset.modelId")
    page_view.run(f"llmManager.unloadModel({json.dumps(model)})")
    page_view.wait_for(f"llmManager.getProgress({json.dumps(model)}).state === 'unloaded'")


def test_a_file_sent_by_the_page_becomes_a_model(page_view, getting_server, tiny_model):
    open_page(page_view, getting_server)
    encoded = base64.b64encode(tiny_model.read_bytes()).decode()
    page_view.run(
        f"window.__sent = null; const bytes = Uint8Array.from(atob('{encoded}'),"
        " c => c.charCodeAt(0));"
        " llmGetModels.uploader.send(new File([bytes], 'sent-by-page.gguf'))"
        ".then(r => { window.__sent = r; })"
    )
    page_view.wait_for("window.__sent !== null")
    sent = page_view.js("window.__sent")
    assert sent["status"] == 201, sent
    assert sent["answer"]["path"].endswith("sent-by-page.gguf")
    row = f"llmManager.transfers.row({json.dumps(sent['key'])})"
    page_view.wait_for(f"!!{row} && {row}.dataset.stage === 'complete'")
    page_view.wait_for(
        "[...document.querySelectorAll('.model-card .model-path')]"
        ".some(p => p.textContent.endsWith('sent-by-page.gguf'))"
    )
    assert (getting_server.models / "sent-by-page.gguf").read_bytes() == tiny_model.read_bytes()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_get_models_section_and_transfers_have_no_axe_violations(
    page_view, getting_server, theme
):
    getting_server.hub.inject("Tiny-F16.gguf", Throttle(500_000))
    page_view.open(f"{getting_server.page_url}&q=acme&repo={REPO}&theme={theme}")
    page_view.wait_for("window.llmManager && llmManager.connection === 'live'")
    page_view.run(
        "document.querySelector('.remote-model:last-child button[data-action=download]').click()"
    )
    page_view.wait_for(
        "!!document.querySelector('.transfer-row[data-stage=downloading] .transfer-question')"
    )
    page_view.run("document.querySelector('.transfer-row .transfer-question').open = true")
    violations = axe_violations(page_view)
    assert violations == [], json.dumps(violations, indent=1)
    key = page_view.js("document.querySelector('.transfer-row').dataset.key")
    page_view.run(f"llmManager.runTransferAction('discard', {json.dumps(key)})")
    page_view.wait_for("document.querySelector('.transfer-row').dataset.stage === 'cancelled'")
