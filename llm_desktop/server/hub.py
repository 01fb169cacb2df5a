"""The event bus for the server's event loop: each event with its view, serialised once.

Engine threads publish on the bus; a feed here is a bus subscription whose delivery is a
`call_soon_threadsafe` onto the server's loop, so no engine thread ever waits on a client. The
hub is the bus's first subscriber: it applies each event to the server's `ModelStore` and keeps
the JSON of the event with its card view and notice, made once however many viewers follow it.
Replays (Last-Event-ID, attaching to a running load) come from the bus's own history.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import Callable

from llm_desktop.core.bus import EventBus, Subscription
from llm_desktop.core.events import ProgressEvent
from llm_desktop.core.store import ModelStore

PAYLOAD_MEMO_LIMIT = 2048


class Feed:
    """Bus events queued on an asyncio loop."""

    def __init__(self, hub: EventHub, loop: asyncio.AbstractEventLoop):
        self.hub = hub
        self.loop = loop
        self.queue: asyncio.Queue[ProgressEvent] = asyncio.Queue()
        self.subscription: Subscription | None = None

    def put(self, event: ProgressEvent) -> None:
        # Raises RuntimeError once the loop is closed; the bus then drops this subscription.
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def get(self) -> ProgressEvent:
        return await self.queue.get()

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        self.hub._feeds.discard(self)

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self, bus: EventBus, store: ModelStore):
        self.bus = bus
        self.store = store
        self._lock = threading.Lock()
        self._payloads: OrderedDict[int, str] = OrderedDict()
        self._feeds: set[Feed] = set()
        self._subscription = bus.subscribe(self._receive)

    def _receive(self, event: ProgressEvent) -> None:
        change = self.store.apply(event)
        view, notice = (change.view, change.notice) if change else self.store.render(event)
        data = serialise(event, view, notice)
        with self._lock:
            self._payloads[event.seq] = data
            while len(self._payloads) > PAYLOAD_MEMO_LIMIT:
                self._payloads.popitem(last=False)

    def payload(self, event: ProgressEvent) -> str:
        """The event's JSON with its view and notice: made once when it was published, or
        now for an old event replayed to a viewer that resumes from far back."""
        with self._lock:
            data = self._payloads.get(event.seq)
        if data is None:
            data = serialise(event, *self.store.render(event))
        return data

    def follow(self, model: str | None = None, *, after: int | None = None) -> Feed:
        """Live events (of `model`, or all) on the running loop; with `after`, first the
        recorded ones numbered after it."""
        feed = self._feed()
        feed.subscription = self.bus.subscribe(feed.put, model, after=after)
        return feed

    def attach_or_start(
        self, model: str, start: Callable[[], None]
    ) -> tuple[Feed, list[ProgressEvent]]:
        """Follow the model's running operation from its start, or `start` one and follow it."""
        feed = self._feed()
        feed.subscription, backlog = self.bus.attach_or_start(model, feed.put, start)
        return feed, backlog

    def _feed(self) -> Feed:
        feed = Feed(self, asyncio.get_running_loop())
        self._feeds.add(feed)
        return feed

    @property
    def subscriber_count(self) -> int:
        """Open feeds: viewers following events."""
        return len(self._feeds)

    def close(self) -> None:
        self._subscription.close()


def serialise(event: ProgressEvent, view, notice) -> str:
    data = event.to_dict()
    data["view"] = view.to_dict() if view is not None else None
    data["notice"] = notice.to_dict() if notice is not None else None
    return json.dumps(data, separators=(",", ":"))
