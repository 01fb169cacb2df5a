"""Run the server: on a background thread inside the app, or in the foreground for `serve`."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn

from llm_desktop.core.engine import Engine
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.serving import ModelServing
from llm_desktop.core.transfers import Transfers
from llm_desktop.server.app import LlmServer, ServerConfig, create_app

log = logging.getLogger(__name__)


class ServerThread:
    """The server on its own thread and event loop, bound before `start()` returns."""

    def __init__(
        self,
        engine: Engine | EngineSet,
        library: ModelLibrary,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: ServerConfig | None = None,
        transfers: Transfers | None = None,
        serving: ModelServing | None = None,
    ):
        self.config = config or ServerConfig(hosts=(host,))
        if host not in self.config.hosts:
            self.config.hosts = (*self.config.hosts, host)
        self.host = host
        self.app, self.server_state = create_app(engine, library, self.config, transfers, serving)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            # Listening now means a client may connect before uvicorn runs: it waits in the
            # backlog.
            self.socket.listen(128)
        except OSError:
            # A port in use: what the app made (its sources' watch thread, its transfers)
            # ends here, since nobody will stop a server that never started.
            self.socket.close()
            self.server_state.close()
            raise
        self.port = self.socket.getsockname()[1]
        self.config.port_ref[0] = self.port
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> LlmServer:
        return self.server_state

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The OpenAI-compatible API's base URL (what `openai.OpenAI(base_url=…)` takes)."""
        return f"{self.base_url}/v1"

    @property
    def page_url(self) -> str:
        """The management page with its token: the first visit trades it for a strict
        same-site cookie and redirects to the bare address."""
        return f"{self.base_url}/?token={self.config.token}"

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def start(self, timeout: float = 10.0, *, wait: bool = True) -> ServerThread:
        self._thread = threading.Thread(target=self._run_logged, name="llm-server", daemon=True)
        self._thread.start()
        if not wait:
            return self
        waited = threading.Event()
        for _ in range(int(timeout * 100)):
            if self._server.started:
                return self
            waited.wait(0.01)
        raise RuntimeError("the local server did not start")

    def run(self) -> None:
        """Serve until `stop()`; blocks. Raises if the server ends on its own, so the thread
        that runs it (its own, or the app's job) reports the failure instead of going quiet."""
        try:
            self._server.run(sockets=[self.socket])
        except SystemExit as exc:  # uvicorn exits on a failed start-up
            raise RuntimeError(f"the local server could not start (exit {exc.code})") from None
        if not self.server_state.closing.is_set():
            raise RuntimeError("the local server stopped unexpectedly")

    def _run_logged(self) -> None:
        try:
            self.run()
        except RuntimeError:
            log.exception("the local server failed")

    def request_stop(self) -> None:
        """Ask the server to end (thread-safe); open streams end within a quarter second."""
        self.server_state.stop_streams()
        self._server.should_exit = True

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        self.server_state.close()
        self.socket.close()
