"""Where models are kept: the app's own models folder and the folders other tools use.

LM Studio keeps models under its models folder, the Hugging Face hub in its cache (resolved in
the order huggingface_hub itself uses), Ollama in a store of manifests and blobs. Each place is
a source, and a model's source is shown with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "llm-desktop"
MODELS_DIR_ENV = "LLM_DESKTOP_MODELS_DIR"

SOURCE_FOLDER = "folder"
SOURCE_LMSTUDIO = "lmstudio"
SOURCE_HUGGINGFACE = "huggingface"
SOURCE_OLLAMA = "ollama"


def default_models_dir() -> Path:
    """The app's own models folder; `LLM_DESKTOP_MODELS_DIR` overrides it."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path(APP_NAME) / "models"


def known_locations() -> list[tuple[str, Path]]:
    """(source, folder) for each folder other tools keep models in that exists here."""
    home = Path.home()
    locations = [
        (SOURCE_LMSTUDIO, home / ".lmstudio" / "models"),
        (SOURCE_LMSTUDIO, home / ".cache" / "lm-studio" / "models"),
        (SOURCE_HUGGINGFACE, hub_cache_dir()),
        (SOURCE_OLLAMA, _env_path("OLLAMA_MODELS") or home / ".ollama" / "models"),
    ]
    return [(source, folder) for source, folder in locations if _is_dir(folder)]


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps its downloads, read from the environment as it is now.

    huggingface_hub resolves this once, when it is imported (`constants.HF_HUB_CACHE`); the app
    reads it at each scan so a changed environment counts. The rules are huggingface_hub's,
    and `tests/core/test_model_locations.py` checks they agree with its constants for every
    variable it reads, in fresh processes."""
    explicit = _env_path("HF_HUB_CACHE") or _env_path("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return explicit
    hf_home = _env_path("HF_HOME")
    if hf_home:
        return hf_home / "hub"
    cache_home = _env_path("XDG_CACHE_HOME") or Path.home() / ".cache"
    return cache_home / "huggingface" / "hub"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def huggingface_repo(path: str) -> str | None:
    """The hub's "org/name" for a file in a snapshot (models--org--name/snapshots/<rev>/...)."""
    parts = Path(path).parts
    for index in range(len(parts) - 3, -1, -1):
        if parts[index].startswith("models--") and parts[index + 1] == "snapshots":
            return parts[index].removeprefix("models--").replace("--", "/", 1)
    return None
