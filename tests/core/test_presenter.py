"""The card's words and enabled actions, derived from engine events without a window."""

from __future__ import annotations

from llm_desktop.core.events import ErrorInfo, ErrorKind, ModelState, ProgressEvent, Stage
from llm_desktop.core.presenter import card_view, format_eta


def event(stage: Stage, pct: float = 0.0, **fields) -> ProgressEvent:
    return ProgressEvent(model="m", seq=1, stage=stage, pct=pct, message=stage.value, **fields)


def test_no_event_means_unloaded_and_loadable():
    view = card_view(None, "Demo")
    assert view.state is ModelState.UNLOADED and view.can_load
    assert not (view.can_cancel or view.can_unload or view.can_retry or view.busy)


def test_loading_shows_bytes_rate_eta_and_only_cancel():
    view = card_view(
        event(
            Stage.LOADING,
            47.4,
            bytes_done=150_000_000,
            bytes_total=300_000_000,
            rate_bps=500_000_000,
            eta_s=0.3,
        ),
        "Demo",
    )
    assert view.busy and view.can_cancel and not view.can_load and not view.can_unload
    assert not view.indeterminate and view.pct == 47
    assert view.progress_text == "Loading weights · 47%"
    assert view.detail == "150 MB of 300 MB · 500 MB/s · under a second left"
    assert view.announcement == "Demo: loading weights, 47 percent"


def test_stages_without_a_fraction_are_indeterminate():
    for stage in (Stage.OPTIMIZING, Stage.FINALIZING, Stage.UNLOADING):
        assert card_view(event(stage, 90)).indeterminate
    for stage in (Stage.CONNECTING, Stage.PARSING, Stage.LOADING, Stage.COMPLETE):
        assert not card_view(event(stage, 5)).indeterminate


def test_outcomes_enable_the_right_action():
    loaded = card_view(event(Stage.COMPLETE, 100, memory_bytes=2_000_000))
    assert loaded.can_unload and loaded.can_try and not loaded.busy and loaded.pct == 100
    assert "holds 2.0 MB" in loaded.detail
    error = ErrorInfo(ErrorKind.INVALID_MODEL, "Not a valid GGUF model: file is truncated")
    failed = card_view(event(Stage.FAILED, 5, error=error), "Demo")
    assert failed.can_retry and not failed.can_load and failed.error is error
    assert failed.detail == error.message
    assert failed.announcement.startswith("Demo: failed.")
    cancelled = card_view(event(Stage.CANCELLED, 30))
    assert cancelled.can_load and not cancelled.busy
    unloaded = card_view(event(Stage.UNLOADED, 100))
    assert unloaded.can_load and unloaded.pct == 0


def test_eta_wording():
    assert format_eta(0.2) == "under a second"
    assert format_eta(12.4) == "12 s"
    assert format_eta(125) == "2 min 05 s"


def test_retry_advice_follows_the_failure():
    from llm_desktop.core.events import GPU_OOM_MESSAGE
    from llm_desktop.core.presenter import (
        RETRY,
        RETRY_FEWER_GPU_LAYERS,
        RETRY_SMALLER_CONTEXT,
        retry_advice,
    )

    assert (
        retry_advice(ErrorInfo(ErrorKind.OUT_OF_MEMORY, GPU_OOM_MESSAGE)) == RETRY_FEWER_GPU_LAYERS
    )
    ram = ErrorInfo(ErrorKind.OUT_OF_MEMORY, "Out of memory - Model too large for available RAM")
    assert retry_advice(ram) == RETRY_SMALLER_CONTEXT
    assert retry_advice(ErrorInfo(ErrorKind.INVALID_MODEL, "Not a valid GGUF model: x")) == RETRY
    assert retry_advice(None) == RETRY
