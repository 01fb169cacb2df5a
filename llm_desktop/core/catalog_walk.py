"""Walking folders for model files: each file that may be (part of) a model, as a `Found`.

The walk follows symlinks but enters each real directory once (which also stops symlink loops),
skips hidden entries and anything it cannot read, and lists the models of an Ollama store it
passes through (`catalog_ollama`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llm_desktop.core.catalog_ollama import ollama_blobs
from llm_desktop.core.model_locations import (
    SOURCE_FOLDER,
    SOURCE_HUGGINGFACE,
    SOURCE_OLLAMA,
    huggingface_repo,
)
from llm_desktop.core.model_names import path_key


@dataclass
class Found:
    """A file that may be (part of) a model, as the walk reached it."""

    path: str  # as reached: an HF snapshot link, not the blob it points to
    real_path: str
    size: int
    mtime_ns: int
    source: str
    ollama_name: str | None = None


def walk(root: Path, source: str, visited_dirs: set[str]) -> Iterator[Found]:
    """Model files under `root`, depth first in name order, each directory once however many
    symlinks lead to it (which is also what stops symlink loops)."""
    root_path = os.path.abspath(root)  # entries outlive the working directory
    try:
        if os.path.isfile(root_path):  # a file named explicitly is taken whatever its name
            stat = os.stat(root_path)
            yield Found(
                root_path, os.path.realpath(root_path), stat.st_size, stat.st_mtime_ns, source
            )
            return
    except OSError:
        return
    real_root = os.path.realpath(root_path)
    if path_key(real_root) in visited_dirs or not os.path.isdir(real_root):
        return
    visited_dirs.add(path_key(real_root))

    stack = [(root_path, real_root)]
    while stack:
        dir_path, real_dir = stack.pop()
        try:
            with os.scandir(dir_path) as listing:
                children = sorted(listing, key=lambda child: child.name)
        except OSError:
            continue
        names = {child.name for child in children}
        if "manifests" in names and "blobs" in names:
            yield from _ollama_models(dir_path, visited_dirs)
        subdirs: list[tuple[str, str]] = []
        for child in children:
            # Hidden entries are other tools' bookkeeping (the hub's .no_exist markers, macOS
            # "._" resource forks on external drives), never models to list.
            if child.name.startswith("."):
                continue
            try:
                is_symlink = child.is_symlink()
                if child.name.lower().endswith(".gguf") and child.is_file():
                    stat = child.stat()
                    real_path = (
                        os.path.realpath(child.path)
                        if is_symlink
                        else os.path.join(real_dir, child.name)
                    )
                    file_source = _source_for(child.path, source)
                    yield Found(child.path, real_path, stat.st_size, stat.st_mtime_ns, file_source)
                elif child.is_dir():
                    real_path = (
                        os.path.realpath(child.path)
                        if is_symlink
                        else os.path.join(real_dir, child.name)
                    )
                    if path_key(real_path) not in visited_dirs:
                        visited_dirs.add(path_key(real_path))
                        subdirs.append((child.path, real_path))
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def _source_for(path: str, root_source: str) -> str:
    if root_source == SOURCE_FOLDER and huggingface_repo(path) is not None:
        return SOURCE_HUGGINGFACE
    return root_source


def _ollama_models(root: str, visited_dirs: set[str]) -> Iterator[Found]:
    """The model blob of every readable manifest under `root`/manifests."""
    for name, blob in ollama_blobs(root, visited_dirs):
        try:
            stat = os.stat(blob)
        except OSError:  # not pulled yet, or pulled partly: Ollama cannot run it either
            continue
        yield Found(
            blob, os.path.realpath(blob), stat.st_size, stat.st_mtime_ns, SOURCE_OLLAMA, name
        )
