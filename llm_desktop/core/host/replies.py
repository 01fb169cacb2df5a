"""The host's replies: chat and raw completions streamed token by token, and embeddings.

A chat is formatted with the model's own chat template (`tokenizer.chat_template` in its GGUF),
the same way llama-cpp-python's `create_chat_completion` does, but here, so the host knows the
exact prompt tokens (for usage) and can stop between any two tokens. A model without a template
gets ChatML, llama-server's fallback too. Counting follows llama-server: every sampled token is
a completion token, the end-of-generation token included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# llama-server's fallback for a model without a template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
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


def chat_prompt(llm: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[str], Any]:
    """The prompt tokens of a conversation in the model's chat template, the template's stop
    words, and its stopping rule (the end-of-generation token)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
    eos = llm.token_eos()
    bos = llm.token_bos()
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos] if eos != -1 else None,
    )
    try:
        result = formatter(messages=messages)
    except Exception as exc:  # the template itself refuses (Jinja's raise_exception): say why
        raise ReplyError("invalid_request", f"The model's chat template refused: {exc}") from None
    tokens = llm.tokenize(
        result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
    )
    stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
    return tokens, stop, result.stopping_criteria


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
    from llama_cpp import StoppingCriteriaList

    stop = [str(word) for word in command.get("stop") or []]
    template_rule = None
    if command.get("mode") == "chat":
        prompt, template_stop, template_rule = chat_prompt(llm, list(command["messages"]))
        stop += template_stop
    else:
        prompt = llm.tokenize(str(command.get("prompt", "")).encode("utf-8"), special=True)
    n_ctx = llm.n_ctx()
    max_tokens = command.get("max_tokens")
    if len(prompt) >= n_ctx or (max_tokens and len(prompt) + int(max_tokens) > n_ctx):
        wanted = len(prompt) + int(max_tokens or 0)
        raise ReplyError(
            "context_length_exceeded",
            f"The prompt ({len(prompt)} tokens) and the reply ({max_tokens or 0} tokens) need "
            f"{wanted} tokens; the model was loaded with a {n_ctx}-token context",
        )
    sampled = [0]

    def count(_input_ids, _logits) -> bool:
        sampled[0] += 1
        return False

    rules: list[Any] = [count]
    if template_rule is not None:
        rules.append(template_rule)
    sampling = {key: command.get(key, default) for key, default in SAMPLING_DEFAULTS.items()}
    seed = command.get("seed")
    stream = llm.create_completion(
        prompt,
        max_tokens=int(max_tokens) if max_tokens else -1,  # -1: until the context is full
        stop=stop or None,
        stream=True,
        seed=int(seed) if seed is not None else None,
        stopping_criteria=StoppingCriteriaList(rules),
        **{key: value for key, value in sampling.items() if value is not None},
    )
    reason = "length"
    try:
        for chunk in stream:
            if stops.is_stopped(reply_id):
                reason = "stopped"
                break
            choice = chunk["choices"][0]
            if choice["text"]:
                send({"t": "token", "id": reply_id, "text": choice["text"]})
            reason = choice.get("finish_reason") or reason
        else:
            # A stream that ran to its end asks the stopping rules once more, after the last
            # token: that call sampled nothing.
            sampled[0] -= 1
    finally:
        stream.close()
    return {"reason": reason, "prompt_tokens": len(prompt), "completion_tokens": sampled[0]}


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
