"""Replies from a loaded model: what is asked (`ReplyRequest`), one reply in flight (`Reply`),
and the fair queue a model's replies wait in (`FairQueue`).

A model host answers one reply at a time. Replies from several clients take turns: each client
has its own line, and the lines are served round-robin, so one client that sends twenty
requests does not make another wait for all twenty. Within a line, first come, first served.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llm_desktop.core.events import ERROR_MESSAGES, ErrorInfo, ErrorKind, ModelError

log = logging.getLogger(__name__)

CHAT = "chat"
COMPLETION = "completion"
EMBEDDING = "embedding"
# How a reply ended: OpenAI's finish reasons, and ours for the rest.
FINISH_STOP = "stop"  # the model said it was done, or a stop word came
FINISH_LENGTH = "length"  # max_tokens, or the context is full
FINISH_CANCELLED = "cancelled"  # the client went away or pressed Stop
FINISH_ERROR = "error"

_ids = itertools.count(1)


@dataclass(frozen=True)
class ReplyRequest:
    """What a client asks a model for. `messages` for a chat (role and content each),
    `prompt` for a raw completion, `inputs` for embeddings."""

    mode: str = CHAT
    messages: tuple[tuple[str, str], ...] = ()
    prompt: str = ""
    inputs: tuple[str, ...] = ()
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    sampling: tuple[tuple[str, float], ...] = ()  # temperature, top_p, … as the client set them
    client: str = "app"  # who asked: replies of different clients take turns

    def host_command(self, reply_id: int) -> dict[str, Any]:
        if self.mode == EMBEDDING:
            return {"op": "embed", "id": reply_id, "input": list(self.inputs)}
        command: dict[str, Any] = {
            "op": "generate",
            "id": reply_id,
            "mode": self.mode,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            **dict(self.sampling),
        }
        if self.mode == CHAT:
            command["messages"] = [{"role": r, "content": c} for r, c in self.messages]
        else:
            command["prompt"] = self.prompt
        return command


@dataclass
class Reply:
    """One reply in flight. The session thread calls `sink` with each piece of text and with
    None at the end; the outcome is in the fields once it has. `cancel` (from any thread) stops
    it between two tokens, or takes it out of the queue."""

    request: ReplyRequest
    sink: Callable[[str | None], None]
    id: int = field(default_factory=lambda: next(_ids))
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: ErrorInfo | None = None
    vectors: list[list[float]] | None = None
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None  # when the host began it
    first_piece_at: float | None = None
    ended_at: float | None = None
    on_cancel: Callable[[Reply], None] | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def put(self, piece: str) -> None:
        if self.first_piece_at is None:
            self.first_piece_at = time.monotonic()
        self._deliver(piece)

    def _deliver(self, piece: str | None) -> None:
        # The sink is the client's (an event loop, a queue): its failure must never reach the
        # session's thread, which serves every other reply of the model.
        try:
            self.sink(piece)
        except Exception:
            log.exception("reply %s: its reader failed; stopping it", self.id)
            if piece is not None:
                self.cancel()

    def finish(
        self,
        reason: str,
        *,
        error: ErrorInfo | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        if self.done.is_set():
            return
        self.finish_reason = FINISH_CANCELLED if self.cancelled and reason != "error" else reason
        self.error = error
        if prompt_tokens is not None:
            self.prompt_tokens = prompt_tokens
        if completion_tokens is not None:
            self.completion_tokens = completion_tokens
        self.ended_at = time.monotonic()
        self.done.set()
        self._deliver(None)

    def cancel(self) -> None:
        """Stop this reply (a client that went away, a Stop button). Thread-safe; idempotent."""
        if self.done.is_set() or self.cancelled:
            return
        self.cancelled = True
        if self.on_cancel is not None:
            self.on_cancel(self)

    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed: tokens after the first over the time after the first, as llama.cpp
        reports it (the first token's wait is the prompt's)."""
        if self.first_piece_at is None or self.ended_at is None or self.completion_tokens < 2:
            return None
        seconds = self.ended_at - self.first_piece_at
        return (self.completion_tokens - 1) / seconds if seconds > 0 else None


def stream(
    reply: Callable[[str, ReplyRequest, Callable[[str | None], None]], Reply],
    model: str,
    request: ReplyRequest | str,
    max_tokens: int = 64,
) -> Iterator[str]:
    """A reply as an iterator of its pieces, over an engine's `reply` (a plain prompt string:
    a raw completion). Leaving the loop early stops the reply; a failure is raised as
    `ModelError` once the pieces are out."""
    if isinstance(request, str):
        request = ReplyRequest(mode=COMPLETION, prompt=request, max_tokens=max_tokens)
    pieces: queue.Queue[str | None] = queue.Queue()
    started = reply(model, request, pieces.put)
    try:
        while (piece := pieces.get()) is not None:
            yield piece
    finally:
        started.cancel()
    raise_for(started)


def check_mode(makes_embeddings: bool, mode: str, title: str | None = None) -> None:
    """Refuse a request the model cannot answer: text of an embedding model, or embeddings
    of a text model (`title`, when given, names the model in the message)."""
    if makes_embeddings == (mode == EMBEDDING):
        return
    kind = ErrorKind.CANNOT_GENERATE if makes_embeddings else ErrorKind.CANNOT_EMBED
    words = ERROR_MESSAGES[kind]
    raise ModelError(kind, f"{title}: {words}" if title else words)


def raise_for(reply: Reply) -> None:
    """Raise the reply's failure as a `ModelError` (a finished reply that failed)."""
    if reply.error is not None:
        raise ModelError.from_info(reply.error)


def host_failure(message: dict[str, Any]) -> ErrorInfo:
    """The error of a host's `generated`/`embedded` message that failed."""
    try:
        kind = ErrorKind(message.get("kind") or ErrorKind.ENGINE_CRASHED)
    except ValueError:
        kind = ErrorKind.ENGINE_CRASHED
    return ErrorInfo(kind, str(message.get("error") or "The model could not reply"))


class FairQueue:
    """Replies waiting for a model: one line per client; the next reply is the head of the
    line whose client was served longest ago (a client never served, first). So a newcomer
    goes next even when a busy client's line is momentarily empty and refilled behind it."""

    REMEMBERED_CLIENTS = 1024  # turns kept of clients with nothing waiting

    def __init__(self) -> None:
        self._lines: dict[str, deque[Reply]] = {}
        self._last_turn: OrderedDict[str, int] = OrderedDict()
        self._turn = 0

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def __iter__(self) -> Iterator[Reply]:
        for line in list(self._lines.values()):
            yield from list(line)

    def push(self, reply: Reply) -> None:
        self._lines.setdefault(reply.request.client, deque()).append(reply)

    def pop(self) -> Reply | None:
        if not self._lines:
            return None
        client = min(
            self._lines,
            key=lambda name: (self._last_turn.get(name, -1), self._lines[name][0].queued_at),
        )
        line = self._lines[client]
        reply = line.popleft()
        if not line:
            del self._lines[client]
        self._turn += 1
        self._last_turn[client] = self._turn
        self._last_turn.move_to_end(client)
        while len(self._last_turn) > self.REMEMBERED_CLIENTS:
            self._last_turn.popitem(last=False)
        return reply

    def remove(self, reply: Reply) -> bool:
        line = self._lines.get(reply.request.client)
        if line is None or reply not in line:
            return False
        line.remove(reply)
        if not line:
            del self._lines[reply.request.client]
        return True

    def drain(self) -> list[Reply]:
        replies = list(self)
        self._lines.clear()
        return replies
