"""The page with scripts off: server-rendered cards and plain forms, over real loopback HTTP.

A browser that runs no JavaScript sees the models and loads, unloads and removes one; these
tests are that browser (an HTTP client that follows redirects, keeps cookies and submits the
forms it finds in the HTML)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from llm_desktop.core.engine import Engine
from llm_desktop.core.library import ModelLibrary
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from tests.helpers.library import make_library

TIMEOUT = httpx.Timeout(60.0)


class Page(HTMLParser):
    """The cards of a page: per model id, its title, state chip, detail and forms."""

    def __init__(self, html: str):
        super().__init__()
        self.cards: dict[str, dict] = {}
        self.notices: list[str] = []
        self._card: dict | None = None
        self._form: dict | None = None
        self._text_into: tuple[dict, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "article" and "model-card" in classes:
            self._card = {"forms": [], "title": "", "state": "", "detail": ""}
            if attrs["data-model-id"]:  # not the empty <template> card llm.js clones
                self.cards[attrs["data-model-id"]] = self._card
        elif self._card is not None and tag == "form":
            self._form = {"action": attrs["action"], "fields": {}, "label": ""}
            self._card["forms"].append(self._form)
        elif self._form is not None and tag == "input":
            self._form["fields"][attrs["name"]] = attrs.get("value", "")
        elif self._form is not None and tag == "button":
            self._text_into = (self._form, "label")
        elif self._card is not None and tag == "h3":
            self._text_into = (self._card, "title")
        elif self._card is not None and "state-chip" in classes:
            self._text_into = (self._card, "state")
        elif self._card is not None and "progress-detail" in classes:
            self._text_into = (self._card, "detail")
        elif "page-notice" in classes:
            self.notices.append("")
            self._text_into = None

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "article":
            self._card = None
        if tag in ("button", "h3", "span", "p"):
            self._text_into = None

    def handle_data(self, data):
        if self._text_into is not None:
            target, key = self._text_into
            target[key] += data
        elif self.notices and self._card is None:
            self.notices[-1] += data


@pytest.fixture
def browser(tmp_path: Path, tiny_model, big_model):
    library_dir = make_library(tmp_path / "models", tiny_model, big_model)
    engine = Engine(warm_hosts=1)
    library = ModelLibrary([library_dir], include_known=False)
    server = ServerThread(engine, library, config=ServerConfig()).start()
    # A browser: keeps cookies, follows redirects, sends its own origin on form posts.
    with httpx.Client(
        base_url=server.base_url,
        timeout=TIMEOUT,
        follow_redirects=True,
        headers={"Origin": server.base_url},
    ) as client:
        client.server = server
        yield client
    server.stop()
    engine.shutdown()


def submit(browser: httpx.Client, card: dict, label: str) -> Page:
    (form,) = [form for form in card["forms"] if form["label"] == label]
    response = browser.post(form["action"], data=form["fields"])
    assert response.status_code == 200, response.text
    return Page(response.text)


def card_of(page: Page, stem: str) -> tuple[str, dict]:
    (found,) = [(i, c) for i, c in page.cards.items() if c["title"].startswith(stem)]
    return found


def test_without_the_token_the_page_says_how_to_open_it(browser):
    response = browser.get("/")
    assert response.status_code == 401
    assert "access address" in response.text and not Page(response.text).cards


def test_a_person_loads_and_unloads_a_model_with_plain_forms(browser):
    opened = browser.get(f"/?token={browser.server.config.token}")
    assert opened.status_code == 200 and opened.url.query == b"", "the token leaves the address"
    page = Page(opened.text)
    assert len(page.cards) == 3
    model_id, tiny = card_of(page, "llm-desktop demo (tiny")
    assert tiny["state"] == "Not loaded"

    page = submit(browser, tiny, "Load")  # answers when the load has ended
    _, tiny = card_of(page, "llm-desktop demo (tiny")
    assert tiny["state"] == "Loaded"
    assert tiny["detail"].startswith("Ready")
    assert any("is ready" in notice for notice in page.notices), page.notices

    page = submit(browser, tiny, "Unload")
    _, tiny = card_of(page, "llm-desktop demo (tiny")
    assert tiny["state"] == "Not loaded"
    assert [form["label"] for form in tiny["forms"]] == ["Load"]
    assert browser.server.state.engine.state(model_id).stage == "unloaded"


def test_an_unreadable_file_offers_removal_and_removing_it_hides_it(browser):
    page = Page(browser.get(f"/?token={browser.server.config.token}").text)
    model_id, broken = card_of(page, "broken")
    assert broken["state"] == "Unreadable"
    assert [form["label"] for form in broken["forms"]] == ["Remove from library"]
    page = submit(browser, broken, "Remove from library")
    assert model_id not in page.cards and len(page.cards) == 2


def test_a_form_from_another_site_is_refused(browser):
    browser.get(f"/?token={browser.server.config.token}")
    page = Page(browser.get("/").text)
    model_id, _ = card_of(page, "llm-desktop demo (tiny")
    response = browser.post(
        "/actions/load", data={"model": model_id}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert browser.server.state.engine.state(model_id) is None, "nothing was loaded"


def test_a_server_started_after_a_load_shows_the_model_loaded(tmp_path, tiny_model, big_model):
    """The app starts its server on first need: what happened before must be on the page."""
    library_dir = make_library(tmp_path / "models", tiny_model, big_model)
    with Engine(warm_hosts=1) as engine:
        library = ModelLibrary([library_dir], include_known=False)
        (tiny,) = [m for m in library.refresh() if m.entry.path.endswith("tiny.gguf")]
        engine.load(tiny.entry.path, model=tiny.entry.id)
        assert engine.wait(tiny.entry.id, 60).stage == "complete"
        server = ServerThread(engine, library, config=ServerConfig()).start()
        try:
            with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
                page = Page(
                    client.get(f"/?token={server.config.token}", follow_redirects=True).text
                )
        finally:
            server.stop()
    assert page.cards[tiny.entry.id]["state"] == "Loaded"
