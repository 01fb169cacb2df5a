"""The event bus: one numbering, one history, atomic attach-or-start, ordered delivery."""

from __future__ import annotations

import threading

from llm_desktop.core.bus import EventBus
from llm_desktop.core.events import ProgressEvent, Stage


def event(model: str, stage: Stage, pct: float = 0.0) -> ProgressEvent:
    return ProgressEvent(model=model, seq=0, stage=stage, pct=pct, message=str(stage))


def test_every_event_gets_the_next_number_across_models():
    bus = EventBus()
    published = [
        bus.publish(event("a", Stage.CONNECTING)),
        bus.publish(event("b", Stage.CONNECTING)),
        bus.publish(event("a", Stage.LOADING, 50)),
    ]
    assert [e.seq for e in published] == [1, 2, 3]
    assert [e.seq for e in bus.history("a")] == [1, 3]
    assert bus.last_seq == 3 and bus.latest("a").stage is Stage.LOADING


def test_an_operation_runs_from_its_first_event_to_its_end():
    bus = EventBus()
    for stage in (Stage.CONNECTING, Stage.LOADING, Stage.COMPLETE):
        bus.publish(event("a", stage))
    assert [e.stage for e in bus.operation("a")] == [
        Stage.CONNECTING,
        Stage.LOADING,
        Stage.COMPLETE,
    ]
    bus.publish(event("a", Stage.UNLOADING))
    bus.publish(event("a", Stage.UNLOADED))
    assert [e.stage for e in bus.operation("a")] == [Stage.UNLOADING, Stage.UNLOADED]


def test_subscribe_after_replays_what_was_missed_then_goes_live():
    bus = EventBus()
    for _ in range(3):
        bus.publish(event("a", Stage.LOADING))
    seen: list[int] = []
    with bus.subscribe(lambda e: seen.append(e.seq), after=1):
        bus.publish(event("a", Stage.COMPLETE))
    bus.publish(event("a", Stage.UNLOADING))  # after close: not delivered
    assert seen == [2, 3, 4]


def test_operation_or_start_starts_once_and_a_second_caller_gets_the_same_load():
    bus = EventBus()
    starts = []

    def start():
        starts.append(True)
        bus.publish(event("a", Stage.CONNECTING))

    backlog = bus.operation_or_start("a", start)
    bus.publish(event("a", Stage.LOADING, 40))
    backlog2 = bus.operation_or_start("a", start)
    assert len(starts) == 1
    assert [e.stage for e in backlog] == [Stage.CONNECTING]
    assert [e.stage for e in backlog2] == [Stage.CONNECTING, Stage.LOADING]
    bus.publish(event("a", Stage.COMPLETE))
    backlog3 = bus.operation_or_start("a", start)
    assert len(starts) == 2, "after the end, a new operation starts"
    assert backlog3[0].stage is Stage.CONNECTING and len(backlog3) == 1


def test_concurrent_publishers_are_delivered_in_number_order():
    bus = EventBus()
    seen: list[int] = []
    bus.subscribe(lambda e: seen.append(e.seq))

    def publish_many(model: str) -> None:
        for _ in range(500):
            bus.publish(event(model, Stage.LOADING))

    threads = [threading.Thread(target=publish_many, args=(f"m{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == list(range(1, 2001))


def test_a_failing_subscriber_is_dropped_and_the_others_go_on():
    bus = EventBus()
    seen = []

    def broken(_event):
        raise RuntimeError("its loop is closed")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.publish(event("a", Stage.CONNECTING))
    bus.publish(event("a", Stage.LOADING))
    assert len(seen) == 2 and bus.subscriber_count == 1


def test_a_slow_subscriber_holds_the_next_event_back_so_order_holds():
    """Delivery happens under the bus's lock: while one event is being handed on, the next
    publisher waits, so no subscriber ever sees a later number first."""
    bus = EventBus()
    seen: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def slow(published: ProgressEvent) -> None:
        if published.seq == 1:
            entered.set()
            release.wait(5)
        seen.append(published.seq)

    bus.subscribe(slow)
    first = threading.Thread(target=bus.publish, args=(event("a", Stage.CONNECTING),))
    first.start()
    assert entered.wait(5)
    second = threading.Thread(target=bus.publish, args=(event("b", Stage.CONNECTING),))
    second.start()
    second.join(0.3)  # time for a second publisher to overtake, were it not held back
    release.set()
    first.join()
    second.join()
    assert seen == [1, 2]
