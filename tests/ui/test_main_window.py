"""The desktop window driven like a person would, with real engine loads of generated models."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QPlainTextEdit,
    QProgressBar,
    QWidget,
)

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ModelState, Stage
from llm_desktop.ui.main_window import MainWindow
from llm_desktop.core.options import LoadOptions
from llm_desktop.ui.model_card import ModelCard
from tests.helpers.library import make_library

WAIT_MS = 60_000


@pytest.fixture
def library(tmp_path: Path, tiny_model: Path, big_model: Path) -> Path:
    return make_library(tmp_path / "models", tiny_model, big_model)


def make_window(qtbot, folder: Path, tmp_path: Path) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    engine = Engine(warm_hosts=1)
    window = MainWindow(engine, settings=settings, models_dir=folder, include_known=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, library, tmp_path, no_leaked_processes):
    window = make_window(qtbot, library, tmp_path)
    qtbot.waitUntil(lambda: len(window.cards) == 3, timeout=WAIT_MS)
    yield window
    window.close()
    assert not window.jobs.running


def card_named(window: MainWindow, stem: str) -> ModelCard:
    (card,) = [c for c in window.cards.values() if Path(c.view.path).stem == stem]
    return card


def record(window: MainWindow, card: ModelCard) -> list:
    """(event, bar value, spinner shown) for every event this card renders."""
    seen = []

    def note(event):
        if event.model == card.model_id:
            seen.append((event, card.progress.value(), card.spinner.is_spinning()))

    window.bridge.event_received.connect(note)
    return seen


def wait_state(qtbot, card: ModelCard, state: ModelState) -> None:
    qtbot.waitUntil(lambda: card.view.state is state, timeout=WAIT_MS)


def test_library_lists_cards_with_facts_and_fit(window):
    tiny = card_named(window, "tiny")
    assert "llama" in tiny.facts.text() and "F32" in tiny.facts.text()
    assert tiny.fit_badge.text() == "CPU only"
    assert "RAM" in tiny.fit_badge.toolTip()
    broken = card_named(window, "broken")
    assert broken.facts.text().startswith("Unreadable:")


def test_load_shows_progress_spinner_and_a_success_toast(qtbot, window):
    card = card_named(window, "big")
    window.set_model_options(card.model_id, LoadOptions(use_mmap=False))
    seen = record(window, card)
    qtbot.mouseClick(card.load_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, card, ModelState.LOADED)

    stages = [event.stage for event, _, _ in seen]
    assert stages[0] is Stage.CONNECTING and stages[-1] is Stage.COMPLETE
    assert Stage.LOADING in stages
    assert all(spinning for event, _, spinning in seen if event.stage is not Stage.COMPLETE)
    assert not card.spinner.is_spinning()
    values = [value for event, value, _ in seen if event.stage is Stage.LOADING]
    assert values == sorted(values)
    assert card.progress.value() == 100 and card.progress.maximum() == 100
    assert card.unload_button.isVisible() and not card.load_button.isEnabled()
    texts = [toast.accessibleName() for toast in window.toasts.visible_toasts()]
    assert any("ready" in text for text in texts), texts

    qtbot.mouseClick(card.unload_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, card, ModelState.UNLOADED)
    assert card.load_button.isEnabled()


def test_unreadable_file_offers_details_and_removal_not_load(qtbot, window):
    card = card_named(window, "broken")
    assert card.view.state is ModelState.UNREADABLE
    assert not card.load_button.isVisible() and not card.retry_button.isVisible()
    assert card.details_button.isVisible() and card.remove_button.isVisible()
    qtbot.mouseClick(card.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: card.model_id not in window.cards, timeout=WAIT_MS)
    assert (window.models_dir / "broken.gguf").exists(), "removing hides; the file stays"
    window.refresh_library()
    qtbot.waitSignal(window.library_loaded, timeout=WAIT_MS)
    assert card.model_id not in window.cards


def test_a_file_llama_cannot_load_gives_one_error_and_no_retry(qtbot, window, tiny_model):
    raw = tiny_model.read_bytes()
    (window.models_dir / "cut.gguf").write_bytes(raw[: len(raw) - 4096])
    window.refresh_library()
    qtbot.waitUntil(lambda: len(window.cards) == 4, timeout=WAIT_MS)
    card = card_named(window, "cut")
    assert card.load_button.isVisible()
    qtbot.mouseClick(card.load_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, card, ModelState.FAILED)
    assert "Not a valid GGUF model" in card.status.text()
    assert not card.retry_button.isVisible(), "a retry cannot mend a damaged file"
    assert card.details_button.isVisible() and card.remove_button.isVisible()
    errors = [t for t in window.toasts.visible_toasts() if "Error" in t.accessibleName()]
    assert len(errors) == 1 and "Not a valid GGUF model" in errors[0].accessibleName()
    assert window.isVisible(), "the app goes on"


def test_cancel_mid_load_returns_the_card_to_loadable(qtbot, window):
    card = card_named(window, "big")
    window.set_model_options(card.model_id, LoadOptions(use_mmap=False))

    def cancel_on_first_step(event):
        if event.model == card.model_id and event.stage is Stage.CONNECTING:
            qtbot.mouseClick(card.cancel_button, Qt.MouseButton.LeftButton)

    window.bridge.event_received.connect(cancel_on_first_step)
    qtbot.mouseClick(card.load_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, card, ModelState.CANCELLED)
    assert card.load_button.isEnabled() and not card.cancel_button.isVisible()
    assert not card.spinner.is_spinning()


def test_two_cards_load_at_once(qtbot, window):
    big, tiny = card_named(window, "big"), card_named(window, "tiny")
    big_seen, tiny_seen = record(window, big), record(window, tiny)
    qtbot.mouseClick(big.load_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(tiny.load_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, big, ModelState.LOADED)
    wait_state(qtbot, tiny, ModelState.LOADED)
    assert {e.model for e, _, _ in big_seen} == {big.model_id}
    assert {e.model for e, _, _ in tiny_seen} == {tiny.model_id}
    picker = window.try_panel.model_picker
    assert {picker.itemData(i) for i in range(picker.count())} == {big.model_id, tiny.model_id}


def test_keyboard_only_load_and_cancel(qtbot, window):
    card = card_named(window, "tiny")
    card.setFocus()
    qtbot.waitUntil(card.hasFocus)
    qtbot.keyClick(card, Qt.Key.Key_Return)
    wait_state(qtbot, card, ModelState.LOADED)
    qtbot.waitUntil(card.hasFocus, timeout=5000)  # focus comes back to the card

    big = card_named(window, "big")
    window.set_model_options(big.model_id, LoadOptions(use_mmap=False))
    big.setFocus()

    def escape_on_first_step(event):
        if event.model == big.model_id and event.stage is Stage.CONNECTING:
            qtbot.keyClick(big, Qt.Key.Key_Escape)

    window.bridge.event_received.connect(escape_on_first_step)
    qtbot.keyClick(big, Qt.Key.Key_Space)
    wait_state(qtbot, big, ModelState.CANCELLED)


def test_every_interactive_widget_has_an_accessible_name(window):
    kinds = (QAbstractButton, QAbstractSpinBox, QCheckBox, QComboBox, QPlainTextEdit, QProgressBar)
    unnamed = []
    for widget in window.findChildren(QWidget):
        if widget.objectName().startswith("qt_"):
            continue  # Qt's own internals (the menu bar's overflow button)
        if not widget.isVisibleTo(window):
            continue  # a card's buttons for actions its state does not offer: unreachable
        if isinstance(widget, kinds) and not widget.accessibleName():
            if isinstance(widget, QAbstractButton) and widget.text():
                continue  # a button's text is its accessible name
            unnamed.append(f"{type(widget).__name__} {widget.objectName()}")
    assert not unnamed, unnamed


def test_try_it_streams_a_reply(qtbot, window):
    card = card_named(window, "tiny")
    qtbot.mouseClick(card.load_button, Qt.MouseButton.LeftButton)
    wait_state(qtbot, card, ModelState.LOADED)
    qtbot.mouseClick(card.try_button, Qt.MouseButton.LeftButton)
    panel = window.try_panel
    panel.prompt.setPlainText("Hello")
    panel.max_tokens.setValue(6)
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.generating, timeout=WAIT_MS)
    assert panel.pieces_received >= 1  # random weights: the text itself is gibberish
    assert panel.send_button.isEnabled()


def test_first_run_offers_a_demo_model(qtbot, tmp_path, no_leaked_processes):
    empty = tmp_path / "empty-models"
    window = make_window(qtbot, empty, tmp_path)
    qtbot.waitUntil(lambda: window.empty_state.isVisible(), timeout=WAIT_MS)
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.cards) == 1, timeout=WAIT_MS)
    (card,) = window.cards.values()
    assert card.view.title == "llm-desktop demo"
    assert not window.empty_state.isVisible()
    window.close()


def test_import_copies_with_progress_and_can_be_cancelled(qtbot, window, tmp_path, big_model):
    job = window.import_model(big_model)
    done = []
    job.done.connect(lambda: done.append(True))
    job.cancel()
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT_MS)
    assert not (window.models_dir / "big (2).gguf").exists()
    assert not list(window.models_dir.glob("*.part"))

    small = write_demo_model(tmp_path / "import-me.gguf", DemoSpec(seed=5))
    window.import_model(small)
    qtbot.waitUntil(lambda: (window.models_dir / "import-me.gguf").exists(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(window.cards) == 4, timeout=WAIT_MS)


def test_closing_while_loading_ends_every_host(qtbot, library, tmp_path, no_leaked_processes):
    window = make_window(qtbot, library, tmp_path)
    qtbot.waitUntil(lambda: len(window.cards) == 3, timeout=WAIT_MS)
    card = card_named(window, "big")
    window.set_model_options(card.model_id, LoadOptions(use_mmap=False))
    qtbot.mouseClick(card.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: card.view.state is ModelState.LOADING, timeout=WAIT_MS)
    window.close()
    assert not window.jobs.running
