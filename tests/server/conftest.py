"""Fixtures for the server's getting-models tests: a Hugging Face-compatible hub on loopback
with a few small generated models, and a model to upload."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from llm_desktop.core.demo import spec_for_size, write_demo_model
from tests.helpers.fake_hub import FakeHub

REPO = "acme/Tiny-GGUF"
SPLIT_REPO = "acme/Split-GGUF"
GATED_REPO = "acme/Gated-GGUF"


@pytest.fixture(scope="module")
def hub_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hub-files")
    files = {
        "Tiny-Q8_0.gguf": write_demo_model(folder / "Tiny-Q8_0.gguf", spec_for_size(6, seed=3)),
        "Tiny-F16.gguf": write_demo_model(folder / "Tiny-F16.gguf", spec_for_size(12, seed=4)),
    }
    big = spec_for_size(8, seed=5)
    tensors = 3 + 9 * big.layer_count()  # embeddings, output norm, output; 9 per layer
    big = dataclasses.replace(big, split_max_tensors=(tensors + 1) // 2)  # two parts
    write_demo_model(folder / "Split-Q4_K_M.gguf", big)
    for part in sorted(folder.glob("Split-Q4_K_M-*-of-*.gguf")):
        files[part.name] = part
    return files


@pytest.fixture(scope="module")
def upload_model(tmp_path_factory) -> Path:
    """About 24 MB: several 4 MiB batches, so an upload can be cut off half-way."""
    return write_demo_model(tmp_path_factory.mktemp("upload") / "sent.gguf", spec_for_size(24))


@pytest.fixture
def hub(tmp_path, hub_files, monkeypatch):
    with FakeHub(tmp_path / "hub") as hub:
        hub.add_repo(REPO, {k: v for k, v in hub_files.items() if k.startswith("Tiny")})
        hub.add_repo(SPLIT_REPO, {k: v for k, v in hub_files.items() if k.startswith("Split")})
        hub.add_repo(GATED_REPO, {"Gated-Q8_0.gguf": hub_files["Tiny-Q8_0.gguf"]}, gated=True)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
        yield hub
