"""Fixtures for the page tests: the server (as `llm-desktop serve` runs it) over generated models,
and a bare QWebEngineView whose JavaScript console errors fail the test."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QUrl

from llm_desktop.core.engine import Engine
from llm_desktop.core.library import ModelLibrary
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from llm_desktop.ui.web_panel import ConsoleLoggingPage
from tests.helpers.library import make_library

WAIT_MS = 60_000


@pytest.fixture
def page_library(tmp_path: Path, tiny_model: Path, big_model: Path) -> Path:
    return make_library(tmp_path / "models", tiny_model, big_model)


def start_server(library_dir: Path, **config) -> tuple[ServerThread, Engine]:
    engine = Engine(warm_hosts=1)
    library = ModelLibrary([library_dir], include_known=False)
    return ServerThread(engine, library, config=ServerConfig(**config)).start(), engine


@pytest.fixture
def page_server(page_library, no_leaked_processes):
    server, engine = start_server(page_library)
    yield server
    server.stop()
    engine.shutdown()


@pytest.fixture
def dev_page_server(page_library, no_leaked_processes):
    server, engine = start_server(page_library, dev=True)
    yield server
    server.stop()
    engine.shutdown()


class PageView:
    """A QWebEngineView on one page, with a way to evaluate JavaScript and wait."""

    def __init__(self, qtbot):
        from PySide6.QtWebEngineWidgets import QWebEngineView

        self.qtbot = qtbot
        self.view = QWebEngineView()
        self.page = ConsoleLoggingPage(self.view)
        self.view.setPage(self.page)
        self.view.resize(1280, 900)
        self.console_errors: list[str] = []
        self.page.console_message.connect(
            lambda level, message, where: (
                level >= logging.ERROR and self.console_errors.append(f"{message} ({where})")
            )
        )
        qtbot.addWidget(self.view)
        self.view.show()

    def open(self, url: str) -> None:
        with self.qtbot.waitSignal(self.view.loadFinished, timeout=WAIT_MS) as blocker:
            self.view.setUrl(QUrl(url))
        assert blocker.args == [True], f"{url} did not load"

    def js(self, script: str):
        """Evaluate `script` in the page and return its (JSON-able) value."""
        with self.qtbot.waitCallback(timeout=WAIT_MS) as callback:
            self.page.runJavaScript(f"JSON.stringify(({script}))", 0, callback)
        raw = callback.args[0]
        return json.loads(raw) if raw not in (None, "") else None

    def run(self, script: str) -> None:
        """Run statements (no value)."""
        with self.qtbot.waitCallback(timeout=WAIT_MS) as callback:
            self.page.runJavaScript(f"{script};\nnull", 0, callback)

    def wait_for(self, script: str, timeout: int = WAIT_MS):
        """Wait until `script` is truthy in the page; returns its value."""
        seen = []

        def truthy() -> bool:
            seen.append(self.js(script))
            return bool(seen[-1])

        self.qtbot.waitUntil(truthy, timeout=timeout)
        return seen[-1]

    def close(self) -> None:
        self.page.deleteLater()
        self.view.close()


@pytest.fixture
def page_view(qtbot):
    view = PageView(qtbot)
    yield view
    errors = list(view.console_errors)
    view.close()
    assert not errors, errors


def model_ids(server: ServerThread) -> dict[str, str]:
    """Model ids by file stem, as GET /api/llm/models lists them."""
    headers = {"Authorization": f"Bearer {server.config.token}"}
    models = httpx.get(f"{server.base_url}/api/llm/models", headers=headers, timeout=60).json()
    return {Path(model["path"]).stem: model["id"] for model in models["models"]}
