"""The one presentation contract: everything a person reads about a model and its operations.

Given a library model (catalog entry and fit verdict), the last engine event of it and the load
options in force, `card_view` decides the card: title, facts line, fit badge, state, progress,
detail line, actions (with the options each one loads with), and what a screen reader hears.
`notice_for` decides the toast an event calls for. Both are frozen, Qt-free and serialisable
(`to_dict`): the Qt card, the CLI and the web page (which receives them over HTTP and SSE) only
render them. `tests/golden/presentation.json` pins the rules for Python and for JavaScript.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.events import (
    GPU_OOM_MESSAGE,
    LIMIT_COUNT,
    REASON_EVICTED,
    REASON_IDLE,
    REASON_REQUEST,
    ErrorInfo,
    ErrorKind,
    ModelState,
    ProgressEvent,
    Reason,
    Stage,
)
from llm_desktop.core.fit import FitVerdict, default_context, format_bytes
from llm_desktop.core.hardware import HardwareSnapshot
from llm_desktop.core.options import LoadOptions

if TYPE_CHECKING:
    # Named in annotations only: the remote engine words its events with this module's
    # formatters, so it imports this one.
    from llm_desktop.core.remote_engine import ConnectionStatus

STAGE_LABELS: dict[Stage, str] = {
    Stage.CONNECTING: "Connecting",
    Stage.INITIALIZING: "Initializing",
    Stage.PARSING: "Reading metadata",
    Stage.LOADING: "Loading weights",
    Stage.QUANTIZING: "Quantizing",
    Stage.OPTIMIZING: "Creating context",
    Stage.FINALIZING: "Warming up",
    Stage.COMPLETE: "Loaded",
    Stage.FAILED: "Failed",
    Stage.CANCELLED: "Cancelled",
    Stage.UNLOADING: "Unloading",
    Stage.UNLOADED: "Not loaded",
    Stage.SLEEPING: "Asleep",
}

STATE_LABELS: dict[ModelState, str] = {
    ModelState.UNLOADED: "Not loaded",
    ModelState.LOADING: "Loading",
    ModelState.LOADED: "Loaded",
    ModelState.FAILED: "Failed",
    ModelState.CANCELLED: "Cancelled",
    ModelState.UNLOADING: "Unloading",
    ModelState.UNREADABLE: "Unreadable",
    ModelState.SLEEPING: "Asleep",
}

# Where a card's model runs: this machine's model hosts, or a remote engine by its name.
THIS_MACHINE = "This machine"
CONNECTION_LABELS = {
    "connecting": "Connecting",
    "connected": "Connected",
    "disconnected": "Unreachable",
}

FIT_LABELS = {
    "gpu": "Fits on GPU",
    "partial": "Partial offload",
    "cpu": "CPU only",
    "no": "Too large",
}

SOURCE_LABELS = {"lmstudio": "LM Studio", "huggingface": "Hugging Face", "ollama": "Ollama"}
FACTS_SEPARATOR = " · "

# Stages whose duration llama.cpp does not measure: the bar says "busy", not a made-up fraction.
INDETERMINATE_STAGES = frozenset({Stage.OPTIMIZING, Stage.FINALIZING, Stage.UNLOADING})

# Failures that trying the same file again cannot mend: the card offers what can help instead.
PERMANENT_ERRORS = frozenset(
    {
        ErrorKind.NOT_FOUND,
        ErrorKind.PERMISSION_DENIED,
        ErrorKind.INVALID_MODEL,
        ErrorKind.UNSUPPORTED_MODEL,
    }
)


class NoticeKind(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# How long a toast stays, in ms, unless hovered or focused (then it waits). Errors stay longest:
# a person must have time to read the cause and reach its action.
NOTICE_TIMEOUT_MS: dict[NoticeKind, int] = {
    NoticeKind.SUCCESS: 5000,
    NoticeKind.INFO: 5000,
    NoticeKind.WARNING: 8000,
    NoticeKind.ERROR: 10000,
}
NOTICE_KIND_WORDS: dict[NoticeKind, str] = {
    NoticeKind.SUCCESS: "Success",
    NoticeKind.ERROR: "Error",
    NoticeKind.WARNING: "Warning",
    NoticeKind.INFO: "Information",
}
NOTICE_LIMIT = 5  # toasts shown at once; older ones give way


class ActionId(StrEnum):
    LOAD = "load"
    CANCEL = "cancel"
    UNLOAD = "unload"
    RETRY = "retry"
    TRY = "try"
    DETAILS = "details"
    REMOVE = "remove"
    # Transfers (download, upload, quantize).
    PAUSE = "pause"
    RESUME = "resume"
    DISCARD = "discard"  # cancel and delete the partial file
    DISMISS = "dismiss"  # take a finished transfer off the list
    QUANTIZE = "quantize"  # write a smaller copy of a model (the desktop card's menu)


# What a card of a remote model can do: the router loads, cancels and unloads; replies go to
# its own API, and its files are its own to remove.
REMOTE_ACTIONS = frozenset(
    {ActionId.LOAD, ActionId.CANCEL, ActionId.UNLOAD, ActionId.RETRY, ActionId.DETAILS}
)

RETRY = "Retry"
RETRY_FEWER_GPU_LAYERS = "Retry with fewer GPU layers"
RETRY_SMALLER_CONTEXT = "Retry with a smaller context"


@dataclass(frozen=True)
class Action:
    """A button: what it does (`id`), what it says, and, for a load, the options it sends."""

    id: ActionId
    label: str
    accessible_name: str
    hint: str = ""
    primary: bool = False
    options: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "id": str(self.id)}


@dataclass(frozen=True)
class FitBadge:
    verdict: str
    text: str
    summary: str
    accessible_name: str


@dataclass(frozen=True)
class CardView:
    model: str
    title: str
    facts: str
    path: str
    fit: FitBadge | None
    state: ModelState
    state_label: str
    stage_label: str
    pct: int
    indeterminate: bool
    progress_text: str
    show_progress: bool
    detail: str
    busy: bool
    busy_message: str
    actions: tuple[Action, ...]
    error: ErrorInfo | None
    announcement: str  # what a screen reader should hear for this change
    settings_editable: bool
    seq: int = 0  # the event this view was made from; 0 before any
    # Where it runs ("This machine", "lab-gpu"), and for a remote engine, its connection in a
    # word ("Connected", "Unreachable") and in a line (`connection_line`).
    source: str = THIS_MACHINE
    source_state: str = ""
    source_detail: str = ""

    def action(self, action_id: ActionId) -> Action | None:
        return next((action for action in self.actions if action.id is action_id), None)

    def has(self, action_id: ActionId) -> bool:
        return self.action(action_id) is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in self.__dataclass_fields__},
            "state": str(self.state),
            "fit": asdict(self.fit) if self.fit else None,
            "actions": [action.to_dict() for action in self.actions],
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass(frozen=True)
class Notice:
    """A toast: kind, words, how long it stays, and the actions it offers. A notice with the
    same `key` replaces the one shown."""

    kind: NoticeKind
    text: str
    key: str
    title: str = ""
    model: str = ""
    actions: tuple[Action, ...] = ()
    timeout_ms: int = field(default=-1)
    kind_word: str = ""

    def __post_init__(self) -> None:
        if self.timeout_ms < 0:
            object.__setattr__(self, "timeout_ms", NOTICE_TIMEOUT_MS[self.kind])
        if not self.kind_word:
            object.__setattr__(self, "kind_word", NOTICE_KIND_WORDS[self.kind])

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in self.__dataclass_fields__},
            "kind": str(self.kind),
            "actions": [action.to_dict() for action in self.actions],
        }


# -- what a model is ---------------------------------------------------------------------------


def facts_line(entry: ModelEntry) -> str:
    """ "llama · 7B · Q4_K_M · 4,096 ctx · 4.1 GB": what the model is, in one line."""
    if entry.engine is not None:
        return remote_facts_line(entry)
    if entry.error:  # the card's detail line says why
        return FACTS_SEPARATOR.join(("Unreadable file", format_bytes(entry.file_size)))
    facts = [
        entry.architecture,
        entry.size_label or None,
        entry.quantization,
        f"{entry.context_length:,} ctx" if entry.context_length else None,
        format_bytes(entry.file_size),
    ]
    if len(entry.parts) > 1:
        facts.append(f"{len(entry.parts)} parts")
    if entry.source != "folder":
        facts.append(SOURCE_LABELS.get(entry.source, entry.source.capitalize()))
    return FACTS_SEPARATOR.join(fact for fact in facts if fact)


def remote_facts_line(entry: ModelEntry) -> str:
    """ "on lab-gpu · 134M params · F32 · 2,048 ctx · 535 KB": what the router has told. It
    lists nothing of a model before loading it, and nothing here is guessed in its place."""
    facts = [f"on {entry.engine}"]
    if entry.parameter_count:
        facts.append(f"{format_count(entry.parameter_count)} params")
    if entry.quantization and entry.quantization != "?":
        facts.append(entry.quantization)
    if entry.context_length:
        facts.append(f"{entry.context_length:,} ctx")
    if entry.file_size:
        facts.append(format_bytes(entry.file_size))
    if len(facts) == 1:
        facts.append("details once loaded: the router lists none before")
    # Set on the router (its preset or command line), never per load: it accepts none.
    if entry.engine_context is not None:
        facts.append(f"runs with {entry.engine_context:,} ctx")
    if entry.engine_gpu_layers is not None:
        facts.append(f"{entry.engine_gpu_layers} GPU layers")
    return FACTS_SEPARATOR.join(facts)


def format_count(count: int) -> str:
    """ "134M", "7.2B": a parameter count at a glance."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)


def connection_line(status: ConnectionStatus | None) -> str:
    """ "Connected · 3 models, 1 loaded · at most 2 loaded at once · build b4567", or why not."""
    if status is None:
        return ""
    label = CONNECTION_LABELS.get(status.state, status.state)
    if status.state == "disconnected":
        parts = [label]
        if status.error is not None:
            parts.append(status.error.message)
        if status.retry_in_s is not None:
            parts.append(f"retrying in {format_seconds(status.retry_in_s)}")
        return FACTS_SEPARATOR.join(parts)
    if status.state == "connecting":
        return f"{label} to {status.url}…"
    count = f"{status.models} model{'' if status.models == 1 else 's'}"
    parts = [label, count + (f", {status.loaded} loaded" if status.loaded else "")]
    if status.max_loaded:
        parts.append(f"at most {status.max_loaded} loaded at once")
    if status.gap_s is not None:
        parts.append(f"back after {format_seconds(status.gap_s)} unreachable")
    if status.error is not None:
        parts.append(status.error.message)
    if status.build:
        parts.append(f"llama.cpp {status.build}")
    return FACTS_SEPARATOR.join(parts)


def titles(entries: Iterable[ModelEntry]) -> dict[str, str]:
    """Each model's title: its name, with the file name where two models share a name (two
    "llm-desktop demo" cards must not look, or sound, the same)."""
    entries = list(entries)
    counts = Counter(entry.display_name.casefold() for entry in entries)
    result = {}
    for entry in entries:
        title = entry.display_name
        if counts[title.casefold()] > 1:
            # A file by its name; a remote model (whose path is its router's id, the name
            # itself) by its engine's.
            title = f"{title} ({entry.engine or PurePath(entry.path).name})"
        result[entry.id] = title
    return result


def fit_badge(verdict: FitVerdict | None) -> FitBadge | None:
    if verdict is None:
        return None
    if verdict.verdict == "partial" and verdict.total_layers:
        text = f"Partial offload: {verdict.gpu_layers}/{verdict.total_layers} layers"
    else:
        text = FIT_LABELS.get(verdict.verdict, verdict.verdict)
    return FitBadge(verdict.verdict, text, verdict.summary, f"Memory fit: {text}")


# Weights llama.cpp quantizes from (the catalog's quantization, "F32 (guessed)" included).
QUANTIZABLE = frozenset({"F32", "F16", "BF16"})


def quantize_action(entry: ModelEntry, title: str | None = None) -> Action | None:
    """ "Quantize to…" for a readable model of F32, F16 or BF16 weights; None for any other
    (already quantized, unreadable). Not one of the card's `actions`: the desktop card offers it
    in its menu, with the types to choose from."""
    if entry.error is not None or entry.quantization.split(" ")[0].upper() not in QUANTIZABLE:
        return None
    title = title or entry.display_name
    return Action(
        ActionId.QUANTIZE,
        "Quantize to…",
        f"Quantize {title}",
        "Write a smaller copy of this model in another quantization",
    )


# -- the card ------------------------------------------------------------------------------------


def card_view(
    entry: ModelEntry,
    event: ProgressEvent | None = None,
    *,
    verdict: FitVerdict | None = None,
    title: str | None = None,
    options: LoadOptions | None = None,
    offers: frozenset[ActionId] | None = None,
    connection: ConnectionStatus | None = None,
) -> CardView:
    """The card of `entry` after `event` (None: nothing has happened to it yet). `offers`
    limits the actions to those the surface can carry out (None: all); `connection` is the
    remote engine's, for a model it lists."""
    title = title or entry.display_name
    options = options or LoadOptions()
    remote = entry.engine is not None
    if remote:
        offers = REMOTE_ACTIONS if offers is None else offers & REMOTE_ACTIONS
    if event is None:
        state = ModelState.UNREADABLE if entry.error else ModelState.UNLOADED
    else:
        state = event.state
    stage = event.stage if event is not None else Stage.UNLOADED
    busy = state in (ModelState.LOADING, ModelState.UNLOADING)
    pct = int(event.pct) if event is not None and stage is not Stage.UNLOADED else 0
    indeterminate = stage in INDETERMINATE_STAGES or (
        # A router reports a load's start and end, with nothing between (measured): until it
        # reports a value, the bar says "busy" rather than sit at 0.
        remote and stage in (Stage.LOADING, Stage.CONNECTING) and pct == 0
    )
    stage_label = STAGE_LABELS[stage]
    if remote and stage is Stage.LOADING:
        stage_label = f"Loading on {entry.engine}"
    error = _error_of(entry, event, state)
    return CardView(
        model=entry.id,
        title=title,
        facts=facts_line(entry),
        # A remote model's "path" is its router's id, which is its title already.
        path="" if remote else entry.path,
        fit=fit_badge(verdict),
        state=state,
        state_label=STATE_LABELS[state],
        stage_label=stage_label,
        pct=pct,
        indeterminate=indeterminate,
        progress_text=stage_label if indeterminate else f"{stage_label} · {pct}%",
        # A failure or a cancel is said by the detail line, the state and the buttons, not by
        # a half-filled bar.
        show_progress=busy or state is ModelState.LOADED,
        detail=detail_line(event) if event is not None else (error.message if error else ""),
        busy=busy,
        busy_message=event.message if busy and event is not None else "",
        actions=tuple(
            action
            for action in _actions(entry, state, error, title, options, verdict)
            if offers is None or action.id in offers
        ),
        error=error,
        announcement=announcement(title, event, state, error),
        settings_editable=not remote
        and state not in (ModelState.LOADING, ModelState.UNLOADING, ModelState.SLEEPING)
        and state is not ModelState.LOADED,
        seq=event.seq if event is not None else 0,
        source=entry.engine or THIS_MACHINE,
        source_state=CONNECTION_LABELS.get(connection.state, "") if connection else "",
        source_detail=connection_line(connection),
    )


def _error_of(
    entry: ModelEntry, event: ProgressEvent | None, state: ModelState
) -> ErrorInfo | None:
    if state is ModelState.UNREADABLE:
        return ErrorInfo(ErrorKind.INVALID_MODEL, entry.error or "")
    if state is ModelState.FAILED and event is not None:
        return event.error
    return None


def _actions(
    entry: ModelEntry,
    state: ModelState,
    error: ErrorInfo | None,
    title: str,
    options: LoadOptions,
    verdict: FitVerdict | None,
) -> tuple[Action, ...]:
    def make(action_id: ActionId, label: str, hint: str, **extra: Any) -> Action:
        return Action(action_id, label, f"{label} {title}", hint, **extra)

    if state in (ModelState.UNLOADED, ModelState.CANCELLED):
        return (
            make(
                ActionId.LOAD,
                "Load",
                "Load this model (Enter)",
                primary=True,
                options=options.to_dict(),
            ),
        )
    if state is ModelState.LOADING:
        return (make(ActionId.CANCEL, "Cancel", "Cancel loading (Esc)"),)
    if state is ModelState.SLEEPING:
        return (make(ActionId.UNLOAD, "Unload", "Stop the model's process on its engine"),)
    if state is ModelState.LOADED:
        return (
            make(ActionId.UNLOAD, "Unload", "Unload the model and free its memory"),
            make(ActionId.TRY, "Try it", "Send the loaded model a prompt"),
        )
    if state in (ModelState.FAILED, ModelState.UNREADABLE):
        help_actions = (
            make(ActionId.DETAILS, "Show details", "Show what went wrong, with the engine's log"),
            make(ActionId.REMOVE, "Remove from library", "Hide this file from the library"),
        )
        if error is None or error.kind in PERMANENT_ERRORS or state is ModelState.UNREADABLE:
            return help_actions
        label, retry_options = retry_choice(error, options, entry, verdict)
        retry = make(
            ActionId.RETRY,
            label,
            "Try loading again",
            primary=True,
            options=retry_options.to_dict(),
        )
        return (retry, help_actions[0])
    return ()


def retry_choice(
    error: ErrorInfo | None,
    options: LoadOptions,
    entry: ModelEntry,
    verdict: FitVerdict | None,
) -> tuple[str, LoadOptions]:
    """The retry a failure calls for, and the options it loads with: out of GPU memory
    offloads half as many layers, out of RAM asks for half the KV cache, anything else tries
    the same again."""
    if error is not None and error.kind is ErrorKind.OUT_OF_MEMORY:
        if error.message == GPU_OOM_MESSAGE:
            layers = verdict.gpu_layers if verdict else 0
            return RETRY_FEWER_GPU_LAYERS, options.with_fewer_gpu_layers(layers)
        context = default_context(entry.context_length)
        return RETRY_SMALLER_CONTEXT, options.with_smaller_context(context)
    return RETRY, options


def reason_words(reason: Reason | None) -> str:
    """Why the engine loaded or unloaded a model on its own: "idle for 15 min"."""
    if reason is None:
        return ""
    if reason.kind == REASON_REQUEST:
        return "loaded for an API request"
    if reason.kind == REASON_IDLE:
        return f"idle for {format_duration(reason.idle_s or 0)}"
    if reason.kind == REASON_EVICTED:
        room = f"to make room for {reason.for_title or reason.for_model}"
        if reason.limit == LIMIT_COUNT and reason.max_loaded is not None:
            noun = "model" if reason.max_loaded == 1 else "models"
            return f"{room}: at most {reason.max_loaded} {noun} loaded at once"
        return f"{room}: not enough memory for both"
    return ""


def format_duration(seconds: float) -> str:
    """A span a person reads at a glance: "45 s", "15 min", "1 h 30 min"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def keep_alive_words(seconds: float | None) -> str:
    """ "Unloads after 15 min idle", "Stays loaded", "Unloads after each request"."""
    if seconds is None:
        return "Stays loaded"
    if seconds <= 0:
        return "Unloads after each request"
    return f"Unloads after {format_duration(seconds)} idle"


def serving_policy_line(
    keep_alive_s: float | None, max_loaded: int | None, memory_budget: int | None
) -> str:
    """ "Models loaded on request: unload after 15 min idle · at most 2 loaded · budget 12 GB"."""
    parts = [f"Models loaded on request: {keep_alive_words(keep_alive_s).lower()}"]
    if max_loaded is not None:
        parts.append(f"at most {max_loaded} loaded at once")
    if memory_budget is not None:
        parts.append(f"memory budget {format_bytes(memory_budget)}")
    return FACTS_SEPARATOR.join(parts)


def _with_reason(text: str, event: ProgressEvent) -> str:
    words = reason_words(event.reason)
    return FACTS_SEPARATOR.join(part for part in (text, words) if part)


def detail_line(event: ProgressEvent) -> str:
    """Bytes, rate and ETA while loading; the outcome's numbers after it; why, when the
    engine did it on its own."""
    if event.stage is Stage.LOADING and event.bytes_total:
        parts = [f"{format_bytes(event.bytes_done or 0)} of {format_bytes(event.bytes_total)}"]
        if event.rate_bps:
            parts.append(f"{format_bytes(event.rate_bps)}/s")
        if event.eta_s is not None:
            parts.append(f"{format_eta(event.eta_s)} left")
        return FACTS_SEPARATOR.join(parts)
    if event.stage is Stage.COMPLETE:
        parts = [event.message]
        if event.memory_bytes:
            parts.append(f"holds {format_bytes(event.memory_bytes)}")
        if event.timeline:
            parts.append(", ".join(f"{name} {format_seconds(s)}" for name, s in event.timeline))
        return _with_reason(FACTS_SEPARATOR.join(parts), event)
    if event.engine is not None and event.stage is Stage.LOADING:
        # The router's progress is coarse (its start, one value, its end): say so, with the
        # time it has taken, which is measured here.
        parts = [
            f"{event.engine} reported {event.pct:.0f}%"
            if event.pct
            else f"{event.engine} reports only the start and the end of a load"
        ]
        if event.elapsed_s is not None and event.elapsed_s >= 0.05:
            parts.append(f"{format_seconds(event.elapsed_s)} so far")
        return FACTS_SEPARATOR.join(parts)
    if event.stage in INDETERMINATE_STAGES and event.elapsed_s is not None:
        # No fraction to show (llama.cpp measures none): how long so far, and, labelled as an
        # estimate, what the same load took here before.
        parts = [event.message]
        if event.elapsed_s >= 0.05:
            parts.append(f"{format_seconds(event.elapsed_s)} so far")
        if event.expected_s is not None:
            parts.append(f"usually about {format_seconds(event.expected_s)}")
        return FACTS_SEPARATOR.join(parts)
    if event.stage is Stage.FAILED and event.error:
        return event.error.message
    return _with_reason(event.message, event)


def format_seconds(seconds: float) -> str:
    """A stage's duration, as precise as it is worth: "4 ms", "0.21 s", "1.4 s", "12 s"."""
    if seconds < 0.001:
        return "under 1 ms"
    if seconds < 0.1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s"


def format_eta(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s"


def announcement(
    title: str, event: ProgressEvent | None, state: ModelState, error: ErrorInfo | None
) -> str:
    if event is None:
        if error is not None:
            return f"{title}: unreadable. {error.message}"
        return f"{title}: not loaded"
    label = STAGE_LABELS[event.stage]
    if event.stage is Stage.LOADING:
        return f"{title}: {label.lower()}, {int(event.pct)} percent"
    if state is ModelState.FAILED and error is not None:
        return f"{title}: failed. {error.message}"
    return f"{title}: {label.lower()}"


# -- toasts --------------------------------------------------------------------------------------


def notice_for(view: CardView, event: ProgressEvent) -> Notice | None:
    """The one toast an event calls for (None for progress): the outcome of an operation."""
    key = f"model:{event.model}"
    title = view.title
    if event.stage is Stage.COMPLETE:
        text = f"{title} is ready"
        if event.reason is not None:
            text += f" ({reason_words(event.reason)})"
        return Notice(NoticeKind.SUCCESS, text, key, model=event.model)
    if event.stage is Stage.FAILED and event.error is not None:
        heading = f"{title} failed to load" if event.op == "load" else f"{title} stopped"
        # The card shows the cause and all its actions; the toast offers the one that helps
        # most (a retry where one can help, the details otherwise).
        actions = view.actions[:1]
        return Notice(
            NoticeKind.ERROR, event.error.message, key, heading, event.model, actions=actions
        )
    if event.stage is Stage.CANCELLED:
        return Notice(NoticeKind.INFO, f"Loading {title} cancelled", key, model=event.model)
    if event.stage is Stage.SLEEPING:
        return Notice(NoticeKind.INFO, f"{title}: {event.message}", key, model=event.model)
    if event.stage is Stage.UNLOADED:
        if event.reason is not None:
            # The engine chose this: say why first, so nobody wonders where the model went.
            text = f"Unloaded {title}, {reason_words(event.reason)}"
            if event.memory_bytes:
                text += f"; freed {format_bytes(event.memory_bytes)}"
            return Notice(NoticeKind.INFO, text, key, model=event.model)
        return Notice(NoticeKind.INFO, f"{title}: {event.message}", key, model=event.model)
    return None


def job_notice(job: str, error: str) -> Notice:
    """The toast for a background job that failed (a library scan, an import, a reply)."""
    titles = {
        "scan": "Could not read the model library",
        "import": "Import failed",
        "demo": "Could not write the demo model",
        "generate": "The reply failed",
        "server": "The local server stopped",
        "remove": "Could not remove the model",
    }
    return Notice(NoticeKind.ERROR, error, f"job:{job}", titles.get(job, "Something failed"))


def info_notice(text: str, key: str, kind: NoticeKind = NoticeKind.INFO) -> Notice:
    return Notice(kind, text, key)


def progress_line(view: CardView) -> str:
    """One line for a terminal or a log: "title: Loading weights · 42% · 1.2 GB of 3.0 GB"."""
    parts = [view.progress_text if view.show_progress else view.state_label]
    if view.detail:
        parts.append(view.detail)
    return f"{view.title}: " + FACTS_SEPARATOR.join(parts)


def hardware_line(snapshot: HardwareSnapshot | None) -> str:
    """ "RAM 12.1 GB available of 24.0 GB · No NVIDIA GPU detected": what this machine offers."""
    if snapshot is None:
        return ""
    parts = [
        f"{gpu.name}: {format_bytes(gpu.memory_free)} free of {format_bytes(gpu.memory_total)}"
        for gpu in snapshot.gpus
    ]
    if not snapshot.gpus or not snapshot.gpu_usable:
        parts.append(snapshot.gpu_status)
    ram = snapshot.ram
    parts.append(f"RAM {format_bytes(ram.available)} available of {format_bytes(ram.total)}")
    return FACTS_SEPARATOR.join(parts)


def library_summary(views: Iterable[CardView], snapshot: HardwareSnapshot | None = None) -> str:
    """ "3 models, 1 loaded · RAM …": the line above the cards."""
    views = list(views)
    count = len(views)
    loaded = sum(1 for view in views if view.state is ModelState.LOADED)
    text = f"{count} model{'' if count == 1 else 's'}" + (f", {loaded} loaded" if loaded else "")
    return FACTS_SEPARATOR.join(part for part in (text, hardware_line(snapshot)) if part)


# -- words the page needs that no event carries --------------------------------------------------

PAGE_TEXT: dict[str, str] = {
    "connection.connecting": "Connecting…",
    "connection.live": "Live",
    "connection.reconnecting": "Reconnecting…",
    "connection.offline": "Offline: retrying",
    "connection.polling": "Live updates off: refreshing every second",
    "connection.description.live": "Receiving live progress from the local server",
    "connection.description.reconnecting": "The live connection dropped; reconnecting",
    "connection.description.offline": "The local server cannot be reached; retrying",
    "connection.description.polling": "Server-Sent Events are off; the page polls for state",
    "error.unreachable": "Could not reach the local server",
    "error.cancel_failed": "Could not cancel",
    "error.unload_failed": "Could not unload",
    "error.load_failed": "Could not start loading",
    "error.remove_failed": "Could not remove the model",
    "error.search_failed": "Could not search the hub",
    "error.repo_failed": "Could not list the repository's models",
    "error.download_failed": "Could not start the download",
    "error.upload_failed": "Could not upload the file",
    "error.transfer_failed": "Could not change the transfer",
    "error.quantize_failed": "Could not start quantizing",
    "upload.sending": "Sending {name}…",
    "empty": "No models found. Add GGUF files to the models folder, then refresh.",
    "dismiss": "Dismiss",
    "notifications": "Notifications",
}
