"""Carries engine events from engine threads to asyncio subscribers, with a global numbering.

The engine calls subscribers from its session threads; each stream here owns an asyncio queue
on the server's loop, fed with `call_soon_threadsafe`, so no engine thread ever waits on a
client. The global stream (`/api/llm/events`) numbers every event once, and keeps the recent
ones so a viewer that reconnects with Last-Event-ID gets what it missed.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass

from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ProgressEvent

RECENT_LIMIT = 10_000


@dataclass(frozen=True)
class Numbered:
    number: int
    event: ProgressEvent


class Subscription:
    """Events (optionally of one model) queued on an event loop."""

    def __init__(self, hub: EventHub, loop: asyncio.AbstractEventLoop, model: str | None):
        self.hub = hub
        self.loop = loop
        self.model = model
        self.queue: asyncio.Queue[Numbered] = asyncio.Queue()

    def offer(self, item: Numbered) -> None:
        if self.model is None or item.event.model == self.model:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    async def get(self) -> Numbered:
        return await self.queue.get()

    def close(self) -> None:
        self.hub._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._recent: deque[Numbered] = deque(maxlen=RECENT_LIMIT)
        self._number = 0
        self._unsubscribe = engine.subscribe(self._receive)

    def _receive(self, event: ProgressEvent) -> None:
        # Numbering and queueing under one lock: two engine threads must not number 50 and 51
        # and then queue 51 first, or a stream that skips what it has sent would drop 50.
        # Queueing is `call_soon_threadsafe`, so the lock is held for microseconds.
        with self._lock:
            self._number += 1
            item = Numbered(self._number, event)
            self._recent.append(item)
            gone = []
            for subscription in self._subscriptions:
                try:
                    subscription.offer(item)
                except RuntimeError:  # its loop is closed: the stream is gone
                    gone.append(subscription)
            for subscription in gone:
                self._subscriptions.remove(subscription)

    def subscribe(self, model: str | None = None) -> Subscription:
        subscription = Subscription(self, asyncio.get_running_loop(), model)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def subscribe_after(self, number: int) -> tuple[Subscription, list[Numbered]]:
        """A live subscription to every event, and the recorded ones numbered after `number`,
        taken together so nothing falls between them."""
        subscription = Subscription(self, asyncio.get_running_loop(), None)
        with self._lock:
            missed = [item for item in self._recent if item.number > number]
            self._subscriptions.append(subscription)
        return subscription, missed

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def close(self) -> None:
        self._unsubscribe()
