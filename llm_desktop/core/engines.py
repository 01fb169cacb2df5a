"""Every engine behind one seam: this machine's model hosts plus any number of remote routers.

`EngineSet` is what the window, the server and the CLI drive. A card key that a remote engine
lists goes to that engine (`RemoteEngine`, HTTP to a llama.cpp router); any other goes to this
machine's `Engine`. All of them publish on one bus, so every view follows remote models as it
follows local ones, and nothing above this module learns about HTTP.

Serving to other programs (`core.serving`, the OpenAI API) stays with this machine's models:
a router serves its own OpenAI API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.engine_sources import EngineSource, KeyStore, SourceRegistry
from llm_desktop.core.events import ProgressEvent, Reason
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.remote_engine import Backoff, ConnectionStatus, RemoteEngine
from llm_desktop.core.router_client import RouterClient


class EngineSet:
    """This machine's engine, and the remote ones, as one engine."""

    def __init__(
        self,
        local: Any,
        *,
        registry: SourceRegistry | None = None,
        check_s: float = 5.0,
        backoff: Backoff | None = None,
    ):
        self.local = local
        self.bus = local.bus
        self.registry = registry
        self.check_s = check_s
        self.backoff = backoff
        self._remotes: dict[str, RemoteEngine] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        if registry is not None:
            for source in registry.sources():
                self._start(source, registry.keys.get(source.name))

    # -- sources ---------------------------------------------------------------------------------

    def add_source(self, source: EngineSource, api_key: str | None = None) -> bool:
        """Follow a router (replacing a source of the same name); True when its key is kept
        past this run (always, when it has none)."""
        kept = self.registry.add(source, api_key) if self.registry is not None else not api_key
        self.remove_source(source.name, forget=False)
        self._start(source, api_key)
        self._changed()
        return kept

    def remove_source(self, name: str, *, forget: bool = True) -> bool:
        with self._lock:
            remote = self._remotes.pop(name, None)
        if remote is not None:
            remote.shutdown()
        if forget and self.registry is not None:
            self.registry.remove(name)
        if remote is not None and forget:
            self._changed()
        return remote is not None

    def remotes(self) -> list[RemoteEngine]:
        with self._lock:
            return list(self._remotes.values())

    def statuses(self) -> list[ConnectionStatus]:
        return [remote.status() for remote in self.remotes()]

    def remote_entries(self) -> list[ModelEntry]:
        return [entry for remote in self.remotes() for entry in remote.entries()]

    @property
    def keys(self) -> KeyStore | None:
        return self.registry.keys if self.registry is not None else None

    def on_change(self, listener: Callable[[], None]) -> None:
        """`listener()` (on any thread) when a source is added or removed, connects or drops,
        or its list of models changes."""
        self._listeners.append(listener)

    def _start(self, source: EngineSource, api_key: str | None) -> RemoteEngine:
        remote = RemoteEngine(
            RouterClient(source.name, source.url, api_key),
            self.bus,
            check_s=self.check_s,
            backoff=self.backoff,
            on_change=lambda _remote: self._changed(),
        )
        with self._lock:
            self._remotes[source.name] = remote
        return remote.start()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def _remote_of(self, model: str) -> RemoteEngine | None:
        return next((remote for remote in self.remotes() if remote.owns(model)), None)

    # -- the engine seam -------------------------------------------------------------------------

    def load(
        self,
        path: Any,
        options: LoadOptions | None = None,
        *,
        model: str | None = None,
        reason: Reason | None = None,
    ) -> str:
        remote = self._remote_of(model) if model else None
        if remote is not None:
            return remote.load(path, options, model=model, reason=reason)
        return self.local.load(path, options, model=model, reason=reason)

    def cancel(self, model: str) -> bool:
        return (self._remote_of(model) or self.local).cancel(model)

    def unload(self, model: str, reason: Reason | None = None) -> bool:
        return (self._remote_of(model) or self.local).unload(model, reason)

    def wait(self, model: str, timeout: float | None = None) -> ProgressEvent | None:
        return (self._remote_of(model) or self.local).wait(model, timeout)

    def host_pid(self, model: str) -> int | None:
        return (self._remote_of(model) or self.local).host_pid(model)

    def shutdown(self, timeout: float = 10.0) -> None:
        for remote in self.remotes():
            remote.shutdown(timeout=min(timeout, 5.0))
        self.local.shutdown(timeout)

    def __getattr__(self, name: str) -> Any:
        # The bus's readers (state, states, events, history), replies, usage, warm hosts: this
        # machine's engine answers; every remote model's events are on the same bus.
        return getattr(self.local, name)
