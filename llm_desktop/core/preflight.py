"""Checks on a model file before anything reads it, each failure named the way a user reads it.

Runs at the start of every load, in the session's thread: a missing file, a broken symlink, a
symlink loop, a directory, anything else that is not a regular file, an unreadable file or a
missing part of a split model each end the load with its own `ModelError` before llama.cpp sees
the path.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.model_names import split_parts

__all__ = ["preflight"]


def preflight(path: str) -> list[Path]:
    """Check the model file(s) before anything reads them; the parts of a split model."""
    location = Path(path)
    try:
        status = os.stat(location)
    except FileNotFoundError:
        if location.is_symlink():
            raise ModelError(
                ErrorKind.NOT_FOUND, f"Model file not found: {path} is a broken symbolic link"
            ) from None
        raise ModelError(ErrorKind.NOT_FOUND, f"Model file not found: {path}") from None
    except PermissionError:
        raise ModelError(
            ErrorKind.PERMISSION_DENIED, f"Permission denied accessing model file: {path}"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelError(
                ErrorKind.NOT_FOUND, f"Model file not found: {path} is a symbolic link loop"
            ) from None
        raise ModelError(ErrorKind.NOT_FOUND, f"Model file not found: {path} ({exc})") from None
    if stat.S_ISDIR(status.st_mode):
        raise ModelError(
            ErrorKind.INVALID_MODEL, f"Not a valid GGUF model: {path} is a directory, not a file"
        )
    if not stat.S_ISREG(status.st_mode):
        raise ModelError(
            ErrorKind.INVALID_MODEL, f"Not a valid GGUF model: {path} is not a regular file"
        )
    parts = split_parts(location)
    for part in parts:
        try:
            with open(part, "rb") as handle:
                handle.read(1)
        except FileNotFoundError:
            raise ModelError(
                ErrorKind.NOT_FOUND, f"Model file not found: part {part.name} is missing"
            ) from None
        except PermissionError:
            raise ModelError(
                ErrorKind.PERMISSION_DENIED, f"Permission denied accessing model file: {part}"
            ) from None
        except IsADirectoryError:
            raise ModelError(
                ErrorKind.INVALID_MODEL, f"Not a valid GGUF model: {part} is a directory"
            ) from None
    return parts
