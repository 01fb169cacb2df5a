"""A model's own keep-alive, set on its card: kept for the next run, applied to serving."""

from __future__ import annotations

from llm_desktop.core.serving_presenter import SERVING_DEFAULT
from tests.helpers.fake_engine import FakeEngine
from tests.ui.test_main_window import make_window, wait_cards


def choose(card, value) -> None:
    index = next(i for i in range(card.keep_alive.count()) if card.keep_alive.itemData(i) == value)
    card.keep_alive.setCurrentIndex(index)
    card.keep_alive.activated.emit(index)


def test_a_cards_keep_alive_is_applied_and_kept(qtbot, folder, tmp_path, fake):
    window = make_window(qtbot, folder, tmp_path, fake, poll_hardware=False)
    wait_cards(qtbot, window, 1)
    ((model_id, card),) = window.cards.items()
    assert card.keep_alive.currentData() == SERVING_DEFAULT
    assert window.controller.serving.keep_alive_of(model_id) is None  # loaded by hand: stays

    choose(card, 300.0)
    assert window.controller.serving.keep_alive_of(model_id) == 300.0
    window.close()

    # The next run (the same settings file) shows it and applies it again.
    second_engine = FakeEngine()
    again = make_window(qtbot, folder, tmp_path, second_engine, poll_hardware=False)
    wait_cards(qtbot, again, 1)
    assert again.cards[model_id].keep_alive.currentData() == 300.0
    assert again.controller.serving.keep_alive_of(model_id) == 300.0

    choose(again.cards[model_id], SERVING_DEFAULT)
    assert again.controller.serving.keep_alive_of(model_id) is None
    again.close()
    second_engine.shutdown()
