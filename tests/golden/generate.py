"""The golden table of the presentation contract: events in, views and notices out.

`python -m tests.golden.generate` writes `presentation.json` from the Python presenter; the
Python test checks the committed file still matches it, and the JavaScript suite binds every
view onto a card and checks the page shows what the server renders (`html`). A change to a
display rule therefore shows up as a diff of this file, reviewed once, for every surface.

Cards are cases with a `view`; transfer rows (downloads, uploads, quantizing) cases with a
`transfer`; the hub's search hits and a repository's models cases with a `hit` or a
`remote_model`. Cards of a remote engine's models (a llama.cpp router's) carry the engine's
connection (`connection`); the groups of the models list are cases with a `section`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from llm_desktop.core import hf_hub, hub_presenter, presenter, transfer_presenter
from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.events import (
    GPU_OOM_MESSAGE,
    LIMIT_COUNT,
    LIMIT_MEMORY,
    OP_DOWNLOAD,
    OP_QUANTIZE,
    OP_UPLOAD,
    REASON_EVICTED,
    REASON_IDLE,
    REASON_REQUEST,
    ErrorInfo,
    ErrorKind,
    ProgressEvent,
    Reason,
    Stage,
)
from llm_desktop.core.fit import FitVerdict, MemoryEstimate
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.remote_engine import ConnectionStatus, RouterModel, model_entry, remote_key
from llm_desktop.core.source_sections import source_sections
from llm_desktop.server.page import card_html, source_group_html
from llm_desktop.server.page_getting import hit_html, remote_model_html, transfer_row_html

GOLDEN = Path(__file__).with_name("presentation.json")
GB = 1_000_000_000

ENTRY = ModelEntry(
    id="demo-1a2b3c4d5e",
    path="/models/demo.gguf",
    parts=("/models/demo.gguf",),
    source="folder",
    display_name="Demo <7B> & friends",
    architecture="llama",
    size_label="7B",
    parameter_count=7_000_000_000,
    quantization="Q4_K_M",
    context_length=4096,
    block_count=32,
    embedding_length=4096,
    head_count=32,
    head_count_kv=8,
    key_length=128,
    value_length=128,
    vocab_size=32000,
    file_size=int(4.1 * GB),
    mtime=0.0,
)
SPLIT_ENTRY = replace(
    ENTRY,
    id="big-0000000001",
    path="/lmstudio/big-00001-of-00002.gguf",
    parts=("/lmstudio/big-00001-of-00002.gguf", "/lmstudio/big-00002-of-00002.gguf"),
    source="lmstudio",
    display_name="Big",
    size_label=None,
    context_length=None,
)
UNREADABLE_ENTRY = replace(
    ENTRY,
    id="broken-0000000002",
    path="/models/broken.gguf",
    display_name="broken",
    error="Not a valid GGUF model: bad magic",
)
ESTIMATE = MemoryEstimate(weights=4 * GB, kv_cache=GB // 2, compute=GB // 4, total=5 * GB)


def verdict(kind: str, gpu_layers: int = 0) -> FitVerdict:
    summaries = {
        "cpu": "Needs 5.0 GB; 12.0 GB of RAM available; no NVIDIA GPU detected",
        "gpu": "Needs 5.0 GB; 8.0 GB free on GPU 0",
        "partial": "Needs 5.0 GB; 20 of 33 layers fit in 3.0 GB free on GPU 0",
        "no": "Needs 5.0 GB; only 2.0 GB of RAM available",
    }
    return FitVerdict(kind, gpu_layers, 32, ESTIMATE, 12 * GB, 0, None, summaries[kind])


def event(stage: Stage, pct: float, message: str, seq: int, **fields) -> ProgressEvent:
    return ProgressEvent(ENTRY.id, seq, stage, pct, message, ts=0.0, **fields)


def failed(kind: ErrorKind, message: str, seq: int, **fields) -> ProgressEvent:
    error = ErrorInfo(kind, message, ("llama_model_load: error loading model", "last log line"))
    return event(Stage.FAILED, 37.0, message, seq, error=error, **fields)


def cases() -> list[dict]:
    loading = dict(bytes_done=int(1.7 * GB), bytes_total=int(4.1 * GB), rate_bps=1.9e9, eta_s=1.3)
    rows = [
        ("never loaded", ENTRY, None, verdict("cpu"), None),
        ("connecting", ENTRY, event(Stage.CONNECTING, 0, "Attaching a model host", 1), None, None),
        (
            "reading metadata",
            ENTRY,
            event(Stage.PARSING, 2, "Reading model metadata", 3),
            None,
            None,
        ),
        (
            "loading weights",
            ENTRY,
            event(Stage.LOADING, 41.6, "Loading weights", 5, **loading),
            verdict("gpu", 33),
            None,
        ),
        (
            "loading, no rate yet",
            ENTRY,
            event(Stage.LOADING, 5, "Loading weights", 4, bytes_done=0, bytes_total=int(4.1 * GB)),
            None,
            None,
        ),
        (
            "loading, minutes left",
            ENTRY,
            event(Stage.LOADING, 12.5, "Loading weights", 6, **{**loading, "eta_s": 125.0}),
            None,
            None,
        ),
        (
            "creating context",
            ENTRY,
            event(Stage.OPTIMIZING, 90, "Creating context (4096 tokens)", 7),
            None,
            None,
        ),
        (
            "warming up",
            ENTRY,
            event(Stage.FINALIZING, 96, "Warming up: first decode", 8),
            None,
            None,
        ),
        (
            "creating context, a while in, usual time known",
            ENTRY,
            event(
                Stage.OPTIMIZING,
                90,
                "Creating context (4096 tokens)",
                7,
                elapsed_s=0.8,
                expected_s=2.14,
            ),
            None,
            None,
        ),
        (
            "loaded, with its timeline",
            ENTRY,
            event(
                Stage.COMPLETE,
                100,
                "Ready (4096-token context)",
                9,
                memory_bytes=int(4.4 * GB),
                timeline=(("read", 0.47), ("context", 0.21), ("warm-up", 12.3)),
            ),
            None,
            None,
        ),
        (
            "loaded",
            ENTRY,
            event(Stage.COMPLETE, 100, "Ready (4096-token context)", 9, memory_bytes=int(4.4 * GB)),
            verdict("partial", 20),
            None,
        ),
        (
            "out of RAM",
            ENTRY,
            failed(ErrorKind.OUT_OF_MEMORY, "Out of memory - Model too large", 10),
            verdict("no"),
            LoadOptions(n_ctx=2048),
        ),
        (
            "out of GPU memory",
            ENTRY,
            failed(ErrorKind.OUT_OF_MEMORY, GPU_OOM_MESSAGE, 11),
            verdict("partial", 20),
            None,
        ),
        (
            "engine crashed",
            ENTRY,
            failed(ErrorKind.ENGINE_CRASHED, "The model engine crashed (SIGSEGV)", 12),
            None,
            None,
        ),
        (
            "not a model",
            ENTRY,
            failed(ErrorKind.INVALID_MODEL, "Not a valid GGUF model: truncated tensor data", 13),
            None,
            None,
        ),
        (
            "cancelled",
            ENTRY,
            event(
                Stage.CANCELLED,
                37,
                "Loading cancelled",
                14,
                error=ErrorInfo(ErrorKind.CANCELLED, "Loading cancelled"),
            ),
            None,
            None,
        ),
        (
            "unloading",
            ENTRY,
            replace(
                event(Stage.UNLOADING, 0, "Unloading", 15, memory_bytes=int(4.4 * GB)), op="unload"
            ),
            None,
            None,
        ),
        (
            "unloaded",
            ENTRY,
            replace(
                event(
                    Stage.UNLOADED, 100, "Unloaded; freed 4.4 GB", 16, memory_bytes=int(4.4 * GB)
                ),
                op="unload",
            ),
            None,
            None,
        ),
        (
            "loaded for an API request",
            ENTRY,
            event(
                Stage.COMPLETE,
                100,
                "Ready (4096-token context)",
                17,
                memory_bytes=int(4.4 * GB),
                reason=Reason(REASON_REQUEST, client="127.0.0.1:50312"),
            ),
            None,
            None,
        ),
        (
            "unloaded after its keep-alive",
            ENTRY,
            replace(
                event(
                    Stage.UNLOADED,
                    100,
                    "Unloaded; freed 4.4 GB",
                    18,
                    memory_bytes=int(4.4 * GB),
                    reason=Reason(REASON_IDLE, idle_s=903.2),
                ),
                op="unload",
            ),
            None,
            None,
        ),
        (
            "evicted for the limit of loaded models",
            ENTRY,
            replace(
                event(
                    Stage.UNLOADED,
                    100,
                    "Unloaded; freed 4.4 GB",
                    19,
                    memory_bytes=int(4.4 * GB),
                    reason=Reason(
                        REASON_EVICTED,
                        for_model="other-0000000003",
                        for_title="Other 3B",
                        limit=LIMIT_COUNT,
                        max_loaded=1,
                    ),
                ),
                op="unload",
            ),
            None,
            None,
        ),
        (
            "evicted for memory, while unloading",
            ENTRY,
            replace(
                event(
                    Stage.UNLOADING,
                    0,
                    "Unloading",
                    20,
                    memory_bytes=int(4.4 * GB),
                    reason=Reason(
                        REASON_EVICTED,
                        for_model="other-0000000003",
                        for_title="Other 3B",
                        limit=LIMIT_MEMORY,
                    ),
                ),
                op="unload",
            ),
            None,
            None,
        ),
        ("unreadable file", UNREADABLE_ENTRY, None, None, None),
        ("split model from LM Studio", SPLIT_ENTRY, None, verdict("cpu"), None),
    ]
    out = []
    for name, entry, ev, fit_verdict, options in rows:
        if ev is not None:
            ev = replace(ev, model=entry.id)
        out.append(card_case(name, entry, ev, verdict=fit_verdict, options=options))
    out += remote_cases()
    same_name = [replace(ENTRY, id=f"twin-{n}", path=f"/models/twin-{n}.gguf") for n in (1, 2)]
    return [*out, {"name": "two models with one name", "titles": presenter.titles(same_name)}]


def card_case(
    name: str,
    entry: ModelEntry,
    ev: ProgressEvent | None,
    *,
    verdict: FitVerdict | None = None,
    options: LoadOptions | None = None,
    connection: ConnectionStatus | None = None,
) -> dict:
    view = presenter.card_view(entry, ev, verdict=verdict, options=options, connection=connection)
    notice = presenter.notice_for(view, ev) if ev is not None else None
    case = {
        "name": name,
        "event": ev.to_dict() if ev else None,
        "view": view.to_dict(),
        "notice": notice.to_dict() if notice else None,
        "html": card_html(view),
    }
    if connection is not None:
        case["connection"] = connection.to_dict()
    return case


# A llama.cpp router on another machine: its models, its connection, and events of the shapes
# `RouterTranslator` makes of its frames (written out here: the table pins the presenter).
ENGINE = "lab-gpu"
ROUTER_URL = "http://10.0.0.5:8080"
ROUTER_META = {  # what a router reported for the generated "tiny" model once it was loaded
    "vocab_type": 1,
    "n_vocab": 259,
    "n_ctx": 2048,
    "n_ctx_train": 2048,
    "n_embd": 64,
    "n_params": 133824,
    "size": 535296,
    "ftype": "all F32",
}
CONNECTED = ConnectionStatus(
    ENGINE, ROUTER_URL, "connected", 0.0, models=3, loaded=1, max_loaded=2, build="b6123-4f1e2d3"
)
CONNECTING = ConnectionStatus(ENGINE, ROUTER_URL, "connecting", 0.0)
UNREACHABLE = ConnectionStatus(
    ENGINE,
    ROUTER_URL,
    "disconnected",
    0.0,
    error=ErrorInfo(ErrorKind.NETWORK, f"Could not reach {ENGINE}: connection refused"),
    retry_in_s=4.0,
)
BACK = replace(CONNECTED, gap_s=12.4)


def remote(router_id: str, stage: Stage, pct: float, message: str, seq: int, **fields):
    """An event of a router's model, as `RouterTranslator` makes it of the router's frames."""
    return ProgressEvent(
        remote_key(ENGINE, router_id), seq, stage, pct, message, ts=0.0, engine=ENGINE, **fields
    )


def remote_entry(router_id: str, meta: dict | None = None) -> ModelEntry:
    """A router's model as it lists it: nothing but its id before a load, `meta` after."""
    return model_entry(
        ENGINE, RouterModel(router_id, remote_key(ENGINE, router_id), meta=meta or {})
    )


def router_events() -> dict[str, tuple[ModelEntry, ProgressEvent | None]]:
    """What happened to a router's models, each with the card's entry at that point."""
    tiny, loaded_tiny = remote_entry("tiny"), remote_entry("tiny", ROUTER_META)
    crash = (
        f"{ENGINE} reports only the exit code; its own log says why",
        "llama-server --host 127.0.0.1 --port 0 --alias other --model /models/other.gguf",
    )
    crash_words = f"The model's process on {ENGINE} exited with code 1 while loading"
    lost = f"Lost contact with {ENGINE} while loading; its state shows on reconnecting"
    evicted = Reason(
        REASON_EVICTED,
        for_model=remote_key(ENGINE, "other"),
        for_title="other",
        limit=LIMIT_COUNT,
        max_loaded=2,
    )
    loading = f"Loading on {ENGINE}"
    return {
        "unloaded": (tiny, None),
        "loading, 0 reported": (
            tiny,
            remote("tiny", Stage.LOADING, 0.0, loading, 102, elapsed_s=1.2),
        ),
        "loading, 1.0 reported": (
            tiny,
            remote("tiny", Stage.LOADING, 99.0, loading, 103, elapsed_s=1.6),
        ),
        "loaded": (
            loaded_tiny,
            remote(
                "tiny",
                Stage.COMPLETE,
                100.0,
                f"Loaded on {ENGINE}",
                104,
                timeline=(("load", 1.9),),
            ),
        ),
        "evicted": (
            loaded_tiny,
            remote(
                "tiny",
                Stage.UNLOADED,
                100.0,
                f"Unloaded by {ENGINE}",
                105,
                op="unload",
                reason=evicted,
            ),
        ),
        "crashed": (
            remote_entry("other"),
            remote(
                "other",
                Stage.FAILED,
                0.0,
                crash_words,
                106,
                error=ErrorInfo(ErrorKind.ENGINE_CRASHED, crash_words, crash),
            ),
        ),
        "asleep": (
            remote_entry("small", ROUTER_META),
            remote(
                "small", Stage.SLEEPING, 0.0, f"Asleep on {ENGINE}: its next request wakes it", 107
            ),
        ),
        "lost": (
            tiny,
            remote(
                "tiny",
                Stage.FAILED,
                0.0,
                lost,
                108,
                error=ErrorInfo(
                    ErrorKind.NETWORK, lost, (f"Could not reach {ENGINE}: connection refused",)
                ),
            ),
        ),
    }


def remote_cases() -> list[dict]:
    events = router_events()
    rows = [
        ("remote: not loaded, its router connected", "unloaded", CONNECTED),
        ("remote: its router connecting", "unloaded", CONNECTING),
        ("remote: loading, the router reported 0", "loading, 0 reported", CONNECTED),
        ("remote: loading, the router reported 1.0", "loading, 1.0 reported", CONNECTED),
        ("remote: loaded, facts from the router", "loaded", CONNECTED),
        ("remote: evicted by --models-max", "evicted", CONNECTED),
        ("remote: its model process crashed", "crashed", CONNECTED),
        ("remote: asleep", "asleep", CONNECTED),
        ("remote: loaded, its router unreachable", "loaded", UNREACHABLE),
        ("remote: contact lost while loading", "lost", UNREACHABLE),
        ("remote: loaded, its router back after a gap", "loaded", BACK),
    ]
    return [card_case(name, *events[key], connection=connection) for name, key, connection in rows]


def section_cases() -> list[dict]:
    """The groups of the models list: this machine alone (no heading), this machine with remote
    engines, an engine with no model listed, and this machine with no model of its own."""
    local = presenter.card_view(ENTRY)
    remote = presenter.card_view(router_events()["unloaded"][0], connection=CONNECTED)
    other = replace(
        UNREACHABLE,
        name="attic",
        url="http://10.0.0.9:8080",
        error=ErrorInfo(ErrorKind.NETWORK, "Could not reach attic: timed out"),
    )
    tables = [
        ("this machine alone", [local], []),
        ("this machine and a router", [local, remote], [CONNECTED]),
        ("this machine and an unreachable router", [local, remote], [UNREACHABLE]),
        ("a router connecting, an unreachable one", [local], [CONNECTING, other]),
        ("remote models only", [remote], [CONNECTED]),
    ]
    return [
        {"name": f"sources: {name}: {section.title}", "section": section.to_dict(), "html": html}
        for name, views, connections in tables
        for section in source_sections(views, connections)
        for html in [source_group_html(section)]
    ]


DOWNLOAD_KEY = "download:acme/Tiny-GGUF:Tiny-Q4_K_M.gguf"
DOWNLOAD_LABEL = "acme/Tiny-GGUF · Q4_K_M"
MB = 1_000_000


def transfer_event(
    op: str, key: str, stage: Stage, pct: float, message: str, seq: int, **fields
) -> ProgressEvent:
    return ProgressEvent(key, seq, stage, pct, message, op=op, ts=0.0, **fields)


def download(stage: Stage, pct: float, message: str, seq: int, **fields) -> ProgressEvent:
    fields.setdefault("label", DOWNLOAD_LABEL)
    return transfer_event(OP_DOWNLOAD, DOWNLOAD_KEY, stage, pct, message, seq, **fields)


def transfer_cases() -> list[dict]:
    moving = dict(bytes_done=412 * MB, bytes_total=1200 * MB, rate_bps=38.2e6, eta_s=21.0)
    kept = dict(bytes_done=412 * MB, bytes_total=1200 * MB)
    result = "/cache/models--acme--Tiny-GGUF/snapshots/abc/Tiny-Q4_K_M.gguf"
    upload_key = "upload:0123456789ab"
    quantize_key = "quantize:/models/demo-Q4_K_M.gguf"
    rows = [
        ("download connecting", download(Stage.CONNECTING, 0, "Reading acme/Tiny-GGUF", 1)),
        ("downloading", download(Stage.DOWNLOADING, 33.3, "412 MB of 1.2 GB", 2, **moving)),
        (
            "downloading, stalled",
            download(Stage.DOWNLOADING, 33.3, "412 MB of 1.2 GB", 3, **kept, stalled_s=6.0),
        ),
        (
            "reconnecting",
            download(Stage.RETRYING, 33.3, "Connection dropped; trying again in 2 s", 4, **kept),
        ),
        ("paused", download(Stage.PAUSED, 33.3, "Paused; the bytes so far are kept", 5, **kept)),
        (
            "verifying",
            download(Stage.VERIFYING, 96, "Checking sha256", 6, bytes_total=1200 * MB),
        ),
        (
            "downloaded",
            download(
                Stage.COMPLETE,
                100,
                "Downloaded 1.2 GB in 31 s",
                7,
                bytes_done=1200 * MB,
                bytes_total=1200 * MB,
                result_path=result,
            ),
        ),
        (
            "download failed, network (resumable)",
            download(
                Stage.FAILED,
                33.3,
                "The connection failed",
                8,
                **kept,
                error=ErrorInfo(ErrorKind.NETWORK, "The connection failed after 4 tries"),
            ),
        ),
        (
            "download failed, gated",
            download(
                Stage.FAILED,
                0,
                "gated",
                9,
                label=None,
                error=ErrorInfo(ErrorKind.UNAUTHORIZED, "The repository is gated; log in"),
            ),
        ),
        (
            "download cancelled, bytes kept",
            download(Stage.CANCELLED, 33.3, "Cancelled; 412 MB kept to resume", 10, **kept),
        ),
        (
            "uploading",
            transfer_event(
                OP_UPLOAD,
                upload_key,
                Stage.UPLOADING,
                50.2,
                "2.0 GB of 4.1 GB",
                11,
                label="my-model.gguf",
                bytes_done=2000 * MB,
                bytes_total=4100 * MB,
                rate_bps=412e6,
                eta_s=5.1,
            ),
        ),
        (
            "upload refused, not a GGUF",
            transfer_event(
                OP_UPLOAD,
                upload_key,
                Stage.FAILED,
                1,
                "notes.gguf is not a GGUF model",
                12,
                label="notes.gguf",
                bytes_done=4096,
                bytes_total=9000,
                error=ErrorInfo(ErrorKind.INVALID_MODEL, "notes.gguf is not a GGUF model"),
            ),
        ),
        (
            "quantizing",
            transfer_event(
                OP_QUANTIZE,
                quantize_key,
                Stage.QUANTIZING,
                41,
                "Tensor 45 of 236 · blk.3.ffn_up.weight",
                13,
                label="demo-Q4_K_M.gguf",
                bytes_done=410 * MB,
                bytes_total=1000 * MB,
                rate_bps=80e6,
                eta_s=7.4,
            ),
        ),
        (
            "quantized",
            transfer_event(
                OP_QUANTIZE,
                quantize_key,
                Stage.COMPLETE,
                100,
                "Quantized to Q4_K_M in 12 s",
                14,
                label="demo-Q4_K_M.gguf",
                bytes_done=300 * MB,
                bytes_total=300 * MB,
                result_path="/models/demo-Q4_K_M.gguf",
            ),
        ),
    ]
    out = []
    for name, ev in rows:
        view = transfer_presenter.transfer_view(ev)
        notice = transfer_presenter.transfer_notice(view, ev)
        out.append(
            {
                "name": name,
                "event": ev.to_dict(),
                "transfer": view.to_dict(),
                "notice": notice.to_dict() if notice else None,
                "html": transfer_row_html(view),
            }
        )
    return out


def hub_cases() -> list[dict]:
    hits = [
        hf_hub.RepoHit("acme/Tiny-GGUF", 1520, 42, "2026-11-20", False),
        hf_hub.RepoHit("acme/Gated-GGUF", 1, 0, None, True),
    ]
    files = (
        hf_hub.RemoteFile("Big-Q4_K_M-00001-of-00002.gguf", 21 * MB, "a" * 64),
        hf_hub.RemoteFile("Big-Q4_K_M-00002-of-00002.gguf", 20 * MB, "b" * 64),
    )
    single = hf_hub.RemoteModel(
        "acme/Tiny-GGUF",
        "c" * 40,
        (hf_hub.RemoteFile("Tiny-Q4_K_M.gguf", 12_600_000, "d" * 64),),
        "Q4_K_M",
    )
    split = hf_hub.RemoteModel("acme/Big-GGUF", "e" * 40, files, "Q4_K_M")
    fit_of = hub_presenter.fit_of
    models = [
        ("a model, fit not asked", hub_presenter.remote_model_view(single)),
        (
            "a model whose fit is being read",
            hub_presenter.remote_model_view(single, fit=hub_presenter.fit_checking()),
        ),
        (
            "a recommended model that fits",
            hub_presenter.remote_model_view(
                single, fit=fit_of(verdict("gpu", 33)), recommended=True
            ),
        ),
        (
            "a split model, CPU only",
            hub_presenter.remote_model_view(split, fit=fit_of(verdict("cpu"))),
        ),
        (
            "a model whose header cannot be read",
            hub_presenter.remote_model_view(
                single, fit=fit_of(None, "Access denied: this repository is gated")
            ),
        ),
    ]
    out: list[dict] = [
        {"name": f"hit: {hit.repo_id}", "hit": view.to_dict(), "html": hit_html(view)}
        for hit in hits
        for view in [hub_presenter.hit_view(hit, "tiny")]
    ]
    out += [
        {"name": name, "remote_model": view.to_dict(), "html": remote_model_html(view)}
        for name, view in models
    ]
    return out


def render() -> str:
    table = {"cases": [*cases(), *section_cases(), *transfer_cases(), *hub_cases()]}
    return json.dumps(table, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if GOLDEN.read_text() == render() else 1)
    GOLDEN.write_text(render())
    print(f"wrote {GOLDEN}")
