"""Remote engines in the window: the Engines tab (add a router, see its connection, remove it)
and the cards of a router's models (their source chip, Load to Loaded, Unreachable when the
router goes away).

The form's checks and the key's storage need no router: an address nobody listens on is a real
unreachable engine. The rest runs REAL llama.cpp routers on loopback ports
(`tests/helpers/routers.py`); those tests are skipped, with the reason, where none is installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine_sources import KeyStore, SourceRegistry
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.events import ErrorKind, ModelError, ModelState
from llm_desktop.ui.main_window import MainWindow
from llm_desktop.ui.model_card import ModelCard
from tests.helpers.fake_engine import FakeEngine
from tests.helpers.routers import RouterProcess, free_port, router_available
from tests.ui.test_main_window import click, make_window, shown_buttons, wait_cards

WAIT_MS = 30_000
needs_router = pytest.mark.skipif(
    not router_available(), reason="llama.cpp's llama-server (the router) is not installed"
)


class MemoryKeyring:
    """A system keyring that works (as Secret Service would), in memory."""

    priority = 1

    def __init__(self) -> None:
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, name: str) -> str | None:
        return self.passwords.get((service, name))

    def set_password(self, service: str, name: str, key: str) -> None:
        self.passwords[(service, name)] = key

    def delete_password(self, service: str, name: str) -> None:
        del self.passwords[(service, name)]


class LockedKeyring(MemoryKeyring):
    """A keyring that refuses to store (locked, or its service gone): keys live this run only."""

    def set_password(self, service: str, name: str, key: str) -> None:
        raise RuntimeError("the keyring is locked")


@pytest.fixture
def keyring() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def registry(tmp_path: Path, keyring: MemoryKeyring) -> SourceRegistry:
    return SourceRegistry(tmp_path / "engines-v1.json", KeyStore(keyring))


@pytest.fixture
def window(qtbot, folder, tmp_path, fake, registry):
    window = make_window(
        qtbot, folder, tmp_path, EngineSet(fake, registry=registry), poll_hardware=False
    )
    wait_cards(qtbot, window, 1)
    yield window
    window.close()
    assert not window.jobs.running


@pytest.fixture
def router(tmp_path: Path, tiny_model: Path):
    """A router on loopback with two generated models (`tiny` and `second`)."""
    models = tmp_path / "router-models"
    models.mkdir()
    shutil.copyfile(tiny_model, models / "tiny.gguf")
    write_demo_model(models / "second.gguf", DemoSpec(seed=3, name="Second demo"))
    process = RouterProcess(models).start()
    yield process
    process.stop()


def add_engine(qtbot, window: MainWindow, name: str, url: str, key: str = "") -> None:
    """Fill the Engines tab's form as a person would, and press Enter."""
    window.show_engines()
    panel = window.engines_panel
    for field, text in ((panel.name_field, name), (panel.url_field, url), (panel.key_field, key)):
        field.clear()
        qtbot.keyClicks(field, text)
    qtbot.keyClick(panel.url_field, Qt.Key.Key_Return)


def wait_note(qtbot, window: MainWindow) -> str:
    panel = window.engines_panel
    qtbot.waitUntil(lambda: panel.note_label.isVisible(), timeout=WAIT_MS)
    return panel.note_label.text()


def load_tiny_on_lab_gpu(qtbot, window: MainWindow, router) -> ModelCard:
    """Add the router as lab-gpu, and load its tiny model from its card; the card."""
    add_engine(qtbot, window, "lab-gpu", router.url)
    window.show_library()
    wait_cards(qtbot, window, 3)
    tiny = remote_cards(window, "lab-gpu")["tiny"]
    click(qtbot, tiny.load_button)
    qtbot.waitUntil(lambda: tiny.view.state is ModelState.LOADED, timeout=WAIT_MS)
    return tiny


def remote_cards(window: MainWindow, name: str) -> dict[str, ModelCard]:
    """The cards of an engine's models, by the router's model id."""
    store = window.controller.store
    return {
        store.model(card.view.model).entry.path: card
        for card in window.cards.values()
        if card.view.source == name
    }


# -- the Engines tab, no router needed --------------------------------------------------------


def test_the_form_says_in_place_what_is_wrong_and_adds_nothing(qtbot, window):
    panel = window.engines_panel
    assert list(panel.rows) == [""], "this machine only"
    assert panel.rows[""].title.text() == "This machine"
    assert panel.rows[""].line.text() == "1 model"
    assert not panel.rows[""].remove_button.isVisibleTo(panel)

    add_engine(qtbot, window, "Lab GPU!", "http://127.0.0.1:8080")
    assert panel.error_label.isVisibleTo(panel)
    assert "cannot name an engine" in panel.error_label.text()
    add_engine(qtbot, window, "lab-gpu", "ftp://10.0.0.5")
    assert panel.error_label.isVisibleTo(panel)
    assert "ftp" in panel.error_label.text()
    add_engine(qtbot, window, "lab-gpu", "")
    assert "address" in panel.error_label.text()
    assert window.controller.engines.remotes() == []
    assert list(panel.rows) == [""]
    assert panel.add_button.isEnabled()


def test_an_added_engine_is_listed_live_and_its_key_kept_in_the_keyring(
    qtbot, window, registry, keyring, tmp_path
):
    panel = window.engines_panel
    assert panel.key_hint.text().startswith("The key is kept in the system keyring")
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there: a real unreachable engine
    add_engine(qtbot, window, "lab-gpu", url, key="s3cret")
    note = wait_note(qtbot, window)
    assert note.startswith("Added lab-gpu")
    assert "Its API key is in the system keyring" in note
    assert not panel.error_label.isVisibleTo(panel)
    assert panel.name_field.text() == panel.url_field.text() == panel.key_field.text() == ""

    qtbot.waitUntil(lambda: "lab-gpu" in panel.rows, timeout=WAIT_MS)
    row = panel.rows["lab-gpu"]
    assert list(panel.rows) == ["", "lab-gpu"], "this machine first"
    assert row.address.text() == url
    qtbot.waitUntil(lambda: row.chip.text() == "Unreachable", timeout=WAIT_MS)
    assert row.line.text().startswith("Unreachable · lab-gpu cannot be reached")
    assert row.property("tone") == "error"
    # Once a remote engine is set up, this machine's cards say where they run.
    (local,) = window.cards.values()
    assert local.source_chip.isVisibleTo(local)
    assert local.source_chip.text() == "This machine"

    assert registry.sources()[0].url == url
    assert keyring.passwords == {("llm-desktop engines", "lab-gpu"): "s3cret"}
    assert "s3cret" not in (tmp_path / "engines-v1.json").read_text()


def test_removing_an_engine_forgets_it_and_its_key(qtbot, window, registry, keyring):
    panel = window.engines_panel
    add_engine(qtbot, window, "closet-box", f"http://127.0.0.1:{free_port()}", key="k")
    wait_note(qtbot, window)
    qtbot.waitUntil(lambda: "closet-box" in panel.rows, timeout=WAIT_MS)
    panel.note_label.hide()

    click(qtbot, panel.rows["closet-box"].remove_button)
    assert wait_note(qtbot, window).startswith("Removed closet-box")
    qtbot.waitUntil(lambda: list(panel.rows) == [""], timeout=WAIT_MS)
    assert window.controller.engines.remotes() == []
    assert registry.sources() == [] and keyring.passwords == {}
    (local,) = window.cards.values()
    assert not local.source_chip.isVisibleTo(local), "no remote engine: no chip"


def test_a_blank_name_is_made_from_the_address(qtbot, window):
    port = free_port()
    add_engine(qtbot, window, "", f"127.0.0.1:{port}")
    assert wait_note(qtbot, window).startswith(f"Added 127-0-0-1-{port}:")
    qtbot.waitUntil(lambda: f"127-0-0-1-{port}" in window.engines_panel.rows, timeout=WAIT_MS)
    row = window.engines_panel.rows[f"127-0-0-1-{port}"]
    assert row.address.text() == f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("keyring", [LockedKeyring()], ids=["locked-keyring"])
def test_a_key_no_keyring_takes_is_said_to_last_this_run_only(qtbot, window, keyring):
    add_engine(qtbot, window, "lab-gpu", f"http://127.0.0.1:{free_port()}", key="s3cret")
    note = wait_note(qtbot, window)
    assert "No system keyring took its API key: it is kept until llm-desktop quits" in note
    assert window.controller.engines.keys.get("lab-gpu") == "s3cret", "this run still has it"


def test_without_a_keyring_the_form_says_so_before_adding(qtbot, folder, tmp_path):
    keys = KeyStore()
    if keys.persistent:
        pytest.skip("this machine has a system keyring")
    engines = EngineSet(FakeEngine(), registry=SourceRegistry(tmp_path / "engines.json", keys))
    window = make_window(qtbot, folder, tmp_path, engines, poll_hardware=False)
    try:
        hint = window.engines_panel.key_hint.text()
        assert hint.startswith("No system keyring was found")
    finally:
        window.close()


# -- a real router ------------------------------------------------------------------------------


@needs_router
def test_a_routers_models_are_cards_with_their_source_and_load_there(qtbot, window, router):
    add_engine(qtbot, window, "lab-gpu", router.url)
    window.show_library()
    wait_cards(qtbot, window, 3)
    cards = remote_cards(window, "lab-gpu")
    assert set(cards) == {"tiny", "second"}
    tiny = cards["tiny"]
    qtbot.waitUntil(lambda: tiny.source_chip.text() == "lab-gpu · Connected", timeout=WAIT_MS)
    assert tiny.source_chip.toolTip().startswith("Connected · 2 models")
    assert tiny.source_chip.accessibleDescription() == tiny.source_chip.toolTip()
    assert tiny.source_chip.property("tone") == "success"
    row = window.engines_panel.rows["lab-gpu"]
    assert row.chip.text() == "Connected" and row.line.text().startswith("Connected · 2 models")
    # What the router does not let us do is not offered: settings, quantizing, Try it, Remove.
    assert shown_buttons(tiny) == ["Load"]
    assert not tiny.settings_button.isVisibleTo(tiny)
    assert not tiny.more_button.isVisibleTo(tiny)
    # Its "path" is the router's id, its title already: no second line saying it again.
    assert not tiny.path_label.isVisibleTo(tiny)
    local = next(iter(remote_cards(window, "This machine").values()))
    assert local.path_label.isVisibleTo(local)

    rendered = []

    def watch(view) -> None:  # after the window's slot: what the card shows at each event
        if view.model == tiny.model_id:
            shown = (tiny.progress.maximum(), tiny.progress.format(), tiny.status.text())
            rendered.append((view.state, *shown))

    window.controller.view_changed.connect(watch)
    click(qtbot, tiny.load_button)
    qtbot.waitUntil(lambda: tiny.view.state is ModelState.LOADED, timeout=WAIT_MS)
    loading = [shown for shown in rendered if shown[0] is ModelState.LOADING]
    assert loading[0] == (ModelState.LOADING, 0, "Connecting", "Asking lab-gpu to load it")
    # The router reports its load's start and end: a busy bar (maximum 0) that says so.
    started = [shown for shown in loading if shown[2] == "Loading on lab-gpu"]
    assert started, "the card showed the router's load"
    assert started[0][1] == 0
    assert started[0][3] == "lab-gpu reports only the start and the end of a load"
    assert router.status("tiny") == "loaded"
    assert shown_buttons(tiny) == ["Unload"], "no Try it: the router serves its own API"
    assert tiny.model_id not in window.controller.loaded_models()
    # Once loaded, the router tells what the model is (F32): still no quantized copy offered.
    qtbot.waitUntil(lambda: "F32" in tiny.facts.text(), timeout=WAIT_MS)
    assert not tiny.more_button.isVisibleTo(tiny)
    assert tiny.model_id not in {
        window.try_panel.model_picker.itemData(i)
        for i in range(window.try_panel.model_picker.count())
    }
    # This machine's API serves this machine's models: not the router's (it serves its own).
    with pytest.raises(ModelError) as refused:
        window.controller.serving.acquire(tiny.model_id)
    assert refused.value.kind is ErrorKind.NOT_FOUND
    local = next(iter(remote_cards(window, "This machine").values()))
    assert local.model_id in window.serving_panel.example_views[0].toPlainText()


@needs_router
def test_a_router_that_goes_away_leaves_its_cards_unreachable(qtbot, window, router, registry):
    tiny = load_tiny_on_lab_gpu(qtbot, window, router)

    router.kill()
    chip = tiny.source_chip

    def refused() -> bool:  # the stream ends first; the next attempt finds nobody there
        return chip.text() == "lab-gpu · Unreachable" and "cannot be reached" in chip.toolTip()

    qtbot.waitUntil(refused, timeout=WAIT_MS)
    assert chip.toolTip().startswith(f"Unreachable · lab-gpu cannot be reached at {router.url}")
    assert "retrying in" in chip.toolTip()
    assert tiny.source_chip.property("tone") == "error"
    assert tiny.source_chip.accessibleName() == "Runs on lab-gpu: unreachable"
    row = window.engines_panel.rows["lab-gpu"]
    qtbot.waitUntil(lambda: row.chip.text() == "Unreachable", timeout=WAIT_MS)
    # The cards stay (the machine may come back), and this machine's own card is untouched.
    assert set(remote_cards(window, "lab-gpu")) == {"tiny", "second"}
    local = remote_cards(window, "This machine")
    assert [card.source_chip.text() for card in local.values()] == ["This machine"]


@needs_router
def test_removing_an_engine_takes_its_cards_away_loaded_ones_too(qtbot, window, router):
    load_tiny_on_lab_gpu(qtbot, window, router)

    window.show_engines()
    click(qtbot, window.engines_panel.rows["lab-gpu"].remove_button)
    window.show_library()
    wait_cards(qtbot, window, 1)
    assert remote_cards(window, "lab-gpu") == {}
    assert router.status("tiny") == "loaded", "the router keeps running it"


def test_saved_engines_are_followed_from_the_start(qtbot, folder, tmp_path, keyring):
    path = tmp_path / "engines-v1.json"
    url = f"http://127.0.0.1:{free_port()}"
    path.write_text(json.dumps({"engines": [{"name": "closet-box", "url": url}]}))
    engines = EngineSet(FakeEngine(), registry=SourceRegistry(path, KeyStore(keyring)))
    window = make_window(qtbot, folder, tmp_path, engines, poll_hardware=False)
    try:
        panel = window.engines_panel
        qtbot.waitUntil(lambda: "closet-box" in panel.rows, timeout=WAIT_MS)
        row = panel.rows["closet-box"]
        assert row.address.text() == url
        # Live: each failed attempt waits longer (0.5 s, 1 s, 2 s), and the row follows.
        qtbot.waitUntil(lambda: "retrying in 2.0 s" in row.line.text(), timeout=WAIT_MS)
        assert row.chip.text() == "Unreachable"
    finally:
        window.close()
