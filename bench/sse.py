"""SSE delivery latency: from the engine stamping an event to a viewer parsing it.

Viewers are real HTTP clients on loopback, subscribed to /api/llm/events while a real load runs,
in a process of their own (as browsers are), so their parsing does not share the server's
interpreter. Latency per event is the receipt wall-clock time minus the event's `ts` (both on
this machine's clock).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ProgressEvent, Stage
from llm_desktop.core.library import ModelLibrary
from llm_desktop.server.runner import ServerThread


async def _watch(host: str, port: int, token: str, on_data) -> None:
    """One viewer on a plain socket: a browser's work (read the stream, parse each event's
    JSON), without an HTTP client library's per-chunk cost, so the figure is the server's."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /api/llm/events?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    kind = None
    try:
        while line := await reader.readline():
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text.startswith("event: "):
                kind = text[7:]
            elif text.startswith("data: ") and on_data(kind, text[6:]):
                return
    finally:
        writer.close()


async def _viewers(base_url: str, token: str, model_id: str, count: int, loads: int) -> list[float]:
    latencies: list[float] = []
    ready = asyncio.Event()
    connected = []
    host, port = base_url.removeprefix("http://").rsplit(":", 1)

    def viewer():
        finished = [0]

        def on_data(kind, data) -> bool:
            if kind == "snapshot":
                connected.append(1)
                if len(connected) == count:
                    ready.set()
                return False
            if kind != "progress":
                return False
            received = time.time()
            event = ProgressEvent.from_json(data)
            latencies.append((received - event.ts) * 1000)
            if event.stage in (Stage.COMPLETE, Stage.UNLOADED) and event.model == model_id:
                finished[0] += 1
            return finished[0] == 2 * loads

        return _watch(host, int(port), token, on_data)

    tasks = [asyncio.create_task(viewer()) for _ in range(count)]
    await asyncio.wait_for(ready.wait(), 60)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(120.0)) as session:
        for _ in range(loads):
            await session.post(
                "/api/llm/load", json={"model": model_id, "use_mmap": False}, headers=headers
            )
            await session.post("/api/llm/unload", json={"model": model_id}, headers=headers)
            await asyncio.sleep(0.3)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return latencies


def bench_sse(model: Path, viewer_counts=(1, 100), loads: int = 3) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="llm-sse-bench-") as temp:
        folder = Path(temp)
        os.symlink(model, folder / model.name)
        with Engine(warm_hosts=1) as engine:
            library = ModelLibrary([folder], include_known=False)
            library.refresh()
            (entry,) = [item.entry for item in library.models()]
            server = ServerThread(engine, library).start()
            try:
                for count in viewer_counts:
                    latencies = _in_a_viewer_process(
                        server.base_url, server.config.token, entry.id, count, loads
                    )
                    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
                    results[f"viewers_{count}"] = {
                        "loads": loads,
                        "events_received": len(latencies),
                        "p50_ms": round(statistics.median(latencies), 2),
                        "p99_ms": round(quantiles[98], 2),
                        "max_ms": round(max(latencies), 2),
                    }
            finally:
                server.stop()
    return results


def _in_a_viewer_process(base_url: str, token: str, model_id: str, count: int, loads: int):
    """Run the viewers in a process of their own (`python -m bench.sse`); their latencies."""
    command = [sys.executable, "-m", "bench.sse", base_url, token, model_id, str(count), str(loads)]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"the viewer process failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


if __name__ == "__main__":
    url, key, model, viewers, rounds = sys.argv[1:6]
    print(json.dumps(asyncio.run(_viewers(url, key, model, int(viewers), int(rounds)))))
