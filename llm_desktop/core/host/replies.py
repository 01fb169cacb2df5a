"""The host's replies: chat and raw completions streamed token by token, and embeddings.

A chat is formatted with the model's own chat template (`tokenizer.chat_template` in its GGUF),
the same way llama-cpp-python's `create_chat_completion` does, but here, so the host knows the
exact prompt tokens (for usage) and can stop between any two tokens. A model without a template
(the Gemma-3 270M Q4_K_M file has none) gets llama.cpp's built-in template of its family, else
ChatML, as llama-server does. Counting follows llama-server: every sampled token is
a completion token, the end-of-generation token included.
"""

from __future__ import annotations

import codecs
import ctypes
import random
import threading
from collections.abc import Callable
from typing import Any

# For a file with no chat template: llama.cpp's built-in template of its family, by the start
# of `general.architecture`; others get ChatML, llama-server's fallback.
BUILT_IN_TEMPLATES = (("gemma", "gemma"), ("phi3", "phi3"), ("llama4", "llama4"))
# What a reply may set, with the host's defaults (llama-cpp-python's, except the seed).
SAMPLING_DEFAULTS: dict[str, Any] = {
    "temperature": 0.8,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}


class UncompiledTemplate:
    """Stands in for llama-cpp-python's template formatter while a model loads: it keeps the
    template uncompiled (see `ModelHost._construct`)."""

    def __init__(self, template: str = "", *_args: Any, **_kwargs: Any):
        self.template = template

    def to_chat_handler(self) -> Any:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise ReplyError("invalid_request", "Chats are formatted by replies.chat_prompt")

        return refuse


class ReplyError(Exception):
    """A request the model cannot answer; `kind` is an `ErrorKind` value."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class StopFlags:
    """Which replies the app asked to stop: set from the host's reader thread, read by the
    reply between tokens. A stop names its reply, so a late stop never ends the next one."""

    def __init__(self) -> None:
        self._ids: set[Any] = set()
        self._lock = threading.Lock()
        self.everything = threading.Event()  # the app is gone

    def stop(self, reply_id: Any) -> None:
        with self._lock:
            self._ids.add(reply_id)

    def is_stopped(self, reply_id: Any) -> bool:
        with self._lock:
            return self.everything.is_set() or reply_id in self._ids or None in self._ids

    def forget(self, reply_id: Any) -> None:
        with self._lock:
            self._ids.discard(reply_id)
            self._ids.discard(None)


def chat_prompt(llm: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
    """The prompt tokens of a conversation in the model's chat template, and the template's
    stop words. A file without a template gets llama.cpp's own built-in one for its family
    (`BUILT_IN_TEMPLATES`), else ChatML, as llama-server does."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        prompt = _built_in_prompt(llm, messages)
        return llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True), []
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos = llm.token_eos()
    bos = llm.token_bos()
    try:
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos] if eos != -1 else None,
        )
        result = formatter(messages=messages)
    except Exception as exc:  # a broken template, or one that refuses (raise_exception)
        raise ReplyError(
            "invalid_request", f"The model's chat template cannot format this chat: {exc}"
        ) from None
    tokens = llm.tokenize(
        result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
    )
    stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
    return tokens, stop


def built_in_template(architecture: str) -> str:
    """llama.cpp's built-in template for a file of `architecture` that carries none."""
    for prefix, name in BUILT_IN_TEMPLATES:
        if architecture.startswith(prefix):
            return name
    return "chatml"


def _built_in_prompt(llm: Any, messages: list[dict[str, str]]) -> str:
    import llama_cpp

    name = built_in_template(str(llm.metadata.get("general.architecture", "")))
    chat = (llama_cpp.llama_chat_message * len(messages))(
        *(
            llama_cpp.llama_chat_message(m["role"].encode(), m["content"].encode("utf-8"))
            for m in messages
        )
    )
    size = 2 * sum(len(m["content"].encode("utf-8")) + len(m["role"]) for m in messages) + 256
    while True:
        buffer = ctypes.create_string_buffer(size)
        written = llama_cpp.llama_chat_apply_template(
            name.encode(), chat, len(messages), True, buffer, size
        )
        if written < 0:
            raise ReplyError("invalid_request", f"llama.cpp's {name} template refused the chat")
        if written <= size:
            return buffer.raw[:written].decode("utf-8", errors="replace")
        size = written  # too small: llama.cpp says how much it needs


def generate(
    llm: Any,
    command: dict[str, Any],
    send: Callable[[dict[str, Any]], None],
    stops: StopFlags,
) -> None:
    """Answer one `generate` command: `token` messages, then one `generated`."""
    reply_id = command.get("id")
    try:
        done = _stream(llm, command, send, stops, reply_id)
    except ReplyError as exc:
        done = {"reason": "error", "kind": exc.kind, "error": str(exc)}
    except Exception as exc:  # llama-cpp-python raises ValueError for most refusals
        done = {"reason": "error", "kind": _kind_of(exc), "error": str(exc)}
    finally:
        stops.forget(reply_id)
    send({"t": "generated", "id": reply_id, **done})


def _stream(llm, command, send, stops: StopFlags, reply_id) -> dict[str, Any]:
    """Sample token by token with `Llama.generate`: the stop flag is read at every token,
    text goes out as soon as it is whole UTF-8 and cannot be the start of a stop word, and the
    work per token stays constant (llama-cpp-python's own stream re-decodes every token it
    holds back, which grows without end on output that is not valid UTF-8)."""
    import llama_cpp

    stop_words = [str(word) for word in command.get("stop") or [] if word]
    if command.get("mode") == "chat":
        prompt, template_stop = chat_prompt(llm, list(command["messages"]))
        stop_words += [word for word in template_stop if word]
    else:
        prompt = llm.tokenize(str(command.get("prompt", "")).encode("utf-8"), special=True)
    n_ctx = llm.n_ctx()
    max_tokens = int(command.get("max_tokens") or 0)
    if len(prompt) >= n_ctx or len(prompt) + max_tokens > n_ctx:
        raise ReplyError(
            "context_length_exceeded",
            f"The prompt ({len(prompt)} tokens) and the reply ({max_tokens} tokens) need "
            f"{len(prompt) + max_tokens} tokens; the model was loaded with a {n_ctx}-token "
            "context",
        )
    limit = max_tokens or n_ctx - len(prompt)
    seed = command.get("seed")
    llm.set_seed(int(seed) if seed is not None else random.randrange(2**32))
    sampling = {key: command.get(key, default) for key, default in SAMPLING_DEFAULTS.items()}
    sampling = {key: value for key, value in sampling.items() if value is not None}
    sampling["temp"] = sampling.pop("temperature", SAMPLING_DEFAULTS["temperature"])
    text = _TextOut(stop_words, lambda piece: send({"t": "token", "id": reply_id, "text": piece}))
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    is_end = llm._model.vocab
    sampled, reason = 0, "length"
    tokens = llm.generate(prompt, **sampling)
    try:
        for token in tokens:
            if stops.is_stopped(reply_id):
                reason = "stopped"
                break
            sampled += 1
            if llama_cpp.llama_vocab_is_eog(is_end, token):
                reason = "stop"
                break
            if text.add(decoder.decode(_piece(llama_cpp, is_end, token))):
                reason = "stop"
                break
            if sampled >= limit:
                break
    finally:
        tokens.close()
    if reason != "stop" or not text.stopped:
        text.add(decoder.decode(b"", final=True))
        text.flush()
    return {"reason": reason, "prompt_tokens": len(prompt), "completion_tokens": sampled}


def _piece(llama_cpp: Any, vocab: Any, token: int) -> bytes:
    """The bytes of one token (a byte token is a fragment of a UTF-8 character)."""
    size = 32
    while True:
        buffer = ctypes.create_string_buffer(size)
        written = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
        if written >= 0:
            return buffer.raw[:written]
        size = -written  # too small: llama.cpp says how much it needs


class _TextOut:
    """Sends a reply's text as it comes, except what may be the start of a stop word (held
    until it is not); a stop word ends the text before it."""

    def __init__(self, stop_words: list[str], send: Callable[[str], None]):
        self.stop_words = stop_words
        self.send = send
        self.held = ""
        self.stopped = False

    def add(self, piece: str) -> bool:
        """Take more text; True when a stop word has come (the text before it is sent)."""
        self.held += piece
        found = [i for i in (self.held.find(w) for w in self.stop_words) if i >= 0]
        if found:
            self.held = self.held[: min(found)]
            self.flush()
            self.stopped = True
            return True
        keep = max((_overlap(self.held, word) for word in self.stop_words), default=0)
        ready = len(self.held) - keep
        if ready > 0:
            self.send(self.held[:ready])
            self.held = self.held[ready:]
        return False

    def flush(self) -> None:
        if self.held:
            self.send(self.held)
            self.held = ""


def _overlap(text: str, word: str) -> int:
    """How many of `text`'s last characters are the first characters of `word`."""
    for size in range(min(len(text), len(word) - 1), 0, -1):
        if text.endswith(word[:size]):
            return size
    return 0


def embed(llm: Any, command: dict[str, Any], send: Callable[[dict[str, Any]], None]) -> None:
    """Answer one `embed` command with one `embedded` message."""
    reply_id = command.get("id")
    inputs = [str(text) for text in command.get("input") or []]
    try:
        vectors, tokens = llm.embed(inputs, normalize=True, truncate=False, return_count=True)
    except Exception as exc:
        send({"t": "embedded", "id": reply_id, "kind": _kind_of(exc), "error": str(exc)})
        return
    send({"t": "embedded", "id": reply_id, "vectors": vectors, "prompt_tokens": tokens})


def _kind_of(exc: Exception) -> str:
    text = str(exc)
    if "exceed context window" in text or "too long" in text:
        return "context_length_exceeded"
    if "embedding=True" in text:
        return "cannot_embed"
    return "engine_crashed"
