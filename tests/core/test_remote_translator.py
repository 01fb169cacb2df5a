"""The router's frames as our events, without a router: the mapping rules one by one."""

from __future__ import annotations

from llm_desktop.core import presenter
from llm_desktop.core.events import (
    LIMIT_COUNT,
    REASON_EVICTED,
    ErrorInfo,
    ErrorKind,
    ModelState,
    ProgressEvent,
    Stage,
)
from llm_desktop.core.remote_engine import (
    Backoff,
    RouterTranslator,
    model_entry,
    remote_key,
    transfer_key,
)


def frame(model: str, status: str, **data) -> dict:
    return {"model": model, "event": "status_change", "data": {"status": status, **data}}


def loading(model: str, value: float) -> dict:
    progress = {"stages": ["text_model"], "current": "text_model", "value": value}
    return frame(model, "loading", progress=progress)


def listing(**statuses: str) -> list[dict]:
    return [{"id": name, "status": {"value": status}} for name, status in statuses.items()]


def stages(events: list[dict]) -> list[Stage]:
    return [event["stage"] for event in events]


def test_a_load_is_what_the_router_reported_and_nothing_more() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.resync(listing(demo="unloaded"), 0.0, first=True)
    events = []
    events += translator.frame(
        {"model": "demo", "event": "model_status", "data": {"status": "loading"}}, 1.0
    )
    events += translator.frame(loading("demo", 0.0), 1.1)
    events += translator.frame(loading("demo", 1.0), 1.5)
    meta = {"n_params": 134_000_000, "n_ctx_train": 2048, "size": 535_296, "ftype": "all F32"}
    events += translator.frame(frame("demo", "loaded", info={"meta": meta}), 1.9)
    assert stages(events) == [Stage.LOADING, Stage.LOADING, Stage.LOADING, Stage.COMPLETE]
    # One value between start and end: the bar reads 0 until the router says 1.0.
    assert [event["pct"] for event in events] == [0.0, 0.0, 99.0, 100.0]
    assert events[-1]["timeline"] == (("load", 0.9),)
    entry = model_entry("lab-gpu", translator.models["demo"])
    assert entry.engine == "lab-gpu" and entry.parameter_count == 134_000_000
    assert presenter.facts_line(entry) == "on lab-gpu · 134M params · F32 · 2,048 ctx · 535 kB"


def test_a_model_listed_but_never_loaded_claims_no_facts() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.resync(listing(demo="unloaded"), 0.0, first=True)
    entry = model_entry("lab-gpu", translator.models["demo"])
    assert presenter.facts_line(entry) == (
        "on lab-gpu · details once loaded: the router lists none before"
    )


def test_an_exit_code_is_a_named_crash_with_the_state_it_ended() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.frame(loading("bad", 0.0), 1.0)
    [event] = translator.frame(frame("bad", "unloaded", exit_code=1), 1.2)
    assert event["stage"] is Stage.FAILED
    assert event["error"].kind is ErrorKind.ENGINE_CRASHED
    assert (
        event["error"].message == "The model's process on lab-gpu exited with code 1 while loading"
    )


def test_a_cancel_is_a_cancel_whatever_code_the_killed_process_returns() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.frame(loading("demo", 0.0), 1.0)
    translator.models["demo"].cancel_requested = True
    [event] = translator.frame(frame("demo", "unloaded", exit_code=-9), 1.2)
    assert event["stage"] is Stage.CANCELLED


def test_an_unload_we_asked_for_is_no_crash_even_when_the_router_had_to_kill_it() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.frame(frame("demo", "loaded"), 1.0)
    translator.models["demo"].unload_requested = True
    [event] = translator.frame(frame("demo", "unloaded", exit_code=1), 12.0)
    assert event["stage"] is Stage.UNLOADED
    assert event["message"] == "Unloaded on lab-gpu (its process was stopped with exit code 1)"
    # Unasked, the same frame is a crash.
    translator.frame(frame("demo", "loaded"), 13.0)
    [event] = translator.frame(frame("demo", "unloaded", exit_code=1), 14.0)
    assert event["stage"] is Stage.FAILED


def test_an_unload_nobody_here_asked_for_at_the_limit_is_the_routers_eviction() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.max_loaded = 1
    translator.frame(frame("old", "loaded"), 1.0)
    translator.model("new")
    translator.pending_load = "new"
    [event] = translator.frame(frame("old", "unloaded", exit_code=0), 2.0)
    reason = event["reason"]
    assert (reason.kind, reason.limit, reason.max_loaded) == (REASON_EVICTED, LIMIT_COUNT, 1)
    assert reason.for_model == remote_key("lab-gpu", "new")
    # Below the limit, the same frame is someone else's unload: no reason is made up.
    translator.max_loaded = 4
    translator.frame(frame("old", "loaded"), 3.0)
    [event] = translator.frame(frame("old", "unloaded", exit_code=0), 4.0)
    assert "reason" not in event and event["message"] == "Unloaded on lab-gpu by another client"


def test_losing_contact_leaves_no_card_loading_and_reconnecting_says_the_gap() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.resync(listing(demo="unloaded", other="loaded"), 0.0, first=True)
    translator.frame(loading("demo", 0.0), 1.0)
    lost = translator.lost(2.0, ErrorInfo(ErrorKind.NETWORK, "connection refused"))
    assert [(e["model"], e["stage"]) for e in lost] == [
        (remote_key("lab-gpu", "demo"), Stage.FAILED)
    ]
    assert lost[0]["error"].kind is ErrorKind.NETWORK
    # The router came back empty-handed (restarted): both cards say so, with the gap.
    events = translator.resync(listing(demo="unloaded", other="unloaded"), 5.5, first=False)
    assert stages(events) == [Stage.UNLOADED, Stage.UNLOADED]
    assert all("after a gap of 3.5 s" in e["message"] for e in events)


def test_a_model_still_loaded_after_a_gap_needs_no_event() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.resync(listing(demo="loaded"), 0.0, first=True)
    translator.lost(1.0, ErrorInfo(ErrorKind.NETWORK, "reset"))
    assert translator.resync(listing(demo="loaded"), 2.0, first=False) == []


def test_a_listing_that_moved_on_without_a_frame_differs() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.resync(listing(demo="unloaded"), 0.0, first=True)
    assert not translator.differs(listing(demo="unloaded"))
    assert translator.differs(listing(demo="loaded"))
    assert translator.differs(listing(demo="unloaded", new="unloaded"))


def test_router_downloads_are_transfers_with_rate_and_eta_from_the_frames() -> None:
    translator = RouterTranslator("lab-gpu")
    url = "https://hub/x.gguf"

    def progress(done: int) -> dict:
        data = {"progress": {url: {"done": done, "total": 1000}}}
        return {"model": "org/x", "event": "download_progress", "data": data}

    translator.frame(progress(0), 10.0)
    [event] = translator.frame(progress(400), 12.0)
    assert event["model"] == transfer_key("lab-gpu", "org/x") and event["op"] == "download"
    assert (event["bytes_done"], event["bytes_total"], event["rate_bps"]) == (400, 1000, 200.0)
    assert event["eta_s"] == 3.0
    [done] = translator.frame({"model": "org/x", "event": "download_finished"}, 13.0)
    assert done["stage"] is Stage.COMPLETE


def test_the_card_of_a_remote_load_is_indeterminate_until_the_router_reports_a_value() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.resync(listing(demo="unloaded"), 0.0, first=True)
    entry = model_entry("lab-gpu", translator.models["demo"])
    translator.frame(loading("demo", 0.0), 1.0)
    [ticked] = translator.tick(2.5)
    view = presenter.card_view(entry, ProgressEvent(seq=1, engine="lab-gpu", **ticked))
    assert view.indeterminate and view.stage_label == "Loading on lab-gpu"
    assert view.detail == "lab-gpu reports only the start and the end of a load · 1.5 s so far"
    [later] = translator.frame(loading("demo", 1.0), 2.6)
    view = presenter.card_view(entry, ProgressEvent(seq=2, engine="lab-gpu", **later))
    assert not view.indeterminate and view.pct == 99
    assert {action.id for action in view.actions} == {presenter.ActionId.CANCEL}


def test_an_asleep_model_offers_unload_and_is_no_longer_busy() -> None:
    translator = RouterTranslator("lab-gpu")
    translator.frame(frame("demo", "loaded"), 1.0)
    [event] = translator.frame(frame("demo", "sleeping"), 2.0)
    entry = model_entry("lab-gpu", translator.models["demo"])
    view = presenter.card_view(entry, ProgressEvent(seq=1, engine="lab-gpu", **event))
    assert view.state is ModelState.SLEEPING and view.state_label == "Asleep"
    assert [action.id for action in view.actions] == [presenter.ActionId.UNLOAD]
    [awake] = translator.frame(frame("demo", "loaded"), 3.0)
    assert awake["message"] == "Awake on lab-gpu"


def test_reconnect_waits_double_up_to_a_cap() -> None:
    backoff = Backoff(first_s=0.5, cap_s=4.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_two_engines_models_of_one_name_are_told_apart_by_their_engine() -> None:
    lab, closet = RouterTranslator("lab-gpu"), RouterTranslator("closet-box")
    entries = [
        model_entry("lab-gpu", lab.model("tiny")),
        model_entry("closet-box", closet.model("tiny")),
    ]
    assert sorted(presenter.titles(entries).values()) == ["tiny (closet-box)", "tiny (lab-gpu)"]
    # The card does not repeat the router's id as a path: it is the title already.
    assert presenter.card_view(entries[0]).path == ""


def test_only_a_router_already_where_a_request_goes_is_no_failure() -> None:
    from llm_desktop.core.router_client import RouterStateConflict, router_refusal

    already = router_refusal("lab-gpu", 400, "model is already running", ())
    assert isinstance(already, RouterStateConflict)
    # A load refused at the router's --models-max is a failure the card shows, by name.
    refused = router_refusal("lab-gpu", 500, "model limit reached, try again later", ())
    assert not isinstance(refused, RouterStateConflict)
    assert refused.info.message == (
        "lab-gpu already runs as many models as it may (--models-max); unload one first"
    )
