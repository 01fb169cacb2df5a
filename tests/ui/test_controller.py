"""The controller's signals, in order, for each operation: fake engine → bus → bridge → store.

Each test asserts the whole sequence strictly (`waitSignals(order="strict")`: no listed signal
out of place) and then, with a recorder on every signal, that nothing else came.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from llm_desktop.core.catalog import model_id
from llm_desktop.core.events import ErrorKind, ModelState, Stage
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.presenter import STAGE_LABELS, ActionId, NoticeKind
from llm_desktop.ui.controller import AppController
from tests.helpers.fake_engine import FakeEngine
from tests.helpers.library import BROKEN_GGUF

WAIT_MS = 10_000
SIGNALS = ("library_changed", "view_changed", "options_changed", "notice", "loaded_changed")
RAM_OOM = "Out of memory - needs 9.0 GB of 8.0 GB RAM available"


@pytest.fixture
def folder(tmp_path: Path, tiny_model: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(tiny_model, folder / "tiny.gguf")
    (folder / "broken.gguf").write_bytes(BROKEN_GGUF)
    return folder


@pytest.fixture
def fake():
    engine = FakeEngine()
    yield engine
    engine.shutdown()


def make_controller(qtbot, fake, folder: Path, tmp_path: Path) -> AppController:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    controller = AppController(fake, settings=settings, models_dir=folder, include_known=False)
    with qtbot.waitSignal(controller.library_changed, timeout=WAIT_MS):
        controller.refresh_library()
    return controller


@pytest.fixture
def controller(qtbot, fake, folder, tmp_path):
    controller = make_controller(qtbot, fake, folder, tmp_path)
    yield controller
    controller.shutdown()


@pytest.fixture
def tiny(controller) -> str:
    (model,) = [v.model for v in controller.store.views() if Path(v.path).name == "tiny.gguf"]
    return model


class Recorder:
    """(signal name, payload) of every controller signal, in the order they came."""

    def __init__(self, controller: AppController) -> None:
        self.seen: list[tuple[str, object]] = []
        for name in SIGNALS:
            getattr(controller, name).connect(
                lambda *args, name=name: self.seen.append((name, args[-1]))
            )

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def take(self) -> list[tuple[str, object]]:
        seen, self.seen = self.seen, []
        return seen


def view_at(stage: Stage) -> Callable:
    return lambda view: view.stage_label == STAGE_LABELS[stage]


def load(qtbot, controller: AppController, model: str) -> None:
    """Press Load, with the options the card's Load carries: `connecting` arrives at once
    (the engine publishes it in the caller's thread)."""
    c = controller
    options = c.store.view(model).action(ActionId.LOAD).options
    with qtbot.waitSignals(
        [c.view_changed, c.loaded_changed],
        order="strict",
        check_params_cbs=[view_at(Stage.CONNECTING), lambda loaded: loaded == {}],
        timeout=WAIT_MS,
    ):
        c.act(model, "load", options)


def settle(qtbot, controller: AppController, model: str, events) -> None:
    seq = events[-1].seq
    qtbot.waitUntil(lambda: controller.store.last_event(model).seq == seq, timeout=WAIT_MS)


def test_one_load_sends_each_view_then_one_notice_then_the_loaded_models(
    qtbot, controller, fake, tiny
):
    c = controller
    recorder = Recorder(c)
    load(qtbot, c, tiny)
    assert recorder.take() == [
        ("view_changed", c.store.view(tiny)),
        ("loaded_changed", {}),
    ]
    count = len(fake.pending(tiny))
    published = []
    title = c.store.view(tiny).title
    with qtbot.waitSignals(
        [c.view_changed] * count + [c.notice, c.loaded_changed],
        order="strict",
        check_params_cbs=[
            *(lambda view, i=i: view.seq == published[i].seq for i in range(count)),
            lambda notice: (notice.kind, notice.text) == (NoticeKind.SUCCESS, f"{title} is ready"),
            lambda loaded: loaded == {tiny: title},
        ],
        timeout=WAIT_MS,
    ):
        published.extend(fake.finish(tiny))  # from the session thread: delivered in the wait
    assert published[-1].stage is Stage.COMPLETE
    assert recorder.names() == ["view_changed"] * count + ["notice", "loaded_changed"]
    views = [payload for name, payload in recorder.seen if name == "view_changed"]
    assert [view.state for view in views] == [ModelState.LOADING] * (count - 1) + [
        ModelState.LOADED
    ]


def test_an_unload_sends_unloading_then_unloaded_with_one_notice(qtbot, controller, fake, tiny):
    c = controller
    load(qtbot, c, tiny)
    settle(qtbot, c, tiny, fake.finish(tiny))
    recorder = Recorder(c)
    c.act(tiny, "unload")
    assert fake.unloads == [tiny] and recorder.seen == [], "the engine says when it unloads"
    with qtbot.waitSignals(
        [c.view_changed, c.loaded_changed, c.view_changed, c.notice, c.loaded_changed],
        order="strict",
        check_params_cbs=[
            lambda view: view.state is ModelState.UNLOADING and view.busy,
            lambda loaded: loaded == {},
            lambda view: view.state is ModelState.UNLOADED and view.has(ActionId.LOAD),
            lambda notice: notice.kind is NoticeKind.INFO and "Unloaded" in notice.text,
            lambda loaded: loaded == {},
        ],
        timeout=WAIT_MS,
    ):
        fake.finish(tiny)
    assert len(recorder.take()) == 5


def test_a_cancel_sends_the_cancelled_view_one_notice_and_the_loaded_models(
    qtbot, controller, fake, tiny
):
    c = controller
    load(qtbot, c, tiny)
    settle(qtbot, c, tiny, fake.advance(tiny, Stage.LOADING))
    recorder = Recorder(c)
    c.act(tiny, "cancel")
    assert fake.cancels == [tiny] and recorder.seen == []
    with qtbot.waitSignals(
        [c.view_changed, c.notice, c.loaded_changed],
        order="strict",
        check_params_cbs=[
            lambda view: view.state is ModelState.CANCELLED and not view.busy,
            lambda notice: notice.text.startswith("Loading") and notice.text.endswith("cancelled"),
            lambda loaded: loaded == {},
        ],
        timeout=WAIT_MS,
    ):
        fake.step(tiny)
    assert len(recorder.take()) == 3


def test_a_failure_sends_the_failed_view_and_a_notice_offering_its_retry(
    qtbot, controller, fake, tiny
):
    c = controller
    load(qtbot, c, tiny)
    settle(qtbot, c, tiny, fake.advance(tiny, Stage.LOADING))
    recorder = Recorder(c)
    with qtbot.waitSignals(
        [c.view_changed, c.notice, c.loaded_changed],
        order="strict",
        check_params_cbs=[
            lambda view: view.state is ModelState.FAILED and view.actions[0].id is ActionId.RETRY,
            lambda notice: notice.kind is NoticeKind.ERROR and notice.text == RAM_OOM,
            lambda loaded: loaded == {},
        ],
        timeout=WAIT_MS,
    ):
        fake.fail(tiny, ErrorKind.OUT_OF_MEMORY, RAM_OOM)
    (_, view), (_, notice), _ = recorder.take()
    assert notice.actions == (view.action(ActionId.RETRY),)
    assert AppController.notice_action(notice) == (tiny, "retry", view.actions[0].options)


def test_a_retry_remembers_the_smaller_context_before_it_loads(qtbot, controller, fake, tiny):
    c = controller
    c.set_options(tiny, LoadOptions(n_ctx=4096))
    load(qtbot, c, tiny)
    settle(qtbot, c, tiny, fake.advance(tiny, Stage.LOADING))
    settle(qtbot, c, tiny, [fake.fail(tiny, ErrorKind.OUT_OF_MEMORY, RAM_OOM)])
    retry = c.store.view(tiny).action(ActionId.RETRY)
    smaller = LoadOptions(n_ctx=2048)
    recorder = Recorder(c)
    with qtbot.waitSignals(
        [c.options_changed, c.view_changed, c.view_changed, c.loaded_changed],
        order="strict",
        check_params_cbs=[
            lambda model, options: (model, options) == (tiny, smaller),
            lambda view: view.state is ModelState.FAILED,  # the same card, its new options
            lambda view: view.state is ModelState.LOADING,
            lambda loaded: loaded == {},
        ],
        timeout=WAIT_MS,
    ):
        c.act(tiny, "retry", retry.options)
    assert len(recorder.take()) == 4
    assert [call.options for call in fake.loads] == [LoadOptions(n_ctx=4096), smaller]
    assert c.saved_options(tiny) == smaller


def test_events_from_a_session_thread_reach_the_controller_on_the_gui_thread(
    qtbot, controller, fake, tiny
):
    publishers, receivers = [], []
    fake.bus.subscribe(lambda event: publishers.append(threading.current_thread()))
    controller.view_changed.connect(lambda view: receivers.append(threading.current_thread()))
    load(qtbot, controller, tiny)
    events = fake.finish(tiny)
    settle(qtbot, controller, tiny, events)
    assert len(receivers) == len(publishers) == len(events) + 1
    assert all(thread.name.startswith("fake-session-") for thread in publishers[1:])
    assert set(receivers) == {threading.main_thread()}


def test_removing_a_failed_model_sends_the_library_then_one_notice(qtbot, controller, fake, tiny):
    c = controller
    (broken,) = [v.model for v in c.store.views() if v.state is ModelState.UNREADABLE]
    recorder = Recorder(c)
    with qtbot.waitSignals(
        [c.library_changed, c.notice],
        order="strict",
        check_params_cbs=[
            lambda views: [view.model for view in views] == [tiny],
            lambda notice: notice.text.endswith("removed from the library"),
        ],
        timeout=WAIT_MS,
    ):
        c.act(broken, "remove")
    assert recorder.names() == ["library_changed", "notice"]


def test_a_busy_or_unknown_model_is_not_removed_and_nothing_is_sent(qtbot, controller, fake, tiny):
    load(qtbot, controller, tiny)
    recorder = Recorder(controller)
    controller.act(tiny, "remove")
    controller.act("no-such-model", "load")
    assert recorder.seen == [] and len(fake.loads) == 1
    assert tiny in {view.model for view in controller.store.views()}


def test_options_a_person_set_are_kept_for_the_next_run(qtbot, folder, tmp_path):
    tiny = model_id(folder / "tiny.gguf")
    first = make_controller(qtbot, FakeEngine(), folder, tmp_path)
    chosen = LoadOptions(n_ctx=1024, n_gpu_layers=4, use_mmap=False)
    first.set_options(tiny, chosen)
    first.shutdown()
    second = make_controller(qtbot, FakeEngine(), folder, tmp_path)
    try:
        assert second.store.view(tiny).action(ActionId.LOAD).options == chosen.to_dict()
    finally:
        second.shutdown()
