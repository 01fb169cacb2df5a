"""Fixtures of the window's tests: a models folder with the tiny model, and a fake engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.fake_engine import FakeEngine


@pytest.fixture
def folder(tmp_path: Path, tiny_model: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(tiny_model, folder / "tiny.gguf")
    return folder


@pytest.fixture
def fake():
    engine = FakeEngine()
    yield engine
    engine.shutdown()
