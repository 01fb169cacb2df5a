"""What a person reads about serving, decided once: the request list, the API server's states
and failures, the settings' choices, the code to copy, and Try it's turns."""

from __future__ import annotations

import errno
import json
import shlex
import time

import pytest

from llm_desktop.core.presenter import NoticeKind
from llm_desktop.core.serving import RequestRecord
from llm_desktop.core.serving_presenter import (
    ASSISTANT,
    REQUEST_COLUMNS,
    SERVER_RUNNING,
    SERVER_STARTING,
    SERVER_STOPPED,
    SERVER_STOPPING,
    USER,
    api_server_notice,
    api_server_view,
    client_examples,
    client_words,
    keep_alive_choices,
    reply_failure,
    reply_summary,
    request_cells,
    request_group,
    request_line,
    start_failure,
    turn_label,
)

STARTED = time.mktime((2026, 11, 24, 14, 3, 12, 0, 0, -1))


def record(**fields) -> RequestRecord:
    values = {
        "model": "m",
        "endpoint": "chat",
        "client": "127.0.0.1:50123",
        "started": STARTED,
        "prompt_tokens": 33,
        "completion_tokens": 8,
        "seconds": 0.4,
        "first_token_s": 0.21,
        "tokens_per_second": 38.24,
        "finish_reason": "stop",
    }
    return RequestRecord(**{**values, **fields})


def test_a_request_line_reads_when_what_how_much_and_how_fast():
    line = request_line(record())
    assert line.text == "14:03:12 · Chat · 33 in · 8 out · 38.2 tokens/s · first token 0.21 s"
    assert (line.first_token, line.outcome, line.failed) == ("0.21 s", "", False)
    cells = dict(zip(REQUEST_COLUMNS, request_cells(record()), strict=True))
    assert cells == {
        "Time": "14:03:12",
        "Request": "Chat",
        "From": "127.0.0.1",
        "Tokens": "33 in · 8 out",
        "Tokens/s": "38.2",
        "First token": "0.21 s",
        "Outcome": "",
    }


def test_a_request_that_loaded_its_model_says_so_before_how_it_ended():
    line = request_line(record(finish_reason="length", loaded_for_it=True))
    assert line.outcome == "loaded for it · cut at max tokens"


def test_a_failed_request_and_an_embedding_say_how_long_they_took():
    failed = request_line(
        record(error_kind="out_of_memory", first_token_s=None, tokens_per_second=None)
    )
    assert (failed.outcome, failed.first_token, failed.failed) == (
        "failed: out of memory",
        "took 0.40 s",
        True,
    )
    embedding = request_line(
        record(endpoint="embedding", first_token_s=None, tokens_per_second=None)
    )
    assert (embedding.what, embedding.tokens, embedding.first_token) == (
        "Embedding",
        "33 in",
        "took 0.40 s",
    )


def test_requests_are_grouped_under_the_model_and_a_client_is_named_without_its_port():
    assert request_group("Demo", [record()]) == "Demo · 1 request"
    assert request_group("Demo", [record(), record()]) == "Demo · 2 requests"
    assert client_words("app") == "Try it"
    assert client_words("127.0.0.1:50123") == "127.0.0.1"
    assert client_words("[::1]:50123") == "::1"
    assert client_words("my-notebook") == "my-notebook", "a client's own name stays whole"


def test_the_server_says_its_state_and_offers_the_one_action_that_makes_sense():
    stopped = api_server_view(SERVER_STOPPED)
    running = api_server_view(SERVER_RUNNING)
    assert (stopped.chip, stopped.action, stopped.action_enabled, stopped.settings_enabled) == (
        "Stopped",
        "Start server",
        True,
        True,
    )
    assert (running.chip, running.tone, running.action, running.settings_enabled) == (
        "Running",
        "success",
        "Stop server",
        False,
    )
    for between in (SERVER_STARTING, SERVER_STOPPING):
        view = api_server_view(between)
        assert not view.action_enabled and not view.settings_enabled, between
    assert api_server_view("nonsense").state == SERVER_STOPPED


def test_a_port_in_use_is_said_plainly_with_what_to_do():
    in_use = OSError(errno.EADDRINUSE, "Address already in use")
    assert start_failure(8765, in_use) == (
        "Port 8765 is already in use by another program. Choose another port, or stop the "
        "program using it."
    )
    denied = OSError(errno.EACCES, "Permission denied")
    assert "administrator" in start_failure(80, denied) and "1023" in start_failure(80, denied)
    other = RuntimeError("the local server did not start")
    assert start_failure(8765, other) == (
        "The API server could not start on port 8765: the local server did not start"
    )
    notice = api_server_notice(start_failure(8765, in_use), was_running=False)
    assert (notice.kind, notice.title) == (NoticeKind.ERROR, "The API server could not start")
    assert api_server_notice("gone", was_running=True).title == "The API server stopped"


def test_keep_alive_choices_include_the_one_in_force():
    usual = keep_alive_choices(900.0)
    assert [(seconds, label) for seconds, label, _ in usual] == [
        (300.0, "5 min"),
        (900.0, "15 min"),
        (3600.0, "1 h"),
        (None, "Never"),
    ]
    assert usual[1][2] == "Unloads after 15 min idle"
    assert usual[3][2] == "Stays loaded"
    custom = [seconds for seconds, _, _ in keep_alive_choices(600.0)]
    assert custom == [300.0, 600.0, 900.0, 3600.0, None], "set by `serve --keep-alive 10m`"


def test_the_python_example_is_valid_python_with_the_address_key_and_model():
    python, curl = client_examples("http://127.0.0.1:8765/v1", "se'cret", "demo-123")
    assert (python.name, curl.name) == ("Python", "curl")
    compile(python.code, "example.py", "exec")
    namespace: dict = {}
    calls = []

    class FakeClient:
        def __init__(self, **options):
            calls.append(options)
            completions = type("C", (), {"create": lambda _self, **ask: calls.append(ask)})
            self.chat = type("Chat", (), {"completions": completions()})()

    fake_openai = type("openai", (), {"OpenAI": FakeClient})
    code = python.code.replace("from openai import OpenAI", "OpenAI = fake_openai.OpenAI")
    code = code.replace("print(reply.choices[0].message.content)", "")
    exec(code, {"fake_openai": fake_openai}, namespace)
    assert calls[0] == {"base_url": "http://127.0.0.1:8765/v1", "api_key": "se'cret"}
    assert calls[1]["model"] == "demo-123" and calls[1]["messages"][0]["role"] == "user"


def test_the_curl_example_is_one_command_a_shell_reads_back_exactly():
    _, curl = client_examples("http://127.0.0.1:8765/v1", "se'cret", "demo-123")
    words = shlex.split(curl.code.replace("\\\n", " "))
    assert words[:2] == ["curl", "http://127.0.0.1:8765/v1/chat/completions"]
    assert words[words.index("-H") + 1] == "Authorization: Bearer se'cret"
    body = json.loads(words[words.index("-d") + 1])
    assert body["model"] == "demo-123" and body["messages"][0]["role"] == "user"


@pytest.mark.parametrize(
    ("role", "raw", "label"),
    [
        (USER, False, "You"),
        (ASSISTANT, False, "Demo"),
        (USER, True, "Prompt"),
        (ASSISTANT, True, "Demo (completion)"),
    ],
)
def test_a_turn_says_who_wrote_it(role, raw, label):
    assert turn_label(role, "Demo", raw=raw) == label


def test_the_line_under_a_reply_says_tokens_speed_and_how_it_ended():
    assert reply_summary(record()) == "8 tokens · 38.2 tokens/s · first token 0.21 s"
    stopped = record(finish_reason="cancelled", completion_tokens=1, tokens_per_second=None)
    assert reply_summary(stopped) == "1 token · first token 0.21 s · stopped"
    assert reply_summary(record(finish_reason="length", loaded_for_it=True)).endswith(
        "loaded for it · cut at max tokens"
    )
    assert reply_summary(None) == "Stopped", "stopped before the model began"
    assert reply_failure("The model was unloaded") == "No reply: The model was unloaded"
