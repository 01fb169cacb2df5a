"""Getting models in the window, driven as a person would: search a hub on loopback (the real
`huggingface_hub` client against `FakeHub`), read each model's fit from its remote header,
download it with the transfer tray's buttons (pause, resume, cancel keeping or deleting the
bytes), load it, and quantize a model from its card's menu with a real quantize job.

The engine is the fake one (no model hosts) except for quantizing, which runs its own host.
Waits are on widget state (`qtbot.waitUntil`), never on a worker's signal directly.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from llm_desktop.core import presenter
from llm_desktop.core.demo import DemoSpec, spec_for_size, write_demo_model
from llm_desktop.core.events import Stage
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.model_names import model_id
from llm_desktop.core.presenter import ActionId
from llm_desktop.core.quantize import QUANT_TYPES, default_output_path
from llm_desktop.ui.main_window import MainWindow
from llm_desktop.ui.transfers_panel import TransferRow
from tests.helpers.fake_engine import FakeEngine
from tests.helpers.fake_hub import FakeHub, Throttle
from tests.helpers.library import BROKEN_GGUF

WAIT_MS = 60_000
SMALL = "test-org/Small-GGUF"
SLOW = "test-org/Slow-GGUF"
GATED = "test-org/Gated-GGUF"
ODD = "test-org/Odd-GGUF"
SLOW_FILE = "Slow-F16.gguf"
# A link slow enough that a person (and a test) can press Pause or Cancel mid-way.
SLOW_BYTES_PER_S = 1_000_000


@pytest.fixture(scope="module")
def hub_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hub-files")
    return {
        "Small-Q4_K_M.gguf": write_demo_model(folder / "q4.gguf", spec_for_size(2, seed=21)),
        "Small-Q8_0.gguf": write_demo_model(folder / "q8.gguf", spec_for_size(3, seed=22)),
        SLOW_FILE: write_demo_model(folder / "slow.gguf", spec_for_size(4, seed=23)),
        "Gated-Q4_K_M.gguf": write_demo_model(folder / "gated.gguf", DemoSpec(seed=24)),
    }


@pytest.fixture
def hub(tmp_path, hub_files, monkeypatch):
    with FakeHub(tmp_path / "hub") as hub:
        hub.add_repo(
            SMALL,
            {name: hub_files[name] for name in ("Small-Q4_K_M.gguf", "Small-Q8_0.gguf")},
            downloads=900,
            likes=12,
        )
        hub.add_repo(SLOW, {SLOW_FILE: hub_files[SLOW_FILE]}, downloads=500, likes=3)
        hub.add_repo(
            GATED, {"Gated-Q4_K_M.gguf": hub_files["Gated-Q4_K_M.gguf"]}, gated=True, downloads=40
        )
        hub.add_repo(ODD, {"Odd-Q4_K_M.gguf": b"this is not a GGUF file"}, downloads=1)
        hub.inject(SLOW_FILE, Throttle(SLOW_BYTES_PER_S))
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
        yield hub


@pytest.fixture
def models(tmp_path, tiny_model) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(tiny_model, folder / "tiny.gguf")
    (folder / "broken.gguf").write_bytes(BROKEN_GGUF)
    return folder


@pytest.fixture
def fake():
    engine = FakeEngine()
    yield engine
    engine.shutdown()


def open_window(qtbot, tmp_path: Path, models: Path, engine) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        engine,
        settings=settings,
        models_dir=models,
        include_known=False,  # the hub cache is not scanned: a download's folder joins the scan
        poll_hardware=False,
        state_dir=tmp_path / "state",
    )
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: len(window.cards) == 2, timeout=WAIT_MS)
    return window


@pytest.fixture
def window(qtbot, tmp_path, models, fake, hub):
    window = open_window(qtbot, tmp_path, models, fake)
    yield window
    window.close()
    assert not window.jobs.running


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def search(qtbot, window: MainWindow, text: str) -> None:
    window.show_get_models()
    page = window.get_models
    page.search_box.clear()
    qtbot.keyClicks(page.search_box, text)
    qtbot.keyClick(page.search_box, Qt.Key.Key_Return)


def open_repo(qtbot, window: MainWindow, repo_id: str) -> None:
    page = window.get_models
    qtbot.waitUntil(lambda: repo_id in page.repo_ids(), timeout=WAIT_MS)
    page.select_repo(repo_id)


def wait_fits(qtbot, window: MainWindow, count: int) -> None:
    page = window.get_models

    def read() -> bool:
        rows = page.rows.values()
        return len(rows) == count and all(row.view.fit.verdict != "pending" for row in rows)

    qtbot.waitUntil(read, timeout=WAIT_MS)


def row_for(window: MainWindow, file_name: str):
    (row,) = [r for r in window.get_models.rows.values() if r.view.reference.endswith(file_name)]
    return row


def transfer_row(qtbot, window: MainWindow, key: str) -> TransferRow:
    qtbot.waitUntil(lambda: key in window.transfers_panel.rows, timeout=WAIT_MS)
    return window.transfers_panel.rows[key]


def record_views(window: MainWindow, key: str) -> list:
    seen = []
    window.controller.transfer_changed.connect(
        lambda view: seen.append(view) if view.key == key else None
    )
    return seen


def wait_stage(qtbot, row: TransferRow, stage: Stage) -> None:
    qtbot.waitUntil(lambda: row.view.stage is stage, timeout=WAIT_MS)


def wait_bytes(qtbot, row: TransferRow) -> None:
    """Until some bytes have arrived (so there is something to keep or delete)."""

    def some() -> bool:
        return row.view.stage is Stage.DOWNLOADING and row.view.amount_text.split(" ")[0] != "0"

    qtbot.waitUntil(some, timeout=WAIT_MS)


def shown_buttons(row: TransferRow) -> list[str]:
    return [button.text() for button in row.buttons.values() if button.isVisibleTo(row)]


def partials(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "hf-cache").rglob("*.incomplete"))


# -- searching and reading a repository -----------------------------------------------------------


def test_search_lists_repositories_then_models_with_their_fit(qtbot, window):
    search(qtbot, window, "gguf")
    page = window.get_models
    qtbot.waitUntil(lambda: page.results.count() == 4, timeout=WAIT_MS)
    assert page.repo_ids() == [SMALL, SLOW, GATED, ODD]  # most downloaded first
    assert "4 repositories" in page.search_status.text()
    gated = [page.results.itemWidget(page.results.item(i)).gated for i in range(4)]
    assert [marker.isVisibleTo(page) for marker in gated] == [False, False, True, False]
    assert gated[2].text() == "Gated"

    open_repo(qtbot, window, SMALL)
    wait_fits(qtbot, window, 2)
    q4, q8 = row_for(window, "Small-Q4_K_M.gguf"), row_for(window, "Small-Q8_0.gguf")
    assert q4.quantization.text() == "Q4_K_M" and q8.quantization.text() == "Q8_0"
    listing = window.hub.listing
    sizes = {model.quantization: format_bytes(model.size) for model in listing.models}
    assert q4.size.text() == sizes["Q4_K_M"] and q8.size.text() == sizes["Q8_0"]
    for row in (q4, q8):  # the verdict the presenter gives for the header read over HTTP
        assert row.fit.property("verdict") in presenter.FIT_LABELS
        assert row.fit.text() != "Fit unknown" and "RAM" in row.fit.toolTip()
        assert row.button.text() == "Download" and row.button.isEnabled()
    assert q4.recommended.isVisibleTo(q4) and not q8.recommended.isVisibleTo(q8)
    assert "2 GGUF models" in page.repo_status.text()


def test_a_header_that_cannot_be_read_shows_fit_unknown_with_the_reason(qtbot, window):
    search(qtbot, window, "odd")
    open_repo(qtbot, window, ODD)
    wait_fits(qtbot, window, 1)
    (row,) = window.get_models.rows.values()
    assert row.fit.text() == "Fit unknown"
    assert row.fit.toolTip()  # the core's reason, for hover and screen readers
    assert "Traceback" not in row.fit.toolTip()
    assert row.button.isEnabled()  # still downloadable: the check decides nothing


def test_a_gated_repository_says_so_in_place(qtbot, window):
    search(qtbot, window, "gated")
    open_repo(qtbot, window, GATED)
    page = window.get_models
    qtbot.waitUntil(lambda: page.repo_error.isVisibleTo(page), timeout=WAIT_MS)
    assert "gated" in page.repo_error.text() and "HF_TOKEN" in page.repo_error.text()
    assert not page.rows and not page.models_scroll.isVisibleTo(page)
    # Right under the repository's name, as tall as its lines, not stretched down the page.
    error = page.repo_error
    qtbot.waitUntil(
        lambda: error.height() <= error.heightForWidth(error.width()) + 4, timeout=WAIT_MS
    )


def test_a_repository_that_is_not_there_is_named_not_found(qtbot, window):
    page = window.get_models
    window.show_get_models()
    window.hub.open_repo("test-org/Nothing-Here")
    qtbot.waitUntil(lambda: page.repo_error.isVisibleTo(page), timeout=WAIT_MS)
    assert "no such repository" in page.repo_error.text()


def test_an_unreachable_hub_is_a_network_error_in_place(qtbot, window, monkeypatch):
    closed = FakeHub(Path(window.models_dir).parent / "gone").start()
    endpoint = closed.endpoint
    closed.stop()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    search(qtbot, window, "anything")
    page = window.get_models
    qtbot.waitUntil(lambda: page.search_error.isVisibleTo(page), timeout=WAIT_MS)
    assert "could not reach the hub" in page.search_error.text()
    assert not page.search_status.isVisibleTo(page)


def test_a_rate_limited_search_says_to_try_later(qtbot, window, monkeypatch):
    class TooMany(Exception):
        response = type("Response", (), {"status_code": 429})()

    class Api:
        def list_models(self, **_kwargs):
            raise TooMany("429 Too Many Requests")

    monkeypatch.setattr("llm_desktop.core.hf_hub._api", lambda: Api())
    search(qtbot, window, "demo")
    page = window.get_models
    qtbot.waitUntil(lambda: page.search_error.isVisibleTo(page), timeout=WAIT_MS)
    assert "limiting requests" in page.search_error.text()


# -- downloading -------------------------------------------------------------------------------


def test_download_progresses_in_the_tray_and_load_loads_the_new_model(qtbot, window, fake):
    assert not window.transfers_panel.isVisibleTo(window)  # no transfers: no tray
    search(qtbot, window, "slow")
    open_repo(qtbot, window, SLOW)
    wait_fits(qtbot, window, 1)
    model_row = row_for(window, SLOW_FILE)
    key = model_row.view.key
    seen = record_views(window, key)
    click(qtbot, model_row.button)

    row = transfer_row(qtbot, window, key)
    assert window.transfers_panel.isVisibleTo(window)
    qtbot.waitUntil(lambda: not model_row.button.isEnabled(), timeout=WAIT_MS)
    assert model_row.button.text().startswith(("Connecting", "Downloading"))
    wait_stage(qtbot, row, Stage.COMPLETE)

    downloading = [view for view in seen if view.stage is Stage.DOWNLOADING]
    assert any(0 < view.pct < 100 for view in downloading), "the bar moved mid-way"
    assert [v.pct for v in downloading] == sorted(v.pct for v in downloading)
    assert any(view.rate_text.endswith("/s") for view in downloading)
    assert any(view.eta_text for view in downloading)
    assert shown_buttons(row) == ["Load", "Dismiss"]
    assert row.buttons[ActionId.LOAD].objectName() == "primaryButton"
    assert model_row.button.text() == "Load"  # the Get models row follows its download

    toast_shown = [t.message.key for t in window.toasts.visible_toasts()]
    assert f"transfer:{key}" in toast_shown  # "Downloaded …" with its own Load
    path = row.view.result_path
    click(qtbot, row.buttons[ActionId.LOAD])
    qtbot.waitUntil(lambda: bool(fake.loads), timeout=WAIT_MS)
    assert fake.loads[0].path == path and fake.loads[0].model == model_id(path)
    assert model_id(path) in window.cards  # the library lists the new model
    assert window.tabs.currentIndex() == 0  # and shows it
    # Loading was what the row was for: it leaves the tray, and the empty tray goes.
    qtbot.waitUntil(lambda: key not in window.transfers_panel.rows, timeout=WAIT_MS)
    assert not window.transfers_panel.isVisibleTo(window)
    # and its "Downloaded" toast, whose Load has nothing left to do, goes too
    toasts = [t.message.key for t in window.toasts.visible_toasts()]
    assert f"transfer:{key}" not in toasts


def test_the_downloaded_toast_loads_too(qtbot, window, fake):
    search(qtbot, window, "small")
    open_repo(qtbot, window, SMALL)
    wait_fits(qtbot, window, 2)
    model_row = row_for(window, "Small-Q8_0.gguf")
    click(qtbot, model_row.button)
    row = transfer_row(qtbot, window, model_row.view.key)
    wait_stage(qtbot, row, Stage.COMPLETE)
    notice = f"transfer:{row.key}"
    qtbot.waitUntil(lambda: notice in window._toast_notices, timeout=WAIT_MS)
    path = row.view.result_path
    window._toast_action(notice)  # the toast's Load button
    qtbot.waitUntil(lambda: bool(fake.loads), timeout=WAIT_MS)
    assert fake.loads[0].path == path


def test_clear_finished_dismisses_the_done_rows_and_the_models_stay_loadable(qtbot, window):
    search(qtbot, window, "small")
    open_repo(qtbot, window, SMALL)
    wait_fits(qtbot, window, 2)
    names = ("Small-Q4_K_M.gguf", "Small-Q8_0.gguf")
    for name in names:
        click(qtbot, row_for(window, name).button)
    rows = [transfer_row(qtbot, window, row_for(window, name).view.key) for name in names]
    for row in rows:
        wait_stage(qtbot, row, Stage.COMPLETE)
    tray = window.transfers_panel
    assert tray.summary.text() == "2 done" and tray.clear_button.isVisibleTo(tray)

    click(qtbot, tray.clear_button)
    qtbot.waitUntil(lambda: not tray.rows, timeout=WAIT_MS)
    assert not tray.isVisibleTo(window)
    for name in names:  # downloaded: Load, not Download again
        assert row_for(window, name).button.text() == "Load"


def test_pause_then_resume_continues_from_the_bytes_kept(qtbot, window, hub):
    search(qtbot, window, "slow")
    open_repo(qtbot, window, SLOW)
    wait_fits(qtbot, window, 1)
    model_row = row_for(window, SLOW_FILE)
    click(qtbot, model_row.button)
    row = transfer_row(qtbot, window, model_row.view.key)
    wait_bytes(qtbot, row)
    assert shown_buttons(row) == ["Pause", "Cancel"]

    click(qtbot, row.buttons[ActionId.PAUSE])
    wait_stage(qtbot, row, Stage.PAUSED)
    assert shown_buttons(row) == ["Resume", "Cancel"]
    assert model_row.button.text().startswith("Paused") and not model_row.button.isEnabled()
    (partial,) = partials(Path(window.models_dir).parent)
    kept = partial.stat().st_size
    assert kept > 0
    before = len(hub.requests)

    click(qtbot, row.buttons[ActionId.RESUME])
    wait_stage(qtbot, row, Stage.COMPLETE)
    gets = [r for r in hub.requests[before:] if r.method == "GET" and r.filename == SLOW_FILE]
    resumed = [r.range for r in gets if r.range]  # the paused GET is recorded when it ends
    assert resumed == [f"bytes={kept}-"], "resumed from the bytes kept, not from the start"


def test_cancel_asks_and_keep_keeps_the_bytes_to_resume(qtbot, window):
    search(qtbot, window, "slow")
    open_repo(qtbot, window, SLOW)
    wait_fits(qtbot, window, 1)
    click(qtbot, row_for(window, SLOW_FILE).button)
    row = transfer_row(qtbot, window, row_for(window, SLOW_FILE).view.key)
    wait_bytes(qtbot, row)

    click(qtbot, row.buttons[ActionId.CANCEL])
    qtbot.waitUntil(lambda: row.question is not None and row.question.isVisible(), timeout=WAIT_MS)
    box = row.question
    question = row.view.cancel_question
    assert box.text().startswith("Cancel downloading") and "Keep the" in box.text()
    labels = [button.text() for button in box.buttons()]
    assert question.keep.label in labels and question.discard.label in labels
    keep = next(b for b in box.buttons() if b.text().startswith("Keep"))
    click(qtbot, keep)

    wait_stage(qtbot, row, Stage.CANCELLED)
    assert partials(Path(window.models_dir).parent), "the bytes are kept"
    assert shown_buttons(row) == ["Resume", "Delete partial file"]

    click(qtbot, row.buttons[ActionId.DISCARD])
    qtbot.waitUntil(lambda: row.key not in window.transfers_panel.rows, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not partials(Path(window.models_dir).parent), timeout=WAIT_MS)


def test_cancel_and_delete_removes_the_bytes(qtbot, window):
    search(qtbot, window, "slow")
    open_repo(qtbot, window, SLOW)
    wait_fits(qtbot, window, 1)
    click(qtbot, row_for(window, SLOW_FILE).button)
    row = transfer_row(qtbot, window, row_for(window, SLOW_FILE).view.key)
    wait_bytes(qtbot, row)

    click(qtbot, row.buttons[ActionId.CANCEL])
    qtbot.waitUntil(lambda: row.question is not None and row.question.isVisible(), timeout=WAIT_MS)
    delete = next(b for b in row.question.buttons() if b.text() == "Delete")
    click(qtbot, delete)
    wait_stage(qtbot, row, Stage.CANCELLED)
    assert not partials(Path(window.models_dir).parent)
    assert shown_buttons(row) == ["Dismiss"]


def test_closing_the_question_cancels_nothing(qtbot, window):
    search(qtbot, window, "slow")
    open_repo(qtbot, window, SLOW)
    wait_fits(qtbot, window, 1)
    click(qtbot, row_for(window, SLOW_FILE).button)
    row = transfer_row(qtbot, window, row_for(window, SLOW_FILE).view.key)
    wait_bytes(qtbot, row)
    click(qtbot, row.buttons[ActionId.CANCEL])
    qtbot.waitUntil(lambda: row.question is not None and row.question.isVisible(), timeout=WAIT_MS)
    click(qtbot, row.question.button(QMessageBox.StandardButton.Close))
    wait_stage(qtbot, row, Stage.COMPLETE)  # it went on to the end


def test_a_paused_download_is_there_paused_after_a_restart(qtbot, tmp_path, models, hub):
    first_engine = FakeEngine()
    first = open_window(qtbot, tmp_path, models, first_engine)
    search(qtbot, first, "slow")
    open_repo(qtbot, first, SLOW)
    wait_fits(qtbot, first, 1)
    key = row_for(first, SLOW_FILE).view.key
    click(qtbot, row_for(first, SLOW_FILE).button)
    row = transfer_row(qtbot, first, key)
    wait_bytes(qtbot, row)
    click(qtbot, row.buttons[ActionId.PAUSE])
    wait_stage(qtbot, row, Stage.PAUSED)
    first.close()
    first_engine.shutdown()

    second_engine = FakeEngine()
    second = open_window(qtbot, tmp_path, models, second_engine)
    row = transfer_row(qtbot, second, key)
    wait_stage(qtbot, row, Stage.PAUSED)
    assert shown_buttons(row) == ["Resume", "Cancel"]
    click(qtbot, row.buttons[ActionId.RESUME])
    wait_stage(qtbot, row, Stage.COMPLETE)
    second.close()
    second_engine.shutdown()


# -- quantizing from a card's menu ------------------------------------------------------------


def test_quantize_is_offered_only_for_unquantized_readable_models(window):
    offered = {
        Path(card.view.path).name: card.more_button.isVisibleTo(card)
        for card in window.cards.values()
    }
    assert offered == {"tiny.gguf": True, "broken.gguf": False}
    tiny = next(c for c in window.cards.values() if c.view.path.endswith("tiny.gguf"))
    assert [a.text() for a in tiny.quantize_menu.actions()] == list(QUANT_TYPES)
    entry = window.controller.store.model(tiny.model_id).entry
    assert presenter.quantize_action(replace(entry, quantization="Q4_K_M")) is None
    assert presenter.quantize_action(replace(entry, quantization="BF16")) is not None


def test_quantize_from_the_card_menu_lists_the_new_model(qtbot, window):
    tiny = next(c for c in window.cards.values() if c.view.path.endswith("tiny.gguf"))
    out = default_output_path(tiny.view.path, "Q8_0")
    (action,) = [a for a in tiny.quantize_menu.actions() if a.text() == "Q8_0"]
    action.trigger()

    key = f"quantize:{out}"
    row = transfer_row(qtbot, window, key)
    assert row.kind.text() == "Quantize"
    wait_stage(qtbot, row, Stage.COMPLETE)
    assert row.view.result_path == str(out) and out.is_file()
    qtbot.waitUntil(lambda: model_id(out) in window.cards, timeout=WAIT_MS)
    card = window.cards[model_id(out)]
    assert "Q8_0" in card.facts.text()
    assert not card.more_button.isVisibleTo(card)  # already quantized: nothing to offer


def test_a_downloaded_model_quantizes_into_the_models_folder_not_the_hub_cache(
    qtbot, window, tmp_path
):
    search(qtbot, window, "small")
    open_repo(qtbot, window, SMALL)
    wait_fits(qtbot, window, 2)
    click(qtbot, row_for(window, "Small-Q4_K_M.gguf").button)
    row = transfer_row(qtbot, window, row_for(window, "Small-Q4_K_M.gguf").view.key)
    wait_stage(qtbot, row, Stage.COMPLETE)
    downloaded = model_id(row.view.result_path)
    qtbot.waitUntil(lambda: downloaded in window.cards, timeout=WAIT_MS)
    card = window.cards[downloaded]
    (action,) = [a for a in card.quantize_menu.actions() if a.text() == "Q8_0"]
    action.trigger()

    out = Path(window.models_dir) / "Small-Q8_0.gguf"  # the hub cache is the hub client's
    quantizing = transfer_row(qtbot, window, f"quantize:{out}")
    wait_stage(qtbot, quantizing, Stage.COMPLETE)
    assert out.is_file()
    assert not list((tmp_path / "hf-cache").rglob("*Q8_0*"))
    qtbot.waitUntil(lambda: model_id(out) in window.cards, timeout=WAIT_MS)


# -- what a person left behind, and what a newer request replaced ---------------------------------


def test_a_model_downloaded_before_offers_load(qtbot, tmp_path, models, hub):
    first_engine = FakeEngine()
    first = open_window(qtbot, tmp_path, models, first_engine)
    search(qtbot, first, "small")
    open_repo(qtbot, first, SMALL)
    wait_fits(qtbot, first, 2)
    click(qtbot, row_for(first, "Small-Q8_0.gguf").button)
    row = transfer_row(qtbot, first, row_for(first, "Small-Q8_0.gguf").view.key)
    wait_stage(qtbot, row, Stage.COMPLETE)
    path = row.view.result_path
    first.close()
    first_engine.shutdown()

    engine = FakeEngine()
    window = open_window(qtbot, tmp_path, models, engine)
    search(qtbot, window, "small")
    open_repo(qtbot, window, SMALL)
    wait_fits(qtbot, window, 2)
    here, other = row_for(window, "Small-Q8_0.gguf"), row_for(window, "Small-Q4_K_M.gguf")
    assert (here.button.text(), other.button.text()) == ("Load", "Download")
    click(qtbot, here.button)
    qtbot.waitUntil(lambda: bool(engine.loads), timeout=WAIT_MS)
    assert engine.loads[0].path == path and engine.loads[0].model == model_id(path)
    window.close()
    engine.shutdown()


def test_an_older_search_answering_late_is_dropped(qtbot, window, monkeypatch):
    from llm_desktop.core import hf_hub

    real_search = hf_hub.search
    release = threading.Event()

    def search_slowly(text, *args, **kwargs):
        if text == "slow":
            release.wait(WAIT_MS / 1000)
        return real_search(text, *args, **kwargs)

    monkeypatch.setattr(hf_hub, "search", search_slowly)
    page = window.get_models
    search(qtbot, window, "slow")  # answers only once released
    search(qtbot, window, "small")
    qtbot.waitUntil(lambda: page.repo_ids() == [SMALL], timeout=WAIT_MS)
    answered = []
    window.hub.searching.connect(answered.append)  # nothing new starts
    release.set()
    qtbot.waitUntil(lambda: not window.jobs.running, timeout=WAIT_MS)
    assert page.repo_ids() == [SMALL] and "“small”" in page.search_status.text()
    assert not answered


def test_an_empty_library_offers_get_models_first(qtbot, tmp_path, fake, hub):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        fake,
        settings=settings,
        models_dir=tmp_path / "no-models",
        include_known=False,
        poll_hardware=False,
        state_dir=tmp_path / "state",
    )
    qtbot.addWidget(window)
    window.resize(1180, 760)
    window.show()
    qtbot.waitUntil(lambda: window.empty_state.isVisible(), timeout=WAIT_MS)
    button = window.find_button
    assert button.isVisible() and button.objectName() == "primaryButton"
    # The explanation is never cut: its label is as tall as its wrapped lines.
    (text,) = [
        label
        for label in window.empty_state.findChildren(QLabel)
        if label.wordWrap() and "Hugging Face" in label.text()
    ]
    qtbot.waitUntil(lambda: text.height() >= text.heightForWidth(text.width()), timeout=WAIT_MS)

    click(qtbot, button)
    assert window.tabs.currentWidget() is window.get_models
    window.close()


def test_the_in_app_server_shares_the_apps_transfers(qtbot, window):
    import httpx

    server = window.controller.ensure_server()
    qtbot.waitUntil(lambda: server.started, timeout=WAIT_MS)
    assert server.state.transfers is window.controller.transfers  # one restart list
    search(qtbot, window, "small")
    open_repo(qtbot, window, SMALL)
    wait_fits(qtbot, window, 2)
    click(qtbot, row_for(window, "Small-Q8_0.gguf").button)
    row = transfer_row(qtbot, window, row_for(window, "Small-Q8_0.gguf").view.key)
    wait_stage(qtbot, row, Stage.COMPLETE)
    new = model_id(row.view.result_path)
    # the page lists the app's download, and the model it made
    qtbot.waitUntil(lambda: server.state.store.model(new) is not None, timeout=WAIT_MS)
    answer = httpx.get(
        f"{server.base_url}/api/transfers",
        headers={"Authorization": f"Bearer {server.config.token}"},
        timeout=10,
    )
    assert row.key in [transfer["key"] for transfer in answer.json()["transfers"]]
