"""The event bus for the server's event loop: each event with its view, encoded once.

Engine threads publish on the bus; the hub is one bus subscriber for all viewers. For each
event it applies the event to the server's `ModelStore`, encodes the JSON of the event with its
card view and notice and the SSE frame around it (once, however many viewers follow), and hands
the event to the viewers' feeds with one `call_soon_threadsafe` per event loop, so no engine
thread ever waits on a client and a hundred viewers cost one wake-up of the loop, not a hundred.
Feeds register under the bus's lock, so a viewer that replays the bus's history from a number
(Last-Event-ID) and then follows live events misses none and sees none twice.

Besides events, `broadcast` hands a `Message` (a named SSE message without an id, such as the
`sources` message of a remote engine that connected or dropped) to the feeds that asked for
messages, in order with the events around it when it is sent under the bus's lock.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from llm_desktop.core.bus import EventBus
from llm_desktop.core.events import ProgressEvent
from llm_desktop.core.store import ModelStore

ENCODED_MEMO_LIMIT = 2048
SSE_SEPARATOR = "\r\n"  # sse-starlette's, so our frames and its pings look alike


@dataclass(frozen=True)
class Message:
    """A named SSE message that is no event: not numbered, not replayed."""

    frame: bytes


class Feed:
    """One viewer's events (of one model, or all), on its event loop; None ends it. A feed
    with `messages` also gets the hub's broadcast `Message`s."""

    def __init__(
        self,
        hub: EventHub,
        loop: asyncio.AbstractEventLoop,
        model: str | None,
        messages: bool = False,
    ):
        self.hub = hub
        self.loop = loop
        self.model = model
        self.messages = messages
        self.queue: asyncio.Queue[ProgressEvent | Message | None] = asyncio.Queue()

    def wants(self, event: ProgressEvent) -> bool:
        return self.model is None or event.model == self.model

    async def get(self) -> ProgressEvent | None:
        """The next event, or None once the server is stopping."""
        return await self.queue.get()

    async def get_batch(self) -> list[ProgressEvent | Message] | None:
        """The next event and every one already queued behind it (a burst, such as the first
        steps of a load, goes out as one write), or None once the server is stopping."""
        first = await self.queue.get()
        if first is None:
            return None
        batch = [first]
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if event is None:
                self.queue.put_nowait(None)  # ends the stream after this batch
                break
            batch.append(event)
        return batch

    def close(self) -> None:
        self.hub._remove(self)

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self, bus: EventBus, store: ModelStore):
        self.bus = bus
        self.store = store
        self._encoded: OrderedDict[int, tuple[str, bytes]] = OrderedDict()
        self._feeds: dict[asyncio.AbstractEventLoop, set[Feed]] = {}
        self._ended = False
        with bus.lock:  # what happened before this server started, then all that follows
            for event in bus.states().values():
                store.apply(event)
            self._subscription = bus.subscribe(self._receive)

    # -- engine threads (under the bus's lock) ---------------------------------------------

    def _receive(self, event: ProgressEvent) -> None:
        change = self.store.apply(event)
        view, notice = (change.view, change.notice) if change else self.store.render(event)
        self._encoded[event.seq] = encode(event, view, notice)
        while len(self._encoded) > ENCODED_MEMO_LIMIT:
            self._encoded.popitem(last=False)
        for loop, feeds in list(self._feeds.items()):
            wanting = [feed for feed in feeds if feed.wants(event)]
            if not wanting:
                continue
            try:
                loop.call_soon_threadsafe(_hand_out, wanting, event)
            except RuntimeError:  # that loop is closed: its viewers are gone
                del self._feeds[loop]

    # -- the event loop ------------------------------------------------------------------------

    def payload(self, event: ProgressEvent) -> str:
        """The event's JSON with its view and notice."""
        return self._encoded_of(event)[0]

    def frame(self, event: ProgressEvent) -> bytes:
        """The whole SSE message of the event, ready to write."""
        return self._encoded_of(event)[1]

    def _encoded_of(self, event: ProgressEvent) -> tuple[str, bytes]:
        with self.bus.lock:
            encoded = self._encoded.get(event.seq)
        # An old event replayed to a viewer that resumes from far back: encode it now.
        return encoded or encode(event, *self.store.render(event))

    def follow(
        self, model: str | None = None, *, after: int | None = None, messages: bool = False
    ) -> Feed:
        """Live events (of `model`, or all) on the running loop; with `after`, first the
        recorded ones numbered after it; with `messages`, the broadcast messages too."""
        feed = Feed(self, asyncio.get_running_loop(), model, messages)
        with self.bus.lock:
            backlog = [] if after is None else self.bus.since(after, model)
            self._add(feed)
        # On the loop's own thread, before any live event queued for it can run.
        for event in backlog:
            feed.queue.put_nowait(event)
        return feed

    def attach_or_start(
        self, model: str, start: Callable[[], None]
    ) -> tuple[Feed, list[ProgressEvent]]:
        """Follow the model's running operation from its start, or `start` one (which
        publishes its first event at once) and follow that."""
        feed = Feed(self, asyncio.get_running_loop(), model)
        with self.bus.lock:
            backlog = self.bus.operation_or_start(model, start)
            self._add(feed)
        return feed, backlog

    def _add(self, feed: Feed) -> None:
        self._feeds.setdefault(feed.loop, set()).add(feed)
        if self._ended:
            feed.queue.put_nowait(None)

    def _remove(self, feed: Feed) -> None:
        with self.bus.lock:
            self._feeds.get(feed.loop, set()).discard(feed)

    @property
    def subscriber_count(self) -> int:
        """Open feeds: viewers following events."""
        with self.bus.lock:
            return sum(len(feeds) for feeds in self._feeds.values())

    def broadcast(self, name: str, data: object) -> None:
        """A named message to every feed that takes messages (thread-safe). Sent under the
        bus's lock, it reaches each viewer after the events published before it."""
        text = json.dumps(data, separators=(",", ":"))
        sep = SSE_SEPARATOR
        message = Message(f"event: {name}{sep}data: {text}{sep}{sep}".encode())
        with self.bus.lock:
            for loop, feeds in list(self._feeds.items()):
                wanting = [feed for feed in feeds if feed.messages]
                if not wanting:
                    continue
                try:
                    loop.call_soon_threadsafe(_hand_out, wanting, message)
                except RuntimeError:  # that loop is closed: its viewers are gone
                    del self._feeds[loop]

    def end_feeds(self) -> None:
        """End every stream (the server is stopping); thread-safe."""
        with self.bus.lock:
            self._ended = True
            for loop, feeds in list(self._feeds.items()):
                try:
                    loop.call_soon_threadsafe(_hand_out, list(feeds), None)
                except RuntimeError:
                    del self._feeds[loop]

    def close(self) -> None:
        self._subscription.close()
        self.end_feeds()


def _hand_out(feeds: list[Feed], event: ProgressEvent | Message | None) -> None:
    for feed in feeds:
        feed.queue.put_nowait(event)


def encode(event: ProgressEvent, view, notice) -> tuple[str, bytes]:
    """The payload (event + view + notice) as JSON, and as a whole SSE `progress` message."""
    data = event.to_dict()
    data["view"] = view.to_dict() if view is not None else None
    data["notice"] = notice.to_dict() if notice is not None else None
    text = json.dumps(data, separators=(",", ":"))
    sep = SSE_SEPARATOR
    frame = f"id: {event.seq}{sep}event: progress{sep}data: {text}{sep}{sep}".encode()
    return text, frame
