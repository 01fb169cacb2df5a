"""What the app and a model host say to each other, and how a failed load is named.

Both directions are JSON objects, one per line. The app writes commands (`op`) to the host's
stdin; the host writes messages (`t`) to a private copy of its stdout (stdout itself is pointed at
stderr, so nothing native can corrupt the stream).

Commands: load {path, n_ctx, n_gpu_layers, use_mmap, embedding}, cancel,
generate {id, mode: "chat" {messages} | "completion" {prompt}, max_tokens, stop, seed,
temperature, top_p, top_k, min_p, repeat_penalty, presence_penalty, frequency_penalty},
stop {id}, embed {id, input}, quantize {path, out, type, threads?}, exit.
Messages: ready {pid, build}, log {level, text}, progress {f}, stage {stage}, loaded {n_ctx, ...},
cancelled, error {kind, message, detail}, token {id, text}, generated {id, reason:
stop|length|stopped|error, prompt_tokens, completion_tokens, kind?, error?}, embedded {id,
vectors, prompt_tokens | kind, error}, quantize_progress {i, n, tensor, bytes, done},
quantized {out, size}.

A host answers one generate at a time, in the order sent; `stop {id}` ends that reply between
two tokens (a stop for a reply already finished does nothing).

A quantize writes `out.part` (`quantize_log.partial_path`) and renames it to `out` when whole.
`quantize_progress` comes twice per tensor: `done: false` when tensor `i` of `n` starts, `done:
true` once it is converted; `bytes` is its size in the source (None when unknown). `stage
{stage: "finalizing"}` follows the last tensor. The quantizer cannot be interrupted: `cancel`
does nothing to it; the app ends the host instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from llm_desktop.core.events import GPU_OOM_MESSAGE, ErrorInfo, ErrorKind


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


_CRASH_CLUES = re.compile(
    r"GGML_ASSERT|GGML_ABORT|terminate called|what\(\):|Assertion|Segmentation|bad_alloc|error",
    re.IGNORECASE,
)
_SOURCE_PREFIX = re.compile(r"^\S*/vendor/llama\.cpp/")


def summarize_crash(
    returncode: int, log_tail: Iterable[str], stderr_tail: Iterable[str]
) -> ErrorInfo:
    """An `engine_crashed` error naming how the host died and the line that says why."""
    import signal

    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exited with status {returncode}"
    stderr_lines = [line.strip() for line in stderr_tail if line.strip()]
    log_lines = [line.strip() for line in log_tail if line.strip()]
    clues = [line for line in stderr_lines if _CRASH_CLUES.search(line)]
    reason = clues[-1] if clues else (stderr_lines[-1] if stderr_lines else "")
    reason = _SOURCE_PREFIX.sub("", reason)
    message = f"The model engine crashed ({how})"
    if reason:
        message += f": {reason}"
    if "bad_alloc" in reason or "Cannot allocate memory" in reason:
        return ErrorInfo(ErrorKind.OUT_OF_MEMORY, f"Out of memory - {message}", ())
    return ErrorInfo(ErrorKind.ENGINE_CRASHED, message, tuple(log_lines[-10:] + stderr_lines[-10:]))


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
