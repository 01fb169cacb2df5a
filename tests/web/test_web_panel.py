"""The llm.js page in a real QWebEngineView, against the in-app server and real loads.

The page is the server's HTML (page.py) upgraded by the ES modules under resources/web/static/js
(main.js creates window.llmManager). JavaScript console errors fail these tests. Parity: one
load, seen by the Qt card and by the page, must be the same sequence of (stage, pct).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ModelState
from llm_desktop.ui.main_window import MainWindow
from tests.helpers.library import make_library

WAIT_MS = 60_000


@pytest.fixture
def library(tmp_path: Path, tiny_model: Path, big_model: Path) -> Path:
    return make_library(tmp_path / "models", tiny_model, big_model)


@pytest.fixture
def window(qtbot, library, tmp_path, no_leaked_processes):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        Engine(warm_hosts=1), settings=settings, models_dir=library, include_known=False
    )
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitUntil(lambda: len(window.cards) == 3, timeout=WAIT_MS)
    window.console_errors = []
    window.show_web_panel()
    panel = window.web_panel
    panel.page.console_message.connect(
        lambda level, message, where: (
            level >= logging.ERROR and window.console_errors.append(f"{message} ({where})")
        )
    )
    qtbot.waitUntil(
        lambda: js(qtbot, window, "document.querySelectorAll('.model-card').length") == 3,
        timeout=WAIT_MS,
    )
    # The cards are the server's HTML; main.js (a module: it runs after parsing) then upgrades
    # them and follows every model's events.
    qtbot.waitUntil(
        lambda: js(qtbot, window, "window.llmManager ? llmManager.connection : null") == "live",
        timeout=WAIT_MS,
    )
    yield window
    assert not window.console_errors, window.console_errors
    window.close()


def js(qtbot, window: MainWindow, script: str):
    """Evaluate `script` in the page and return its (JSON-able) value."""
    with qtbot.waitCallback(timeout=WAIT_MS) as callback:
        window.web_panel.page.runJavaScript(f"JSON.stringify(({script}))", 0, callback)
    raw = callback.args[0]
    return json.loads(raw) if raw not in (None, "") else None


def card_id(window: MainWindow, stem: str) -> str:
    (model_id,) = [i for i, c in window.cards.items() if Path(c.view.path).stem == stem]
    return model_id


def page_progress(qtbot, window, model_id):
    return js(qtbot, window, f"llmManager.getProgress({json.dumps(model_id)})")


def toasts(qtbot, window):
    return js(qtbot, window, "llmManager.visibleToasts().map(t => [t.type, t.message])")


def card_state(qtbot, window, model_id):
    """What the page's card shows: its state, the visible buttons and whether its error
    details are offered."""
    card = f"document.getElementById({json.dumps('model-' + model_id)})"
    return js(
        qtbot,
        window,
        f"{{state: {card}.dataset.state,"
        f" actions: [...{card}.querySelectorAll('.model-actions button')]"
        ".map(b => b.dataset.action),"
        f" details: !{card}.querySelector('.error-details').hidden,"
        f" summary: {card}.querySelector('.error-details summary').textContent}}",
    )


def test_page_loads_a_model_through_llm_js(qtbot, window):
    model = card_id(window, "tiny")
    js(qtbot, window, f"void llmManager.loadModelWithSSE({json.dumps(model)})")
    qtbot.waitUntil(
        lambda: (page_progress(qtbot, window, model) or {}).get("pct") == 100, timeout=WAIT_MS
    )
    progress = page_progress(qtbot, window, model)
    assert progress["state"] == "loaded"
    assert progress["stage"] == "complete"
    qtbot.waitUntil(lambda: any(kind == "success" for kind, _ in toasts(qtbot, window)))
    # Exactly one success toast, though the load stream and the events stream both carried it.
    assert [kind for kind, _ in toasts(qtbot, window)] == ["success"]
    assert card_state(qtbot, window, model)["actions"] == ["unload"]
    # The same engine event moved the Qt card.
    qtbot.waitUntil(lambda: window.cards[model].view.state is ModelState.LOADED)
    stats = js(qtbot, window, "llmManager.stats")
    assert stats["fallbacks"] == 0


def test_fallback_without_sse_still_loads(qtbot, window):
    model = card_id(window, "tiny")
    js(qtbot, window, "llmManager.setSseEnabled(false)")
    js(qtbot, window, f"void llmManager.loadModelWithSSE({json.dumps(model)})")
    qtbot.waitUntil(
        lambda: (page_progress(qtbot, window, model) or {}).get("state") == "loaded",
        timeout=WAIT_MS,
    )
    assert js(qtbot, window, "llmManager.stats")["fallbacks"] >= 1


def test_corrupt_file_shows_one_error_notice_and_what_helps(qtbot, window):
    model = card_id(window, "broken")
    js(qtbot, window, f"llmManager.loadModelWithSSE({json.dumps(model)}).catch(() => null)")
    qtbot.waitUntil(
        lambda: (page_progress(qtbot, window, model) or {}).get("state") == "failed",
        timeout=WAIT_MS,
    )
    qtbot.wait(500)  # a second copy of the notice (the events stream) would show by now
    errors = [message for kind, message in toasts(qtbot, window) if kind == "error"]
    assert len(errors) == 1, errors
    assert "Not a valid GGUF model" in errors[0]
    # Trying the same file again cannot help: the card offers its details and removal.
    shown = card_state(qtbot, window, model)
    assert shown["state"] == "failed"
    assert shown["actions"] == ["remove"]
    assert shown["details"] and shown["summary"] == "Show details"


def test_qt_card_and_page_see_the_same_load(qtbot, window):
    """Parity: the (stage, pct) sequence of one load, on the Qt card and on the page."""
    model = card_id(window, "big")
    card = window.cards[model]
    qt_seen = []
    window.bridge.event_received.connect(
        lambda event: event.model == model and qt_seen.append((str(event.stage), event.pct))
    )
    js(qtbot, window, "llmManager.progressLog.length = 0")
    # Started from the Qt side; the page follows through /api/llm/events.
    qtbot.mouseClick(card.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: card.view.state is ModelState.LOADED, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: (page_progress(qtbot, window, model) or {}).get("state") == "loaded",
        timeout=WAIT_MS,
    )
    page_log = js(
        qtbot,
        window,
        f"llmManager.progressLog.filter(e => e.model === {json.dumps(model)})"
        ".map(e => [e.stage, e.pct])",
    )
    assert [tuple(item) for item in page_log] == qt_seen
    assert qt_seen[-1] == ("complete", 100.0)
