"""The Qt-free store: library + events + options → views and notices."""

from __future__ import annotations

from dataclasses import replace

from llm_desktop.core.events import ModelState, ProgressEvent, Stage
from llm_desktop.core.library import LibraryModel
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.presenter import ActionId, NoticeKind
from llm_desktop.core.store import ModelStore
from tests.golden.generate import ENTRY


def event(seq: int, stage: Stage, model: str = ENTRY.id) -> ProgressEvent:
    return ProgressEvent(model=model, seq=seq, stage=stage, pct=100.0, message="Ready")


def test_events_change_views_and_outcomes_bring_one_notice():
    store = ModelStore()
    store.set_library([LibraryModel(ENTRY, None)])
    assert store.view(ENTRY.id).state is ModelState.UNLOADED
    change = store.apply(event(1, Stage.CONNECTING))
    assert change.view.state is ModelState.LOADING and change.notice is None
    assert change.state_changed
    change = store.apply(event(2, Stage.COMPLETE))
    assert change.notice.kind is NoticeKind.SUCCESS and change.previous.state is ModelState.LOADING
    assert store.in_state(ModelState.LOADED) == {ENTRY.id: ENTRY.display_name}


def test_a_replayed_or_older_event_changes_nothing():
    store = ModelStore()
    store.set_library([LibraryModel(ENTRY, None)])
    store.apply(event(5, Stage.COMPLETE))
    assert store.apply(event(5, Stage.COMPLETE)) is None
    assert store.apply(event(3, Stage.LOADING)) is None
    assert store.view(ENTRY.id).state is ModelState.LOADED


def test_options_travel_with_the_load_action():
    store = ModelStore()
    store.set_library([LibraryModel(ENTRY, None)])
    store.set_options(ENTRY.id, LoadOptions(n_ctx=512))
    assert store.view(ENTRY.id).action(ActionId.LOAD).options["n_ctx"] == 512


def test_titles_follow_the_whole_library_and_busy_models_stay_listed():
    twin = replace(ENTRY, id="twin", path="/models/other/demo.gguf")
    store = ModelStore()
    store.set_library([LibraryModel(ENTRY, None), LibraryModel(twin, None)])
    assert store.view("twin").title.endswith("(demo.gguf)")
    store.apply(event(1, Stage.CONNECTING, model="twin"))
    views = store.set_library([LibraryModel(ENTRY, None)], keep=["twin"])
    assert [view.model for view in views] == [ENTRY.id, "twin"]
    assert store.view(ENTRY.id).title.endswith("(demo.gguf)"), "two cards still share a name"
    store.set_library([LibraryModel(ENTRY, None)])
    assert store.view(ENTRY.id).title == ENTRY.display_name
