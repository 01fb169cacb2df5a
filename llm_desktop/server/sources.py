"""The server's side of remote engines: whether an engine has any, and a watch that lists the
models again when one connects, drops or changes its list.

`EngineSet.on_change` calls its listeners on the remote engine's own thread (the one reading the
router's event stream). Listing the models again reads this machine's folders, so it is not done
there: `SourceWatch.poke` only wakes the watch's thread, which runs the server's
`sources_changed` once for any number of pokes that came meanwhile. An error there is logged,
never silent, and the next poke tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def follows_remote_engines(engine: Any) -> bool:
    """Whether `engine` is an `EngineSet` (or has its shape): remote engines behind the seam."""
    return callable(getattr(type(engine), "remote_entries", None)) and callable(
        getattr(type(engine), "on_change", None)
    )


class SourceWatch:
    """Runs `changed()` on its own thread after each `poke()` (pokes that come while it runs
    coalesce into one more run)."""

    def __init__(self, changed: Callable[[], None], name: str = "engine-sources"):
        self.changed = changed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Thread-safe; returns at once."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                self.changed()
            except Exception:
                log.exception("could not list the remote engines' models again")

    def close(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
