"""The app's side of a model host: start it, talk to it, notice when it dies, end it."""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import psutil

from llm_desktop.core.events import ErrorInfo
from llm_desktop.core.host import protocol
from llm_desktop.core.host.spawn import spawn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostMessage:
    """A message from the host (`data["t"]` says which)."""

    data: dict[str, Any]


@dataclass(frozen=True)
class HostExited:
    """The host process is gone; a negative returncode is the signal that ended it."""

    returncode: int


class HostProcess:
    """One model host child process.

    Everything the host says arrives in `inbox` as a `HostMessage`, and its end as one
    `HostExited`; the owner may put its own items in the same queue to wake itself up.
    """

    def __init__(
        self,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        *,
        process: subprocess.Popen | None = None,
    ):
        """Start a host, or take over `process`, one `spawn` started earlier."""
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.log_tail: deque[str] = deque(maxlen=40)
        self.stderr_tail: deque[str] = deque(maxlen=80)
        self.process = process or spawn(command, env)
        self.pid = self.process.pid
        self._stdin_lock = threading.Lock()
        self._stderr_done = threading.Event()
        threading.Thread(target=self._read_stderr, name=f"host-{self.pid}-err", daemon=True).start()
        threading.Thread(target=self._read_stdout, name=f"host-{self.pid}-out", daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = protocol.decode(line)
            if message is None:
                continue
            if message.get("t") == "log":
                self.log_tail.append(str(message.get("text", "")))
                log.debug("host %s: %s", self.pid, message.get("text"))
                continue
            self.inbox.put(HostMessage(message))
        returncode = self.process.wait()
        self._stderr_done.wait(timeout=2.0)  # so crash detail includes the dying words
        self.inbox.put(HostExited(returncode))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            for line in self.process.stderr:
                text = line.decode("utf-8", errors="replace").rstrip()
                if text:
                    self.stderr_tail.append(text)
        finally:
            self._stderr_done.set()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: dict[str, Any]) -> bool:
        """Send a command; False when the host can no longer hear (its end is reported)."""
        assert self.process.stdin is not None
        with self._stdin_lock:
            try:
                self.process.stdin.write(protocol.encode(message))
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def rss(self) -> int | None:
        try:
            return psutil.Process(self.pid).memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def stop(self, grace_s: float = 5.0) -> None:
        """Ask the host to exit; kill it when it has not within `grace_s`."""
        if self.alive:
            self.send({"op": "exit"})
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self.reap()

    def reap(self, timeout: float = 5.0) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait(timeout=timeout)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def crash_info(self, returncode: int) -> ErrorInfo:
        """An `engine_crashed` error naming how the host died and its last words."""
        return protocol.summarize_crash(returncode, self.log_tail, self.stderr_tail)


class HostPool:
    """Keeps `size` hosts started ahead of need, so a load does not wait for Python and
    llama_cpp to start (about half a second)."""

    def __init__(self, size: int = 1, command: list[str] | None = None):
        self.size = size
        self.command = command
        self._ready: deque[HostProcess] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._baseline: int | None = None
        self.fill()

    def fill(self) -> None:
        with self._lock:
            while not self._closed and len(self._ready) < self.size:
                self._ready.append(HostProcess(self.command))

    def prestart(self, process: subprocess.Popen | None = None) -> None:
        """Start one host now (or take over `process`) for the next load, without keeping one
        warm after it: a one-shot client like the CLI starts its host before anything else."""
        with self._lock:
            if not self._closed and not self._ready:
                self._ready.append(HostProcess(self.command, process=process))
                return
        if process is not None:  # not wanted after all: end it rather than orphan it
            process.kill()
            process.wait()

    def acquire(self) -> HostProcess:
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            host = None
            while self._ready:
                candidate = self._ready.popleft()
                if candidate.alive:
                    host = candidate
                    break
                candidate.reap()
            if host is None:
                host = HostProcess(self.command)
        self.fill()
        return host

    def release(self, host: HostProcess) -> None:
        """Take back a host that never loaded anything (and is ready), or end it."""
        with self._lock:
            if not self._closed and len(self._ready) < self.size:
                host.inbox.put(HostMessage({"t": "ready", "pid": host.pid}))
                self._ready.appendleft(host)
                return
        host.stop(grace_s=2.0)

    def baseline_rss(self) -> int | None:
        """The memory of a host that has loaded nothing (Python and llama.cpp themselves),
        measured on a waiting host; the last measure when none waits."""
        with self._lock:
            hosts = list(self._ready)
        for host in hosts:
            rss = host.rss()
            if rss:
                self._baseline = rss
                break
        return self._baseline

    def close(self) -> None:
        with self._lock:
            self._closed = True
            hosts, self._ready = list(self._ready), deque()
        for host in hosts:
            host.stop(grace_s=2.0)
