"""What a GGUF model's file names mean: the parts of a split model, and a model's id.

llama.cpp names the parts of a split model "<stem>-%05d-of-%05d.gguf"; `split_parts` lists them
from the first. `model_id` gives a model a stable id from its file. The catalog, the engine and
the preflight all read file names through this module, so they agree on them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

# llama.cpp names the parts of a split model "<stem>-%05d-of-%05d.gguf".
SPLIT_NAME = re.compile(
    r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})(?P<ext>\.gguf)$", re.IGNORECASE
)
_GGUF_SUFFIX = re.compile(r"\.gguf$", re.IGNORECASE)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
SLUG_MAX_CHARS = 48
ID_HASH_CHARS = 10


def model_id(path: str | os.PathLike[str]) -> str:
    """A stable id for the model whose (first) file is `path`.

    A readable slug of the file name, then the first hex digits of the SHA-1 of the file's real
    path: the same file reached through symlinks gets the same id, two files with the same name
    in different folders do not. The id is not stable across renames or moves, by design: a
    moved file is, to llama.cpp, a different path.
    """
    path = os.fspath(path)
    return model_id_for(path, os.path.realpath(path))


def model_id_for(path: str, real_path: str) -> str:
    """`model_id` of `path` when its real path is known already (the walk resolves it)."""
    digest = hashlib.sha1(path_key(real_path).encode("utf-8", "surrogateescape")).hexdigest()
    # The real file's name keeps the id the same whichever alias is seen first; a hub or Ollama
    # blob is named by its hash, though, so there the name the link gives is the readable one.
    real_name = os.path.basename(real_path)
    name = real_name if _GGUF_SUFFIX.search(real_name) else os.path.basename(path)
    return f"{slug(clean_stem(name))}-{digest[:ID_HASH_CHARS]}"


def slug(text: str) -> str:
    slug = _NOT_SLUG.sub("-", text.lower()).strip("-")
    return slug[:SLUG_MAX_CHARS].rstrip("-") or "model"


def clean_stem(file_name: str) -> str:
    split = SPLIT_NAME.match(file_name)
    stem = split["base"] if split else _GGUF_SUFFIX.sub("", file_name)
    return stem.strip() or file_name


def path_key(real_path: str) -> str:
    # Windows paths differ in case only when they name the same file.
    return os.path.normcase(real_path)


def split_parts(first: Path) -> list[Path]:
    """All files of a `name-00001-of-0000N.gguf` model (just `first` for a single file)."""
    split = SPLIT_NAME.match(first.name)
    if split is None:
        return [first]
    base, count, ext = split["base"], int(split["count"]), split["ext"]
    return [
        first.with_name(f"{base}-{index:05d}-of-{count:05d}{ext}") for index in range(1, count + 1)
    ]


def size_label(parameters: int) -> str:
    """A parameter count as models are named by it: "7B", "270M", "16.7M"."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if parameters >= scale:
            return f"{parameters / scale:.3g}{unit}"
    return str(parameters)
