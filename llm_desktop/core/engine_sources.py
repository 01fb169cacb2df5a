"""The remote engines a person added: names and addresses in the settings, keys in the keyring.

`engines-v1.json` in the user config folder lists each source's name and URL, never its key.
An API key goes to the system keyring (Secret Service, macOS Keychain, Windows Credential
Locker) through the `keyring` package. Where there is none (a bare Linux session, CI), a key
is held for this run only and `KeyStore.persistent` says so, so the window can tell the person
it will be asked again, instead of writing the key to a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from llm_desktop.core.model_locations import APP_NAME
from llm_desktop.core.router_client import RouterAddress

log = logging.getLogger(__name__)

KEYRING_SERVICE = "llm-desktop engines"
THIS_MACHINE = "this machine"
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Names that would read like this machine or like a transfer's key.
RESERVED_NAMES = frozenset({"this-machine", "local", "download", "upload", "quantize"})


class InvalidSource(ValueError):
    """A source that cannot be added, with the reason a person reads."""


@dataclass(frozen=True)
class EngineSource:
    name: str  # "lab-gpu": shown on each card of its models
    url: str  # the router's address, "http://10.0.0.5:8080"

    @classmethod
    def checked(cls, name: str, url: str) -> EngineSource:
        name = name.strip().lower()
        if not SOURCE_NAME.match(name) or name in RESERVED_NAMES:
            raise InvalidSource(
                f"{name!r} cannot name an engine: use up to 32 lower-case letters, digits and "
                "dashes (not 'local' or 'this-machine')"
            )
        try:
            address = RouterAddress.parse(url)
        except ValueError as exc:
            raise InvalidSource(str(exc)) from None
        return cls(name, address.url)


def name_for_url(url: str) -> str:
    """A name for a source added by URL alone (the CLI's `--engine`): its host and port."""
    address = RouterAddress.parse(url)
    text = re.sub(r"[^a-z0-9]+", "-", f"{address.host}-{address.port}".lower()).strip("-")
    return text[:32].rstrip("-") or "router"


SYSTEM_KEYRING = object()  # KeyStore's default backend: whatever the system offers


class KeyStore:
    """API keys by source name: the system keyring where one works, else this run's memory."""

    def __init__(self, backend: object = SYSTEM_KEYRING) -> None:
        """`backend`: a keyring backend, None for this run's memory only, or (the default)
        the system's keyring where one works."""
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self._keyring: Any = _system_keyring() if backend is SYSTEM_KEYRING else backend

    @property
    def persistent(self) -> bool:
        return self._keyring is not None

    def get(self, name: str) -> str | None:
        with self._lock:
            if name in self._memory:
                return self._memory[name]
        if self._keyring is None:
            return None
        try:
            return self._keyring.get_password(KEYRING_SERVICE, name)
        except Exception as exc:  # a locked or broken keyring: the key is asked for again
            log.warning("could not read the key of %s from the keyring: %s", name, exc)
            return None

    def set(self, name: str, key: str | None) -> bool:
        """Keep `key` (None: forget it); True when it is in the system keyring."""
        with self._lock:
            if key:
                self._memory[name] = key
            else:
                self._memory.pop(name, None)
        if self._keyring is None:
            return False
        try:
            if key:
                self._keyring.set_password(KEYRING_SERVICE, name, key)
            else:
                # Nothing stored under that name is no failure.
                with contextlib.suppress(Exception):
                    self._keyring.delete_password(KEYRING_SERVICE, name)
            return True
        except Exception as exc:
            log.warning("could not store the key of %s in the keyring: %s", name, exc)
            return False


def _system_keyring():
    """The keyring backend, or None where only keyring's fail backend is left."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring) or backend.priority <= 0:
        return None
    return backend


class SourceRegistry:
    """The sources a person added, kept in `path` (names and URLs only)."""

    def __init__(self, path: Path | None = None, keys: KeyStore | None = None) -> None:
        self.path = path
        self.keys = keys or KeyStore()
        self._lock = threading.Lock()
        self._sources: dict[str, EngineSource] = self._read()

    @classmethod
    def default(cls) -> SourceRegistry:
        return cls(platformdirs.user_config_path(APP_NAME) / "engines-v1.json")

    def sources(self) -> list[EngineSource]:
        with self._lock:
            return list(self._sources.values())

    def add(self, source: EngineSource, api_key: str | None = None) -> bool:
        """Add or change a source; True when its key (if any) is kept past this run."""
        with self._lock:
            self._sources[source.name] = source
            self._write()
        kept = self.keys.set(source.name, api_key)
        return kept or not api_key

    def remove(self, name: str) -> bool:
        with self._lock:
            removed = self._sources.pop(name, None) is not None
            if removed:
                self._write()
        self.keys.set(name, None)
        return removed

    def _read(self) -> dict[str, EngineSource]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
            sources = [EngineSource.checked(item["name"], item["url"]) for item in data["engines"]]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return {}
        return {source.name: source for source in sources}

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        engines = [asdict(source) for source in self._sources.values()]
        temporary.write_text(json.dumps({"engines": engines}, indent=1))
        os.replace(temporary, self.path)
