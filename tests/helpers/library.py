"""A small model library for window, page and server tests: loadable, big, and broken."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BROKEN_GGUF = b"GGUF\x03\x00\x00\x00" + b"\xff" * 16  # absurd counts: a named error


def make_library(folder: Path, tiny_model: Path, big_model: Path) -> Path:
    """tiny.gguf (a copy), big.gguf (a link to the 300 MB model) and broken.gguf."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny_model, folder / "tiny.gguf")
    os.symlink(big_model, folder / "big.gguf")
    (folder / "broken.gguf").write_bytes(BROKEN_GGUF)
    return folder
