"""Fixtures shared by the whole suite: generated models, engines, and leak checks."""

from __future__ import annotations

import os
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


def child_pids() -> set[int]:
    """Our children: Qt WebEngine's own helper processes live as long as the QApplication."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() != "QtWebEngineProcess":
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


@pytest.fixture
def no_leaked_processes():
    """Fails a test that leaves a child process (a model host) running."""
    before = child_pids()
    yield
    leaked = []
    for pid in child_pids() - before:
        try:
            process = psutil.Process(pid)
            process.wait(timeout=5)
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            leaked.append(" ".join(process.cmdline()))
            process.kill()
    assert not leaked, f"child processes left running: {leaked}"


@pytest.fixture
def engine(no_leaked_processes):
    with Engine(warm_hosts=1, stall_timeout_s=60.0) as running:
        yield running
