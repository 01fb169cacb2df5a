"""The presentation contract: what a person reads about a model, derived without any view."""

from __future__ import annotations

import json
from dataclasses import replace

from llm_desktop.core.events import (
    GPU_OOM_MESSAGE,
    ErrorInfo,
    ErrorKind,
    ModelState,
    ProgressEvent,
    Stage,
)
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.presenter import (
    RETRY,
    RETRY_FEWER_GPU_LAYERS,
    RETRY_SMALLER_CONTEXT,
    ActionId,
    NoticeKind,
    card_view,
    facts_line,
    format_eta,
    notice_for,
    titles,
)
from tests.golden import generate

ENTRY = generate.ENTRY


def event(stage: Stage, pct: float = 0.0, **fields) -> ProgressEvent:
    return ProgressEvent(model=ENTRY.id, seq=1, stage=stage, pct=pct, message="m", **fields)


def ids(view) -> list[ActionId]:
    return [action.id for action in view.actions]


def test_the_golden_table_is_what_the_presenter_says():
    """A changed display rule must change tests/golden/presentation.json (regenerate it with
    `python -m tests.golden.generate`), which the JavaScript suite checks the page against."""
    assert generate.GOLDEN.read_text() == generate.render()


def test_views_and_notices_survive_json():
    for case in json.loads(generate.render())["cases"]:
        if "view" in case:
            assert json.loads(json.dumps(case["view"])) == case["view"]


def test_never_loaded_offers_load_with_the_chosen_options():
    view = card_view(ENTRY, options=LoadOptions(n_ctx=2048, use_mmap=False))
    assert view.state is ModelState.UNLOADED and ids(view) == [ActionId.LOAD]
    assert view.actions[0].options == {"n_ctx": 2048, "gpu_layers": -1, "use_mmap": False}
    assert view.actions[0].accessible_name == f"Load {ENTRY.display_name}"
    assert not view.show_progress and view.settings_editable


def test_loading_shows_bytes_rate_eta_and_only_cancel():
    view = card_view(
        ENTRY,
        event(
            Stage.LOADING,
            47.4,
            bytes_done=150_000_000,
            bytes_total=300_000_000,
            rate_bps=500_000_000,
            eta_s=0.3,
        ),
    )
    assert view.busy and ids(view) == [ActionId.CANCEL] and not view.settings_editable
    assert not view.indeterminate and view.pct == 47
    assert view.progress_text == "Loading weights · 47%"
    assert view.detail == "150 MB of 300 MB · 500 MB/s · under a second left"
    assert view.announcement == f"{ENTRY.display_name}: loading weights, 47 percent"


def test_stages_without_a_fraction_are_indeterminate():
    for stage in (Stage.OPTIMIZING, Stage.FINALIZING, Stage.UNLOADING):
        view = card_view(ENTRY, event(stage, 90))
        assert view.indeterminate and "%" not in view.progress_text
    for stage in (Stage.CONNECTING, Stage.PARSING, Stage.LOADING, Stage.COMPLETE):
        assert not card_view(ENTRY, event(stage, 5)).indeterminate


def test_loaded_offers_unload_and_try_and_says_what_it_holds():
    view = card_view(ENTRY, event(Stage.COMPLETE, 100, memory_bytes=2_000_000))
    assert ids(view) == [ActionId.UNLOAD, ActionId.TRY] and view.pct == 100
    assert view.detail.endswith("holds 2.0 MB") and view.show_progress


def test_a_file_that_can_never_load_offers_help_not_retry():
    for kind in (ErrorKind.INVALID_MODEL, ErrorKind.NOT_FOUND, ErrorKind.UNSUPPORTED_MODEL):
        failed = card_view(ENTRY, event(Stage.FAILED, 5, error=ErrorInfo(kind, "bad")))
        assert ids(failed) == [ActionId.DETAILS, ActionId.REMOVE], kind
        assert not failed.show_progress and failed.detail == "bad"
    unreadable = card_view(replace(ENTRY, error="Not a valid GGUF model: bad magic"))
    assert unreadable.state is ModelState.UNREADABLE
    assert ids(unreadable) == [ActionId.DETAILS, ActionId.REMOVE]
    assert unreadable.facts.startswith("Unreadable file")
    assert unreadable.detail == "Not a valid GGUF model: bad magic"


def test_the_retry_a_failure_calls_for_and_its_options():
    ram = ErrorInfo(ErrorKind.OUT_OF_MEMORY, "Out of memory - Model too large")
    view = card_view(ENTRY, event(Stage.FAILED, 5, error=ram), options=LoadOptions(n_ctx=2048))
    retry = view.action(ActionId.RETRY)
    assert retry.label == RETRY_SMALLER_CONTEXT and retry.options["n_ctx"] == 1024
    gpu = ErrorInfo(ErrorKind.OUT_OF_MEMORY, GPU_OOM_MESSAGE)
    verdict = generate.verdict("partial", 20)
    view = card_view(ENTRY, event(Stage.FAILED, 5, error=gpu), verdict=verdict)
    retry = view.action(ActionId.RETRY)
    assert retry.label == RETRY_FEWER_GPU_LAYERS and retry.options["gpu_layers"] == 10
    crash = ErrorInfo(ErrorKind.ENGINE_CRASHED, "The model engine crashed")
    view = card_view(ENTRY, event(Stage.FAILED, 5, error=crash))
    assert view.action(ActionId.RETRY).label == RETRY and ids(view)[1] is ActionId.DETAILS


def test_one_notice_per_outcome_and_none_for_progress():
    for stage in (Stage.CONNECTING, Stage.LOADING, Stage.OPTIMIZING, Stage.UNLOADING):
        ev = event(stage, 50)
        assert notice_for(card_view(ENTRY, ev), ev) is None
    ok = event(Stage.COMPLETE, 100)
    notice = notice_for(card_view(ENTRY, ok), ok)
    assert notice.kind is NoticeKind.SUCCESS and notice.text == f"{ENTRY.display_name} is ready"
    bad = event(Stage.FAILED, 5, error=ErrorInfo(ErrorKind.INVALID_MODEL, "Not a valid GGUF"))
    notice = notice_for(card_view(ENTRY, bad), bad)
    assert notice.kind is NoticeKind.ERROR and notice.title.endswith("failed to load")
    assert [a.id for a in notice.actions] == [ActionId.DETAILS]
    assert notice.key == ok_key(ok) and notice.timeout_ms > 0


def ok_key(ev: ProgressEvent) -> str:
    return notice_for(card_view(ENTRY, ev), ev).key


def test_two_models_with_one_name_get_told_apart_by_file_name():
    twins = [replace(ENTRY, id=f"t{n}", path=f"/m/twin-{n}.gguf") for n in (1, 2)]
    other = replace(ENTRY, id="o", display_name="Other", path="/m/other.gguf")
    named = titles([*twins, other])
    assert named == {
        "t1": f"{ENTRY.display_name} (twin-1.gguf)",
        "t2": f"{ENTRY.display_name} (twin-2.gguf)",
        "o": "Other",
    }
    view = card_view(twins[0], title=named["t1"])
    assert view.actions[0].accessible_name == f"Load {named['t1']}"


def test_facts_line():
    assert facts_line(ENTRY) == "llama · 7B · Q4_K_M · 4,096 ctx · 4.1 GB"
    assert facts_line(generate.SPLIT_ENTRY).endswith("· 2 parts · LM Studio")


def test_eta_wording():
    assert format_eta(0.2) == "under a second"
    assert format_eta(12.4) == "12 s"
    assert format_eta(125) == "2 min 05 s"


def test_surfaces_offer_only_what_they_can_do():
    loaded = event(Stage.COMPLETE, 100)
    view = card_view(ENTRY, loaded, offers=frozenset(ActionId) - {ActionId.TRY})
    assert ids(view) == [ActionId.UNLOAD]


def test_an_unmeasured_stage_says_time_so_far_and_the_usual_time_as_an_estimate():
    start = event(Stage.OPTIMIZING, 90, elapsed_s=0.0, expected_s=2.14)
    assert card_view(ENTRY, start).detail == "m · usually about 2.1 s"
    later = event(Stage.OPTIMIZING, 90, elapsed_s=0.5)
    view = card_view(ENTRY, later)
    assert view.detail == "m · 0.50 s so far" and view.indeterminate
    done = event(Stage.COMPLETE, 100, timeline=(("read", 0.47), ("context", 1.25)))
    assert card_view(ENTRY, done).detail == "m · read 0.47 s, context 1.2 s"
    quick = event(Stage.COMPLETE, 100, timeline=(("read", 0.0042), ("context", 0.0005)))
    assert card_view(ENTRY, quick).detail == "m · read 4 ms, context under 1 ms"
