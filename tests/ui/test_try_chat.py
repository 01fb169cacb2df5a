"""Try it as a chat: the system prompt and the turns so far go to the model as messages (the
/v1/chat/completions path), a raw completion sends the prompt alone, Stop stops, and every
reply is logged beside the API's requests.

The fake engine records each `ReplyRequest`; one real test chats with a generated model.
"""

from __future__ import annotations

import pytest

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ModelState
from llm_desktop.core.generation import (
    CHAT,
    COMPLETION,
    FINISH_CANCELLED,
    FINISH_LENGTH,
    ReplyRequest,
)
from llm_desktop.ui.main_window import MainWindow
from llm_desktop.ui.try_panel import TryPanel
from tests.helpers.fake_engine import FakeEngine
from tests.ui.test_main_window import card_named, click, make_window, wait_cards

WAIT_MS = 60_000


@pytest.fixture
def window(qtbot, folder, tmp_path, fake):
    window = make_window(qtbot, folder, tmp_path, fake, poll_hardware=False)
    wait_cards(qtbot, window, 1)
    yield window
    window.close()
    assert not window.jobs.running


def loaded(qtbot, window: MainWindow, fake: FakeEngine) -> str:
    """Load tiny.gguf and open Try it on it; its model id."""
    card = card_named(window, "tiny")
    click(qtbot, card.load_button)
    fake.finish(card.model_id)
    qtbot.waitUntil(lambda: window.try_panel.model_picker.count() == 1, timeout=WAIT_MS)
    click(qtbot, card.try_button)
    return card.model_id


def send(qtbot, panel: TryPanel, text: str) -> None:
    panel.prompt.setPlainText(text)
    click(qtbot, panel.send_button)
    qtbot.waitUntil(lambda: not panel.generating, timeout=WAIT_MS)


def turns(panel: TryPanel) -> list[tuple[str, str]]:
    return [(turn.label, turn.text) for turn in panel.conversation.turns]


def test_a_chat_sends_the_system_prompt_and_the_turns_so_far(qtbot, window, fake):
    model = loaded(qtbot, window, fake)
    panel = window.try_panel
    title = panel.model_picker.currentText()
    panel.system_prompt.setText("Be brief.")
    panel.max_tokens.setValue(16)
    send(qtbot, panel, "Hi")
    send(qtbot, panel, "And then?")

    brief = ("system", "Be brief.")
    first = ReplyRequest(mode=CHAT, messages=(brief, ("user", "Hi")), max_tokens=16)
    second = ReplyRequest(
        mode=CHAT,
        messages=(brief, ("user", "Hi"), ("assistant", "Hello, world"), ("user", "And then?")),
        max_tokens=16,
    )
    assert fake.requests == [(model, first), (model, second)]
    assert turns(panel) == [
        ("You", "Hi"),
        (title, "Hello, world"),
        ("You", "And then?"),
        (title, "Hello, world"),
    ]
    shown = panel.transcript.toPlainText()
    assert shown.count("Hello, world") == 2 and "And then?" in shown
    assert panel.conversation.turns[-1].footer.startswith("3 tokens")
    assert panel.prompt.toPlainText() == "", "a sent message leaves the box"


def test_every_reply_is_logged_with_the_apis_requests_under_its_model(qtbot, window, fake):
    model = loaded(qtbot, window, fake)
    panel = window.try_panel
    send(qtbot, panel, "Hi")
    (record,) = window.controller.serving.requests(model)
    assert (record.endpoint, record.client, record.completion_tokens) == ("chat", "app", 3)
    tree = window.serving_panel.request_tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() == 1, timeout=WAIT_MS)
    group = tree.topLevelItem(0)
    assert group.text(0) == f"{panel.model_picker.currentText()} · 1 request"
    assert [group.child(0).text(column) for column in (1, 2, 3)] == [
        "Chat",
        "Try it",
        "1 in · 3 out",  # the fake counts a word a token
    ]


def test_a_raw_completion_sends_the_prompt_alone(qtbot, window, fake):
    model = loaded(qtbot, window, fake)
    panel = window.try_panel
    panel.system_prompt.setText("Be brief.")
    send(qtbot, panel, "Hi")
    click(qtbot, panel.raw)
    assert not panel.system_prompt.isEnabled(), "a raw prompt has no system prompt"
    panel.max_tokens.setValue(2)
    send(qtbot, panel, "Once upon a time")
    raw = ReplyRequest(mode=COMPLETION, prompt="Once upon a time", max_tokens=2)
    assert fake.requests[-1] == (model, raw)
    assert turns(panel)[-2:] == [
        ("Prompt", "Once upon a time"),
        (f"{panel.model_picker.currentText()} (completion)", "Hello,"),
    ]
    assert panel.conversation.turns[-1].footer.endswith("cut at max tokens")
    assert window.controller.serving.requests(model)[0].finish_reason == FINISH_LENGTH

    click(qtbot, panel.raw)
    send(qtbot, panel, "Again")
    assert fake.requests[-1][1].messages == (
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello, world"),
        ("user", "Again"),
    ), "the raw exchange is no part of the chat"


def test_stop_stops_the_reply_and_keeps_what_it_said(qtbot, window, fake):
    model = loaded(qtbot, window, fake)
    panel = window.try_panel
    fake.hold_replies = True  # the reply stays open after its pieces until it is stopped
    panel.prompt.setPlainText("Hi")
    click(qtbot, panel.send_button)
    qtbot.waitUntil(lambda: panel.pieces_received == 3, timeout=WAIT_MS)
    assert panel.generating and panel.stop_button.isEnabled()
    assert not panel.send_button.isEnabled()
    click(qtbot, panel.stop_button)
    qtbot.waitUntil(lambda: not panel.generating, timeout=WAIT_MS)

    assert fake.stops == [(model, "app")]
    assert not fake.usage(model).in_use, "the model is free for the next request"
    assert panel.conversation.turns[-1].text == "Hello, world"
    assert panel.conversation.turns[-1].footer.endswith("stopped")
    assert window.controller.serving.requests(model)[0].finish_reason == FINISH_CANCELLED
    assert panel.send_button.isEnabled() and not panel.stop_button.isEnabled()


def test_a_failed_reply_says_why_and_leaves_the_history_with_its_question(qtbot, window, fake):
    model = loaded(qtbot, window, fake)
    panel = window.try_panel
    send(qtbot, panel, "Hi")
    fake.hold_replies = True
    fake.pieces = ()
    panel.prompt.setPlainText("Still there?")
    click(qtbot, panel.send_button)
    qtbot.waitUntil(lambda: fake.usage(model).in_use, timeout=WAIT_MS)
    fake.unload(model)  # a person unloads it mid-reply: the reply ends with an error
    qtbot.waitUntil(lambda: not panel.generating, timeout=WAIT_MS)
    failed = panel.conversation.turns[-1]
    assert (failed.footer, failed.failed) == ("No reply: The model was unloaded", True)

    fake.finish(model)
    card = card_named(window, "tiny")
    qtbot.waitUntil(lambda: card.view.state is ModelState.UNLOADED, timeout=WAIT_MS)
    click(qtbot, card.load_button)
    fake.finish(model)
    qtbot.waitUntil(lambda: card.view.state is ModelState.LOADED, timeout=WAIT_MS)
    fake.hold_replies = False
    send(qtbot, panel, "Hello?")
    assert fake.requests[-1][1].messages == (
        ("user", "Hi"),
        ("assistant", "Hello, world"),
        ("user", "Hello?"),
    )


def test_clear_starts_a_new_conversation(qtbot, window, fake):
    model = loaded(qtbot, window, fake)
    panel = window.try_panel
    assert not panel.clear_button.isEnabled(), "nothing to clear yet"
    send(qtbot, panel, "Hi")
    click(qtbot, panel.clear_button)
    assert turns(panel) == [] and panel.transcript.toPlainText() == ""
    send(qtbot, panel, "Hi again")
    assert fake.requests[-1] == (
        model,
        ReplyRequest(mode=CHAT, messages=(("user", "Hi again"),), max_tokens=128),
    )


def test_a_model_without_a_chat_template_suggests_raw(qtbot, tmp_path, folder, fake):
    write_demo_model(folder / "base.gguf", DemoSpec(seed=7, name="Base demo", chat_template=None))
    window = make_window(qtbot, folder, tmp_path, fake, poll_hardware=False)
    try:
        wait_cards(qtbot, window, 2)
        panel = window.try_panel
        base, tiny = card_named(window, "base"), card_named(window, "tiny")
        for card in (base, tiny):
            click(qtbot, card.load_button)
            fake.finish(card.model_id)
        qtbot.waitUntil(lambda: panel.model_picker.count() == 2, timeout=WAIT_MS)
        panel.select(base.model_id)
        assert panel.template_hint.isVisible()
        assert "no chat template" in panel.template_hint.text()
        click(qtbot, panel.raw)
        assert not panel.template_hint.isVisible(), "Raw chosen: nothing more to suggest"
        click(qtbot, panel.raw)
        panel.select(tiny.model_id)
        assert not panel.template_hint.isVisible(), "the tiny model has its own template"
    finally:
        window.close()


def test_real_try_it_chats_in_the_models_template(qtbot, tmp_path, folder):
    window = make_window(qtbot, folder, tmp_path, Engine(warm_hosts=1), poll_hardware=False)
    try:
        wait_cards(qtbot, window, 1)
        card = card_named(window, "tiny")
        click(qtbot, card.load_button)
        qtbot.waitUntil(lambda: card.view.state is ModelState.LOADED, timeout=WAIT_MS)
        click(qtbot, card.try_button)
        panel = window.try_panel
        panel.system_prompt.setText("You are terse.")
        panel.max_tokens.setValue(6)
        send(qtbot, panel, "Hello")
        send(qtbot, panel, "Again")
        reply = panel.conversation.turns[-1]
        assert reply.text and not reply.failed  # random weights: the text is gibberish
        assert reply.footer.startswith("6 tokens · "), reply.footer
        assert reply.footer.endswith("cut at max tokens"), reply.footer
        first, second = window.controller.serving.requests(card.model_id)[::-1]
        assert second.prompt_tokens > first.prompt_tokens, "the second turn carries the first"
    finally:
        window.close()
    assert not window.jobs.running
