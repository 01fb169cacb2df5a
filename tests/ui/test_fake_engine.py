"""The fake engine the UI tests drive is held to the real one: same API, same events."""

from __future__ import annotations

import inspect
import itertools
import threading
from pathlib import Path

import pytest

from llm_desktop.core.engine import Engine
from llm_desktop.core.engine_api import EngineApi
from llm_desktop.core.events import (
    STAGE_BANDS,
    ErrorKind,
    ModelError,
    ModelState,
    ProgressEvent,
    Reason,
    Stage,
)
from llm_desktop.core.generation import (
    CHAT,
    COMPLETION,
    FINISH_CANCELLED,
    FINISH_ERROR,
    FINISH_LENGTH,
    ReplyRequest,
)
from llm_desktop.core.options import LoadOptions
from tests.helpers.fake_engine import FakeEngine, LoadCall
from tests.helpers.library import BROKEN_GGUF

# The fields whose presence (not value) an event of each stage must share with the real one.
SHAPE_FIELDS = ("bytes_done", "bytes_total", "memory_bytes", "error")


@pytest.fixture
def fake():
    engine = FakeEngine()
    yield engine
    engine.shutdown()


def shape(events: list[ProgressEvent]) -> list[tuple]:
    """Stage, operation and which fields are set, one entry per run of a stage's events (the
    real engine throttles progress, so how many events a stage has is not the contract)."""
    runs = []
    for stage, group in itertools.groupby(events, key=lambda event: event.stage):
        group = list(group)
        ends = (group[0], group[-1]) if len(group) > 1 else (group[0],)
        present = tuple(
            tuple(name for name in SHAPE_FIELDS if getattr(event, name) is not None)
            for event in ends
        )
        runs.append((stage, group[0].op, present, group[-1].pct))
    return runs


def test_the_fake_has_every_member_of_the_engine_api_with_the_same_parameters():
    members = [name for name in vars(EngineApi) if not name.startswith("_")]
    assert {"load", "cancel", "unload", "reply", "generate", "usage", "shutdown"} <= set(members)
    for name in members:
        expected = inspect.signature(getattr(EngineApi, name))
        actual = inspect.signature(getattr(FakeEngine, name))
        assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], name
    fake = FakeEngine()
    for name in EngineApi.__annotations__:
        assert hasattr(fake, name), name
    assert not fake.gpu_monitor.read(), "no GPU: eviction plans for RAM alone"


def test_a_load_and_an_unload_publish_what_the_real_engine_publishes(tiny_model, fake):
    with Engine(warm_hosts=1) as engine, engine.events() as stream:
        model = engine.load(tiny_model)
        real = list(stream.until_terminal(60))
        engine.unload(model)
        real += list(stream.until_terminal(60))

    with fake.bus.stream() as stream:
        fake.load(tiny_model)
        fake.finish(fake.loads[0].model)
        fake.unload(fake.loads[0].model)
        fake.finish(fake.loads[0].model)
        faked = list(itertools.chain(stream.until_terminal(1), stream.until_terminal(1)))

    assert [event.stage for event in real][-1] is Stage.UNLOADED
    assert shape(faked) == shape(real)
    # Messages a person reads, where they do not depend on the file.
    by_stage = {event.stage: event.message for event in real}
    for event in faked:
        if event.stage in (Stage.CONNECTING, Stage.INITIALIZING, Stage.LOADING, Stage.FINALIZING):
            assert event.message == by_stage[event.stage]
    for event in faked:
        if event.op == "load" and event.stage in STAGE_BANDS:
            low, high = STAGE_BANDS[event.stage]
            assert low <= event.pct <= high, event
    assert [e.seq for e in faked] == sorted(e.seq for e in faked), "the bus numbers them"


def test_a_cancel_and_a_failure_end_like_the_real_ones(tmp_path: Path, tiny_model, fake):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(BROKEN_GGUF)
    with Engine(warm_hosts=1) as engine:
        failed = engine.wait(engine.load(broken), 60)
        cancelled_id = engine.load(tiny_model)
        assert engine.cancel(cancelled_id)
        cancelled = engine.wait(cancelled_id, 60)

    fake_failed_id = fake.load(broken)
    fake.advance(fake_failed_id, Stage.PARSING)
    fake_failed = fake.fail(fake_failed_id, ErrorKind.INVALID_MODEL, failed.error.message)
    fake_cancelled_id = fake.load(tiny_model)
    assert fake.cancel(fake_cancelled_id)
    assert fake.pending(fake_cancelled_id) == (Stage.CANCELLED,)
    fake_cancelled = fake.step(fake_cancelled_id)

    for real, faked in ((failed, fake_failed), (cancelled, fake_cancelled)):
        assert (faked.stage, faked.op, faked.error.kind, faked.message, faked.pct) == (
            real.stage,
            real.op,
            real.error.kind,
            real.message,
            real.pct,  # the pct reached is kept
        )


def test_steps_are_published_from_a_session_thread_and_connecting_from_the_callers(fake):
    threads = []
    fake.bus.subscribe(lambda event: threads.append((event.stage, threading.current_thread())))
    model = fake.load("/models/a.gguf")
    fake.finish(model)
    stages = [stage for stage, _ in threads]
    assert stages[0] is Stage.CONNECTING and stages[-1] is Stage.COMPLETE
    assert threads[0][1] is threading.main_thread()
    workers = {thread for _, thread in threads[1:]}
    assert len(workers) == 1 and next(iter(workers)).name.startswith("fake-session-")

    unthreaded = FakeEngine(threaded=False)
    unthreaded.bus.subscribe(lambda event: threads.append(threading.current_thread()))
    unthreaded.finish(unthreaded.load("/models/b.gguf"))
    assert threads[-1] is threading.main_thread()


def test_calls_are_recorded_and_answered_as_the_real_engine_answers(fake):
    options = LoadOptions(n_ctx=1024, use_mmap=False)
    model = fake.load("/models/a.gguf", options)
    assert fake.loads == [LoadCall(model, "/models/a.gguf", options)]
    assert fake.load("/models/a.gguf") == model, "a second load attaches"
    assert [e.stage for e in fake.bus.history(model)] == [Stage.CONNECTING]
    assert not fake.unload("/nothing") and fake.unloads == ["/nothing"]
    events = fake.advance(model, Stage.LOADING)
    stages = [e.stage for e in events]
    assert stages == [Stage.INITIALIZING, Stage.PARSING, Stage.PARSING, Stage.LOADING]
    events = fake.finish(model)
    assert events[-2].message == "Warming up: first decode"
    assert events[-1].message == "Ready (1024-token context)"
    assert fake.wait(model, 1).state is ModelState.LOADED
    assert not fake.cancel(model), "nothing to cancel once loaded"
    assert list(fake.generate(model, "Hi", 2)) == ["Hello", ","]
    assert fake.requests == [(model, ReplyRequest(mode=COMPLETION, prompt="Hi", max_tokens=2))]
    with pytest.raises(LookupError):
        fake.step(model)
    crashed = fake.fail(model, ErrorKind.ENGINE_CRASHED)
    assert (crashed.op, crashed.pct, crashed.state) == ("load", 100.0, ModelState.FAILED)


def test_shutdown_ends_loads_and_unloads_loaded_models_as_the_real_one(fake):
    loading = fake.load("/models/a.gguf")
    fake.step(loading)
    loaded = fake.load("/models/b.gguf")
    fake.finish(loaded)
    fake.shutdown()
    assert fake.state(loading).stage is Stage.CANCELLED
    assert [e.stage for e in fake.bus.operation(loaded)] == [Stage.UNLOADING, Stage.UNLOADED]
    with pytest.raises(RuntimeError):
        fake.load("/models/a.gguf")


def reply_outcome(engine, model: str, request: ReplyRequest) -> tuple:
    """What a caller of `reply` sees: pieces then one None, and the reply's end."""
    seen: list[str | None] = []
    done = threading.Event()

    def sink(piece: str | None) -> None:
        seen.append(piece)
        if piece is None:
            done.set()

    reply = engine.reply(model, request, sink)
    assert done.wait(60)
    pieces = seen[:-1]
    return (
        seen[-1],
        all(isinstance(piece, str) for piece in pieces),
        reply.finish_reason,
        # A piece is not always a token (the bytes of one character can span two): only a
        # reply cut at max_tokens says how many tokens it has.
        reply.completion_tokens == request.max_tokens,
        reply.prompt_tokens > 0,
        reply.done.is_set(),
    )


def test_a_reply_ends_like_the_real_ones(tiny_model, fake):
    # Greedy and seeded: the same two tokens every run (a random pick could be the end token).
    cut = ReplyRequest(
        mode=CHAT,
        messages=(("user", "Hi there"),),
        max_tokens=2,
        seed=1,
        sampling=(("temperature", 0.0),),
    )
    with Engine(warm_hosts=1) as engine:
        model = engine.load(tiny_model)
        engine.wait(model, 60)
        real = reply_outcome(engine, model, cut)
        real_usage = engine.usage(model)
        with pytest.raises(ModelError) as real_refusal:
            engine.reply("nothing", cut, lambda piece: None)

    fake_model = fake.load(tiny_model)
    fake.finish(fake_model)
    assert reply_outcome(fake, fake_model, cut) == real
    assert real[2] == FINISH_LENGTH, "two tokens of a random model: cut at max_tokens"
    fake_usage = fake.usage(fake_model)
    assert (fake_usage.in_use, fake_usage.makes_embeddings) == (real_usage.in_use, False)
    assert fake_usage.memory_bytes and real_usage.memory_bytes
    with pytest.raises(ModelError) as fake_refusal:
        fake.reply("nothing", cut, lambda piece: None)
    assert fake_refusal.value.kind is real_refusal.value.kind is ErrorKind.NOT_FOUND
    assert fake.loaded_models() == [fake_model]


def test_a_held_reply_stays_open_until_stopped_and_an_unload_ends_it(fake):
    fake.hold_replies = True
    model = fake.load("/models/a.gguf")
    fake.finish(model)
    pieces: list[str | None] = []
    reply = fake.reply(model, ReplyRequest(messages=(("user", "Hi"),)), pieces.append)
    assert pieces == ["Hello", ",", " world"] and not reply.done.is_set()
    assert fake.usage(model).in_use, "an open reply keeps its model in use"
    fake.stop_generation(model, client="someone else")
    assert not reply.done.is_set(), "Stop stops the replies of the client who pressed it"
    fake.stop_generation(model)
    assert reply.finish_reason == FINISH_CANCELLED and pieces[-1] is None
    assert fake.stops == [(model, "someone else"), (model, "app")]
    assert not fake.usage(model).in_use

    held = fake.reply(model, ReplyRequest(messages=(("user", "Hi"),)), lambda piece: None)
    fake.unload(model, Reason("idle", idle_s=900.0))
    assert (held.finish_reason, held.error.kind) == (FINISH_ERROR, ErrorKind.CANCELLED)
    unloaded = fake.finish(model)
    assert [event.reason for event in unloaded] == [Reason("idle", idle_s=900.0)] * 2
