"""The model library as services see it: catalog entries by id, with fit verdicts.

The server and the CLI refer to models by catalog id, never by a path from a request; this is
the one place that turns an id into a file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from llm_desktop.core import catalog, fit, hardware


@dataclass(frozen=True)
class LibraryModel:
    entry: catalog.ModelEntry
    verdict: fit.FitVerdict | None

    def to_dict(self) -> dict:
        return {**self.entry.to_dict(), "fit": self.verdict.to_dict() if self.verdict else None}


class ModelLibrary:
    """A thread-safe, refreshable view of the catalog."""

    def __init__(
        self,
        folders: Iterable[Path | str] | None = None,
        *,
        include_known: bool = True,
        cache: catalog.MetadataCache | None = None,
        gpu_monitor: hardware.GpuMonitor | None = None,
        n_ctx: int | None = None,
    ):
        self.folders = [Path(folder) for folder in folders] if folders else None
        self.include_known = include_known
        self.n_ctx = n_ctx  # the context fit verdicts assume; None: each model's default
        self.cache = cache
        self.gpu_monitor = gpu_monitor or hardware.GpuMonitor()
        self._models: dict[str, LibraryModel] = {}
        self._hardware: hardware.HardwareSnapshot | None = None
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    def refresh(self) -> list[LibraryModel]:
        """Scan the folders again (disk reads: call it off any event loop or GUI thread)."""
        with self._refresh_lock:
            entries = catalog.scan(self.folders, include_known=self.include_known, cache=self.cache)
            snapshot = hardware.snapshot(self.gpu_monitor)
            models = {}
            for entry in entries:
                verdict = None
                if entry.error is None:
                    n_ctx = self.n_ctx or fit.default_context(entry.context_length)
                    verdict = fit.assess(
                        fit.ModelShape.from_entry(entry), n_ctx, snapshot.ram, snapshot.gpus
                    )
                models[entry.id] = LibraryModel(entry, verdict)
            with self._lock:
                self._models = models
                self._hardware = snapshot
            return list(models.values())

    def get(self, model_id: str) -> LibraryModel | None:
        with self._lock:
            return self._models.get(model_id)

    def models(self) -> list[LibraryModel]:
        with self._lock:
            return list(self._models.values())

    @property
    def hardware(self) -> hardware.HardwareSnapshot | None:
        with self._lock:
            return self._hardware
