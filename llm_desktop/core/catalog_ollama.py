"""Models in an Ollama store: the model blob each manifest names, under the name Ollama shows.

An Ollama store is a folder with `manifests/<registry>/<namespace>/<model>/<tag>` files (small
JSON documents) and `blobs/sha256-<hex>` files; a model's weights are the blob of the layer
whose media type is `OLLAMA_MODEL_MEDIA_TYPE`, a plain GGUF file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from llm_desktop.core.model_names import path_key

OLLAMA_MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
OLLAMA_LIBRARY_NAMESPACE = "library"
# A manifest is a few hundred bytes; anything far larger is not one, and is not read whole.
OLLAMA_MANIFEST_MAX_BYTES = 1 << 20
# The digest names a file under blobs/, so it must be exactly a digest and never a path.
_OLLAMA_DIGEST = re.compile(r"^sha256[:-](?P<hex>[0-9a-f]{64})$")


def ollama_blobs(root: str, visited_dirs: set[str]) -> list[tuple[str, str]]:
    """(name, blob path) for the model of every readable manifest under `root`/manifests, in
    the order to list them. The blob may not exist (a model not pulled yet, or pulled partly):
    the caller checks."""
    manifests_dir = os.path.join(root, "manifests")
    named_blobs: list[tuple[str, str]] = []
    for manifest_path in _files_under(manifests_dir, visited_dirs):
        digest = _ollama_model_digest(manifest_path)
        if digest is None:
            continue
        relative = Path(os.path.relpath(manifest_path, manifests_dir)).parts
        named_blobs.append((_ollama_name(relative), os.path.join(root, "blobs", digest)))
    # Tags often share a blob and only one name is listed: prefer an explicit tag to "latest".
    named_blobs.sort(key=lambda item: (item[0].endswith(":latest"), item[0].casefold()))
    return named_blobs


def _files_under(top: str, visited_dirs: set[str]) -> Iterator[str]:
    stack = [top]
    while stack:
        directory = stack.pop()
        real_dir = path_key(os.path.realpath(directory))
        if real_dir in visited_dirs:
            continue
        visited_dirs.add(real_dir)
        try:
            with os.scandir(directory) as listing:
                children = sorted(listing, key=lambda child: child.name)
        except OSError:
            continue
        for child in children:
            if child.name.startswith("."):
                continue
            try:
                if child.is_dir():
                    stack.append(child.path)
                elif child.is_file():
                    yield child.path
            except OSError:
                continue


def _ollama_model_digest(manifest_path: str) -> str | None:
    """The blob file name of the manifest's model layer, or None for anything malformed."""
    try:
        with open(manifest_path, "rb") as handle:
            manifest = json.loads(handle.read(OLLAMA_MANIFEST_MAX_BYTES))
    except (OSError, ValueError):
        return None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        return None
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_MEDIA_TYPE:
            match = _OLLAMA_DIGEST.match(str(layer.get("digest", "")))
            return f"sha256-{match['hex']}" if match else None
    return None


def _ollama_name(relative: tuple[str, ...]) -> str:
    """The name Ollama shows for a manifest at manifests/<registry>/<namespace>/<model>/<tag>."""
    *repository, tag = relative
    # Ollama leaves its own registry, and then its own library namespace, out of names.
    if len(repository) >= 3 and repository[0] == OLLAMA_DEFAULT_REGISTRY:
        repository = repository[1:]
        if len(repository) == 2 and repository[0] == OLLAMA_LIBRARY_NAMESPACE:
            repository = repository[1:]
    return f"{'/'.join(repository)}:{tag}" if repository else tag
