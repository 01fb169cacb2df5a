"""Our reading of where the Hugging Face cache is must be huggingface_hub's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HUB_VARIABLES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")
PROBE = (
    "from huggingface_hub import constants;"
    "from llm_desktop.core.model_locations import hub_cache_dir;"
    "print(constants.HF_HUB_CACHE); print(hub_cache_dir())"
)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"XDG_CACHE_HOME": "{tmp}/xdg"},
        {"HF_HOME": "{tmp}/hf", "XDG_CACHE_HOME": "{tmp}/xdg"},
        {"HUGGINGFACE_HUB_CACHE": "{tmp}/legacy", "HF_HOME": "{tmp}/hf"},
        {"HF_HUB_CACHE": "{tmp}/explicit", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy"},
        {"HF_HOME": "~/elsewhere"},
    ],
)
def test_the_hub_cache_is_where_huggingface_hub_says(tmp_path: Path, settings: dict) -> None:
    env = {k: v for k, v in os.environ.items() if k not in HUB_VARIABLES}
    env["HOME"] = str(tmp_path / "home")
    env.update({k: v.format(tmp=tmp_path) for k, v in settings.items()})
    theirs, ours = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert Path(ours) == Path(theirs)
