"""Delivers the engine's events to the GUI thread as a Qt signal."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from llm_desktop.core.engine_api import EngineApi
from llm_desktop.core.events import ProgressEvent


class EngineBridge(QObject):
    """Re-emits every engine event on the thread this object lives in (the GUI thread).

    The bus calls subscribers from the engine's session threads; emitting from there queues the
    signal to this object's thread, so slots run in the GUI thread and never block the engine.

    Signals:
        event_received(ProgressEvent): one engine event, in the order the engine made them.
    """

    event_received = Signal(object)

    def __init__(self, engine: EngineApi, parent: QObject | None = None):
        super().__init__(parent)
        self._subscription = engine.bus.subscribe(self._relay)

    def _relay(self, event: ProgressEvent) -> None:
        self.event_received.emit(event)

    def close(self) -> None:
        self._subscription.close()
