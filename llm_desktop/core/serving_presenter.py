"""What a person reads about serving: the API's address line and each logged request, the
Serving panel's states, settings and code examples, and Try it's chat turns.

The window's Serving panel, its Try it chat and `llm-desktop serve` render these; nothing else
words them.
"""

from __future__ import annotations

import errno
import json
import shlex
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from llm_desktop.core.generation import FINISH_CANCELLED, FINISH_LENGTH
from llm_desktop.core.presenter import (
    FACTS_SEPARATOR,
    Notice,
    NoticeKind,
    format_duration,
    format_seconds,
    keep_alive_words,
)
from llm_desktop.core.serving import RequestRecord

ENDPOINT_WORDS = {"chat": "Chat", "completion": "Completion", "embedding": "Embedding"}
FINISH_WORDS = {
    "stop": "",
    "length": "cut at max tokens",
    "cancelled": "cancelled by the client",
}


@dataclass(frozen=True)
class RequestLine:
    """One row of the request list: when, what, how much, how fast, how it ended."""

    model: str
    when: str  # "14:03:12"
    what: str  # "Chat"
    tokens: str  # "33 in · 8 out"
    speed: str  # "38.2 tokens/s · first token 0.21 s"
    outcome: str  # "" when it ended normally; else what happened
    failed: bool
    first_token: str = ""  # for a table: "0.21 s" (a reply with no first token: "took 0.05 s")

    @property
    def text(self) -> str:
        parts = [self.when, self.what, self.tokens, self.speed, self.outcome]
        return FACTS_SEPARATOR.join(part for part in parts if part)

    def to_dict(self) -> dict:
        return {**asdict(self), "text": self.text}


def request_line(record: RequestRecord) -> RequestLine:
    tokens = f"{record.prompt_tokens} in"
    if record.endpoint != "embedding":
        tokens += f" · {record.completion_tokens} out"
    speed_parts = []
    first_token = ""
    if record.tokens_per_second:
        speed_parts.append(f"{record.tokens_per_second:.1f} tokens/s")
    if record.first_token_s is not None:
        first_token = format_seconds(record.first_token_s)
        speed_parts.append(f"first token {first_token}")
    elif record.endpoint == "embedding" or record.error_kind:
        first_token = f"took {format_seconds(record.seconds)}"
        speed_parts.append(first_token)
    outcome = FINISH_WORDS.get(record.finish_reason, record.finish_reason)
    if record.error_kind:
        outcome = f"failed: {record.error_kind.replace('_', ' ')}"
    if record.loaded_for_it:  # first the load, then how the reply ended: as it happened
        outcome = FACTS_SEPARATOR.join(part for part in ("loaded for it", outcome) if part)
    return RequestLine(
        model=record.model,
        when=time.strftime("%H:%M:%S", time.localtime(record.started)),
        what=ENDPOINT_WORDS.get(record.endpoint, record.endpoint),
        tokens=tokens,
        speed=" · ".join(speed_parts),
        outcome=outcome,
        failed=record.error_kind is not None,
        first_token=first_token,
    )


def api_lines(base_url: str, token: str) -> list[str]:
    """What `serve` prints and the Serving panel shows under the address."""
    return [
        f"OpenAI-compatible API: {base_url}",
        f"API key: {token}",
        f'Try: curl {base_url}/models -H "Authorization: Bearer {token}"',
    ]


# -- the API server ------------------------------------------------------------------------------

SERVER_STOPPED = "stopped"
SERVER_STARTING = "starting"
SERVER_RUNNING = "running"
SERVER_STOPPING = "stopping"


@dataclass(frozen=True)
class ApiServerView:
    """The API server's state as the Serving panel shows it."""

    state: str  # one of the SERVER_ names
    chip: str  # "Running"
    tone: str  # the chip's colour: "success" while running, "accent" between, "" stopped
    line: str  # what it means for a person
    action: str  # the button: "Start server" or "Stop server"
    action_enabled: bool
    settings_enabled: bool  # the port can change only while stopped


def api_server_view(state: str) -> ApiServerView:
    if state == SERVER_RUNNING:
        return ApiServerView(
            state,
            "Running",
            "success",
            "Programs on this computer can use your models now: give them the base URL and "
            "the API key below.",
            "Stop server",
            True,
            False,
        )
    if state == SERVER_STARTING:
        return ApiServerView(
            state, "Starting…", "accent", "Opening the port…", "Stop server", False, False
        )
    if state == SERVER_STOPPING:
        return ApiServerView(
            state, "Stopping…", "accent", "Ending open requests…", "Start server", False, False
        )
    return ApiServerView(
        SERVER_STOPPED,
        "Stopped",
        "",
        "Start the server to let other programs use your models through the OpenAI API.",
        "Start server",
        True,
        True,
    )


def start_failure(port: int, error: BaseException) -> str:
    """Why the API server could not start, and what to do about it."""
    code = getattr(error, "errno", None)
    if code == errno.EADDRINUSE:
        return (
            f"Port {port} is already in use by another program. Choose another port, or stop "
            "the program using it."
        )
    if code == errno.EACCES:
        return f"Port {port} needs administrator rights. Choose a port above 1023."
    return f"The API server could not start on port {port}: {error}"


def stopped_unexpectedly(error: object) -> str:
    return f"The API server stopped: {error}"


def api_server_notice(message: str, *, was_running: bool) -> Notice:
    """The toast for an API server that failed while nobody watched the Serving tab (a start
    with the app, a server that stopped on its own)."""
    title = "The API server stopped" if was_running else "The API server could not start"
    return Notice(NoticeKind.ERROR, message, "job:api-server", title)


# -- settings -----------------------------------------------------------------------------------

KEEP_ALIVE_CHOICES: tuple[float | None, ...] = (300.0, 900.0, 3600.0, None)
NO_LIMIT = "No limit"
NO_BUDGET = "No budget"


def keep_alive_label(seconds: float | None) -> str:
    """A keep-alive choice: "5 min", "1 h", "Never"."""
    if seconds is None:
        return "Never"
    if seconds <= 0:
        return "At once"
    return format_duration(seconds)


def keep_alive_choices(current: float | None) -> list[tuple[float | None, str, str]]:
    """(seconds, label, what it means) of each keep-alive choice; the one in force is among
    them even when it is not one of the usual (set by `serve --keep-alive 10m`)."""
    choices = list(KEEP_ALIVE_CHOICES)
    if current not in choices:
        choices.append(current)
        choices.sort(key=lambda seconds: float("inf") if seconds is None else seconds)
    return [(seconds, keep_alive_label(seconds), keep_alive_words(seconds)) for seconds in choices]


SERVING_DEFAULT = "default"  # a model without a keep-alive of its own


def model_keep_alive_choices(current: float | str | None) -> list[tuple[object, str, str]]:
    """A card's keep-alive choices: the serving default first, then the usual spans."""
    default = (
        SERVING_DEFAULT,
        "Serving default",
        "As the Serving tab says, for models loaded on request; a model you load yourself stays",
    )
    own = keep_alive_choices(None if current == SERVING_DEFAULT else current)  # type: ignore[arg-type]
    return [default, *own]


# -- the request list ---------------------------------------------------------------------------

NO_REQUESTS = (
    "No requests yet. Requests from other programs, and your chats in Try it, appear here."
)


def request_group(title: str, records: Iterable[RequestRecord]) -> str:
    """A model's heading in the request list: "Demo 400 MB · 3 requests"."""
    count = sum(1 for _record in records)
    return f"{title}{FACTS_SEPARATOR}{count} request{'' if count == 1 else 's'}"


# The request list's columns, and a request's cells under them.
REQUEST_COLUMNS = ("Time", "Request", "From", "Tokens", "Tokens/s", "First token", "Outcome")
OUTCOME_COLUMN = REQUEST_COLUMNS.index("Outcome")


def request_cells(record: RequestRecord) -> tuple[str, ...]:
    """A request's row in the list: the request line's parts, the speed a bare number under
    its "Tokens/s" heading (the outcome, the widest cell, gets the room)."""
    line = request_line(record)
    rate = f"{record.tokens_per_second:.1f}" if record.tokens_per_second else ""
    return (
        line.when,
        line.what,
        client_words(record.client),
        line.tokens,
        rate,
        line.first_token,
        line.outcome,
    )


def client_words(client: str) -> str:
    """Who asked: "Try it" for the window's own chat, else the name a client gave (`user`) or
    its address, without the port a connection happened to get."""
    if client == "app":
        return "Try it"
    host, colon, port = client.rpartition(":")
    if colon and port.isdigit() and host:
        return host.strip("[]")
    return client


# -- code to copy -------------------------------------------------------------------------------


EXAMPLE_MODEL_PLACEHOLDER = "MODEL-ID"  # no model in the library yet: /v1/models lists them


@dataclass(frozen=True)
class ClientExample:
    name: str  # the tab: "Python", "curl"
    code: str


def client_examples(base_url: str, token: str, model: str) -> list[ClientExample]:
    """A first request to the API, ready to paste: the official `openai` package, and curl."""
    python = "\n".join(
        [
            "from openai import OpenAI",
            "",
            "client = OpenAI(",
            f"    base_url={json.dumps(base_url)},",
            f"    api_key={json.dumps(token)},",
            ")",
            "reply = client.chat.completions.create(",
            f"    model={json.dumps(model)},",
            '    messages=[{"role": "user", "content": "Say hello in five words."}],',
            ")",
            "print(reply.choices[0].message.content)",
        ]
    )
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Say hello in five words."}]}
    )
    curl = "\n".join(
        [
            f"curl {shlex.quote(base_url + '/chat/completions')} \\",
            f"  -H {shlex.quote('Authorization: Bearer ' + token)} \\",
            "  -H 'Content-Type: application/json' \\",
            f"  -d {shlex.quote(body)}",
        ]
    )
    return [ClientExample("Python", python), ClientExample("curl", curl)]


# -- Try it's chat ------------------------------------------------------------------------------

USER = "user"
ASSISTANT = "assistant"


def turn_label(role: str, model_title: str, *, raw: bool = False) -> str:
    """Who wrote a turn: "You" (or "Prompt", raw), else the model's title."""
    if role == USER:
        return "Prompt" if raw else "You"
    return f"{model_title} (completion)" if raw else model_title


NO_TEMPLATE_HINT = (
    "This file has no chat template of its own: chat uses a generic one. A base model "
    "often does better with Raw (it continues your text)."
)


def reply_summary(record: RequestRecord | None) -> str:
    """The line under a reply: "8 tokens · 38.2 tokens/s · first token 0.21 s · stopped"."""
    if record is None:  # stopped before the model began it
        return "Stopped"
    count = record.completion_tokens
    parts = [f"{count} token{'' if count == 1 else 's'}"]
    if record.tokens_per_second:
        parts.append(f"{record.tokens_per_second:.1f} tokens/s")
    if record.first_token_s is not None:
        parts.append(f"first token {format_seconds(record.first_token_s)}")
    if record.loaded_for_it:
        parts.append("loaded for it")
    if record.finish_reason == FINISH_CANCELLED:
        parts.append("stopped")
    elif record.finish_reason == FINISH_LENGTH:
        parts.append("cut at max tokens")
    return FACTS_SEPARATOR.join(parts)


def reply_failure(message: str) -> str:
    return f"No reply: {message}"
