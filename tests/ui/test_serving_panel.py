"""The Serving tab: the API server started and stopped from the window (a real server on
loopback), its address and key, the serving policy kept in the settings, the recent requests
as they come (a real request with the official `openai` client), and code to copy."""

from __future__ import annotations

import socket

import openai
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit

from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ModelState
from llm_desktop.core.serving import ServingPolicy
from llm_desktop.core.serving_presenter import SERVER_RUNNING, SERVER_STOPPED
from llm_desktop.ui.main_window import MainWindow
from tests.helpers.fake_engine import FakeEngine
from tests.ui.test_main_window import card_named, click, make_window, wait_cards

WAIT_MS = 60_000
GB = 10**9


@pytest.fixture
def window(qtbot, folder, tmp_path, fake):
    window = make_window(qtbot, folder, tmp_path, fake, poll_hardware=False)
    wait_cards(qtbot, window, 1)
    window.show_serving()
    yield window
    window.close()
    assert not window.jobs.running


@pytest.fixture
def real_window(qtbot, folder, tmp_path):
    window = make_window(qtbot, folder, tmp_path, Engine(warm_hosts=1), poll_hardware=False)
    wait_cards(qtbot, window, 1)
    window.show_serving()
    yield window
    window.close()
    assert not window.jobs.running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(qtbot, window: MainWindow, port: int) -> None:
    panel = window.serving_panel
    panel.port.setValue(port)
    click(qtbot, panel.start_button)


def test_the_api_server_starts_and_stops_and_a_request_is_listed(qtbot, real_window):
    window, panel = real_window, real_window.serving_panel
    controller = window.controller
    assert (panel.state_chip.text(), panel.start_button.text()) == ("Stopped", "Start server")
    port = free_port()
    start(qtbot, window, port)
    qtbot.waitUntil(lambda: panel.state_chip.text() == "Running", timeout=WAIT_MS)
    url = f"http://127.0.0.1:{port}/v1"
    assert panel.url_field.text() == url and controller.api_server.api_url == url
    assert panel.start_button.text() == "Stop server" and not panel.port.isEnabled()
    assert controller.api_server.state.serving is controller.serving, "one serving for all"
    assert controller.ensure_server().state.serving is controller.serving

    token = controller.api_token()
    assert panel.token_field.echoMode() is QLineEdit.EchoMode.Password
    click(qtbot, panel.show_token)
    assert panel.token_field.echoMode() is QLineEdit.EchoMode.Normal
    assert panel.token_field.text() == token
    click(qtbot, panel.copy_url)
    assert QGuiApplication.clipboard().text() == url
    click(qtbot, panel.copy_token)
    assert QGuiApplication.clipboard().text() == token

    card = card_named(window, "tiny")
    assert card.view.state is not ModelState.LOADED
    client = openai.OpenAI(base_url=panel.url_field.text(), api_key=token, max_retries=0)
    answer = client.chat.completions.create(
        model=card.model_id,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=4,
    )
    assert answer.usage.completion_tokens == 4
    tree = panel.request_tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() == 1, timeout=WAIT_MS)
    group = tree.topLevelItem(0)
    assert group.text(0) == f"{card.view.title} · 1 request"
    row = [group.child(0).text(column) for column in range(tree.columnCount())]
    assert row[1:4] == ["Chat", "127.0.0.1", f"{answer.usage.prompt_tokens} in · 4 out"]
    assert row[-1] == "loaded for it · cut at max tokens", "loaded on request"
    assert not panel.requests_empty.isVisible()

    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: panel.state_chip.text() == "Stopped", timeout=WAIT_MS)
    assert controller.api_server is None and panel.port.isEnabled()
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_a_port_in_use_is_a_message_not_a_crash(qtbot, window):
    panel = window.serving_panel
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        start(qtbot, window, port)
        qtbot.waitUntil(panel.error_label.isVisible, timeout=WAIT_MS)
    assert panel.error_label.text().startswith(f"Port {port} is already in use")
    qtbot.waitUntil(lambda: window.controller.api_state == SERVER_STOPPED, timeout=WAIT_MS)
    assert panel.state_chip.text() == "Stopped" and panel.start_button.isEnabled()
    assert window.controller.api_server is None
    assert window.toasts.visible_toasts() == [], "shown in place, where the person looks"

    start(qtbot, window, free_port())  # another port works, and the message goes
    assert not panel.error_label.isVisible()
    qtbot.waitUntil(lambda: window.controller.api_state == SERVER_RUNNING, timeout=WAIT_MS)


def test_the_serving_policy_is_applied_at_once_and_kept_for_the_next_run(
    qtbot, window, folder, tmp_path
):
    panel = window.serving_panel
    assert window.controller.serving.policy == ServingPolicy()
    assert panel.keep_alive.currentText() == "15 min"
    assert panel.max_loaded.text() == "No limit" and panel.memory_budget.text() == "No budget"
    panel.keep_alive.setCurrentIndex(panel.keep_alive.findText("5 min"))
    panel.max_loaded.setValue(2)
    panel.memory_budget.setValue(8)
    wanted = ServingPolicy(keep_alive_s=300.0, max_loaded=2, memory_budget=8 * GB)
    assert window.controller.serving.policy == wanted
    assert panel.policy_line.text() == (
        "Models loaded on request: unloads after 5 min idle · at most 2 loaded at once · "
        "memory budget 8.0 GB"
    )
    panel.keep_alive.setCurrentIndex(panel.keep_alive.findText("Never"))
    assert window.controller.serving.policy.keep_alive_s is None
    window.close()

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert settings.value("serving/max_loaded") in (2, "2")
    again = MainWindow(
        FakeEngine(), settings=settings, models_dir=folder, include_known=False, poll_hardware=False
    )
    qtbot.addWidget(again)
    try:
        expected = ServingPolicy(keep_alive_s=None, max_loaded=2, memory_budget=8 * GB)
        assert again.controller.serving.policy == expected
        shown = again.serving_panel
        assert (shown.keep_alive.currentText(), shown.max_loaded.value()) == ("Never", 2)
        assert shown.memory_budget.value() == 8
    finally:
        again.close()


def test_the_examples_name_the_address_key_and_a_model(qtbot, window):
    panel = window.serving_panel
    controller = window.controller
    model = card_named(window, "tiny").model_id
    python, curl = (view.toPlainText() for view in panel.example_views)
    for code in (python, curl):
        assert controller.api_url in code and controller.api_token() in code and model in code
    assert not panel.copy_example.isVisible(), "the request list has nothing to copy"
    panel.activity.setCurrentIndex(2)
    assert panel.copy_example.isVisible()
    click(qtbot, panel.copy_example)
    assert QGuiApplication.clipboard().text() == curl

    panel.port.setValue(free_port())
    start(qtbot, window, panel.port.value())
    qtbot.waitUntil(lambda: controller.api_state == SERVER_RUNNING, timeout=WAIT_MS)
    assert f":{panel.port.value()}/v1" in panel.example_views[0].toPlainText()


def test_the_api_server_starts_with_the_app_when_it_ran_at_its_last_close(qtbot, folder, tmp_path):
    port = free_port()
    first = make_window(qtbot, folder, tmp_path, FakeEngine(), poll_hardware=False)
    start(qtbot, first, port)
    qtbot.waitUntil(lambda: first.controller.api_state == SERVER_RUNNING, timeout=WAIT_MS)
    token = first.controller.api_token()
    first.close()

    second = make_window(qtbot, folder, tmp_path, FakeEngine(), poll_hardware=False)
    try:
        qtbot.waitUntil(lambda: second.controller.api_state == SERVER_RUNNING, timeout=WAIT_MS)
        assert second.controller.api_url == f"http://127.0.0.1:{port}/v1"
        assert second.controller.api_token() == token, "programs keep their key"
        click(qtbot, second.serving_panel.start_button)  # stopped by hand: stays stopped
        qtbot.waitUntil(lambda: second.controller.api_state == SERVER_STOPPED, timeout=WAIT_MS)
    finally:
        second.close()
    third = make_window(qtbot, folder, tmp_path, FakeEngine(), poll_hardware=False)
    try:
        assert third.controller.api_state == SERVER_STOPPED
    finally:
        third.close()
