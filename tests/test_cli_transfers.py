"""`llm-desktop pull`, `search` and `quantize` as a person runs them: real processes, a real hub
on loopback, signals from a parent process (FINDINGS: a shell's background job ignores SIGINT)."""

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
from llm_desktop.core.gguf_header import read_gguf
from tests.helpers.fake_hub import FakeHub, Throttle

CLI = [sys.executable, "-m", "llm_desktop"]


@pytest.fixture
def hub(tmp_path):
    with FakeHub(tmp_path / "hub") as hub:
        yield hub


def cli_env(hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HF_TOKEN", None)
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HUB_CACHE=str(tmp_path / "cache"),
        HF_HOME=str(tmp_path / "hf-home"),  # no token stored there
        LLM_DESKTOP_MODELS_DIR=str(tmp_path / "models"),
    )
    return env


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pull_killed_mid_download_resumes_with_a_range_request(hub, tmp_path):
    source = write_demo_model(tmp_path / "src" / "killme.gguf", spec_for_size(8))
    size = source.stat().st_size
    url = hub.add_plain_file("killme.gguf", source)
    hub.inject("killme.gguf", Throttle(2_000_000, times=1))
    dest = tmp_path / "dest"
    command = [*CLI, "pull", url, "--dir", str(dest), "--sha256", sha256(source), "--json"]
    env = cli_env(hub, tmp_path)

    first = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    for line in first.stdout:
        event = json.loads(line)
        assert event["op"] == "download" and event["view"]["key"] == event["model"]
        if event["stage"] == "downloading" and (event["bytes_done"] or 0) > size // 4:
            first.send_signal(signal.SIGKILL)
            break
    first.wait(30)
    assert first.returncode == -signal.SIGKILL
    partial = dest / "killme.gguf.part"
    kept = partial.stat().st_size
    assert 0 < kept < size
    assert not (dest / "killme.gguf").exists()

    # The hub records a request once it has answered it: wait for the killed run's record.
    deadline = time.monotonic() + 30
    while not any(r.method == "GET" for r in hub.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    before = len(hub.requests)
    second = subprocess.run(command, capture_output=True, env=env, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in second.stdout.splitlines()]
    assert events[-1]["stage"] == "complete"
    assert events[-1]["notice"]["kind"] == "success"
    assert [e["stage"] for e in events].count("verifying") >= 1
    gets = [r for r in hub.requests[before:] if r.method == "GET"]
    assert [r.range for r in gets] == [f"bytes={kept}-"]
    final = dest / "killme.gguf"
    assert sha256(final) == sha256(source) and not partial.exists()


def test_pull_from_the_hub_prints_the_new_file_and_the_catalog_lists_it(hub, tmp_path):
    source = write_demo_model(tmp_path / "src" / "Tiny-Q8_0.gguf", spec_for_size(3))
    hub.add_repo("acme/Tiny-GGUF", {"Tiny-Q8_0.gguf": source})
    done = subprocess.run(
        [*CLI, "pull", "acme/Tiny-GGUF:Q8_0"],
        capture_output=True,
        env=cli_env(hub, tmp_path),
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.is_relative_to(tmp_path / "cache") and read_gguf(path).tensor_count > 0
    assert "Downloading" in done.stderr and "Verifying" in done.stderr
    assert "Success: Downloaded acme/Tiny-GGUF · Q8_0" in done.stderr


def test_pull_of_a_missing_repository_is_a_named_failure(hub, tmp_path):
    done = subprocess.run(
        [*CLI, "pull", "acme/Nothing-GGUF", "--json"],
        capture_output=True,
        env=cli_env(hub, tmp_path),
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["stage"] == "failed" and last["error"]["kind"] == "not_found"
    assert last["notice"]["kind"] == "error"


def test_search_lists_repositories_and_a_repository_s_models(hub, tmp_path):
    small = write_demo_model(tmp_path / "src" / "Tiny-Q4_K_M.gguf", spec_for_size(2))
    large = write_demo_model(tmp_path / "src" / "Tiny-Q8_0.gguf", spec_for_size(4))
    hub.add_repo("acme/Tiny-GGUF", {"Tiny-Q4_K_M.gguf": small, "Tiny-Q8_0.gguf": large})
    hub.add_repo("other/Unrelated-GGUF", {"x-Q8_0.gguf": small})
    env = cli_env(hub, tmp_path)
    found = subprocess.run(
        [*CLI, "search", "tiny", "--json"], capture_output=True, env=env, text=True, timeout=60
    )
    assert found.returncode == 0, found.stderr
    assert [hit["repo_id"] for hit in json.loads(found.stdout)] == ["acme/Tiny-GGUF"]

    listed = subprocess.run(
        [*CLI, "search", "--repo", "acme/Tiny-GGUF", "--json"],
        capture_output=True,
        env=env,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [m["quantization"] for m in data["listing"]["models"]] == ["Q4_K_M", "Q8_0"]
    # The fit verdict comes from each remote header, read before any download.
    assert all(row["verdict"] is not None for row in data["fit"]), data["fit"]
    assert list((tmp_path / "cache").rglob("*.gguf")) == []


def test_quantize_prints_per_tensor_progress_and_the_new_file(tmp_path):
    source = write_demo_model(tmp_path / "tiny-F32.gguf", spec_for_size(24))
    done = subprocess.run(
        [*CLI, "quantize", str(source), "q8_0", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    tensors = [e for e in events if e["message"].startswith("Tensor ")]
    assert len(tensors) >= 2 and all(e["op"] == "quantize" for e in events)
    assert [e["pct"] for e in tensors] == sorted(e["pct"] for e in tensors)
    assert events[-1]["stage"] == "complete"
    out = Path(events[-1]["result_path"])
    assert out == tmp_path / "tiny-Q8_0.gguf" and read_gguf(out).quantization == "Q8_0"
