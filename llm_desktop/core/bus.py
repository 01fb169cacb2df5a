"""The one event bus: one numbering, one history, one way to follow a model's operations.

The engine publishes every `ProgressEvent` here. The bus gives each event its `seq` (one
counter for the whole bus, so a `seq` is also a resume point for a viewer of every model), keeps
the recent events and, per model, the events of its current operation (a load from `connecting`,
or an unload from `unloading`, to its end). Adapters are thin: the SSE server puts events on an
asyncio queue, the Qt bridge emits a signal, the CLI reads a blocking stream.

Delivery happens under the bus's lock, in `seq` order, so a subscriber never sees 51 before 50.
Subscribers must therefore only hand the event on (a queue put, `call_soon_threadsafe`, a queued
Qt signal); they must not block or publish.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from llm_desktop.core.events import ProgressEvent, Stage

log = logging.getLogger(__name__)

Deliver = Callable[[ProgressEvent], None]
RECENT_LIMIT = 10_000
# The stages that open an operation; everything until its terminal event belongs to it.
OPERATION_STARTS = frozenset({Stage.CONNECTING, Stage.UNLOADING})


@dataclass(eq=False)
class Subscription:
    """A live feed of events (of one model, or all); `close()` ends it."""

    bus: EventBus
    deliver: Deliver
    model: str | None

    def offer(self, event: ProgressEvent) -> None:
        if self.model is None or event.model == self.model:
            self.deliver(event)

    def close(self) -> None:
        self.bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, recent_limit: int = RECENT_LIMIT) -> None:
        self._lock = threading.RLock()
        self._seq = 0
        self._recent: deque[ProgressEvent] = deque(maxlen=recent_limit)
        self._operations: dict[str, list[ProgressEvent]] = {}
        self._subscriptions: list[Subscription] = []

    # -- publishing -------------------------------------------------------------------------

    def publish(self, event: ProgressEvent) -> ProgressEvent:
        """Number `event`, record it and hand it to every subscriber; returns it numbered."""
        with self._lock:
            self._seq += 1
            event = event.evolve(seq=self._seq, ts=event.ts or time.time())
            self._recent.append(event)
            operation = self._operations.get(event.model)
            if operation is None or event.stage in OPERATION_STARTS or operation[-1].is_terminal:
                self._operations[event.model] = [event]
            else:
                operation.append(event)
            for subscription in list(self._subscriptions):
                try:
                    subscription.offer(event)
                except Exception:
                    # A viewer whose loop or window is gone: drop it, keep the others.
                    log.debug("dropping a subscriber that failed", exc_info=True)
                    self._subscriptions.remove(subscription)
        return event

    # -- reading ----------------------------------------------------------------------------

    def subscribe(
        self, deliver: Deliver, model: str | None = None, *, after: int | None = None
    ) -> Subscription:
        """Deliver every later event (of `model`, or all); with `after`, first the recorded
        events numbered after it, taken under the same lock so nothing falls between."""
        subscription = Subscription(self, deliver, model)
        with self._lock:
            for event in self.since(after, model) if after is not None else ():
                subscription.offer(event)
            self._subscriptions.append(subscription)
        return subscription

    def since(self, after: int, model: str | None = None) -> list[ProgressEvent]:
        """The recorded events (of `model`, or all) numbered after `after`: what a viewer
        that resumes from `after` missed. Take `lock` around it and the registration that
        follows, so that nothing falls between."""
        with self._lock:
            return [
                e for e in self._recent if e.seq > after and (model is None or e.model == model)
            ]

    def operation_or_start(self, model: str, start: Callable[[], None]) -> list[ProgressEvent]:
        """The events of `model`'s running operation, or of the one `start` begins (it
        publishes its first event at once). Taken under `lock` with the registration that
        follows, a second caller racing the first attaches to the same operation."""
        with self._lock:
            current = self._operations.get(model)
            if current is None or current[-1].is_terminal:
                start()  # re-entrant lock: its first event is published (and recorded) here
                current = self._operations.get(model, [])
            return list(current)

    def operation(self, model: str) -> list[ProgressEvent]:
        """The events of `model`'s current (or last) operation."""
        with self._lock:
            return list(self._operations.get(model, ()))

    def latest(self, model: str) -> ProgressEvent | None:
        with self._lock:
            events = self._operations.get(model)
            return events[-1] if events else None

    def states(self) -> dict[str, ProgressEvent]:
        """The last event of every model that has one."""
        with self._lock:
            return {model: events[-1] for model, events in self._operations.items()}

    def history(self, model: str | None = None) -> list[ProgressEvent]:
        """The recent events (of `model`, or all), oldest first."""
        with self._lock:
            return [e for e in self._recent if model is None or e.model == model]

    @property
    def lock(self) -> threading.RLock:
        """Held while an event is numbered, recorded and delivered: an adapter that must read
        the history and register for what follows as one step takes it (re-entrant)."""
        return self._lock

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def stream(self, model: str | None = None, *, after: int | None = None) -> EventStream:
        """A blocking iterator over the bus, for threads that wait (the CLI, tests)."""
        stream = EventStream()
        stream.subscription = self.subscribe(stream.put, model, after=after)
        return stream

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)


class EventStream:
    """Events queued for a thread that blocks on them."""

    def __init__(self) -> None:
        self._queue: queue.Queue[ProgressEvent | None] = queue.Queue()
        self.subscription: Subscription | None = None

    def put(self, event: ProgressEvent) -> None:
        self._queue.put(event)

    def get(self, timeout: float | None = None) -> ProgressEvent | None:
        """The next event, or None on timeout or after close()."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def until_terminal(self, timeout: float | None = None) -> Iterator[ProgressEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.get(remaining)
            if event is None:
                return
            yield event
            if event.is_terminal:
                return

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        self._queue.put(None)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
