"""What the views need of an engine: the protocol the real `Engine` and test fakes both meet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

from llm_desktop.core.bus import EventBus
from llm_desktop.core.events import ProgressEvent
from llm_desktop.core.options import LoadOptions


class EngineApi(Protocol):
    bus: EventBus

    def load(
        self,
        path: str | os.PathLike[str],
        options: LoadOptions | None = None,
        *,
        model: str | None = None,
    ) -> str: ...

    def cancel(self, model: str) -> bool: ...

    def unload(self, model: str) -> bool: ...

    def generate(self, model: str, prompt: str, max_tokens: int = 64) -> Iterator[str]: ...

    def stop_generation(self, model: str) -> None: ...

    def state(self, model: str) -> ProgressEvent | None: ...

    def host_pid(self, model: str) -> int | None: ...

    def wait(self, model: str, timeout: float | None = None) -> ProgressEvent | None: ...

    def shutdown(self, timeout: float = 10.0) -> None: ...
