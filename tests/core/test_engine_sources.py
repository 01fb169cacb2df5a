"""Remote engines a person added: names and URLs kept in settings, keys only in a keyring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend

from llm_desktop.core.engine_sources import (
    EngineSource,
    InvalidSource,
    KeyStore,
    SourceRegistry,
    name_for_url,
)


class MemoryKeyring(KeyringBackend):
    """A system keyring stand-in: this machine has none (keyring falls back to `fail`)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.secrets[(service, username)]


def test_a_key_goes_to_the_keyring_and_never_to_the_settings_file(tmp_path: Path) -> None:
    keyring = MemoryKeyring()
    path = tmp_path / "engines-v1.json"
    registry = SourceRegistry(path, KeyStore(backend=keyring))
    assert registry.add(EngineSource.checked("lab-gpu", "http://10.0.0.5:8080"), "s3cret")
    assert "s3cret" not in path.read_text()
    assert json.loads(path.read_text()) == {
        "engines": [{"name": "lab-gpu", "url": "http://10.0.0.5:8080"}]
    }
    # The next start finds the source, and its key in the keyring.
    again = SourceRegistry(path, KeyStore(backend=keyring))
    assert [source.name for source in again.sources()] == ["lab-gpu"]
    assert again.keys.get("lab-gpu") == "s3cret"
    again.remove("lab-gpu")
    assert keyring.secrets == {} and again.sources() == []


def test_without_a_keyring_a_key_lasts_this_run_only_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "engines-v1.json"
    registry = SourceRegistry(path, KeyStore(backend=None))
    assert not registry.keys.persistent
    kept = registry.add(EngineSource.checked("lab-gpu", "10.0.0.5:8080"), "s3cret")
    assert kept is False and registry.keys.get("lab-gpu") == "s3cret"
    assert "s3cret" not in path.read_text()
    assert SourceRegistry(path, KeyStore(backend=None)).keys.get("lab-gpu") is None
    # A source without a key loses nothing across runs.
    assert registry.add(EngineSource.checked("open-box", "http://10.0.0.6:8080")) is True


@pytest.mark.parametrize(
    ("name", "url", "words"),
    [
        ("Lab GPU", "http://10.0.0.5:8080", "cannot name an engine"),
        ("local", "http://10.0.0.5:8080", "cannot name an engine"),
        ("lab-gpu", "ftp://10.0.0.5", "Not a router address"),
        ("lab-gpu", "http://10.0.0.5:99999", "Not a router address"),
    ],
)
def test_a_source_that_cannot_work_is_refused_with_the_reason(name, url, words) -> None:
    with pytest.raises(InvalidSource, match=words):
        EngineSource.checked(name, url)


def test_an_address_is_cleaned_and_named_for_the_cli() -> None:
    source = EngineSource.checked("Lab-GPU", "10.0.0.5:8080/")
    assert (source.name, source.url) == ("lab-gpu", "http://10.0.0.5:8080")
    assert name_for_url("http://gpu-box.lan:8080") == "gpu-box-lan-8080"
