"""Two end-to-end figures: the CLI against a bare Python process, and a cold-cache mmap load.

- CLI: `llm-desktop load --json --n-ctx 2048 MODEL` from process start to exit, against a bare
  `python -c "Llama(MODEL, n_ctx=2048)"`, alternating, medians (page cache warm for both).
- Cold mmap load: the page cache dropped (root), then a load with mmap on through the engine:
  how many progress updates arrive while the weights are read, the bytes/s they show, and the
  file's size over the time the read took (the measured rate).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import Stage

BARE = "import sys; from llama_cpp import Llama; Llama(sys.argv[1], n_ctx=2048, verbose=False)"


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def bench_cli(model: Path, rounds: int) -> dict:
    cli = [sys.executable, "-m", "llm_desktop.cli", "load", "--json", "--n-ctx", "2048", str(model)]
    bare = [sys.executable, "-c", BARE, str(model)]
    ours, peer = [], []
    model.read_bytes()
    for _ in range(rounds):
        ours.append(_timed(cli))
        peer.append(_timed(bare))
    ours_s, peer_s = statistics.median(ours), statistics.median(peer)
    return {
        "model": model.name,
        "rounds": rounds,
        "cli_s": round(ours_s, 3),
        "bare_s": round(peer_s, 3),
        "ratio": round(ours_s / peer_s, 3),
    }


def drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def bench_cold_mmap(model: Path) -> dict | None:
    """None where the page cache cannot be dropped (not root): a warm read says nothing."""
    with Engine(warm_hosts=1) as engine:
        model_id = engine.model_id(model)
        engine.prestart_host()
        time.sleep(1.0)  # the warm host has imported llama.cpp
        if not drop_page_cache():
            return None
        with engine.events(model_id) as stream:
            engine.load(model, LoadOptions(n_ctx=512), model=model_id)
            events = list(stream.until_terminal(300))
    assert events[-1].stage is Stage.COMPLETE, events[-1]
    loading = [event for event in events if event.stage is Stage.LOADING]
    read_s = loading[-1].ts - loading[0].ts
    shown = [event.rate_bps for event in loading if event.rate_bps]
    size = model.stat().st_size
    return {
        "mb": round(size / 1e6, 1),
        "updates_while_reading": len(loading),
        "read_s": round(read_s, 3),
        "measured_mb_s": round(size / read_s / 1e6, 1),
        "shown_mb_s_median": round(statistics.median(shown) / 1e6, 1) if shown else None,
        "total_s": round(events[-1].ts - events[0].ts, 3),
    }
