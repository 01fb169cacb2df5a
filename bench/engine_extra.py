"""Engine figures beyond load overhead: throughput against a plain file read, time to the first
real work, memory across load/unload cycles, and cold start of the app process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import Stage


def _wait_warm(engine: Engine, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine._pool._lock:
            hosts = list(engine._pool._ready)
        if hosts and all(not host.inbox.empty() for host in hosts):
            return
        time.sleep(0.01)


def _unload(engine: Engine, model_id: str) -> None:
    with engine.events(model_id) as stream:
        engine.unload(model_id)
        list(stream.until_terminal(60))


READ_INTO_FRESH_MEMORY = """
import os, sys, time
path = sys.argv[1]
size = os.path.getsize(path)
started = time.perf_counter()
buffer = bytearray(size)
with open(path, "rb", buffering=0) as handle:
    handle.readinto(buffer)
print(size / (time.perf_counter() - started))
"""


def read_rate(model: Path) -> float:
    """Bytes/s of reading the whole file into newly allocated memory, in a new process: what
    a load with mmap off must do at least (the page faults of fresh memory included)."""
    output = subprocess.run(
        [sys.executable, "-c", READ_INTO_FRESH_MEMORY, str(model)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output)


def _timed_load(engine: Engine, model: Path, model_id: str) -> tuple[float, list]:
    _wait_warm(engine)
    with engine.events(model_id) as stream:
        requested = time.time()
        engine.load(model, LoadOptions(use_mmap=False), model=model_id)
        events = list(stream.until_terminal(120))
    assert events[-1].stage is Stage.COMPLETE, events[-1]
    _unload(engine, model_id)
    return requested, [e for e in events if e.stage is Stage.LOADING]


def bench_throughput_and_feedback(model: Path, rounds: int = 5) -> dict:
    """Weight bytes/s while `loading` (mmap off) against reading the same file sequentially
    into fresh memory, page cache warm for both; and the time from the load request to the
    first real work a subscriber sees: the `loading` stage, and its first event with bytes done
    (llama.cpp's progress callback has reported weights read). Events of one stage are
    throttled, so the first bytes are also timed with an engine whose throttle is off."""
    model.read_bytes()  # warm, as it is for the loads
    file_read, loading, to_loading, to_bytes, to_bytes_unthrottled = [], [], [], [], []
    with Engine(warm_hosts=1) as engine, Engine(warm_hosts=1, throttle_s=0.0) as unthrottled:
        throttle_s = engine.throttle_s
        model_id = engine.model_id(model)
        for _ in range(rounds):
            file_read.append(read_rate(model))

            requested, weights = _timed_load(engine, model, model_id)
            first_bytes = next(e for e in weights if e.bytes_done)
            to_loading.append((weights[0].ts - requested) * 1000)
            to_bytes.append((first_bytes.ts - requested) * 1000)
            span = weights[-1].ts - weights[0].ts
            loading.append(weights[-1].bytes_total / span if span > 0 else 0.0)

            requested, weights = _timed_load(unthrottled, model, model_id)
            first_bytes = next(e for e in weights if e.bytes_done)
            to_bytes_unthrottled.append((first_bytes.ts - requested) * 1000)
    return {
        "rounds": rounds,
        "page_cache": "warm",
        "file_read_mb_s": round(statistics.median(file_read) / 1e6),
        "loading_mb_s": round(statistics.median(loading) / 1e6),
        "loading_over_file_read": round(
            statistics.median(loading) / statistics.median(file_read), 3
        ),
        "request_to_loading_ms": round(statistics.median(to_loading), 2),
        "request_to_first_bytes_ms": round(statistics.median(to_bytes), 2),
        "engine_throttle_s": throttle_s,  # the engine's setting, not a measurement
        "request_to_first_bytes_unthrottled_ms": round(statistics.median(to_bytes_unthrottled), 2),
    }


def bench_memory_cycles(model: Path, cycles: int = 50) -> dict:
    """RSS of this process (the app's stand-in) and of the host: before, loaded, after unload;
    then `cycles` load/unload cycles and the app's growth over them."""
    app = psutil.Process()
    with Engine(warm_hosts=1) as engine:
        model_id = engine.model_id(model)
        _wait_warm(engine)
        app_before = app.memory_info().rss
        with engine.events(model_id) as stream:
            engine.load(model, LoadOptions(use_mmap=False), model=model_id)
            final = list(stream.until_terminal(120))[-1]
        host_pid = engine.host_pid(model_id)
        host_loaded = psutil.Process(host_pid).memory_info().rss
        app_loaded = app.memory_info().rss
        _unload(engine, model_id)
        host_gone = not psutil.pid_exists(host_pid) or (
            psutil.Process(host_pid).status() == psutil.STATUS_ZOMBIE
        )
        app_after = app.memory_info().rss
        assert final.stage is Stage.COMPLETE

        start_cycles = app.memory_info().rss
        for _ in range(cycles):
            with engine.events(model_id) as stream:
                engine.load(model, LoadOptions(use_mmap=False), model=model_id)
                list(stream.until_terminal(120))
            _unload(engine, model_id)
        end_cycles = app.memory_info().rss
        hosts_left = [
            child
            for child in app.children(recursive=True)
            if child.status() != psutil.STATUS_ZOMBIE
        ]
    return {
        "model_mb": round(model.stat().st_size / 1e6, 1),
        "app_rss_before_mb": round(app_before / 1e6, 1),
        "app_rss_loaded_mb": round(app_loaded / 1e6, 1),
        "app_rss_after_unload_mb": round(app_after / 1e6, 1),
        "host_rss_loaded_mb": round(host_loaded / 1e6, 1),
        "host_ended_on_unload": host_gone,
        "cycles": cycles,
        "app_rss_growth_over_cycles_mb": round((end_cycles - start_cycles) / 1e6, 1),
        "hosts_alive_after_cycles": len(hosts_left),  # the one warm host is expected
    }


def bench_cold_start(rounds: int = 5) -> dict:
    """Process start to first painted window, and to the web panel's page loaded (offscreen),
    with an empty library in a throwaway home."""
    results: dict[str, list[float]] = {"first_paint_s": [], "web_page_loaded_s": []}
    for what, key in (("window", "first_paint_s"), ("web", "web_page_loaded_s")):
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="llm-cold-") as home:
                env = {
                    **os.environ,
                    "HOME": home,
                    "XDG_CONFIG_HOME": f"{home}/.config",
                    "XDG_CACHE_HOME": f"{home}/.cache",
                    "XDG_DATA_HOME": f"{home}/.local/share",
                    "QT_QPA_PLATFORM": "offscreen",
                    "LLM_DESKTOP_STARTUP_PROBE": what,
                }
                output = subprocess.run(
                    [sys.executable, "-m", "llm_desktop"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=True,
                ).stdout
                line = [text for text in output.splitlines() if text.startswith("{")][-1]
                results[key].append(json.loads(line)[key])
    return {key: round(statistics.median(values), 3) for key, values in results.items()} | {
        "rounds": rounds
    }
