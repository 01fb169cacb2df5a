"""The catalog's metadata cache: what each model file's header says, kept between runs.

A second listing of an unchanged folder opens no model file: `scan` asks the cache first and
stores what it had to read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import platformdirs

from llm_desktop.core.model_locations import APP_NAME
from llm_desktop.core.model_names import path_key

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "catalog-v1.json"
CACHE_FORMAT_VERSION = 1

# What the header says about a model, the part of an entry the cache keeps. Types are checked
# when a cache file is read, since that file is outside this program's control.
HEADER_STR_FIELDS = ("architecture", "quantization")
HEADER_OPTIONAL_STR_FIELDS = ("name", "size_label", "error")
HEADER_INT_FIELDS = (
    "parameter_count",
    "context_length",
    "block_count",
    "embedding_length",
    "head_count",
    "head_count_kv",
    "key_length",
    "value_length",
    "vocab_size",
    "pooling_type",
    "chat_template_size",
)
HEADER_FIELDS = HEADER_STR_FIELDS + HEADER_OPTIONAL_STR_FIELDS + HEADER_INT_FIELDS


def default_cache_path() -> Path:
    return platformdirs.user_cache_path(APP_NAME) / CACHE_FILE_NAME


class MetadataCache:
    """Header metadata by real path, kept in a JSON file between runs.

    A hit needs the file's size and mtime (in ns) to match what was stored, so a replaced or
    re-downloaded file is read again. Read errors of the file's content are cached too (a corrupt
    file stays corrupt until it changes); OS errors are not, since permissions change without
    touching mtime. An unreadable or malformed cache file is ignored and rewritten on save.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self._entries: dict[str, dict[str, Any]] | None = None
        self._used: set[str] = set()
        self._dirty = False
        self._lock = threading.Lock()

    def get(self, real_path: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
        """The stored header fields for this file, or None when absent or stale."""
        key = path_key(real_path)
        with self._lock:
            record = self._loaded().get(key)
            self._used.add(key)
        if not isinstance(record, dict):
            return None
        if record.get("size") != size or record.get("mtime_ns") != mtime_ns:
            return None
        header = record.get("header")
        if not _is_valid_header(header):
            return None
        return {key: header.get(key) for key in HEADER_FIELDS}

    def put(self, real_path: str, size: int, mtime_ns: int, header: dict[str, Any]) -> None:
        key = path_key(real_path)
        with self._lock:
            self._loaded()[key] = {"size": size, "mtime_ns": mtime_ns, "header": dict(header)}
            self._used.add(key)
            self._dirty = True

    def save(self) -> None:
        """Write the cache if anything changed: to a temporary file, then renamed over the old
        one, so a crash mid-write never leaves a half-written cache."""
        with self._lock:
            entries = self._loaded()
            if not self._dirty:
                return
            # Forget files that are gone; ones merely outside this scan's folders are kept.
            for key in [k for k in entries if k not in self._used and not os.path.exists(k)]:
                del entries[key]
            payload = json.dumps(
                {"version": CACHE_FORMAT_VERSION, "entries": entries}, separators=(",", ":")
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_path = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as temp_file:
                    temp_file.write(payload)
                os.replace(temp_path, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp_path)
                raise
            self._dirty = False

    def _loaded(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read_file()
        return self._entries

    def _read_file(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("Ignoring unreadable model cache %s: %s", self.path, exc)
            self._dirty = True
            return {}
        is_current = isinstance(data, dict) and data.get("version") == CACHE_FORMAT_VERSION
        entries = data.get("entries") if is_current else None
        if not isinstance(entries, dict):
            log.info(
                "Ignoring model cache %s: not a version %d cache", self.path, CACHE_FORMAT_VERSION
            )
            self._dirty = True
            return {}
        return entries


def _is_valid_header(header: Any) -> bool:
    # Every field present: a record missing one would show None until the file changed.
    if not isinstance(header, dict) or not all(key in header for key in HEADER_FIELDS):
        return False
    for key in HEADER_STR_FIELDS:
        if not isinstance(header.get(key), str):
            return False
    for key in HEADER_OPTIONAL_STR_FIELDS:
        if not isinstance(header.get(key), str | None):
            return False
    for key in HEADER_INT_FIELDS:
        value = header.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return False
    return True
