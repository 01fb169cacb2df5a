"""A fast, defensive GGUF header reader.

`gguf.GGUFReader` parses every element of every array in Python (about 16 s for a model with a
262k-token vocabulary). Listing a library needs the scalar keys and the tensor infos, and
validating a file before llama.cpp sees it needs bounds, not values; so this reader skips array
bodies by their lengths and checks every count, length and offset against the file's size.
Anything that does not add up raises `ModelError(INVALID_MODEL)` with what is wrong and where.

The same parser reads a prefix of a file whose real size is known (`parse_gguf`): a header read
over HTTP fetches the first megabytes, and the parser says how far it needs to see when they are
not enough (`NeedMoreBytes`), while the bounds are still checked against the whole file.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.ggml_types import (
    FILE_TYPE_GUESSED,
    FILE_TYPE_NAMES,
    GUESSED_FILE_TYPES,
    QUANT_SIZES,
)

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4
DEFAULT_ALIGNMENT = 32
# Arrays shorter than this are kept as values (e.g. per-layer head counts); longer ones are skipped.
SMALL_ARRAY = 64

_SCALARS: dict[int, struct.Struct] = {
    0: struct.Struct("<B"),
    1: struct.Struct("<b"),
    2: struct.Struct("<H"),
    3: struct.Struct("<h"),
    4: struct.Struct("<I"),
    5: struct.Struct("<i"),
    6: struct.Struct("<f"),
    7: struct.Struct("<?"),
    10: struct.Struct("<Q"),
    11: struct.Struct("<q"),
    12: struct.Struct("<d"),
}
_UINT32, _STRING, _ARRAY = 4, 8, 9
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_HEADER = struct.Struct("<4sIQQ")
# What follows a tensor's name and dimension count, read at once (a read per field was most of
# the time of a model with a thousand tensors): the dimensions, the type and the offset.
_TENSOR_TAILS = {n_dims: struct.Struct(f"<{n_dims}QIQ") for n_dims in range(1, MAX_DIMS + 1)}
# llama.cpp orders tensors by the layer number `sscanf(name, "blk.%d.")` finds (-1 for none),
# then by name; its file-type guess depends on that order when two types tie.
_LAYER_NUMBER = re.compile(r"blk\.\s*([+-]?\d+)")


class NeedMoreBytes(Exception):
    """The bytes given end before the header does: parse again with at least the first `end`
    bytes. Only raised when the bytes given are a prefix, shorter than the file."""

    def __init__(self, end: int):
        super().__init__(f"the header goes on past byte {end}")
        self.end = end


@dataclass(frozen=True)
class ArraySummary:
    """An array whose elements were skipped, not read."""

    element_type: int
    count: int


@dataclass(frozen=True)
class GGUFInfo:
    path: str
    file_size: int
    version: int
    tensor_count: int
    kv_count: int
    metadata: dict[str, Any] = field(repr=False)
    complete: bool  # True when tensor infos were read and the data section checked
    data_offset: int | None = None
    tensor_bytes: int | None = None
    parameter_count: int | None = None
    # What llama.cpp guesses from the tensor types (FILE_TYPE_GUESSED set) when the file has no
    # general.file_type; None when it has one, or when the tensor infos were not read.
    guessed_file_type: int | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def arch_value(self, suffix: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}")

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value else None

    @property
    def size_label(self) -> str | None:
        value = self.metadata.get("general.size_label")
        return str(value) if value else None

    @property
    def file_type(self) -> int | None:
        """general.file_type, else llama.cpp's guess from the tensor types."""
        value = self.metadata.get("general.file_type")
        return value if isinstance(value, int) else self.guessed_file_type

    @property
    def quantization(self) -> str:
        return quantization_name(self.file_type)

    @property
    def context_length(self) -> int | None:
        return _int_or_none(self.arch_value("context_length"))

    @property
    def chat_template_size(self) -> int | None:
        template = self.metadata.get("tokenizer.chat_template")
        return len(template) if isinstance(template, str) and template else None

    @property
    def pooling_type(self) -> int | None:
        return _int_or_none(self.arch_value("pooling_type"))

    @property
    def block_count(self) -> int | None:
        return _int_or_none(self.arch_value("block_count"))

    @property
    def embedding_length(self) -> int | None:
        return _int_or_none(self.arch_value("embedding_length"))

    @property
    def head_count(self) -> int | None:
        return _int_or_none(self.arch_value("attention.head_count"))

    @property
    def head_count_kv(self) -> int | None:
        value = _int_or_none(self.arch_value("attention.head_count_kv"))
        return value if value is not None else self.head_count

    @property
    def key_length(self) -> int | None:
        return _int_or_none(self.arch_value("attention.key_length"))

    @property
    def value_length(self) -> int | None:
        return _int_or_none(self.arch_value("attention.value_length"))

    @property
    def vocab_size(self) -> int | None:
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, ArraySummary):
            return tokens.count
        if isinstance(tokens, list):
            return len(tokens)
        return _int_or_none(self.arch_value("vocab_size"))


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, list):  # per-layer values: the largest bounds memory
        value = max(value) if value else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def quantization_name(file_type: int | None) -> str:
    if file_type is None:
        return "unknown"
    if file_type & FILE_TYPE_GUESSED:  # as llama.cpp names it: "Q4_K_M (guessed)"
        return f"{quantization_name(file_type & ~FILE_TYPE_GUESSED)} (guessed)"
    name = FILE_TYPE_NAMES.get(file_type)
    if name is None:
        return f"type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def guess_file_type(tensors: Iterable[tuple[str, int]]) -> int:
    """The file type llama.cpp's loader guesses from (name, ggml type) pairs when a file has no
    general.file_type: that of the most common type, the first to reach the top count in
    llama.cpp's tensor order winning a tie; ALL_F32 for a type it has no file type for, or for
    no tensors. The result has FILE_TYPE_GUESSED set, as llama.cpp's has."""
    counts: Counter[int] = Counter()
    top_type, top_count = 0, 0
    for _name, ggml_type in sorted(tensors, key=lambda tensor: _llama_tensor_order(tensor[0])):
        counts[ggml_type] += 1
        if counts[ggml_type] > top_count:
            top_type, top_count = ggml_type, counts[ggml_type]
    return GUESSED_FILE_TYPES.get(top_type, 0) | FILE_TYPE_GUESSED


def _llama_tensor_order(name: str) -> tuple[int, str]:
    # str order is code point order, the same as the byte order of the UTF-8 llama.cpp compares.
    match = _LAYER_NUMBER.match(name)
    return (int(match.group(1)) if match else -1, name)


def tensor_nbytes(ggml_type: int, dims: tuple[int, ...]) -> int:
    """Bytes of a tensor's data, or ModelError when its type or shape cannot exist."""
    if ggml_type not in QUANT_SIZES:
        raise _invalid(f"a tensor has unknown data type {ggml_type}")
    block_size, type_size = QUANT_SIZES[ggml_type]
    elements = 1
    for dim in dims:
        elements *= dim
    if dims and dims[0] % block_size:
        raise _invalid(
            f"a tensor's first dimension ({dims[0]}) is not a multiple of its block size "
            f"({block_size})"
        )
    return elements // block_size * type_size


def _invalid(what: str) -> ModelError:
    return ModelError(ErrorKind.INVALID_MODEL, f"Not a valid GGUF model: {what}")


class _Cursor:
    """Bounds-checked reads from the first `len(buf)` bytes of a file of `size` bytes: a read past
    `size` is a truncated file, a read past the bytes at hand only asks for more.

    Each read says what it reads as a `str.format` template and its arguments ("type of {!r}",
    key), formatted only for an error: formatting a message per field was a third of the time
    of a model with a thousand tensors.
    """

    def __init__(self, buf: mmap.mmap | bytes, size: int):
        self.buf = buf
        self.size = size
        self.available = min(len(buf), size)
        self.pos = 0

    def need(self, n: int, what: str, *args: Any) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _invalid(
                f"file is truncated: {what.format(*args)} at byte {self.pos} needs {n} bytes, "
                f"only {self.size - self.pos} remain"
            )
        if self.pos + n > self.available:
            raise NeedMoreBytes(self.pos + n)

    def unpack(self, fmt: struct.Struct, what: str, *args: Any) -> Any:
        (value,) = self.unpack_all(fmt, what, *args)
        return value

    def unpack_all(self, fmt: struct.Struct, what: str, *args: Any) -> tuple[Any, ...]:
        start = self.pos
        end = start + fmt.size
        if end > self.available:  # within the bytes at hand is within the file
            self.need(fmt.size, what, *args)
        self.pos = end
        return fmt.unpack_from(self.buf, start)

    def string(self, what: str, *args: Any) -> str:
        (length,) = self.unpack_all(_U64, what, *args)
        start = self.pos
        end = start + length
        if end > self.available:
            self.need(length, what, *args)
        self.pos = end
        try:
            return self.buf[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(f"{what.format(*args)} at byte {start} is not UTF-8") from None

    def skip_strings(self, count: int, what: str, *args: Any) -> None:
        # The hot loop of a large vocabulary (a third of its time went to a bounds check per
        # element): unpack_from itself refuses to read past the bytes at hand, and only then is
        # it worked out whether the file is truncated or the prefix is too short.
        buf, pos, unpack_from = self.buf, self.pos, _U64.unpack_from
        try:
            for _ in repeat(None, count):
                pos += 8 + unpack_from(buf, pos)[0]
        except (struct.error, OverflowError):
            # Fewer than 8 bytes at `pos` (OverflowError: a length near 2^64 took it past any
            # offset): an element's length pointed past the end, or the file or the bytes at
            # hand end inside the next length.
            self._past_the_end(pos, what, args)
            self.pos = pos
            self.need(8, what, *args)
            raise  # need() has raised; this only keeps a mistake here from passing silently
        self._past_the_end(pos, what, args)
        self.pos = pos  # the last element may end past the bytes at hand: the next read asks

    def _past_the_end(self, pos: int, what: str, args: tuple[Any, ...]) -> None:
        if pos > self.size:  # an element's length pointed past the end
            raise _invalid(f"file is truncated: {what.format(*args)} runs past the end of the file")


def read_gguf(path: str | os.PathLike[str], *, tensors: bool = True) -> GGUFInfo:
    """Read a GGUF file's header: every metadata key (array bodies skipped, not read) and, with
    `tensors=True`, every tensor info, with the data section checked against the file size.
    The tensor infos give the parameter count and, for a file without general.file_type, the
    quantization; `tensors=False` leaves them out. OSErrors propagate: the caller knows whether
    the path is missing or unreadable.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < _HEADER.size:  # too short to map (an empty file cannot be); the parser names it
            return parse_gguf(handle.read(), file_size=size, path=path, tensors=tensors)
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return parse_gguf(buf, file_size=size, path=path, tensors=tensors)


def parse_gguf(
    data: mmap.mmap | bytes, *, file_size: int, path: str, tensors: bool = True
) -> GGUFInfo:
    """Parse the header in `data`, the first `len(data)` bytes of a GGUF file of `file_size`
    bytes, as `read_gguf` does. Raises `NeedMoreBytes` when `data` ends before the header does
    and the file does not; `ModelError(INVALID_MODEL)` when the file is not a valid GGUF."""
    if file_size == 0:
        raise _invalid("the file is empty")
    if file_size < _HEADER.size:
        raise _invalid(f"the file is only {file_size} bytes, too short for a GGUF header")
    if len(data) < _HEADER.size:
        raise NeedMoreBytes(_HEADER.size)
    return _parse(path, data, file_size, tensors)


def _parse(path: str, buf: mmap.mmap | bytes, size: int, tensors: bool) -> GGUFInfo:
    cur = _Cursor(buf, size)
    magic, version, tensor_count, kv_count = _HEADER.unpack_from(buf, 0)
    cur.pos = _HEADER.size
    if magic != GGUF_MAGIC:
        shown = magic.decode("latin-1") if magic.isascii() and magic.isalnum() else magic.hex()
        raise _invalid(f"it starts with {shown!r}, not the GGUF signature")
    if version not in SUPPORTED_VERSIONS:
        if version and not version & 0xFFFF:  # llama.cpp's test: 3 byte-swapped is 0x03000000
            raise _invalid("it is a big-endian GGUF, which this platform cannot load")
        raise _invalid(f"GGUF version {version} is not supported (llama.cpp reads 2 and 3)")
    # Each key-value needs at least 12 bytes and each tensor info at least 24: counts beyond that
    # are lies, caught before a loop of 2^60 iterations.
    if kv_count * 12 > size:
        raise _invalid(f"the header claims {kv_count} metadata entries in a {size}-byte file")
    if tensor_count * 24 > size:
        raise _invalid(f"the header claims {tensor_count} tensors in a {size}-byte file")

    metadata: dict[str, Any] = {}
    for index in range(kv_count):
        key = cur.string("metadata key #{}", index)
        value_type = cur.unpack(_U32, "type of {!r}", key)
        if key == "general.alignment" and value_type != _UINT32:
            # llama.cpp refuses any other type, a bool or a uint64 included.
            raise _invalid(f"general.alignment has value type {value_type}, not uint32 (4)")
        metadata[key] = _read_value(cur, value_type, key)

    if not tensors:
        return GGUFInfo(path, size, version, tensor_count, kv_count, metadata, complete=False)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _invalid(f"general.alignment is {alignment!r}, not a power of two")

    infos = []
    for index in range(tensor_count):
        name = cur.string("name of tensor #{}", index)
        n_dims = cur.unpack(_U32, "dimension count of tensor {!r}", name)
        if not 1 <= n_dims <= MAX_DIMS:
            raise _invalid(f"tensor {name!r} claims {n_dims} dimensions (at most {MAX_DIMS})")
        *dims, ggml_type, offset = cur.unpack_all(
            _TENSOR_TAILS[n_dims], "shape, type and offset of tensor {!r}", name
        )
        infos.append((name, tuple(dims), ggml_type, offset))

    data_offset = -(-cur.pos // alignment) * alignment
    tensor_bytes = 0
    parameters = 0
    data_end = data_offset
    for name, dims, ggml_type, offset in infos:
        if min(dims) <= 0:
            raise _invalid(f"tensor {name!r} has an empty or negative dimension {dims}")
        nbytes = tensor_nbytes(ggml_type, dims)
        if offset % alignment:
            raise _invalid(f"tensor {name!r} starts at offset {offset}, not aligned to {alignment}")
        end = data_offset + offset + nbytes
        if end > size:
            raise _invalid(
                f"file is truncated: tensor {name!r} ends at byte {end} but the file has "
                f"{size} bytes"
            )
        data_end = max(data_end, end)
        tensor_bytes += nbytes
        parameters += math.prod(dims)
    guessed = None
    if not isinstance(metadata.get("general.file_type"), int):
        guessed = guess_file_type((name, ggml_type) for name, _dims, ggml_type, _ in infos)
    return GGUFInfo(
        path,
        size,
        version,
        tensor_count,
        kv_count,
        metadata,
        complete=True,
        data_offset=data_offset,
        tensor_bytes=tensor_bytes,
        parameter_count=parameters,
        guessed_file_type=guessed,
    )


def _read_value(cur: _Cursor, value_type: int, key: str) -> Any:
    if value_type == _STRING:
        return cur.string("value of {!r}", key)
    scalar = _SCALARS.get(value_type)
    if scalar is not None:
        return cur.unpack(scalar, "value of {!r}", key)
    if value_type != _ARRAY:
        raise _invalid(f"metadata {key!r} has unknown value type {value_type}")
    element_type = cur.unpack(_U32, "element type of {!r}", key)
    count = cur.unpack(_U64, "length of {!r}", key)
    if element_type == _STRING:
        if count * 8 > cur.size - cur.pos:
            raise _invalid(f"array {key!r} claims {count} strings, more than the file can hold")
        if count <= SMALL_ARRAY:
            return [cur.string("element of {!r}", key) for _ in range(count)]
        cur.skip_strings(count, "array {!r}", key)
        return ArraySummary(element_type, count)
    scalar = _SCALARS.get(element_type)
    if scalar is None:
        raise _invalid(f"array {key!r} has unsupported element type {element_type}")
    cur.need(count * scalar.size, "array {!r} of {} elements", key, count)
    if count <= SMALL_ARRAY:
        return [cur.unpack(scalar, "element of {!r}", key) for _ in range(count)]
    cur.pos += count * scalar.size
    return ArraySummary(element_type, count)
