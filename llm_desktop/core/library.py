"""The model library as services see it: catalog entries by id, with fit verdicts.

The server and the CLI refer to models by catalog id, never by a path from a request; this is
the one place that turns an id into a file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from llm_desktop.core import catalog, fit, hardware

log = logging.getLogger(__name__)


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
        hidden_path: Path | None = None,
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
        # "Remove from library": the ids a person removed, kept in `hidden_path` (None: for
        # this run only). The file itself is never deleted.
        self.hidden_path = hidden_path
        self._hidden: set[str] = self._read_hidden()
        # The models remote engines list (`EngineSet.remote_entries`), as last heard from them:
        # no network call happens during a refresh. They get no fit verdict: we do not know
        # the remote machine's memory, and do not guess it.
        self.remote_entries: Callable[[], list[catalog.ModelEntry]] | None = None

    def refresh(self) -> list[LibraryModel]:
        """Scan the folders again (disk reads: call it off any event loop or GUI thread)."""
        with self._refresh_lock:
            entries = catalog.scan(self.folders, include_known=self.include_known, cache=self.cache)
            snapshot = hardware.snapshot(self.gpu_monitor)
            models = {}
            for entry in entries:
                if entry.id in self._hidden:
                    continue
                verdict = entry_verdict(entry, snapshot, self.n_ctx)
                models[entry.id] = LibraryModel(entry, verdict)
            for entry in self.remote_entries() if self.remote_entries else ():
                models[entry.id] = LibraryModel(entry, None)
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

    def remove(self, model_id: str) -> bool:
        """Hide a model from the library (its file stays); False if it is not listed."""
        with self._lock:
            if self._models.pop(model_id, None) is None:
                return False
            self._hidden.add(model_id)
            hidden = sorted(self._hidden)
        if self.hidden_path is not None:
            self.hidden_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.hidden_path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"hidden": hidden}))
            os.replace(temporary, self.hidden_path)
        return True

    def _read_hidden(self) -> set[str]:
        if self.hidden_path is None:
            return set()
        try:
            data = json.loads(self.hidden_path.read_text())
            return {str(model_id) for model_id in data.get("hidden", [])}
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.hidden_path, exc)
            return set()


def default_hidden_path() -> Path:
    return platformdirs.user_config_path(catalog.APP_NAME) / "removed-models.json"


def entry_verdict(
    entry: catalog.ModelEntry, snapshot: hardware.HardwareSnapshot, n_ctx: int | None = None
) -> fit.FitVerdict | None:
    """Where a listed model fits on this machine (None for one that cannot be loaded): the one
    rule for local files and for remote ones read before downloading."""
    if entry.error is not None:
        return None
    return fit.assess(
        fit.ModelShape.from_entry(entry),
        n_ctx or fit.default_context(entry.context_length),
        snapshot.ram,
        snapshot.gpus,
        llama_build=snapshot.llama_build,
    )
