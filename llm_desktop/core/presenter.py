"""What a model card shows for the last event of its model: texts, numbers and enabled actions.

Qt-free, so every view (the Qt card, and anything else that wants the same words) derives its
display from the engine's event the same way, and the rules are tested without a window.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_desktop.core.events import (
    GPU_OOM_MESSAGE,
    ErrorInfo,
    ErrorKind,
    ModelState,
    ProgressEvent,
    Stage,
)
from llm_desktop.core.fit import format_bytes

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
}

# Stages whose duration llama.cpp does not measure: the bar says "busy", not a made-up fraction.
INDETERMINATE_STAGES = frozenset({Stage.OPTIMIZING, Stage.FINALIZING, Stage.UNLOADING})


@dataclass(frozen=True)
class CardView:
    state: ModelState
    stage_label: str
    pct: int
    indeterminate: bool
    detail: str
    busy: bool
    busy_message: str
    can_load: bool
    can_cancel: bool
    can_unload: bool
    can_retry: bool
    can_try: bool
    error: ErrorInfo | None
    announcement: str  # what a screen reader should hear for this change

    @property
    def progress_text(self) -> str:
        if self.indeterminate:
            return self.stage_label
        return f"{self.stage_label} · {self.pct}%"


def card_view(event: ProgressEvent | None, name: str = "model") -> CardView:
    if event is None:
        return CardView(
            state=ModelState.UNLOADED,
            stage_label=STAGE_LABELS[Stage.UNLOADED],
            pct=0,
            indeterminate=False,
            detail="",
            busy=False,
            busy_message="",
            can_load=True,
            can_cancel=False,
            can_unload=False,
            can_retry=False,
            can_try=False,
            error=None,
            announcement=f"{name}: not loaded",
        )
    state = event.state
    label = STAGE_LABELS[event.stage]
    busy = state in (ModelState.LOADING, ModelState.UNLOADING)
    pct = int(event.pct) if event.stage is not Stage.UNLOADED else 0
    return CardView(
        state=state,
        stage_label=label,
        pct=pct,
        indeterminate=event.stage in INDETERMINATE_STAGES,
        detail=detail_line(event),
        busy=busy,
        busy_message=event.message if busy else "",
        can_load=state in (ModelState.UNLOADED, ModelState.CANCELLED),
        can_cancel=state is ModelState.LOADING,
        can_unload=state is ModelState.LOADED,
        can_retry=state is ModelState.FAILED,
        can_try=state is ModelState.LOADED,
        error=event.error if state is ModelState.FAILED else None,
        announcement=announcement(event, name),
    )


RETRY = "Retry"
RETRY_FEWER_GPU_LAYERS = "Retry with fewer GPU layers"
RETRY_SMALLER_CONTEXT = "Retry with a smaller context"


def retry_advice(error: ErrorInfo | None) -> str:
    """The retry a failure calls for: out of GPU memory offloads less, out of RAM asks for a
    smaller KV cache, anything else tries the same again."""
    if error is not None and error.kind is ErrorKind.OUT_OF_MEMORY:
        if error.message == GPU_OOM_MESSAGE:
            return RETRY_FEWER_GPU_LAYERS
        return RETRY_SMALLER_CONTEXT
    return RETRY


def detail_line(event: ProgressEvent) -> str:
    """Bytes, rate and ETA while loading; the outcome's numbers after it."""
    if event.stage is Stage.LOADING and event.bytes_total:
        parts = [f"{format_bytes(event.bytes_done or 0)} of {format_bytes(event.bytes_total)}"]
        if event.rate_bps:
            parts.append(f"{format_bytes(event.rate_bps)}/s")
        if event.eta_s is not None:
            parts.append(f"{format_eta(event.eta_s)} left")
        return " · ".join(parts)
    if event.stage is Stage.COMPLETE:
        held = f" · holds {format_bytes(event.memory_bytes)}" if event.memory_bytes else ""
        return event.message + held
    if event.stage is Stage.FAILED and event.error:
        return event.error.message
    return event.message


def format_eta(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s"


def announcement(event: ProgressEvent, name: str) -> str:
    label = STAGE_LABELS[event.stage]
    if event.stage is Stage.LOADING:
        return f"{name}: {label.lower()}, {int(event.pct)} percent"
    if event.stage is Stage.FAILED and event.error:
        return f"{name}: failed. {event.error.message}"
    return f"{name}: {label.lower()}"
