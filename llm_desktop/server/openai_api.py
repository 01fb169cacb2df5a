"""The OpenAI-compatible API: `/v1/models`, `/v1/chat/completions`, `/v1/completions` and
`/v1/embeddings`, for editors, scripts and agents.

Models are named by catalog id (`/v1/models` lists them). A request for a model that is not
loaded loads it through `ModelServing` (making room first), so the load shows on every card
and stream like any other. Generation runs in the model's host; this process only relays its
pieces. A streamed reply is Server-Sent Events in OpenAI's chunk format, ended by `[DONE]`; a
client that goes away stops its reply in the host between two tokens. Errors are OpenAI's shape
(`error.message`, `type`, `code`) with our named kind as the code.

Extensions, as Ollama and llama-server have them: `keep_alive` (seconds or "5m"; negative keeps
the model loaded), `top_k`, `min_p`, `repeat_penalty`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import uuid
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.generation import (
    CHAT,
    COMPLETION,
    EMBEDDING,
    Reply,
    ReplyRequest,
    check_mode,
)
from llm_desktop.core.serving import InvalidDuration, Lease, ModelServing, parse_keep_alive
from llm_desktop.server.guard import BodyTooLarge, error_payload

# HTTP statuses of our failures. A failure that trying again cannot mend is a 4xx, so that
# clients (the `openai` package retries 5xx twice) do not load a broken file three times.
STATUS_OF_KIND: dict[ErrorKind, int] = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.CONTEXT_LENGTH_EXCEEDED: 400,
    ErrorKind.CANNOT_EMBED: 400,
    ErrorKind.CANNOT_GENERATE: 400,
    ErrorKind.INVALID_MODEL: 422,
    ErrorKind.UNSUPPORTED_MODEL: 422,
    ErrorKind.PERMISSION_DENIED: 422,
    ErrorKind.OUT_OF_MEMORY: 422,
    ErrorKind.CANCELLED: 409,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.ENGINE_CRASHED: 500,
}
# OpenAI's roles as chat templates know them ("developer" is the newer name of "system").
ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "top_k": (0, 1_000_000),
    "repeat_penalty": (0.0, 10.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
MAX_STOP_WORDS = 16
DISCONNECT_POLL_S = 0.25


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, kind: str = "invalid_request"):
        super().__init__(message)
        self.param = param
        self.kind = kind


def failure(status: int, kind: str, message: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_payload(status, kind, message, param), status_code=status)


def model_failure(exc: ModelError) -> JSONResponse:
    kind = "model_not_found" if exc.kind is ErrorKind.NOT_FOUND else str(exc.kind)
    return failure(STATUS_OF_KIND.get(exc.kind, 500), kind, exc.info.message, "model")


# -- reading requests ----------------------------------------------------------------------


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{name} must be a number", name)
    low, high = SAMPLING_RANGES[name]
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low:g} and {high:g}", name)
    return value


def _positive_int(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"{name} must be a whole number above 0", name)
        return value
    return None


def _stop_words(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise BadRequest("stop must be a string or a list of strings", "stop")
    if len(words) > MAX_STOP_WORDS:
        raise BadRequest(f"At most {MAX_STOP_WORDS} stop words", "stop")
    return tuple(word for word in words if word)


def _text_of(content: Any, index: int) -> str:
    """A message's text: a string, or the text parts of a list (what editors send)."""
    param = f"messages[{index}].content"
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest("content must be a string or a list of parts", param)
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "input_audio", "file", "image"):
            raise BadRequest(f"This server reads text only; a {kind} part cannot be sent", param)
        else:
            raise BadRequest("Each content part needs a type and its text", param)
    return "".join(texts)


def _messages(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise BadRequest("messages must be a non-empty list", "messages")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            roles = ", ".join(sorted(ROLES))
            raise BadRequest(f"messages[{index}].role must be one of {roles}", "messages")
        messages.append((ROLES[message["role"]], _text_of(message.get("content"), index)))
    return tuple(messages)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    """Parameters this server cannot honour: refused by name, never silently ignored."""
    if body.get("n") not in (None, 1):
        raise BadRequest("Only n=1 is supported", "n", "unsupported_parameter")
    if body.get("tools"):
        raise BadRequest("Tool calls are not supported", "tools", "unsupported_parameter")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise BadRequest("logprobs are not supported", "logprobs", "unsupported_parameter")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise BadRequest(
            "Only text replies are supported", "response_format", "unsupported_parameter"
        )


def read_reply_request(body: dict[str, Any], mode: str, client: str) -> ReplyRequest:
    """The reply a chat, completion or embedding body asks for; BadRequest names what is
    wrong with it."""
    if mode == EMBEDDING:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise BadRequest("input must be a string or a non-empty list of strings", "input")
        if body.get("encoding_format") not in (None, "float", "base64"):
            raise BadRequest("encoding_format must be float or base64", "encoding_format")
        if body.get("dimensions") is not None:
            raise BadRequest("dimensions cannot be changed", "dimensions", "unsupported_parameter")
        return ReplyRequest(mode=EMBEDDING, inputs=tuple(texts), client=client)
    _refuse_unsupported(body)
    if mode == CHAT:
        messages, prompt = _messages(body.get("messages")), ""
    else:
        messages = ()
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string", "prompt")
        if body.get("echo") or body.get("suffix"):
            raise BadRequest("echo and suffix are not supported", "echo", "unsupported_parameter")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest("seed must be a whole number", "seed")
    sampling = tuple(
        (name, value) for name in SAMPLING_RANGES if (value := _number(body, name)) is not None
    )
    return ReplyRequest(
        mode=mode,
        messages=messages,
        prompt=prompt,
        max_tokens=_positive_int(body, "max_completion_tokens", "max_tokens"),
        stop=_stop_words(body.get("stop")),
        seed=seed,
        sampling=sampling,
        client=client,
    )


# -- answering ------------------------------------------------------------------------------


def usage_of(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def finish_reason_of(reply: Reply) -> str:
    """OpenAI knows stop and length; a reply stopped by its client ends as "stop"."""
    return "length" if reply.finish_reason == "length" else "stop"


def encode_vector(vector: list[float], encoding: str | None) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, what the `openai` package decodes
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


class OpenAiApi:
    """The handlers, bound to the server's library view and one `ModelServing`."""

    def __init__(self, server: Any, serving: ModelServing):
        self.server = server  # the LlmServer: its store, its library refresh
        self.serving = serving

    # -- helpers ------------------------------------------------------------------------------

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            raw = await request.body()
        except BodyTooLarge:
            raise BadRequest("The request body is too large", None, "body_too_large") from None
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise BadRequest("The body is not JSON", None, "bad_json") from None
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object", None, "bad_json")
        return body

    async def _known_model(self, model: Any, mode: str) -> str:
        """The id of a listed model that can answer `mode`; refused before any load."""
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required: an id from /v1/models", "model")
        if self.server.store.model(model) is None:
            await self.server.refresh()
        listed = self.server.store.model(model)
        if listed is None:
            raise ModelError(ErrorKind.NOT_FOUND, f"The model {model!r} does not exist")
        check_mode(listed.entry.makes_embeddings, mode, listed.entry.display_name)
        return model

    @staticmethod
    def client_of(request: Request, body: dict[str, Any]) -> str:
        """Who asks: the `user` a client names, else its connection (replies of different
        clients take turns)."""
        user = body.get("user")
        if isinstance(user, str) and user:
            return user[:64]
        if request.client is None:
            return "unknown"
        return f"{request.client.host}:{request.client.port}"

    async def _lease(self, model: str, body: dict[str, Any], client: str) -> Lease:
        keep_alive: dict[str, Any] = {}
        if "keep_alive" in body:
            try:
                keep_alive["keep_alive_s"] = parse_keep_alive(body["keep_alive"])
            except InvalidDuration as exc:
                raise BadRequest(str(exc), "keep_alive") from None
        return await anyio.to_thread.run_sync(
            lambda: self.serving.acquire(model, client=client, **keep_alive)
        )

    # -- routes -------------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        await self.server.refresh()
        return JSONResponse({"object": "list", "data": self._model_objects()})

    async def model(self, request: Request) -> Response:
        wanted = request.path_params["model"]
        for item in self._model_objects():
            if item["id"] == wanted:
                return JSONResponse(item)
        return failure(404, "model_not_found", f"The model {wanted!r} does not exist", "model")

    def _model_objects(self) -> list[dict[str, Any]]:
        objects = []
        for model in self.server.library.models():
            entry = model.entry
            if entry.error is not None or entry.engine is not None:
                continue  # unreadable, or a remote engine's (its router serves its own API)
            view = self.server.store.view(entry.id)
            objects.append(
                {
                    "id": entry.id,
                    "object": "model",
                    "created": int(entry.mtime),
                    "owned_by": "llm-desktop",
                    "title": view.title if view else entry.display_name,
                    "state": str(view.state) if view else "unloaded",
                    "kind": "embedding" if entry.makes_embeddings else "text",
                    # False: a base model; chat then uses llama.cpp's template of its family,
                    # and a raw completion is usually what it is good for.
                    "chat_template": entry.has_chat_template,
                    "context_length": entry.context_length,
                    "quantization": entry.quantization,
                    "file_size": entry.file_size,
                }
            )
        return objects

    async def chat(self, request: Request) -> Response:
        return await self._generate(request, CHAT)

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, COMPLETION)

    async def embeddings(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            model = await self._known_model(body.get("model"), EMBEDDING)
            client = self.client_of(request, body)
            ask = read_reply_request(body, EMBEDDING, client)
            lease = await self._lease(model, body, client)
        except BadRequest as exc:
            return failure(400, exc.kind, str(exc), exc.param)
        except ModelError as exc:
            return model_failure(exc)
        reply = None
        try:
            loop = asyncio.get_running_loop()
            finished = asyncio.Event()

            def sink(piece: str | None) -> None:
                if piece is None:
                    loop.call_soon_threadsafe(finished.set)

            try:
                reply = self.serving.engine.reply(model, ask, sink)
            except ModelError as exc:
                lease.record("embedding", client, None, str(exc.kind))
                return model_failure(exc)
            await self._until(finished, request, reply)
            lease.record("embedding", client, reply)
            if reply.error is not None:
                return model_failure(ModelError.from_info(reply.error))
            encoding = body.get("encoding_format")
            return JSONResponse(
                {
                    "object": "list",
                    "model": model,
                    "data": [
                        {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding)}
                        for i, v in enumerate(reply.vectors or [])
                    ],
                    "usage": {
                        "prompt_tokens": reply.prompt_tokens,
                        "total_tokens": reply.prompt_tokens,
                    },
                }
            )
        finally:
            lease.release()

    async def _generate(self, request: Request, mode: str) -> Response:
        try:
            body = await self._body(request)
            model = await self._known_model(body.get("model"), mode)
            client = self.client_of(request, body)
            ask = read_reply_request(body, mode, client)
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise BadRequest("stream must be true or false", "stream")
            lease = await self._lease(model, body, client)
        except BadRequest as exc:
            return failure(400, exc.kind, str(exc), exc.param)
        except ModelError as exc:
            return model_failure(exc)
        endpoint = "chat" if mode == CHAT else "completion"
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def sink(piece: str | None) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, piece)

        try:
            reply = self.serving.engine.reply(model, ask, sink)
        except ModelError as exc:
            lease.record(endpoint, client, None, str(exc.kind))
            lease.release()
            return model_failure(exc)
        shape = _Shape(mode, model)
        if stream:
            options = body.get("stream_options")
            with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            return StreamingResponse(
                self._stream(reply, pieces, lease, shape, with_usage, endpoint, client),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            finished = asyncio.Event()
            texts: list[str] = []

            async def gather() -> None:
                while (piece := await pieces.get()) is not None:
                    texts.append(piece)
                finished.set()

            async with anyio.create_task_group() as group:
                group.start_soon(gather)
                await self._until(finished, request, reply)
                group.cancel_scope.cancel()
            lease.record(endpoint, client, reply)
            if reply.error is not None:
                return model_failure(ModelError.from_info(reply.error))
            return JSONResponse(shape.whole("".join(texts), reply))
        finally:
            reply.cancel()  # a client gone before the end: stop the host (no-op when done)
            lease.release()

    async def _until(self, finished: asyncio.Event, request: Request, reply: Reply) -> None:
        """Wait for a reply that is not streamed; a client that goes away cancels it."""
        while not finished.is_set():
            with anyio.move_on_after(DISCONNECT_POLL_S):
                await finished.wait()
            if not finished.is_set() and await request.is_disconnected():
                reply.cancel()
                await finished.wait()

    async def _stream(self, reply, pieces, lease: Lease, shape, with_usage, endpoint, client):
        try:
            if shape.chat:
                yield shape.sse(shape.chunk(role=True))
            while (piece := await pieces.get()) is not None:
                yield shape.sse(shape.chunk(text=piece))
            if reply.error is not None:
                status = STATUS_OF_KIND.get(reply.error.kind, 500)
                yield shape.sse(error_payload(status, str(reply.error.kind), reply.error.message))
            else:
                yield shape.sse(shape.chunk(finish=finish_reason_of(reply)))
                if with_usage:
                    yield shape.sse({**shape.chunk(), "choices": [], "usage": usage_of(reply)})
            yield b"data: [DONE]\n\n"
        finally:
            # Reached at the end, and when the client goes away (the response's task is
            # cancelled): the host stops between two tokens, and the log says so.
            reply.cancel()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reply.done.wait, 10.0)
            lease.record(endpoint, client, reply)
            lease.release()


class _Shape:
    """OpenAI's response objects for one reply: chat or text completion."""

    def __init__(self, mode: str, model: str):
        self.chat = mode == CHAT
        self.model = model
        prefix = "chatcmpl" if self.chat else "cmpl"
        self.id = f"{prefix}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def _head(self, stream: bool) -> dict[str, Any]:
        if self.chat:
            kind = "chat.completion.chunk" if stream else "chat.completion"
        else:
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def chunk(self, *, role: bool = False, text: str | None = None, finish: str | None = None):
        if self.chat:
            delta: dict[str, Any] = {}
            if role:
                delta = {"role": "assistant", "content": ""}
            elif text is not None:
                delta = {"content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
        return {**self._head(stream=True), "choices": [choice]}

    def whole(self, text: str, reply: Reply) -> dict[str, Any]:
        finish = finish_reason_of(reply)
        if self.chat:
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        return {**self._head(stream=False), "choices": [choice], "usage": usage_of(reply)}

    @staticmethod
    def sse(data: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
