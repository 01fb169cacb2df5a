"""The state of every model, as every view sees it: Qt-free, fed by the library and the bus.

`ModelStore` holds, per model, its library entry and fit verdict, its title, the load options a
person chose, and its last event; from those the presenter makes its card view. Applying an event
returns the new view and the notice (toast) it calls for, so the Qt controller and the server
decide nothing themselves. Thread-safe: the server applies events from engine threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from llm_desktop.core import presenter, transfer_presenter
from llm_desktop.core.events import TRANSFER_OPS, ModelState, ProgressEvent
from llm_desktop.core.library import LibraryModel
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.presenter import CardView, Notice
from llm_desktop.core.remote_engine import ConnectionStatus
from llm_desktop.core.transfer_presenter import TransferView


@dataclass(frozen=True)
class Change:
    """What one event did to a model's card: the view before and after, and its toast."""

    view: CardView
    previous: CardView | None
    notice: Notice | None

    @property
    def state_changed(self) -> bool:
        return self.previous is None or self.previous.state is not self.view.state


@dataclass(frozen=True)
class TransferChange:
    """What one event did to a transfer's row (a download, an upload, a quantize)."""

    view: TransferView
    previous: TransferView | None
    notice: Notice | None

    @property
    def state_changed(self) -> bool:
        return self.previous is None or self.previous.stage is not self.view.stage


class ModelStore:
    def __init__(self, offers: frozenset[presenter.ActionId] | None = None) -> None:
        # The actions this surface can carry out (the page has no "Try it" panel); None: all.
        self.offers = offers
        self._lock = threading.RLock()
        self._models: dict[str, LibraryModel] = {}
        self._titles: dict[str, str] = {}
        self._events: dict[str, ProgressEvent] = {}
        self._options: dict[str, LoadOptions] = {}
        self._transfers: dict[str, ProgressEvent] = {}  # insertion order: oldest first
        self._connections: dict[str, ConnectionStatus] = {}  # remote engines, by name

    # -- inputs -------------------------------------------------------------------------------

    def set_library(
        self, models: Iterable[LibraryModel], *, keep: Iterable[str] = ()
    ) -> list[CardView]:
        """Replace the library (a fresh scan). Models in `keep` stay even when the scan no
        longer lists them (a loaded model whose file went away is still loaded)."""
        with self._lock:
            fresh = {model.entry.id: model for model in models}
            for model_id in keep:
                if model_id not in fresh and model_id in self._models:
                    fresh[model_id] = self._models[model_id]
            self._models = fresh
            self._titles = presenter.titles(model.entry for model in fresh.values())
            return self.views()

    def set_connections(self, statuses: Iterable[ConnectionStatus]) -> list[CardView]:
        """The remote engines' connections as they stand now; the views of their models."""
        with self._lock:
            self._connections = {status.name: status for status in statuses}
            return [
                self._view(model_id, self._events.get(model_id))
                for model_id, model in self._models.items()
                if model.entry.engine is not None
            ]

    def connections(self) -> list[ConnectionStatus]:
        with self._lock:
            return list(self._connections.values())

    def apply(self, event: ProgressEvent) -> Change | TransferChange | None:
        """Record `event`; the change it makes to its model's card or its transfer's row
        (None: a model not in the library, or an event older than what is shown)."""
        if event.op in TRANSFER_OPS:
            return self._apply_transfer(event)
        with self._lock:
            last = self._events.get(event.model)
            if last is not None and last.seq >= event.seq:
                return None  # replayed or out of date: the card already shows something newer
            self._events[event.model] = event
            if event.model not in self._models:
                return None
            previous = self._view(event.model, last)
            view = self._view(event.model, event)
            return Change(view, previous, presenter.notice_for(view, event))

    def _apply_transfer(self, event: ProgressEvent) -> TransferChange | None:
        with self._lock:
            last = self._transfers.get(event.model)
            if last is not None and last.seq >= event.seq:
                return None
            self._transfers[event.model] = event
        previous = transfer_presenter.transfer_view(last) if last is not None else None
        view = transfer_presenter.transfer_view(event)
        return TransferChange(view, previous, transfer_presenter.transfer_notice(view, event))

    def dismiss_transfer(self, key: str) -> bool:
        """Take a finished transfer off the list (a running one stays)."""
        with self._lock:
            last = self._transfers.get(key)
            if last is None or not last.is_terminal:
                return False
            del self._transfers[key]
            return True

    def transfers(self) -> list[TransferView]:
        with self._lock:
            events = list(self._transfers.values())
        return [transfer_presenter.transfer_view(event) for event in events]

    def transfer(self, key: str) -> TransferView | None:
        with self._lock:
            last = self._transfers.get(key)
        return transfer_presenter.transfer_view(last) if last is not None else None

    def render(self, event: ProgressEvent) -> tuple[CardView | TransferView | None, Notice | None]:
        """The view and notice of an event (a replay), without recording it."""
        if event.op in TRANSFER_OPS:
            view = transfer_presenter.transfer_view(event)
            return view, transfer_presenter.transfer_notice(view, event)
        with self._lock:
            if event.model not in self._models:
                return None, None
            view = self._view(event.model, event)
            return view, presenter.notice_for(view, event)

    def set_options(self, model_id: str, options: LoadOptions) -> None:
        with self._lock:
            self._options[model_id] = options

    # -- outputs ------------------------------------------------------------------------------

    def view(self, model_id: str) -> CardView | None:
        with self._lock:
            if model_id not in self._models:
                return None
            return self._view(model_id, self._events.get(model_id))

    def views(self) -> list[CardView]:
        with self._lock:
            return [self._view(model_id, self._events.get(model_id)) for model_id in self._models]

    def model(self, model_id: str) -> LibraryModel | None:
        with self._lock:
            return self._models.get(model_id)

    def options(self, model_id: str) -> LoadOptions:
        with self._lock:
            return self._options.get(model_id, LoadOptions())

    def last_event(self, model_id: str) -> ProgressEvent | None:
        with self._lock:
            return self._events.get(model_id)

    def in_state(self, *states: ModelState) -> dict[str, str]:
        """Model id → title of the models whose card is in one of `states`."""
        with self._lock:
            return {
                view.model: view.title
                for view in (self._view(m, self._events.get(m)) for m in self._models)
                if view.state in states
            }

    def _view(self, model_id: str, event: ProgressEvent | None) -> CardView:
        model = self._models[model_id]
        return presenter.card_view(
            model.entry,
            event,
            verdict=model.verdict,
            title=self._titles.get(model_id),
            options=self._options.get(model_id),
            offers=self.offers,
            connection=self._connections.get(model.entry.engine or ""),
        )
