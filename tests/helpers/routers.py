"""Real llama.cpp routers on loopback ports, each with its own folder of generated models: the
"other machines" of the remote-engine tests, the bench and the screenshots."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from llm_desktop.core.router_binary import RouterNotInstalled, router_binary, router_command


def router_available() -> bool:
    try:
        router_binary()
    except RouterNotInstalled:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_corrupt_model(path: Path) -> Path:
    """A file named .gguf that llama.cpp refuses: its model process exits with code 1."""
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 200)
    return path


class RouterProcess:
    """`llama-server` in router mode; `kill()` and `start()` again on the same port."""

    def __init__(
        self,
        models_dir: Path,
        *,
        port: int | None = None,
        api_key: str | None = None,
        models_max: int | None = None,
        sleep_idle_s: int | None = None,
        preset: Path | None = None,
        log_path: Path | None = None,
    ):
        self.models_dir = models_dir
        self.port = port or free_port()
        self.api_key = api_key
        self.command = router_command(
            models_dir,
            port=self.port,
            api_key=api_key,
            models_max=models_max,
            sleep_idle_s=sleep_idle_s,
            preset=preset,
        )
        self.log_path = log_path or models_dir.parent / f"router-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> RouterProcess:
        log = self.log_path.open("ab")
        # Its own process group: killing the router takes its model processes with it, as a
        # machine that goes away would.
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the router exited: see {self.log_path}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                if self.get("/health").get("status") == "ok":
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"the router did not start in {timeout} s: see {self.log_path}")

    def get(self, path: str) -> dict:
        request = urllib.request.Request(self.url + path)
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def status(self, router_id: str) -> str:
        for model in self.get("/models")["data"]:
            if model["id"] == router_id:
                return model["status"]["value"]
        raise KeyError(router_id)

    def kill(self) -> None:
        """SIGKILL the router and its model processes (a machine that went away)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            import os
            import signal

            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self.kill()  # any model process left in its group
