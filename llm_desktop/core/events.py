"""The one event model: what the engine reports, and what every view renders.

The Qt cards, the SSE stream and the CLI all consume `ProgressEvent` in the JSON form given by
`to_dict()`; none of them computes progress of its own. Field names keep the seed document's
(`stage`, `pct`, `message`) and add what a load really knows (bytes, rate, ETA, error).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """What the engine is doing, each mapped to a real step (see `STAGE_BANDS`)."""

    CONNECTING = "connecting"  # request accepted, a model host attached
    INITIALIZING = "initializing"  # preflight: file exists, is regular, readable; memory read
    PARSING = "parsing"  # GGUF header and metadata validated; fit estimate computed
    LOADING = "loading"  # tensor data, driven by llama.cpp's progress callback
    QUANTIZING = "quantizing"  # reserved for a step that really quantizes; never faked
    OPTIMIZING = "optimizing"  # context creation: KV cache and compute buffers
    FINALIZING = "finalizing"  # one-token warm-up decode
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNLOADING = "unloading"
    UNLOADED = "unloaded"
    # The stages of getting a model (op "download", "upload"), each a real step of the transfer.
    DOWNLOADING = "downloading"  # bytes arriving; rate over a sliding window, ETA
    UPLOADING = "uploading"  # bytes of a page upload arriving at the server
    RETRYING = "retrying"  # the connection dropped or stalled: waiting to resume where it stopped
    PAUSED = "paused"  # stopped by the person; the partial file is kept for resuming
    VERIFYING = "verifying"  # sha256 of the whole file, then its GGUF header
    # A remote router's model whose process dropped its weights after `--sleep-idle-seconds`;
    # the router wakes it (a load) at its next request.
    SLEEPING = "sleeping"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STAGES


TERMINAL_STAGES = frozenset(
    {Stage.COMPLETE, Stage.FAILED, Stage.CANCELLED, Stage.UNLOADED, Stage.SLEEPING}
)

# The part of 0–100 that each load stage occupies. Only `loading` moves inside its band (by
# bytes); the others mark their start, so pct never claims work that has not happened.
STAGE_BANDS: dict[Stage, tuple[float, float]] = {
    Stage.CONNECTING: (0.0, 1.0),
    Stage.INITIALIZING: (1.0, 2.0),
    Stage.PARSING: (2.0, 5.0),
    Stage.LOADING: (5.0, 90.0),
    Stage.QUANTIZING: (90.0, 90.0),
    Stage.OPTIMIZING: (90.0, 96.0),
    Stage.FINALIZING: (96.0, 99.0),
    Stage.COMPLETE: (100.0, 100.0),
    Stage.UNLOADING: (0.0, 0.0),
    Stage.UNLOADED: (100.0, 100.0),
    Stage.SLEEPING: (100.0, 100.0),
}


# The operations of the one event model. A transfer's events carry the transfer's own key as
# `model` ("download:…", "upload:…", "quantize:…"), never a library model's id.
OP_LOAD = "load"
OP_UNLOAD = "unload"
OP_DOWNLOAD = "download"
OP_UPLOAD = "upload"
OP_QUANTIZE = "quantize"
TRANSFER_OPS = frozenset({OP_DOWNLOAD, OP_UPLOAD, OP_QUANTIZE})

# Getting a model: the bytes (or tensors) are nearly all of the work, so they span the bar.
TRANSFER_BANDS: dict[Stage, tuple[float, float]] = {
    Stage.CONNECTING: (0.0, 1.0),
    Stage.DOWNLOADING: (1.0, 95.0),
    Stage.UPLOADING: (1.0, 95.0),
    Stage.QUANTIZING: (1.0, 99.0),
    Stage.VERIFYING: (95.0, 99.5),
    Stage.FINALIZING: (99.5, 100.0),
    Stage.COMPLETE: (100.0, 100.0),
}


def stage_pct(stage: Stage, fraction: float = 0.0, op: str = OP_LOAD) -> float:
    """Overall percentage for `fraction` (0–1) of the way through `stage` of `op`."""
    low, high = (TRANSFER_BANDS if op in TRANSFER_OPS else STAGE_BANDS)[stage]
    fraction = min(max(fraction, 0.0), 1.0)
    return round(low + (high - low) * fraction, 2)


class ErrorKind(StrEnum):
    NOT_FOUND = "not_found"
    PERMISSION_DENIED = "permission_denied"
    INVALID_MODEL = "invalid_model"
    UNSUPPORTED_MODEL = "unsupported_model"
    OUT_OF_MEMORY = "out_of_memory"
    ENGINE_CRASHED = "engine_crashed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    # Getting a model.
    UNAUTHORIZED = "unauthorized"  # gated or private: a token is missing or not accepted
    RATE_LIMITED = "rate_limited"
    NETWORK = "network"  # the connection failed and retrying did not mend it
    DISK_FULL = "disk_full"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    TOO_LARGE = "too_large"  # an upload over the server's size limit
    IN_USE = "in_use"  # another transfer is writing the same file
    # Serving models to other programs.
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"  # prompt + reply exceed the context
    CANNOT_EMBED = "cannot_embed"  # a text-generation model asked for embeddings
    CANNOT_GENERATE = "cannot_generate"  # an embedding model asked for text
    INVALID_REQUEST = "invalid_request"  # a request the model cannot take as it is


# Transfer failures after which the bytes received are kept and the same transfer can resume.
RESUMABLE_TRANSFER_ERRORS = frozenset(
    {ErrorKind.NETWORK, ErrorKind.DISK_FULL, ErrorKind.RATE_LIMITED}
)


# Why a model was loaded or unloaded when nobody pressed a button (`Reason.kind`).
REASON_REQUEST = "request"  # loaded because an API client asked for it
REASON_IDLE = "idle"  # unloaded after its keep-alive expired
REASON_EVICTED = "evicted"  # unloaded to make room for another model
LIMIT_COUNT = "count"  # the limit of loaded models
LIMIT_MEMORY = "memory"  # the memory budget


@dataclass(frozen=True)
class Reason:
    """Why the engine did this on its own. Facts only; the presenter puts them into words."""

    kind: str  # one of the REASON_ names
    idle_s: float | None = None  # idle: how long the model had not been used
    for_model: str | None = None  # evicted: the model that needed the room…
    for_title: str | None = None  # …and what a person calls it
    limit: str | None = None  # evicted: LIMIT_COUNT or LIMIT_MEMORY
    max_loaded: int | None = None  # evicted for the count: the limit
    client: str | None = None  # request: who asked (an address)

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class ModelState(StrEnum):
    """The state a card shows, derived from the last event of a model."""

    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNLOADING = "unloading"
    UNREADABLE = "unreadable"  # the catalog could not read the file: it cannot be loaded
    SLEEPING = "sleeping"  # a remote model asleep: listed as running, its weights freed


@dataclass(frozen=True)
class ErrorInfo:
    kind: ErrorKind
    message: str
    # Last llama.cpp log lines or host stderr lines, for a person who wants the detail.
    detail: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "message": self.message, "detail": list(self.detail)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        return cls(
            kind=ErrorKind(data["kind"]),
            message=data["message"],
            detail=tuple(data.get("detail", ())),
        )


class ModelError(Exception):
    """A failure a person can understand; `kind` says which one."""

    def __init__(self, kind: ErrorKind, message: str, detail: tuple[str, ...] = ()):
        super().__init__(message)
        self.info = ErrorInfo(kind, message, tuple(detail))

    @classmethod
    def from_info(cls, info: ErrorInfo) -> ModelError:
        return cls(info.kind, info.message, info.detail)

    @property
    def kind(self) -> ErrorKind:
        return self.info.kind


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a load or unload of one model. `seq` is the event bus's number: it increases
    with every event of every model, so it orders events and is a resume point."""

    model: str
    seq: int
    stage: Stage
    pct: float
    message: str
    op: str = OP_LOAD  # one of the OP_ names above
    bytes_done: int | None = None
    bytes_total: int | None = None
    rate_bps: float | None = None
    eta_s: float | None = None
    error: ErrorInfo | None = None
    memory_bytes: int | None = None  # host RSS when loaded; memory returned when unloaded
    # Stages llama.cpp does not measure: how long this one has run, and how long it took on
    # earlier loads of the same model with the same settings here (None: never seen).
    elapsed_s: float | None = None
    expected_s: float | None = None
    # On `complete`: how long each stage took, in order, as (stage, seconds) pairs.
    timeline: tuple[tuple[str, float], ...] | None = None
    # Transfers: what a person calls the thing moving ("org/repo · Q4_K_M"), how long no byte
    # has arrived (so a rate readout shows a stall instead of freezing), and on `complete` the
    # file it made.
    label: str | None = None
    stalled_s: float | None = None
    result_path: str | None = None
    # Loads and unloads the engine did on its own (a request, keep-alive, eviction): why.
    reason: Reason | None = None
    # The remote engine that did it ("lab-gpu"); None for this machine's model hosts.
    engine: str | None = None
    ts: float = field(default=0.0, compare=False)

    @property
    def state(self) -> ModelState:
        return state_for_stage(self.stage)

    @property
    def is_terminal(self) -> bool:
        return self.stage.is_terminal

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage"] = str(self.stage)
        data["state"] = str(self.state)
        data["error"] = self.error.to_dict() if self.error else None
        data["timeline"] = dict(self.timeline) if self.timeline else None
        data["reason"] = self.reason.to_dict() if self.reason else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressEvent:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["stage"] = Stage(fields["stage"])
        if fields.get("error"):
            fields["error"] = ErrorInfo.from_dict(fields["error"])
        if fields.get("timeline"):
            fields["timeline"] = tuple((str(k), float(v)) for k, v in fields["timeline"].items())
        if fields.get("reason"):
            fields["reason"] = Reason.from_dict(fields["reason"])
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str) -> ProgressEvent:
        return cls.from_dict(json.loads(text))

    def evolve(self, **changes: Any) -> ProgressEvent:
        return replace(self, **changes)


def state_for_stage(stage: Stage) -> ModelState:
    if stage is Stage.COMPLETE:
        return ModelState.LOADED
    if stage is Stage.FAILED:
        return ModelState.FAILED
    if stage is Stage.CANCELLED:
        return ModelState.CANCELLED
    if stage is Stage.UNLOADING:
        return ModelState.UNLOADING
    if stage is Stage.UNLOADED:
        return ModelState.UNLOADED
    if stage is Stage.SLEEPING:
        return ModelState.SLEEPING
    return ModelState.LOADING


# Messages a person reads, in the seed's wording where it has one.
ERROR_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.NOT_FOUND: "Model file not found",
    ErrorKind.PERMISSION_DENIED: "Permission denied accessing model file",
    ErrorKind.INVALID_MODEL: "Not a valid GGUF model",
    ErrorKind.UNSUPPORTED_MODEL: "Model architecture not supported by llama.cpp",
    ErrorKind.OUT_OF_MEMORY: "Out of memory - Model too large",
    ErrorKind.ENGINE_CRASHED: "The model engine crashed",
    ErrorKind.TIMEOUT: "Loading stalled",
    ErrorKind.CANCELLED: "Loading cancelled",
    ErrorKind.UNAUTHORIZED: "Access denied: this repository is gated or private",
    ErrorKind.RATE_LIMITED: "The server is limiting requests; try again later",
    ErrorKind.NETWORK: "The connection failed",
    ErrorKind.DISK_FULL: "Not enough disk space",
    ErrorKind.CHECKSUM_MISMATCH: "The file's checksum does not match",
    ErrorKind.TOO_LARGE: "The file is larger than the limit",
    ErrorKind.IN_USE: "The file is being written by another transfer",
    ErrorKind.CONTEXT_LENGTH_EXCEEDED: "The prompt and the reply do not fit the model's context",
    ErrorKind.CANNOT_EMBED: "This model generates text; it cannot make embeddings",
    ErrorKind.CANNOT_GENERATE: "This is an embedding model; it cannot generate text",
    ErrorKind.INVALID_REQUEST: "The request is not valid",
}
GPU_OOM_MESSAGE = "OOM on GPU - Model too large"
