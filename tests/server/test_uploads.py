"""The upload plumbing: a multipart body's file read as it arrives, however the chunks fall, and
batched writes that never leave one running."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llm_desktop.server.uploads import (
    BadMultipart,
    MultipartFile,
    UploadStopped,
    body_chunks,
    multipart_boundary,
    write_batched,
)

BOUNDARY = b"----WebKitFormBoundaryX3bY8Zq"


def form_body(data: bytes, name: str = "model.gguf", before: bytes = b"") -> bytes:
    """What a browser sends for the page's upload form (`before`: other fields first)."""
    return (
        before
        + b"--" + BOUNDARY + b"\r\n"
        + f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode()
        + b"Content-Type: application/octet-stream\r\n\r\n"
        + data
        + b"\r\n--" + BOUNDARY + b"--\r\n"
    )  # fmt: skip


async def chunked(body: bytes, size: int):
    for at in range(0, len(body), size):
        yield body[at : at + size]


async def read_file(body: bytes, size: int) -> tuple[str, bytes, MultipartFile]:
    parser = MultipartFile(BOUNDARY)
    name, data = None, bytearray()
    async for part in parser.parts(chunked(body, size)):
        if isinstance(part, str):
            name = part
        else:
            data += part
    return name, bytes(data), parser


# The file's bytes include what a delimiter starts with, to catch a parser that cuts early.
DATA = b"GGUF\x03\x00" + b"\r\n--not-the-boundary\r\n" + bytes(range(256)) * 9 + b"\r\n-"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 31, 64, 1000, 1 << 20])
def test_the_file_of_a_form_is_read_whatever_the_chunks(size):
    body = form_body(DATA)
    name, data, parser = asyncio.run(read_file(body, size))
    assert name == "model.gguf"
    assert data == DATA
    # What the server declares as the upload's size before reading it: exact.
    assert len(body) - parser.head_bytes - parser.trailer_bytes == len(DATA)


def test_fields_before_the_file_are_skipped():
    other = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
    body = form_body(DATA, before=other)
    name, data, parser = asyncio.run(read_file(body, 5))
    assert (name, data) == ("model.gguf", DATA)
    assert parser.head_bytes == body.index(DATA)


def test_a_body_cut_inside_the_file_is_an_error():
    body = form_body(DATA)[:-40]
    with pytest.raises(BadMultipart):
        asyncio.run(read_file(body, 16))


def test_the_boundary_comes_from_the_content_type():
    assert multipart_boundary(f"multipart/form-data; boundary={BOUNDARY.decode()}") == BOUNDARY
    assert multipart_boundary('multipart/form-data; boundary="a b"') == b"a b"
    assert multipart_boundary("application/json") is None
    assert multipart_boundary("multipart/form-data") is None


def test_batched_writes_keep_the_order_and_end_before_an_error_is_raised():
    written: list[bytes] = []
    running = threading.Event()

    def write(data: bytes) -> None:  # a slow disk
        running.set()
        time.sleep(0.05)
        written.append(data)
        running.clear()

    async def body():
        for index in range(15):  # a 4 MiB batch goes to the disk after the 14th
            yield bytes([index]) * 300_000
            await asyncio.sleep(0)  # as a socket would
        while not running.is_set():  # the client goes away while the batch is being written
            await asyncio.sleep(0.001)
        raise ConnectionError("the client went away")

    async def run() -> bool:
        try:
            await write_batched(body(), write)
        except ConnectionError:
            return running.is_set()
        raise AssertionError("the error was lost")

    assert asyncio.run(run()) is False, "a write was still running when the error came out"
    sent = b"".join(bytes([i]) * 300_000 for i in range(15))
    kept = b"".join(written)
    assert kept and sent.startswith(kept), "in order, and nothing after the error"
    assert len(written) == 1, "chunks are gathered into batches"


def test_a_stop_ends_the_reading_while_the_client_sends_nothing():
    async def run():
        stop = asyncio.Event()
        sent = asyncio.Queue()
        await sent.put({"type": "http.request", "body": b"GGUF", "more_body": True})

        async def receive():
            return await sent.get()  # then nothing more ever arrives

        got = []

        async def read():
            async for chunk in body_chunks(receive, stop):
                got.append(chunk)

        reading = asyncio.ensure_future(read())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        stop.set()
        with pytest.raises(UploadStopped):
            await reading
        return got

    assert asyncio.run(run()) == [b"GGUF"]
