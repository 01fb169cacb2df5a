"""What a person reads about serving: the API's address line and each logged request.

The window's Serving panel and `llm-desktop serve` render these; nothing else words them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from llm_desktop.core.presenter import FACTS_SEPARATOR, format_seconds
from llm_desktop.core.serving import RequestRecord

ENDPOINT_WORDS = {"chat": "Chat", "completion": "Completion", "embedding": "Embedding"}
FINISH_WORDS = {
    "stop": "",
    "length": "stopped at max tokens",
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
    if record.tokens_per_second:
        speed_parts.append(f"{record.tokens_per_second:.1f} tokens/s")
    if record.first_token_s is not None:
        speed_parts.append(f"first token {format_seconds(record.first_token_s)}")
    elif record.endpoint == "embedding" or record.error_kind:
        speed_parts.append(f"took {format_seconds(record.seconds)}")
    outcome = FINISH_WORDS.get(record.finish_reason, record.finish_reason)
    if record.error_kind:
        outcome = f"failed: {record.error_kind.replace('_', ' ')}"
    if record.loaded_for_it:
        outcome = FACTS_SEPARATOR.join(part for part in (outcome, "loaded for it") if part)
    return RequestLine(
        model=record.model,
        when=time.strftime("%H:%M:%S", time.localtime(record.started)),
        what=ENDPOINT_WORDS.get(record.endpoint, record.endpoint),
        tokens=tokens,
        speed=" · ".join(speed_parts),
        outcome=outcome,
        failed=record.error_kind is not None,
    )


def api_lines(base_url: str, token: str) -> list[str]:
    """What `serve` prints and the Serving panel shows under the address."""
    return [
        f"OpenAI-compatible API: {base_url}",
        f"API key: {token}",
        f'Try: curl {base_url}/models -H "Authorization: Bearer {token}"',
    ]
