"""Fixtures shared by the whole suite: generated models, engines, and leak checks."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from llm_desktop.core.demo import DemoSpec, spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if hasattr(os, "geteuid") and os.geteuid() == 0:
    os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")  # Chromium refuses root otherwise
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu")
# QtWebEngine must be imported before the QApplication exists (pytest-qt makes it later).
import PySide6.QtWebEngineWidgets  # noqa: F401


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model(model_dir: Path) -> Path:
    """About 0.5 MB: loads in milliseconds."""
    return write_demo_model(model_dir / "tiny.gguf", DemoSpec())


@pytest.fixture(scope="session")
def medium_model(model_dir: Path) -> Path:
    """About 40 MB over a few hundred tensors: enough progress callbacks to watch."""
    return write_demo_model(model_dir / "medium.gguf", spec_for_size(40, seed=1))


@pytest.fixture(scope="session")
def big_model(model_dir: Path) -> Path:
    """About 300 MB: with mmap off, a load long enough to cancel mid-way."""
    return write_demo_model(model_dir / "big.gguf", spec_for_size(300, seed=2))


# How long a thread or a child process that is ending may take before it counts as left behind.
SETTLE_S = 5.0
MODEL_HOST = "llm_desktop.core.host"


@dataclass(frozen=True)
class Allowance:
    """Threads (by name prefix) and model hosts a test may leave to a fixture that outlives it."""

    threads: tuple[str, ...] = ()
    model_hosts: bool = False


# Module-scoped fixtures whose engine or server outlives each test on purpose.
# `no_leaks_in_module` still fails the module if anything outlives the fixture itself.
LONG_LIVED: dict[str, Allowance] = {
    # tests/server: one server and engine for the module. A load hands the engine's warm model
    # host to the model and the pool starts the next warm host (with its two reader threads,
    # "host-<pid>-out" and "-err"); the server's event loop keeps idle "AnyIO worker thread"s.
    "served": Allowance(threads=("host-", "AnyIO worker thread"), model_hosts=True),
}


def child_pids() -> set[int]:
    """Our running children: Qt WebEngine's own helper processes live as long as the
    QApplication, and a zombie has ended (its owner reaps it when it next looks)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() != "QtWebEngineProcess" and child.status() != psutil.STATUS_ZOMBIE:
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def live_threads() -> set[threading.Thread]:
    """Python's threads that are running now. A thread Python did not start (a QThread that ran
    Python code) keeps its record in `threading` forever: it counts only while the OS still
    lists its native id."""
    native = {thread.id for thread in psutil.Process().threads()}
    live = set()
    for thread in threading.enumerate():
        if isinstance(thread, threading._DummyThread):
            if thread.native_id in native:
                live.add(thread)
        elif thread.is_alive():
            live.add(thread)
    return live


class LeakCheck:
    """What ran before; after, what still runs that did not, once the ending ones have ended."""

    def __init__(self, allowed_threads: tuple[str, ...] = (), allow_model_hosts: bool = False):
        self.allowed_threads = allowed_threads
        self.allow_model_hosts = allow_model_hosts
        self.children = child_pids()
        self.threads = live_threads()

    def _children_left(self) -> set[int]:
        left = child_pids() - self.children
        if self.allow_model_hosts:
            left = {pid for pid in left if MODEL_HOST not in _cmdline(pid)}
        return left

    def _threads_left(self) -> set[threading.Thread]:
        left = live_threads() - self.threads
        return {t for t in left if not t.name.startswith(self.allowed_threads)}

    def assert_nothing_left(self, what: str) -> None:
        deadline = time.monotonic() + SETTLE_S
        while (self._children_left() or self._threads_left()) and time.monotonic() < deadline:
            time.sleep(0.05)
        children, threads = self._children_left(), self._threads_left()
        leaked = [f"{pid}: {' '.join(_cmdline(pid))}" for pid in sorted(children)]
        for pid in children:  # so that one leak does not fail every test after it
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        assert not leaked, f"{what} left child processes running: {leaked}"
        assert not threads, f"{what} left threads running: {sorted(t.name for t in threads)}"


@pytest.fixture(scope="session", autouse=True)
def private_user_data(tmp_path_factory):
    """The app's user data (the restart list of downloads, the removed-models list, the default
    models folder, the remote engines) in a folder of this test run, never the user's: a real
    unfinished download must not resume in a test, nor a test's be left for the user's next
    start. Set before any window of any scope exists; a test that needs its own sets
    XDG_DATA_HOME again."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("user-data")))
        # The remote engines a person added (engines-v1.json) live in the config folder.
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("user-config")))
        yield


@pytest.fixture(autouse=True)
def no_leaked_processes(request):
    """Fails a test that leaves a thread or a child process (a model host) running; kills the
    processes it left. Threads and processes that ran before the test are not its."""
    allowances = [LONG_LIVED[name] for name in request.fixturenames if name in LONG_LIVED]
    check = LeakCheck(
        tuple(prefix for allowance in allowances for prefix in allowance.threads),
        allow_model_hosts=any(allowance.model_hosts for allowance in allowances),
    )
    yield
    check.assert_nothing_left("the test")


@pytest.fixture(scope="module", autouse=True)
def no_leaks_in_module():
    """The same check over a whole module: what a `LONG_LIVED` fixture may keep between its
    tests must end with the fixture."""
    check = LeakCheck()
    yield
    check.assert_nothing_left("the module")


@pytest.fixture
def engine(no_leaked_processes):
    with Engine(warm_hosts=1, stall_timeout_s=60.0) as running:
        yield running
