"""What the app and a model host say to each other, and how a failed load is named.

Both directions are JSON objects, one per line. The app writes commands (`op`) to the host's
stdin; the host writes messages (`t`) to a private copy of its stdout (stdout itself is pointed at
stderr, so nothing native can corrupt the stream).

Commands: load {path, n_ctx, n_gpu_layers, use_mmap}, cancel, generate {prompt, max_tokens},
stop, exit.
Messages: ready {pid}, log {level, text}, progress {f}, stage {stage}, loaded {n_ctx, ...},
cancelled, error {kind, message, detail}, token {text}, generated {reason, n_tokens}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from llm_desktop.events import GPU_OOM_MESSAGE, ErrorInfo, ErrorKind


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")


def decode(line: bytes) -> dict[str, Any] | None:
    """A message, or None for a line that is not one (never raises)."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return message if isinstance(message, dict) else None


# llama.cpp reports its reasons only in its log; `Llama` turns every failure into the same
# ValueError. These patterns, checked in order, name the failure from the log's last lines.
_GPU_OOM = re.compile(
    r"(cudaMalloc failed|CUDA error: out of memory|out of memory.*(cuda|vulkan|metal|gpu)"
    r"|(cuda|vulkan|metal)\w*.*(failed to allocate|allocation failed)"
    r"|ErrorOutOfDeviceMemory)",
    re.IGNORECASE,
)
_RAM_OOM = re.compile(
    r"(insufficient memory|failed to allocate|unable to allocate|bad_alloc"
    r"|Cannot allocate memory|out of memory|failed to mmap|mmap failed)",
    re.IGNORECASE,
)
_UNKNOWN_ARCH = re.compile(r"unknown model architecture: '([^']*)'")
_LOAD_ERROR = re.compile(r"error loading model(?: architecture)?: (.+)")


def classify_failure(log_lines: Iterable[str]) -> ErrorInfo:
    """Name a failed llama.cpp load from its log."""
    lines = [line.strip() for line in log_lines if line.strip()]
    detail = tuple(lines[-12:])
    text = "\n".join(lines)
    if match := _UNKNOWN_ARCH.search(text):
        return ErrorInfo(
            ErrorKind.UNSUPPORTED_MODEL,
            f"Model architecture '{match.group(1)}' is not supported by this llama.cpp",
            detail,
        )
    if _GPU_OOM.search(text):
        return ErrorInfo(ErrorKind.OUT_OF_MEMORY, GPU_OOM_MESSAGE, detail)
    if _RAM_OOM.search(text):
        return ErrorInfo(
            ErrorKind.OUT_OF_MEMORY, "Out of memory - Model too large for available RAM", detail
        )
    reasons = _LOAD_ERROR.findall(text)
    reason = reasons[-1].strip() if reasons else (lines[-1] if lines else "no reason given")
    return ErrorInfo(
        ErrorKind.INVALID_MODEL, f"llama.cpp could not load the model: {reason}", detail
    )
