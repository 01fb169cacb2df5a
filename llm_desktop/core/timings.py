"""How long the stages llama.cpp does not measure took before, so a busy bar can say what to
expect: "usually about 2 s". Learned per model and load settings, on this machine only.

Context creation and the warm-up decode report no fraction; inventing one would be a fake bar.
What is honest is the elapsed time and what the same load took the last few times, labelled as
an estimate. The file is small JSON, rewritten whole (atomically) when a load completes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import tempfile
import threading
from pathlib import Path

import platformdirs

from llm_desktop.core.model_locations import APP_NAME

log = logging.getLogger(__name__)

FILE_NAME = "stage-times-v1.json"
KEPT = 5  # durations kept per stage: the median of the last few follows a changed machine
KEYS_KEPT = 500


class StageTimes:
    """Recent durations per (load key, stage); `path` None keeps them for this run only."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._lock = threading.Lock()
        self._times: dict[str, dict[str, list[float]]] = self._read()

    @classmethod
    def default(cls) -> StageTimes:
        return cls(platformdirs.user_cache_path(APP_NAME) / FILE_NAME)

    @staticmethod
    def key(model: str, n_ctx: int, gpu_layers: int | None, use_mmap: bool) -> str:
        return f"{model}|ctx={n_ctx}|gpu={gpu_layers}|mmap={int(use_mmap)}"

    def expected(self, key: str, stage: str) -> float | None:
        with self._lock:
            seen = self._times.get(key, {}).get(stage)
            return round(statistics.median(seen), 3) if seen else None

    def record(self, key: str, durations: dict[str, float]) -> None:
        with self._lock:
            stages = self._times.pop(key, {})  # re-inserted last: the newest key is kept
            for stage, seconds in durations.items():
                stages[stage] = [*stages.get(stage, []), round(seconds, 3)][-KEPT:]
            self._times[key] = stages
            while len(self._times) > KEYS_KEPT:
                del self._times[next(iter(self._times))]
            snapshot = json.dumps(self._times)
        self._write(snapshot)

    def _read(self) -> dict[str, dict[str, list[float]]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
            return {
                str(key): {
                    str(stage): [float(s) for s in seen][-KEPT:] for stage, seen in v.items()
                }
                for key, v in data.items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return {}

    def _write(self, text: str) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(handle, "w") as out:
                out.write(text)
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("could not save %s: %s", self.path, exc)
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(temporary)
