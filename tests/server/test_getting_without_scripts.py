"""Getting models with scripts off, over real loopback HTTP: a browser that runs no JavaScript
searches the hub, lists a repository's models with their fit, downloads one, follows it in the
Transfers list, loads the new model, pauses and deletes a download through the keep-or-delete
question, and uploads a file with the page's form. These tests are that browser: they submit
the forms they find in the HTML."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from llm_desktop.core.engine import Engine
from llm_desktop.core.library import ModelLibrary
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from tests.helpers.fake_hub import Throttle
from tests.server.conftest import REPO
from tests.server.test_getting import files_in

WAIT_S = 60.0


class Page(HTMLParser):
    """What the Get models section and the Transfers list show, and their forms."""

    def __init__(self, html: str):
        super().__init__()
        self.hits: dict[str, str] = {}  # repo id → href of its "Show models"
        self.models: dict[str, dict] = {}  # reference → {fit, form}
        self.rows: dict[str, dict] = {}  # transfer key → {stage, forms, question}
        self.cards: dict[str, str] = {}  # model id → state
        self.upload_form: dict | None = None
        self._row: dict | None = None
        self._model: dict | None = None
        self._form: dict | None = None
        self._text: tuple[dict, str] | None = None
        self._in_question = False
        self._in_template = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "template":
            self._in_template += 1
        if self._in_template:
            return
        if tag == "article" and "model-card" in classes:
            self.cards[attrs["data-model-id"]] = attrs["data-state"]
        elif tag == "a" and "hub-open" in classes:
            self.hits[attrs["data-repo-id"]] = attrs["href"]
        elif tag == "li" and "remote-model" in classes:
            self._model = {"fit": "", "forms": []}
            self.models[attrs["data-reference"]] = self._model
        elif tag == "li" and "transfer-row" in classes:
            self._row = {"stage": attrs["data-stage"], "forms": [], "question": []}
            self.rows[attrs["data-key"]] = self._row
        elif tag == "details" and "transfer-question" in classes:
            self._in_question = True
        elif tag == "span" and "fit-badge" in classes and self._model is not None:
            self._text = (self._model, "fit")
        elif tag == "form":
            self._form = {"action": attrs["action"], "fields": {}, "label": ""}
            if attrs.get("id") == "upload-form":
                self.upload_form = self._form
            elif self._row is not None:
                (self._row["question"] if self._in_question else self._row["forms"]).append(
                    self._form
                )
            elif self._model is not None:
                self._model["forms"].append(self._form)
        elif tag == "input" and self._form is not None and attrs.get("type") == "hidden":
            self._form["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "button" and self._form is not None:
            self._text = (self._form, "label")

    def handle_endtag(self, tag):
        if tag == "template":
            self._in_template -= 1
        elif tag == "form":
            self._form = None
        elif tag == "li":
            self._row = self._model = None
        elif tag == "details":
            self._in_question = False
        if tag in ("button", "span"):
            self._text = None

    def handle_data(self, data):
        if self._text is not None and not self._in_template:
            target, key = self._text
            target[key] += data


@pytest.fixture
def browser(tmp_path, hub, monkeypatch, no_leaked_processes):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    models, cache = tmp_path / "models", tmp_path / "cache"
    models.mkdir()
    cache.mkdir()
    engine = Engine(warm_hosts=0)
    library = ModelLibrary([models, cache], include_known=False)
    server = ServerThread(engine, library, config=ServerConfig()).start()
    with httpx.Client(
        base_url=server.base_url, follow_redirects=True, timeout=httpx.Timeout(60.0)
    ) as client:
        assert client.get(server.page_url).status_code == 200  # trades the token for a cookie
        client.models = models
        client.engine = engine
        yield client
    server.stop()
    engine.shutdown()


def page(browser, path: str = "/") -> Page:
    response = browser.get(path)
    assert response.status_code == 200
    return Page(response.text)


def submit(browser, form: dict) -> Page:
    response = browser.post(form["action"], data=form["fields"])
    assert response.status_code == 200, response.text
    return Page(response.text)


def until(browser, key: str, *stages: str) -> Page:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        shown = page(browser)
        if key in shown.rows and shown.rows[key]["stage"] in stages:
            return shown
        time.sleep(0.1)
    raise AssertionError(f"{key} never reached {stages}")


def test_search_list_download_and_load_without_scripts(browser):
    found = page(browser, "/?q=acme")
    assert REPO in found.hits
    listed = page(browser, found.hits[REPO])
    reference = f"{REPO}:Tiny-Q8_0.gguf"
    assert set(listed.models) >= {reference, f"{REPO}:Tiny-F16.gguf"}
    model = listed.models[reference]
    assert model["fit"].startswith("CPU only"), "the fit is read for the page without scripts"
    (download,) = model["forms"]
    assert (download["action"], download["label"]) == ("/actions/download", "Download")
    shown = submit(browser, download)
    key = f"download:{reference}"
    assert key in shown.rows
    done = until(browser, key, "complete")
    labels = [form["label"] for form in done.rows[key]["forms"]]
    assert labels == ["Load", "Dismiss"]
    after = submit(browser, done.rows[key]["forms"][0])
    assert "loaded" in after.cards.values(), "the new model loaded"
    (model_id,) = [m for m, state in after.cards.items() if state == "loaded"]
    browser.post("/actions/unload", data={"model": model_id})
    browser.engine.wait(model_id, 30.0)


def test_pause_then_delete_through_the_question_without_scripts(browser, hub):
    hub.inject("Tiny-F16.gguf", Throttle(1_000_000))
    listed = page(browser, f"/?repo={REPO}")
    (download,) = listed.models[f"{REPO}:Tiny-F16.gguf"]["forms"]
    submit(browser, download)
    key = f"download:{REPO}:Tiny-F16.gguf"
    moving = until(browser, key, "downloading")
    pause = next(form for form in moving.rows[key]["forms"] if form["label"] == "Pause")
    paused = submit(browser, pause)
    assert paused.rows[key]["stage"] == "paused"
    keep, delete = paused.rows[key]["question"]
    assert keep["label"].startswith("Keep ") and delete["label"] == "Delete"
    assert delete["action"] == "/actions/transfer/discard"
    after = submit(browser, delete)
    assert after.rows[key]["stage"] == "cancelled"
    cache = browser.models.parent / "cache"
    assert not [p for p in cache.rglob("*") if p.name.endswith(".incomplete")]


def test_the_upload_form_adds_a_model_and_refuses_a_file_that_is_not_one(browser, upload_model):
    form = page(browser).upload_form
    assert form["action"] == "/actions/upload"
    data = upload_model.read_bytes()
    response = browser.post(form["action"], files={"file": ("sent.gguf", data)})
    assert response.status_code == 200
    shown = Page(response.text)
    (row,) = [row for key, row in shown.rows.items() if key.startswith("upload:")]
    assert row["stage"] == "complete"
    assert files_in(browser.models) == ["sent.gguf"]
    assert (browser.models / "sent.gguf").read_bytes() == data
    refused = browser.post(form["action"], files={"file": ("notes.gguf", b"plain text\n" * 999)})
    rows = Page(refused.text).rows
    assert sorted(r["stage"] for k, r in rows.items() if k.startswith("upload:")) == [
        "complete",
        "failed",
    ]
    assert files_in(browser.models) == ["sent.gguf"]


def test_the_page_without_a_token_offers_no_getting_models(tmp_path, no_leaked_processes):
    engine = Engine(warm_hosts=0)
    server = ServerThread(engine, ModelLibrary([tmp_path], include_known=False)).start()
    try:
        response = httpx.get(f"{server.base_url}/?q=acme")
        assert response.status_code == 401
        assert "hub-search" not in response.text and "transfer-list" not in response.text
        refused = httpx.post(f"{server.base_url}/actions/download", data={"reference": REPO})
        assert refused.status_code == 401
        upload = httpx.post(f"{server.base_url}/api/uploads?name=x.gguf", content=b"GGUF")
        assert upload.status_code == 401
        assert files_in(tmp_path) == []
    finally:
        server.stop()
        engine.shutdown()


def test_files_in_sees_hidden_partials(tmp_path):
    (tmp_path / ".abc.uploading").write_bytes(b"x")
    assert files_in(tmp_path) == [".abc.uploading"], "the helper the upload tests trust"
    assert files_in(Path(tmp_path / "missing")) == []
