"""Kill the app mid-download, start it again: the download resumes from the bytes on disk (none
fetched twice, measured at the hub), the file's sha256 is right and the library lists it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_desktop.core.demo import spec_for_size, write_demo_model
from tests.helpers.fake_hub import FakeHub, Throttle

pytestmark = pytest.mark.slow
REPO = "acme/Restart-GGUF"
FILE = "Restart-Q8_0.gguf"


def app_env(hub: FakeHub, root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HF_TOKEN", None)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(root / "home"),
        XDG_DATA_HOME=str(root / "data"),
        XDG_CONFIG_HOME=str(root / "config"),
        XDG_CACHE_HOME=str(root / "cache-home"),
        HF_HOME=str(root / "hf-home"),
        HF_ENDPOINT=hub.endpoint,
        HF_HUB_CACHE=str(root / "hub-cache"),
        LLM_DESKTOP_MODELS_DIR=str(root / "models"),
    )
    return env


def app(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.app_driver", *args],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )


def test_a_killed_app_resumes_its_download_on_the_next_start(tmp_path):
    source = write_demo_model(tmp_path / "src" / FILE, spec_for_size(10))
    size = source.stat().st_size
    with FakeHub(tmp_path / "hub") as hub:
        hub.add_repo(REPO, {FILE: source})
        hub.inject(FILE, Throttle(2_000_000, times=1))
        env = app_env(hub, tmp_path)

        first = app(["--download", REPO], env)
        for line in first.stdout:
            event = json.loads(line)
            if event.get("stage") == "downloading" and (event["bytes_done"] or 0) > size // 4:
                first.send_signal(signal.SIGKILL)
                break
        first.wait(30)
        assert first.returncode == -signal.SIGKILL
        (partial,) = (tmp_path / "hub-cache").rglob("*.incomplete")
        kept = partial.stat().st_size
        assert 0 < kept < size
        deadline = time.monotonic() + 30  # the hub records a request once it is done with it
        while not any(r.server == "cdn" for r in hub.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        before = len(hub.requests)

        # No download asked: the app resumes its own (or gives up after 45 s and fails here).
        second = app(["--until-complete", "--give-up-after", "45"], env)
        lines = [json.loads(line) for line in second.stdout]
        assert second.wait(60) == 0
        events = [line for line in lines if "stage" in line]
        assert events, "the restarted app resumed nothing"
        assert events[-1]["stage"] == "complete", events[-1]
        byte_requests = [r.range for r in hub.requests[before:] if r.server == "cdn"]
        assert byte_requests == [f"bytes={kept}-"]  # the rest only, once
        result = Path(events[-1]["result_path"])
        assert hashlib.sha256(result.read_bytes()).hexdigest() == hub.sha256(REPO, FILE)
        libraries = [line["library"] for line in lines if "library" in line]
        assert str(result) in libraries[-1]
