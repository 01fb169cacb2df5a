"""What the views need of an engine: the protocol the real `Engine` and test fakes both meet."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from llm_desktop.core.bus import EventBus
from llm_desktop.core.events import ProgressEvent, Reason
from llm_desktop.core.generation import Reply, ReplyRequest
from llm_desktop.core.hardware import GpuMonitor
from llm_desktop.core.options import LoadOptions

if TYPE_CHECKING:
    from llm_desktop.core.engine import ModelUsage


class EngineApi(Protocol):
    bus: EventBus
    gpu_monitor: GpuMonitor

    def load(
        self,
        path: str | os.PathLike[str],
        options: LoadOptions | None = None,
        *,
        model: str | None = None,
        reason: Reason | None = None,
    ) -> str: ...

    def cancel(self, model: str) -> bool: ...

    def unload(self, model: str, reason: Reason | None = None) -> bool: ...

    def reply(
        self, model: str, request: ReplyRequest, sink: Callable[[str | None], None]
    ) -> Reply: ...

    def generate(
        self, model: str, request: ReplyRequest | str, max_tokens: int = 64
    ) -> Iterator[str]: ...

    def stop_generation(self, model: str, client: str = "app") -> None: ...

    def usage(self, model: str) -> ModelUsage | None: ...

    def loaded_models(self) -> list[str]: ...

    def host_baseline_bytes(self) -> int: ...

    def state(self, model: str) -> ProgressEvent | None: ...

    def host_pid(self, model: str) -> int | None: ...

    def wait(self, model: str, timeout: float | None = None) -> ProgressEvent | None: ...

    def shutdown(self, timeout: float = 10.0) -> None: ...
