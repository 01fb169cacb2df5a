"""What llama.cpp's quantizer says, read as progress: one log line per tensor.

`llama_model_quantize` has no progress callback. It logs one line per tensor, in fragments (the
first before the tensor is converted, the rest after), at INFO level:

    [   4/  39] blk.0.attn_k.weight                  - [   256,    128,      1,      1], type =
        f32, converting to q8_0 .. size =     0.12 MiB ->     0.03 MiB
    [   5/  39] blk.0.attn_norm.weight               - [   256,      1,      1,      1], type =
        f32, size =    0.001 MiB

(each one line in the log, cut here at "type =").
This is llama-cpp-python 0.3.36. The head of the line, up to "type = f32, ", arrives when the tensor
starts; the newline, when it has been converted (it is written next). Both the model host and
the app read these lines through this module, and the name of the file being written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from llm_desktop.core.events import ErrorInfo, ErrorKind, ModelError
from llm_desktop.core.ggml_types import FILE_TYPE_NAMES
from llm_desktop.core.gguf_header import tensor_nbytes

PARTIAL_SUFFIX = ".part"

# The file types `quantize` offers, largest first, each with the ggml type most of its tensors
# get (where an estimate of the output's size starts). The names are llama.cpp's
# (`FILE_TYPE_NAMES` without "MOSTLY_").
QUANTIZE_TYPES: dict[str, int] = {
    "F16": 1,
    "BF16": 30,
    "Q8_0": 8,
    "Q6_K": 14,
    "Q5_K_M": 13,
    "Q5_K_S": 13,
    "Q5_0": 6,
    "Q4_K_M": 12,
    "Q4_K_S": 12,
    "Q4_0": 2,
    "Q3_K_L": 11,
    "Q3_K_M": 11,
    "Q3_K_S": 11,
    "Q2_K": 10,
}

_TENSOR_LINE = re.compile(
    r"^\[\s*(?P<i>\d+)/\s*(?P<n>\d+)\]\s+(?P<name>\S+)\s+-\s+\[(?P<shape>[\d,\s]+)\],"
    r"\s+type\s+=\s+(?P<type>\w+),"
)
_CONVERTING = re.compile(r"converting to (?P<type>\w+)")
_SIZES = re.compile(r"size\s+=\s+(?P<src>[\d.]+) MiB(?:\s+->\s+(?P<dst>[\d.]+) MiB)?")
_FAILED = re.compile(r"failed to quantize: (?P<reason>.+)")

# ggml_type_name() -> ggml type id, for the types a source tensor can have.
GGML_TYPE_IDS: dict[str, int] = {
    "f32": 0,
    "f16": 1,
    "q4_0": 2,
    "q4_1": 3,
    "q5_0": 6,
    "q5_1": 7,
    "q8_0": 8,
    "q8_1": 9,
    "q2_k": 10,
    "q3_k": 11,
    "q4_k": 12,
    "q5_k": 13,
    "q6_k": 14,
    "q8_k": 15,
    "bf16": 30,
}
# A write that fails with less than this free beside the output failed for want of space:
# llama.cpp only says "basic_ios::clear: iostream error".
DISK_FULL_SLACK = 16 << 20


def quantize_file_type(name: str) -> int | None:
    """llama.cpp's `llama_ftype` for a name `QUANTIZE_TYPES` offers (any case), else None."""
    if name.upper() not in QUANTIZE_TYPES:
        return None
    wanted = f"MOSTLY_{name.upper()}"
    return next((value for value, known in FILE_TYPE_NAMES.items() if known == wanted), None)


def partial_path(out: str) -> str:
    """Where the file is written until it is whole; the catalog lists only `*.gguf`."""
    return out + PARTIAL_SUFFIX


@dataclass(frozen=True)
class TensorLine:
    """One tensor of a quantization: `index` of `count` (from 1), and what was done to it."""

    index: int
    count: int
    name: str
    shape: tuple[int, ...]
    source_type: str  # ggml's name: "f32", "f16", "bf16"
    target_type: str | None  # None: copied as it is (norms and other 1-D tensors)
    complete: bool  # the line's end arrived: the tensor is converted

    @property
    def source_bytes(self) -> int | None:
        """The tensor's bytes in the source file; None for a type this table does not know."""
        ggml_type = GGML_TYPE_IDS.get(self.source_type.lower())
        if ggml_type is None:
            return None
        try:
            return tensor_nbytes(ggml_type, self.shape)
        except ModelError:
            return None


def parse_tensor_line(text: str, *, complete: bool = True) -> TensorLine | None:
    """A tensor line (or the head of one, `complete=False`), else None. Never raises."""
    match = _TENSOR_LINE.match(text.strip())
    if match is None:
        return None
    shape = tuple(int(dim) for dim in match["shape"].replace(",", " ").split())
    # ggml pads every shape to 4 dimensions with 1s; the header has only the real ones.
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    rest = text[match.end() :]
    converting = _CONVERTING.search(rest)
    complete = complete and _SIZES.search(rest) is not None
    return TensorLine(
        index=int(match["i"]),
        count=int(match["n"]),
        name=match["name"],
        shape=shape,
        source_type=match["type"],
        target_type=converting["type"] if converting else None,
        complete=complete,
    )


def classify_quantize_failure(
    log_lines: Iterable[str], *, out: str, free_bytes: int | None, writable: bool
) -> ErrorInfo:
    """Name a failed `llama_model_quantize` from its log and the state of the output's folder
    (read before the partial file is removed)."""
    lines = [line.strip() for line in log_lines if line.strip()]
    detail = tuple(lines[-12:])
    reasons = [match["reason"].strip() for line in lines if (match := _FAILED.search(line))]
    reason = reasons[-1] if reasons else (lines[-1] if lines else "no reason given")
    if "requantizing" in reason:
        return ErrorInfo(
            ErrorKind.UNSUPPORTED_MODEL,
            "The model is already quantized: llama.cpp quantizes from F32, F16 or BF16 weights "
            f"({reason})",
            detail,
        )
    if "failed to load model" in reason or "failed to open GGUF" in reason:
        return ErrorInfo(
            ErrorKind.INVALID_MODEL, f"llama.cpp could not read the model: {reason}", detail
        )
    if "iostream" in reason or "write" in reason.lower():
        if free_bytes is not None and free_bytes < DISK_FULL_SLACK:
            return ErrorInfo(
                ErrorKind.DISK_FULL,
                f"Not enough disk space: the disk filled up while writing {out}",
                detail,
            )
        if not writable:
            return ErrorInfo(
                ErrorKind.PERMISSION_DENIED, f"Permission denied writing {out}", detail
            )
    return ErrorInfo(
        ErrorKind.INVALID_MODEL, f"llama.cpp could not quantize the model: {reason}", detail
    )
