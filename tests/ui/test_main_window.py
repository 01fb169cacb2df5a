"""The desktop window driven like a person would.

Most tests drive a `FakeEngine` step by step (the real bus, bridge, controller, store, presenter
and widgets; no model hosts): each stage is checked as it lands. A few end-to-end tests load
generated models in real hosts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QWidget,
)

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.engine_api import EngineApi
from llm_desktop.core.events import GPU_OOM_MESSAGE, ErrorKind, ModelState, ProgressEvent, Stage
from llm_desktop.core.generation import CHAT, ReplyRequest
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.presenter import ActionId, NoticeKind
from llm_desktop.ui.main_window import MainWindow
from llm_desktop.ui.model_card import ModelCard
from tests.helpers.fake_engine import FakeEngine, LoadCall
from tests.helpers.library import make_library

WAIT_MS = 60_000
BUSY_STAGES = {
    Stage.CONNECTING,
    Stage.INITIALIZING,
    Stage.PARSING,
    Stage.LOADING,
    Stage.OPTIMIZING,
    Stage.FINALIZING,
    Stage.UNLOADING,
}
RAM_OOM = "Out of memory - needs 9.0 GB of 8.0 GB RAM available"


@pytest.fixture
def library(tmp_path: Path, tiny_model: Path, big_model: Path) -> Path:
    return make_library(tmp_path / "models", tiny_model, big_model)


def make_window(
    qtbot, folder: Path, tmp_path: Path, engine: EngineApi, *, poll_hardware: bool = True
) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        engine,
        settings=settings,
        models_dir=folder,
        include_known=False,
        poll_hardware=poll_hardware,
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def fake():
    engine = FakeEngine()
    yield engine
    engine.shutdown()  # the window's close did it already; twice is safe


@pytest.fixture
def window(qtbot, library, tmp_path, fake):
    window = make_window(qtbot, library, tmp_path, fake, poll_hardware=False)
    wait_cards(qtbot, window, 3)
    yield window
    window.close()
    assert not window.jobs.running
    assert fake.shutdowns >= 1, "closing the window shuts the engine down"


@pytest.fixture
def real_window(qtbot, library, tmp_path):
    window = make_window(qtbot, library, tmp_path, Engine(warm_hosts=1))
    wait_cards(qtbot, window, 3)
    yield window
    window.close()
    assert not window.jobs.running


def wait_cards(qtbot, window: MainWindow, count: int) -> None:
    """Until the window shows `count` cards: a card added to a shown window is shown by a
    queued call, so the card dict fills before the cards are visible."""

    def shown() -> bool:
        cards = window.cards.values()
        return len(cards) == count and all(card.isVisible() for card in cards)

    qtbot.waitUntil(shown, timeout=WAIT_MS)


def card_named(window: MainWindow, stem: str) -> ModelCard:
    (card,) = [c for c in window.cards.values() if Path(c.view.path).stem == stem]
    return card


def click(qtbot, widget: QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def shown_buttons(card: ModelCard) -> list[str]:
    return [button.text() for button in card.buttons.values() if button.isVisible()]


def step(qtbot, fake: FakeEngine, card: ModelCard) -> ProgressEvent:
    """Publish the next event of the card's model (from its session thread) and wait until
    the bridge has brought it to the card."""
    event = fake.step(card.model_id)
    qtbot.waitUntil(lambda: card.view.seq >= event.seq, timeout=WAIT_MS)
    assert card.view.seq == event.seq
    return event


def advance(qtbot, fake: FakeEngine, card: ModelCard, stage: Stage) -> ProgressEvent:
    while (event := step(qtbot, fake, card)).stage is not stage:
        pass
    return event


def fail(qtbot, fake: FakeEngine, card: ModelCard, kind: ErrorKind, message=None, detail=()):
    event = fake.fail(card.model_id, kind, message, detail)
    qtbot.waitUntil(lambda: card.view.seq >= event.seq, timeout=WAIT_MS)
    return event


def model_toasts(window: MainWindow, card: ModelCard) -> list:
    key = f"model:{card.model_id}"
    return [toast for toast in window.toasts.visible_toasts() if toast.message.key == key]


def picker_models(window: MainWindow) -> set[str]:
    picker = window.try_panel.model_picker
    return {picker.itemData(index) for index in range(picker.count())}


# -- the library ---------------------------------------------------------------------------------


def test_library_lists_cards_with_facts_and_fit(window):
    tiny = card_named(window, "tiny")
    assert "llama" in tiny.facts.text() and "F32" in tiny.facts.text()
    assert tiny.fit_badge.text() == "CPU only"
    assert "RAM" in tiny.fit_badge.toolTip()
    assert shown_buttons(tiny) == ["Load"]
    broken = card_named(window, "broken")
    assert broken.facts.text().startswith("Unreadable file")
    assert "Not a valid GGUF model" in broken.status.text()


def test_unreadable_file_offers_details_and_removal_not_load(qtbot, window, fake):
    card = card_named(window, "broken")
    assert card.view.state is ModelState.UNREADABLE
    assert shown_buttons(card) == ["Show details", "Remove from library"]
    click(qtbot, card.remove_button)
    assert card.model_id not in window.cards
    assert (window.models_dir / "broken.gguf").exists(), "removing hides; the file stays"
    window.refresh_library()
    qtbot.waitSignal(window.library_loaded, timeout=WAIT_MS)
    assert card.model_id not in window.cards
    assert fake.loads == []


# -- one load, stage by stage ------------------------------------------------------------------


def test_a_load_shows_every_stage_spinner_bar_and_buttons(qtbot, window, fake):
    card = card_named(window, "tiny")
    assert not card.spinner.is_spinning() and not card.progress.isVisible()
    click(qtbot, card.load_button)
    assert fake.loads == [LoadCall(card.model_id, card.view.path, LoadOptions())]

    (connecting,) = fake.bus.history(card.model_id)
    assert card.view.stage_label == "Connecting", "connecting is drawn before the click returns"
    events, values = [connecting], []
    while fake.pending(card.model_id) != (Stage.COMPLETE,):
        events.append(step(qtbot, fake, card))
        event = events[-1]
        assert card.spinner.is_spinning(), event
        assert card.spinner.message() == event.message
        if event.stage in (Stage.OPTIMIZING, Stage.FINALIZING):
            assert card.progress.maximum() == 0, "a step llama.cpp does not measure: busy"
        else:
            assert card.progress.maximum() == 100 and card.progress.value() == int(event.pct)
            values.append(card.progress.value())
        assert shown_buttons(card) == ["Cancel"], event
        assert not card.settings_panel.isEnabled()
    assert {event.stage for event in events} == BUSY_STAGES - {Stage.UNLOADING}
    assert values == sorted(values) and values[-1] == 90

    step(qtbot, fake, card)
    assert card.view.state is ModelState.LOADED
    assert not card.spinner.is_spinning()
    assert card.progress.value() == 100 and card.progress.maximum() == 100
    assert shown_buttons(card) == ["Unload", "Try it"]
    assert card.status.text().startswith("Ready (2048-token context)")

    click(qtbot, card.unload_button)
    assert fake.unloads == [card.model_id]
    event = step(qtbot, fake, card)
    assert event.stage is Stage.UNLOADING
    assert card.spinner.is_spinning() and card.spinner.message() == "Unloading"
    assert card.progress.maximum() == 0 and shown_buttons(card) == []
    step(qtbot, fake, card)
    assert card.view.state is ModelState.UNLOADED and not card.spinner.is_spinning()
    assert shown_buttons(card) == ["Load"] and card.settings_panel.isEnabled()


def test_the_detail_line_follows_bytes_rate_and_eta(qtbot, window, fake):
    card = card_named(window, "tiny")
    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.LOADING)
    assert card.status.text() == "0 B of 67.1 MB"
    first = step(qtbot, fake, card)
    assert first.rate_bps is None, "one sample gives no rate yet"
    assert card.status.text() == "16.8 MB of 67.1 MB"
    step(qtbot, fake, card)
    assert card.status.text() == "33.6 MB of 67.1 MB · 33.6 MB/s · 1 s left"
    assert card.progress.value() == 47


def test_cancel_mid_load_returns_the_card_to_loadable(qtbot, window, fake):
    card = card_named(window, "big")
    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.LOADING)
    click(qtbot, card.cancel_button)
    assert fake.cancels == [card.model_id]
    assert card.view.state is ModelState.LOADING, "a cancel is done when the engine says so"
    step(qtbot, fake, card)
    assert card.view.state is ModelState.CANCELLED
    assert card.load_button.isEnabled() and shown_buttons(card) == ["Load"]
    assert not card.spinner.is_spinning()
    assert card.status.text() == "Loading cancelled"


# -- failures and retries ------------------------------------------------------------------------


def test_retry_with_a_smaller_context_loads_half_the_context(qtbot, window, fake):
    card = card_named(window, "tiny")
    card.n_ctx.setValue(4096)  # a person sets it in the card's settings
    click(qtbot, card.load_button)
    assert fake.loads[-1].options == LoadOptions(n_ctx=4096)
    advance(qtbot, fake, card, Stage.LOADING)
    fail(qtbot, fake, card, ErrorKind.OUT_OF_MEMORY, RAM_OOM)
    assert shown_buttons(card) == ["Retry with a smaller context", "Show details"]
    assert card.status.text() == RAM_OOM

    click(qtbot, card.retry_button)
    assert fake.loads[-1].options == LoadOptions(n_ctx=2048)
    assert card.n_ctx.value() == 2048, "the smaller setting sticks"
    assert int(window.settings.value(f"models/{card.model_id}/n_ctx")) == 2048
    assert card.view.state is ModelState.LOADING


def test_retry_after_gpu_out_of_memory_offloads_half_the_layers(qtbot, window, fake):
    card = card_named(window, "tiny")
    window.set_model_options(card.model_id, LoadOptions(n_gpu_layers=20))
    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.OPTIMIZING)
    fail(qtbot, fake, card, ErrorKind.OUT_OF_MEMORY, GPU_OOM_MESSAGE)
    assert card.retry_button.text() == "Retry with fewer GPU layers"
    click(qtbot, card.retry_button)
    assert [call.options for call in fake.loads] == [
        LoadOptions(n_gpu_layers=20),
        LoadOptions(n_gpu_layers=10),
    ]
    assert card.gpu_layers.value() == 10


def test_the_retry_on_an_error_toast_loads_with_the_views_options(qtbot, window, fake):
    card = card_named(window, "tiny")
    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.LOADING)
    fail(qtbot, fake, card, ErrorKind.OUT_OF_MEMORY, RAM_OOM)
    (toast,) = model_toasts(window, card)
    assert toast.message.kind is NoticeKind.ERROR
    assert toast.action_button.isVisible()
    assert toast.action_button.text() == "Retry with a smaller context"
    retry = LoadOptions.parse(card.view.action(ActionId.RETRY).options)
    assert retry == LoadOptions(n_ctx=1024), "half the model's default context"

    click(qtbot, toast.action_button)
    assert [call.options for call in fake.loads] == [LoadOptions(), retry]
    assert card.view.state is ModelState.LOADING


def test_a_failure_a_retry_cannot_mend_offers_details_and_removal(qtbot, window, fake):
    card = card_named(window, "tiny")
    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.PARSING)
    message = "Not a valid GGUF model: tensor data is cut short"
    fail(qtbot, fake, card, ErrorKind.INVALID_MODEL, message, ["llama_model_load: error"])
    assert shown_buttons(card) == ["Show details", "Remove from library"]
    assert not card.spinner.is_spinning() and not card.progress.isVisible()

    click(qtbot, card.details_button)
    (box,) = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert box.text() == message and "llama_model_load: error" in box.detailedText()
    box.close()

    click(qtbot, card.remove_button)
    assert card.model_id not in window.cards
    texts = [toast.message.text for toast in window.toasts.visible_toasts()]
    assert any(text.endswith("removed from the library") for text in texts), texts
    assert (window.models_dir / "tiny.gguf").exists()


def test_a_host_that_dies_while_loaded_leaves_the_try_panel_and_offers_a_retry(qtbot, window, fake):
    card = card_named(window, "tiny")
    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.COMPLETE)
    assert picker_models(window) == {card.model_id}
    fail(qtbot, fake, card, ErrorKind.ENGINE_CRASHED, "The model engine crashed (SIGSEGV)")
    assert card.view.state is ModelState.FAILED
    assert shown_buttons(card) == ["Retry", "Show details"]
    assert picker_models(window) == set()
    (toast,) = model_toasts(window, card)
    assert toast.message.kind is NoticeKind.ERROR


# -- keyboard ----------------------------------------------------------------------------------


def test_keyboard_enter_space_and_escape(qtbot, window, fake):
    card = card_named(window, "tiny")
    card.n_ctx.setValue(1024)
    card.setFocus()
    qtbot.waitUntil(card.hasFocus)
    qtbot.keyClick(card, Qt.Key.Key_Return)
    assert fake.loads[-1].options == LoadOptions(n_ctx=1024)
    qtbot.keyClick(card, Qt.Key.Key_Enter)
    assert len(fake.loads) == 1, "a loading card has no primary action"
    advance(qtbot, fake, card, Stage.LOADING)
    qtbot.keyClick(card, Qt.Key.Key_Escape)
    assert fake.cancels == [card.model_id]
    step(qtbot, fake, card)
    assert card.view.state is ModelState.CANCELLED
    qtbot.waitUntil(card.hasFocus, timeout=5000)  # focus comes back to the card

    qtbot.keyClick(card, Qt.Key.Key_Space)
    assert len(fake.loads) == 2
    advance(qtbot, fake, card, Stage.LOADING)
    fail(qtbot, fake, card, ErrorKind.OUT_OF_MEMORY, RAM_OOM)
    qtbot.keyClick(card, Qt.Key.Key_Return)  # the retry is the failed card's primary action
    assert fake.loads[-1].options == LoadOptions(n_ctx=512)
    fake.finish(card.model_id)
    qtbot.waitUntil(lambda: card.view.state is ModelState.LOADED, timeout=WAIT_MS)
    qtbot.keyClick(card, Qt.Key.Key_Escape)
    qtbot.keyClick(card, Qt.Key.Key_Return)
    assert fake.cancels == [card.model_id] and len(fake.loads) == 3 and fake.unloads == []


# -- several models, notices, the try panel ----------------------------------------------------


def test_two_cards_load_at_once(qtbot, window, fake):
    big, tiny = card_named(window, "big"), card_named(window, "tiny")
    click(qtbot, big.load_button)
    click(qtbot, tiny.load_button)
    assert [call.model for call in fake.loads] == [big.model_id, tiny.model_id]
    while fake.pending(big.model_id) or fake.pending(tiny.model_id):
        for card, other in ((big, tiny), (tiny, big)):
            if fake.pending(card.model_id):
                other_seq = other.view.seq
                event = step(qtbot, fake, card)
                assert event.model == card.model_id
                assert other.view.seq == other_seq, "one model's event moves one card"
    assert big.view.state is tiny.view.state is ModelState.LOADED
    assert picker_models(window) == {big.model_id, tiny.model_id}

    click(qtbot, big.unload_button)
    fake.finish(big.model_id)
    qtbot.waitUntil(lambda: big.view.state is ModelState.UNLOADED, timeout=WAIT_MS)
    assert tiny.view.state is ModelState.LOADED
    assert picker_models(window) == {tiny.model_id}


def test_one_toast_per_outcome_and_none_for_progress(qtbot, window, fake):
    card = card_named(window, "tiny")
    notices = []
    window.controller.notice.connect(notices.append)

    def run_to_the_end() -> None:
        while len(fake.pending(card.model_id)) > 1:
            step(qtbot, fake, card)
            assert notices == outcomes, "no toast for progress"
        step(qtbot, fake, card)

    outcomes = []
    click(qtbot, card.load_button)
    run_to_the_end()
    assert [(n.kind, n.text) for n in notices] == [
        (NoticeKind.SUCCESS, f"{card.view.title} is ready")
    ]
    outcomes = list(notices)

    click(qtbot, card.unload_button)
    run_to_the_end()
    assert [n.kind for n in notices[1:]] == [NoticeKind.INFO]
    assert notices[1].text == f"{card.view.title}: Unloaded; freed 101 MB"
    outcomes = list(notices)

    click(qtbot, card.load_button)
    click(qtbot, card.cancel_button)
    run_to_the_end()
    assert [n.text for n in notices[2:]] == [f"Loading {card.view.title} cancelled"]
    outcomes = list(notices)

    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.LOADING)
    assert notices == outcomes
    fail(qtbot, fake, card, ErrorKind.ENGINE_CRASHED)
    assert [n.kind for n in notices[3:]] == [NoticeKind.ERROR]
    assert len(notices) == 4
    assert len(model_toasts(window, card)) == 1, "a model's newer toast replaces its older"


def test_the_try_panel_lists_loaded_models_and_shows_the_reply(qtbot, window, fake):
    panel = window.try_panel
    assert picker_models(window) == set() and panel.hint.isVisible()
    assert not panel.send_button.isEnabled()
    card = card_named(window, "tiny")
    click(qtbot, card.load_button)
    advance(qtbot, fake, card, Stage.FINALIZING)
    assert picker_models(window) == set(), "a loading model cannot be tried yet"
    step(qtbot, fake, card)
    assert picker_models(window) == {card.model_id} and not panel.hint.isVisible()
    assert panel.model_picker.currentText() == card.view.title

    click(qtbot, card.try_button)
    qtbot.waitUntil(panel.prompt.hasFocus, timeout=5000)
    panel.prompt.setPlainText("Hi")
    panel.max_tokens.setValue(8)
    click(qtbot, panel.send_button)
    qtbot.waitUntil(lambda: not panel.generating, timeout=WAIT_MS)
    chat = ReplyRequest(mode=CHAT, messages=(("user", "Hi"),), max_tokens=8)
    assert fake.requests == [(card.model_id, chat)]
    assert [turn.text for turn in panel.conversation.turns] == ["Hi", "Hello, world"]

    click(qtbot, card.unload_button)
    fake.finish(card.model_id)
    qtbot.waitUntil(lambda: picker_models(window) == set(), timeout=WAIT_MS)
    assert panel.hint.isVisible()


# -- the rest of the window --------------------------------------------------------------------


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


def test_first_run_offers_a_demo_model(qtbot, tmp_path, fake):
    empty = tmp_path / "empty-models"
    window = make_window(qtbot, empty, tmp_path, fake, poll_hardware=False)
    qtbot.waitUntil(lambda: window.empty_state.isVisible(), timeout=WAIT_MS)
    click(qtbot, window.demo_button)
    wait_cards(qtbot, window, 1)
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
    wait_cards(qtbot, window, 4)


# -- end to end, with real model hosts ----------------------------------------------------------


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


def test_real_load_shows_progress_spinner_and_a_success_toast(qtbot, real_window):
    window = real_window
    card = card_named(window, "big")
    window.set_model_options(card.model_id, LoadOptions(use_mmap=False))
    seen = record(window, card)
    click(qtbot, card.load_button)
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

    click(qtbot, card.unload_button)
    wait_state(qtbot, card, ModelState.UNLOADED)
    assert card.load_button.isEnabled()


def test_real_file_llama_cannot_load_gives_one_error_and_no_retry(qtbot, real_window):
    # A well-formed file of an architecture this llama.cpp does not know: the catalog lists it
    # (its header is sound), llama.cpp refuses it.
    window = real_window
    write_demo_model(
        window.models_dir / "newer.gguf",
        DemoSpec(seed=10, name="Newer architecture", architecture="qwen9"),
    )
    window.refresh_library()
    wait_cards(qtbot, window, 4)
    card = card_named(window, "newer")
    assert card.load_button.isVisible()
    click(qtbot, card.load_button)
    wait_state(qtbot, card, ModelState.FAILED)
    assert "not supported" in card.status.text()
    assert not card.retry_button.isVisible(), "a retry cannot mend an unknown architecture"
    assert card.details_button.isVisible() and card.remove_button.isVisible()
    errors = [t for t in window.toasts.visible_toasts() if "Error" in t.accessibleName()]
    assert len(errors) == 1 and "qwen9" in errors[0].accessibleName()
    assert window.isVisible(), "the app goes on"


def test_a_cut_file_is_unreadable_in_the_library_and_offers_no_load(qtbot, real_window, tiny_model):
    window = real_window
    raw = tiny_model.read_bytes()
    (window.models_dir / "cut.gguf").write_bytes(raw[: len(raw) - 4096])
    window.refresh_library()
    wait_cards(qtbot, window, 4)
    card = card_named(window, "cut")
    assert card.view.state is ModelState.UNREADABLE and "truncated" in card.view.detail
    assert not card.load_button.isVisible(), "the catalog read every tensor: it is cut short"
    assert card.remove_button.isVisible()


def test_real_try_it_streams_a_reply(qtbot, real_window):
    window = real_window
    card = card_named(window, "tiny")
    click(qtbot, card.load_button)
    wait_state(qtbot, card, ModelState.LOADED)
    click(qtbot, card.try_button)
    panel = window.try_panel
    panel.prompt.setPlainText("Hello")
    panel.max_tokens.setValue(6)
    click(qtbot, panel.send_button)
    qtbot.waitUntil(lambda: not panel.generating, timeout=WAIT_MS)
    assert panel.pieces_received >= 1  # random weights: the text itself is gibberish
    assert panel.send_button.isEnabled()


def test_real_closing_while_loading_ends_every_host(qtbot, library, tmp_path):
    window = make_window(qtbot, library, tmp_path, Engine(warm_hosts=1))
    wait_cards(qtbot, window, 3)
    card = card_named(window, "big")
    window.set_model_options(card.model_id, LoadOptions(use_mmap=False))
    click(qtbot, card.load_button)
    wait_state(qtbot, card, ModelState.LOADING)
    window.close()
    assert not window.jobs.running
