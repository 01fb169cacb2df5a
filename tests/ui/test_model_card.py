"""One card on its own: it renders the presenter's views of the fake engine's events, and its
keys and buttons ask for the actions those views offer, with their options."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt

from llm_desktop.core.events import GPU_OOM_MESSAGE, ErrorKind, ModelState, Stage
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.store import ModelStore
from llm_desktop.ui.model_card import ModelCard
from tests.helpers.fake_engine import FakeEngine

RAM_OOM = "Out of memory - needs 9.0 GB of 8.0 GB RAM available"


@pytest.fixture(scope="module")
def library_model(tmp_path_factory, tiny_model: Path):
    folder = tmp_path_factory.mktemp("card-models")
    shutil.copyfile(tiny_model, folder / "tiny.gguf")
    (model,) = ModelLibrary([folder], include_known=False).refresh()
    return model


class Harness:
    """A card fed by a store that applies the (unthreaded) fake engine's events."""

    def __init__(self, qtbot, library_model, options: LoadOptions | None = None) -> None:
        self.fake = FakeEngine(threaded=False)
        self.store = ModelStore()
        self.store.set_library([library_model])
        self.model = library_model.entry.id
        self.path = library_model.entry.path
        if options is not None:
            self.store.set_options(self.model, options)
        self.card = ModelCard(self.store.view(self.model), self.store.options(self.model))
        qtbot.addWidget(self.card)
        self.card.show()
        qtbot.waitExposed(self.card)
        self.fake.bus.subscribe(self._render)

    def _render(self, event) -> None:
        change = self.store.apply(event)
        self.card.render(change.view)

    def load(self) -> None:
        self.fake.load(self.path, self.store.options(self.model), model=self.model)

    def shown(self) -> list[str]:
        return [button.text() for button in self.card.buttons.values() if button.isVisible()]

    def close(self) -> None:
        self.fake.shutdown()


@pytest.fixture
def harness(qtbot, library_model):
    harness = Harness(qtbot, library_model)
    yield harness
    harness.close()


def to_loading(h: Harness) -> None:
    h.load()
    h.fake.advance(h.model, Stage.LOADING)


def to_loaded(h: Harness) -> None:
    h.load()
    h.fake.finish(h.model)


def to_unloading(h: Harness) -> None:
    to_loaded(h)
    h.fake.unload(h.model)
    h.fake.step(h.model)


def to_cancelled(h: Harness) -> None:
    to_loading(h)
    h.fake.cancel(h.model)
    h.fake.finish(h.model)


def to_unloaded(h: Harness) -> None:
    to_unloading(h)
    h.fake.finish(h.model)


def to_out_of_ram(h: Harness) -> None:
    to_loading(h)
    h.fake.fail(h.model, ErrorKind.OUT_OF_MEMORY, RAM_OOM)


def to_out_of_gpu_memory(h: Harness) -> None:
    to_loading(h)
    h.fake.fail(h.model, ErrorKind.OUT_OF_MEMORY, GPU_OOM_MESSAGE)


def to_invalid(h: Harness) -> None:
    h.load()
    h.fake.advance(h.model, Stage.PARSING)
    h.fake.fail(h.model, ErrorKind.INVALID_MODEL, "Not a valid GGUF model: bad tensor")


def to_crashed(h: Harness) -> None:
    to_loaded(h)
    h.fake.fail(h.model, ErrorKind.ENGINE_CRASHED)


# (how to get there, the state, the buttons shown, the primary one, settings editable)
STATES = {
    "new": (lambda h: None, ModelState.UNLOADED, ["Load"], "load", True),
    "loading": (to_loading, ModelState.LOADING, ["Cancel"], None, False),
    "loaded": (to_loaded, ModelState.LOADED, ["Unload", "Try it"], None, False),
    "unloading": (to_unloading, ModelState.UNLOADING, [], None, False),
    "unloaded": (to_unloaded, ModelState.UNLOADED, ["Load"], "load", True),
    "cancelled": (to_cancelled, ModelState.CANCELLED, ["Load"], "load", True),
    "out of RAM": (
        to_out_of_ram,
        ModelState.FAILED,
        ["Retry with a smaller context", "Show details"],
        "retry",
        True,
    ),
    "out of GPU memory": (
        to_out_of_gpu_memory,
        ModelState.FAILED,
        ["Retry with fewer GPU layers", "Show details"],
        "retry",
        True,
    ),
    "invalid file": (
        to_invalid,
        ModelState.FAILED,
        ["Show details", "Remove from library"],
        None,
        True,
    ),
    "crashed": (to_crashed, ModelState.FAILED, ["Retry", "Show details"], "retry", True),
}


@pytest.mark.parametrize("name", STATES)
def test_buttons_follow_the_state(harness, name):
    reach, state, buttons, primary, editable = STATES[name]
    reach(harness)
    card = harness.card
    assert card.view.state is state
    assert harness.shown() == buttons
    assert card.primary_action() == primary
    assert card.settings_panel.isEnabled() is editable
    assert card.spinner.is_spinning() is (state in (ModelState.LOADING, ModelState.UNLOADING))
    for button in card.buttons.values():
        if button.isVisible():
            assert button.isEnabled() and button.accessibleName().startswith(button.text())


def test_the_bar_follows_pct_and_the_spinner_says_each_busy_stage(harness):
    card, fake = harness.card, harness.fake
    harness.load()
    seen = []
    while fake.pending(harness.model):
        event = fake.step(harness.model)
        indeterminate = card.progress.maximum() == 0
        assert indeterminate or card.progress.value() == int(event.pct)
        seen.append((event.stage, indeterminate, card.progress.value(), card.spinner.message()))
    loading = [value for stage, _, value, _ in seen if stage is Stage.LOADING]
    assert loading == [5, 26, 47, 68, 90]
    assert [(stage, message) for stage, indeterminate, _, message in seen if indeterminate] == [
        (Stage.OPTIMIZING, "Creating context (2048 tokens)"),
        (Stage.FINALIZING, "Warming up: first decode"),
    ]
    assert seen[-1][:3] == (Stage.COMPLETE, False, 100) and not card.spinner.is_spinning()


def test_enter_and_space_ask_for_the_primary_action_with_its_options(qtbot, library_model):
    options = LoadOptions(n_ctx=4096, n_gpu_layers=8, use_mmap=False)
    harness = Harness(qtbot, library_model, options)
    try:
        card = harness.card
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            with qtbot.waitSignal(card.action_requested, timeout=1000) as blocker:
                qtbot.keyClick(card, key)
            assert blocker.args == [harness.model, "load", options.to_dict()]
        to_out_of_ram(harness)
        with qtbot.waitSignal(card.action_requested, timeout=1000) as blocker:
            qtbot.keyClick(card, Qt.Key.Key_Return)
        assert blocker.args[1] == "retry"
        assert LoadOptions.parse(blocker.args[2]) == LoadOptions(
            n_ctx=2048, n_gpu_layers=8, use_mmap=False
        )
    finally:
        harness.close()


def test_escape_cancels_only_a_load(qtbot, harness):
    card = harness.card
    with qtbot.assertNotEmitted(card.action_requested):
        qtbot.keyClick(card, Qt.Key.Key_Escape)
    to_loading(harness)
    with qtbot.assertNotEmitted(card.action_requested):
        qtbot.keyClick(card, Qt.Key.Key_Return)  # a loading card has no primary action
    with qtbot.waitSignal(card.action_requested, timeout=1000) as blocker:
        qtbot.keyClick(card, Qt.Key.Key_Escape)
    assert blocker.args == [harness.model, "cancel", None]
    harness.fake.finish(harness.model)  # the cancel was never sent: the load completes
    with qtbot.assertNotEmitted(card.action_requested):
        qtbot.keyClick(card, Qt.Key.Key_Escape)


def test_editing_the_settings_says_the_new_options_and_setting_them_does_not(qtbot, harness):
    card = harness.card
    with qtbot.waitSignal(card.options_changed, timeout=1000) as blocker:
        card.n_ctx.setValue(1024)
    assert blocker.args == [harness.model, LoadOptions(n_ctx=1024)]
    with qtbot.waitSignal(card.options_changed, timeout=1000) as blocker:
        card.use_mmap.setChecked(False)
    assert blocker.args == [harness.model, LoadOptions(n_ctx=1024, use_mmap=False)]
    with qtbot.assertNotEmitted(card.options_changed):
        card.set_options(LoadOptions(n_gpu_layers=3))
    assert card.options() == LoadOptions(n_gpu_layers=3)


def test_the_busy_overlay_leaves_the_name_and_fit_badge_readable(qtbot, library_model):
    """The spinner covers what the model is made of, never which model it is."""
    harness = Harness(qtbot, library_model)
    try:
        harness.load()
        card = harness.card
        qtbot.waitUntil(card.spinner.is_spinning)

        def on_card(widget) -> QRect:
            return QRect(widget.mapTo(card, QPoint(0, 0)), widget.size())

        overlay = on_card(card.spinner)
        assert not overlay.intersects(on_card(card.title))
        assert not overlay.intersects(on_card(card.fit_badge))
        assert overlay.intersects(on_card(card.facts)), "the veil covers the facts line"
    finally:
        harness.close()
