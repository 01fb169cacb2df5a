"""Fixtures for the Qt tests: every window keeps its restart list of downloads in the test's
own folder, never in the user's data folder (a real unfinished download must not resume in a
test, nor a test's be left for the user's next start)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path, monkeypatch):
    state = tmp_path / "app-state"
    monkeypatch.setattr("llm_desktop.ui.controller.default_state_dir", lambda: state)
    return state
