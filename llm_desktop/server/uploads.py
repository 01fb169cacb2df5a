"""Request bodies into `UploadJob`s: streamed to disk, never held in memory.

`receive_into` reads the ASGI body chunk by chunk, gathers chunks into batches of a few MiB and
has a worker thread write each batch while the next one arrives (one batch in flight, so memory
stays at two batches whatever the file's size). A `stop` event (Cancel from the page) ends the
reading at once, even while the client sends nothing. A client that goes away mid-body is a
`ClientDisconnect`.

`MultipartFile` reads the one file of a `multipart/form-data` body (the upload form of the page
without scripts) from the same chunks, as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import Message

from starlette.requests import ClientDisconnect

from llm_desktop.core.events import ErrorKind

BATCH_BYTES = 4 << 20
MAX_PART_HEADER_BYTES = 16 << 10

# An upload's named error as an HTTP status.
UPLOAD_STATUS: dict[ErrorKind, int] = {
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.INVALID_MODEL: 422,
    ErrorKind.DISK_FULL: 507,
    ErrorKind.CANCELLED: 409,
    ErrorKind.NETWORK: 400,
}

Receive = Callable[[], Awaitable[dict]]


class UploadStopped(Exception):
    """The page cancelled the upload while its body was arriving."""


async def body_chunks(receive: Receive, stop: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    """The request body's chunks as they arrive. Raises `ClientDisconnect` when the client
    goes away and `UploadStopped` as soon as `stop` is set."""
    stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        while True:
            if stopped is None:
                message = await receive()
            else:
                step = asyncio.ensure_future(receive())
                await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    raise UploadStopped
                message = step.result()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return
    finally:
        if stopped is not None:
            stopped.cancel()


async def write_batched(chunks: AsyncIterator[bytes], write: Callable[[bytes], None]) -> int:
    """Write `chunks` with `write` in a worker thread, a batch at a time, receiving the next
    batch while one is written. Returns the bytes written. Whatever ends it (an error of
    `write`, of the chunks, a cancel), no write is still running when it returns or raises."""
    pending: asyncio.Future | None = None
    buffer = bytearray()
    written = 0

    async def flush() -> None:
        nonlocal pending, buffer, written
        if pending is not None:
            await pending
            pending = None
        if buffer:
            data, buffer = bytes(buffer), bytearray()
            written += len(data)
            pending = asyncio.ensure_future(asyncio.to_thread(write, data))

    try:
        async for chunk in chunks:
            buffer += chunk
            if len(buffer) >= BATCH_BYTES:
                await flush()
        await flush()
        if pending is not None:
            await pending
            pending = None
    finally:
        if pending is not None:  # an error elsewhere: let the write in flight end first
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
    return written


class BadMultipart(Exception):
    pass


def multipart_boundary(content_type: str) -> bytes | None:
    message = Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 200:
        return None
    return boundary.encode("latin-1")


_FILENAME = re.compile(r'filename="([^"]*)"', re.IGNORECASE)


class MultipartFile:
    """The first file part of a multipart/form-data body, read as the chunks arrive.

    `parts(chunks)` yields the file's name once (a `str`), then its bytes (`bytes`) until its
    part ends; other parts are skipped. `head_bytes` is how many bytes of the body came before
    the file's first byte, and `trailer_bytes` how many a browser sends after its last (the
    closing delimiter), so the file's size is the body's length less both."""

    def __init__(self, boundary: bytes):
        self.delimiter = b"\r\n--" + boundary
        self.trailer_bytes = len(self.delimiter) + len(b"--\r\n")
        self.head_bytes = 0

    async def parts(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[str | bytes]:
        delimiter = self.delimiter
        keep = len(delimiter) - 1
        buffer = bytearray(b"\r\n")  # the body's first boundary has no CRLF before it
        fed = 0
        state = "preamble"
        in_file = False
        async for chunk in chunks:
            buffer += chunk
            fed += len(chunk)
            while True:
                if state == "preamble":
                    at = buffer.find(delimiter)
                    if at < 0:
                        del buffer[: max(0, len(buffer) - keep)]
                        break
                    del buffer[: at + len(delimiter)]
                    state = "after-delimiter"
                if state == "after-delimiter":
                    if len(buffer) < 2:
                        break
                    if buffer[:2] == b"--":
                        return  # the last part ended: no file came
                    if buffer[:2] != b"\r\n":
                        raise BadMultipart("a boundary is not followed by a line break")
                    del buffer[:2]
                    state = "headers"
                if state == "headers":
                    at = buffer.find(b"\r\n\r\n")
                    if at < 0:
                        if len(buffer) > MAX_PART_HEADER_BYTES:
                            raise BadMultipart("a part's headers are too long")
                        break
                    headers = bytes(buffer[:at]).decode("utf-8", "replace")
                    del buffer[: at + 4]
                    name = _FILENAME.search(headers)
                    in_file = name is not None
                    if in_file:
                        self.head_bytes = fed - len(buffer)
                        yield name.group(1)
                    state = "data"
                if state == "data":
                    at = buffer.find(delimiter)
                    if at < 0:
                        if len(buffer) > keep:
                            data = bytes(buffer[:-keep])
                            del buffer[:-keep]
                            if in_file:
                                yield data
                        break
                    if in_file:
                        if at:
                            yield bytes(buffer[:at])
                        return
                    del buffer[: at + len(delimiter)]
                    state = "after-delimiter"
        raise BadMultipart("the body ended inside a part")
