"""A corpus of broken GGUF files, made at test time from one small valid model.

`build_corpus(root, valid_model)` writes `CORPUS_SIZE` files (`CATEGORY_COUNTS` gives the count of
each category) into `root`; `build_filesystem_cases(root)` adds 4 paths that are not regular
files. Everything is deterministic: the same valid model gives byte-identical files, and the few
random choices come from a seeded RNG.

Each `CorruptCase.expect` is the set of outcomes acceptable for a load of that file through the
app (header reader first, then llama.cpp): values of `llm_desktop.core.events.ErrorKind`
(`"invalid_model"`, `"unsupported_model"`, `"engine_crashed"`, `"not_found"`) or `"ok"` where the
file may load fine. A case whose `expect` is exactly `{"invalid_model"}` must be caught by the
header reader (some of those, a non-UTF-8 metadata key for one, llama.cpp 0.3.36 itself would
load); one that contains `"ok"` is a mutation the header reader cannot see (a flipped weight, a
changed float value or array element) and must only not crash it.

`valid_model` must be a file written by `write_demo_model(path)` with the default `DemoSpec()`
(2 layers, 21 tensors, 19 metadata entries, about 0.5 MB): the offsets are computed by walking
its layout, but the case counts assume its shape.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.gguf_header import (
    _ARRAY,
    _HEADER,
    _SCALARS,
    _STRING,
    _U32,
    _U64,
    DEFAULT_ALIGNMENT,
)

SEED = 20240607

INVALID = frozenset({"invalid_model"})
UNSUPPORTED = frozenset({"unsupported_model"})
# A mutation the header reader may not notice: llama.cpp may reject it, crash on it or load it.
UNNOTICED = frozenset({"ok", "invalid_model", "unsupported_model", "engine_crashed"})
NOT_FOUND = frozenset({"not_found"})

TRUNCATED_HEAD = 32  # every length 1..32
TRUNCATED_HEADER_REGION = 30  # lengths spread over the metadata and tensor-info region
TRUNCATED_DATA = 6  # lengths inside the tensor data, the last one byte short of the end
METADATA_FLIPS = 40
DATA_FLIPS = 8

CATEGORY_COUNTS: dict[str, int] = {
    "empty": 1,
    "truncated": TRUNCATED_HEAD + TRUNCATED_HEADER_REGION + TRUNCATED_DATA,
    "header_flip": _HEADER.size,
    "metadata_flip": METADATA_FLIPS,
    "data_flip": DATA_FLIPS,
    "absurd": 32,
    "not_gguf": 8,
    "architecture": 1,
}
CORPUS_SIZE = sum(CATEGORY_COUNTS.values())  # 182
FILESYSTEM_CASES = 4


@dataclass(frozen=True)
class CorruptCase:
    name: str
    path: Path
    category: str
    expect: frozenset[str]


# --- layout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KVLayout:
    key: str
    key_len_at: int  # u64 length of the key
    key_text: tuple[int, int]  # [start, end) of the key's bytes
    type_at: int  # u32 value type
    value_type: int
    value_at: int  # first byte of the value (for an array: its element type)
    end: int  # first byte after the value
    element_type_at: int | None = None  # arrays only
    count_at: int | None = None  # arrays only
    element_type: int | None = None
    count: int | None = None
    text: tuple[int, int] | None = None  # [start, end) of a string value's bytes


@dataclass(frozen=True)
class TensorLayout:
    name: str
    name_len_at: int
    name_text: tuple[int, int]
    n_dims_at: int
    dims_at: tuple[int, ...]
    dims: tuple[int, ...]
    type_at: int
    offset_at: int
    offset: int


@dataclass(frozen=True)
class Layout:
    size: int
    kvs: tuple[KVLayout, ...]
    tensors: tuple[TensorLayout, ...]
    tensor_info_start: int
    tensor_info_end: int
    alignment: int
    data_offset: int

    def kv(self, key: str) -> KVLayout:
        return next(kv for kv in self.kvs if kv.key == key)

    def first_array(self, element_type: int | None = None) -> KVLayout:
        return next(
            kv
            for kv in self.kvs
            if kv.value_type == _ARRAY and element_type in (None, kv.element_type)
        )

    def utf8_checked(self) -> list[tuple[int, int]]:
        """Byte ranges the header reader decodes as UTF-8: keys, string values, tensor names."""
        spans = [kv.key_text for kv in self.kvs]
        spans += [kv.text for kv in self.kvs if kv.text is not None]
        spans += [t.name_text for t in self.tensors]
        return spans


def walk_layout(raw: bytes) -> Layout:
    """Offsets of every field of a valid GGUF file (no validation: the input must be valid)."""
    _magic, _version, tensor_count, kv_count = _HEADER.unpack_from(raw, 0)
    pos = _HEADER.size

    def u32() -> int:
        nonlocal pos
        (value,) = _U32.unpack_from(raw, pos)
        pos += 4
        return value

    def u64() -> int:
        nonlocal pos
        (value,) = _U64.unpack_from(raw, pos)
        pos += 8
        return value

    def string() -> tuple[int, str, tuple[int, int]]:
        nonlocal pos
        length_at = pos
        length = u64()
        text = (pos, pos + length)
        pos += length
        return length_at, raw[text[0] : text[1]].decode("utf-8"), text

    def skip(value_type: int) -> None:
        nonlocal pos
        if value_type == _STRING:
            string()
        else:
            pos += _SCALARS[value_type].size

    kvs = []
    alignment = DEFAULT_ALIGNMENT
    for _ in range(kv_count):
        key_len_at, key, key_text = string()
        type_at = pos
        value_type = u32()
        value_at = pos
        extra: dict = {}
        if value_type == _ARRAY:
            extra["element_type_at"] = pos
            extra["element_type"] = u32()
            extra["count_at"] = pos
            extra["count"] = u64()
            for _ in range(extra["count"]):
                skip(extra["element_type"])
        elif value_type == _STRING:
            extra["text"] = string()[2]
        else:
            if key == "general.alignment":
                (alignment,) = _SCALARS[value_type].unpack_from(raw, pos)
            skip(value_type)
        kvs.append(KVLayout(key, key_len_at, key_text, type_at, value_type, value_at, pos, **extra))

    tensor_info_start = pos
    tensors = []
    for _ in range(tensor_count):
        name_len_at, name, name_text = string()
        n_dims_at = pos
        n_dims = u32()
        dims_at = tuple(pos + 8 * index for index in range(n_dims))
        dims = tuple(u64() for _ in range(n_dims))
        type_at = pos
        u32()
        offset_at = pos
        offset = u64()
        tensors.append(
            TensorLayout(
                name, name_len_at, name_text, n_dims_at, dims_at, dims, type_at, offset_at, offset
            )
        )
    data_offset = _align(pos, alignment)
    return Layout(
        len(raw), tuple(kvs), tuple(tensors), tensor_info_start, pos, alignment, data_offset
    )


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


# --- mutations ------------------------------------------------------------------------------


def patch(raw: bytes, at: int, fmt: str | struct.Struct, value: int) -> bytes:
    packer = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
    return raw[:at] + packer.pack(value) + raw[at + packer.size :]


def xor(raw: bytes, at: int, mask: int = 0xFF) -> bytes:
    return raw[:at] + bytes([raw[at] ^ mask]) + raw[at + 1 :]


def with_kv(raw: bytes, key: str, value_type: int, value: bytes, *, pad_to: int = 32) -> bytes:
    """`raw` with one more metadata entry, appended after the last one; the data section is
    re-padded so it starts at a multiple of `pad_to`, and tensor offsets stay as they are."""
    layout = walk_layout(raw)
    magic, version, tensor_count, kv_count = _HEADER.unpack_from(raw, 0)
    key_bytes = key.encode()
    entry = _U64.pack(len(key_bytes)) + key_bytes + _U32.pack(value_type) + value
    head = _HEADER.pack(magic, version, tensor_count, kv_count + 1)
    infos = raw[_HEADER.size : layout.tensor_info_end]
    before_infos = layout.tensor_info_start - _HEADER.size
    body = infos[:before_infos] + entry + infos[before_infos:]
    end = _HEADER.size + len(body)
    return head + body + bytes(_align(end, pad_to) - end) + raw[layout.data_offset :]


def with_alignment(raw: bytes, value: int, value_type: int = 4) -> bytes:
    """`raw` with `general.alignment` set to `value` (a u32 unless `value_type` says otherwise);
    the data section is padded to `value` when that is a usable alignment, else to 32."""
    packed = _SCALARS[value_type].pack(value)
    usable = value_type == 4 and 0 < value <= 4096 and not value & (value - 1)
    return with_kv(raw, "general.alignment", value_type, packed, pad_to=value if usable else 32)


# --- the corpus -----------------------------------------------------------------------------


def build_corpus(root: Path, valid_model: Path) -> list[CorruptCase]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    raw = Path(valid_model).read_bytes()
    layout = walk_layout(raw)
    rng = random.Random(SEED)
    cases: list[CorruptCase] = []

    def add(category: str, name: str, data: bytes, expect: frozenset[str]) -> None:
        path = root / f"{category}-{name}.gguf"
        path.write_bytes(data)
        cases.append(CorruptCase(f"{category}-{name}", path, category, expect))

    add("empty", "zero-bytes", b"", INVALID)

    # Truncations: the whole header byte by byte, then spread over metadata and tensor infos
    # (the places where a parser reads a length), then inside the tensor data.
    for length in range(1, TRUNCATED_HEAD + 1):
        add("truncated", f"at-{length}", raw[:length], INVALID)
    for length in _header_region_cuts(layout):
        add("truncated", f"at-{length}", raw[:length], INVALID)
    data = layout.data_offset
    span = layout.size - data
    for length in (data, data + 1, data + span // 4, data + span // 2, data + 3 * span // 4):
        add("truncated", f"at-{length}", raw[:length], INVALID)
    add("truncated", "one-byte-short", raw[:-1], INVALID)

    for at in range(_HEADER.size):
        add("header_flip", f"byte-{at}", xor(raw, at), INVALID)

    # Flips across keys, values, lengths, types and tensor infos: one position in each of
    # METADATA_FLIPS equal strata. A flipped ASCII byte is never valid UTF-8, so a flip inside a
    # key, a string value or a tensor name must be caught; anything else may go unnoticed.
    checked = layout.utf8_checked()
    lo, hi = _HEADER.size, layout.tensor_info_end
    for index in range(METADATA_FLIPS):
        start = lo + (hi - lo) * index // METADATA_FLIPS
        stop = lo + (hi - lo) * (index + 1) // METADATA_FLIPS
        at = rng.randrange(start, stop)
        in_text = any(begin <= at < end for begin, end in checked)
        add("metadata_flip", f"byte-{at}", xor(raw, at), INVALID if in_text else UNNOTICED)

    for index in range(DATA_FLIPS):
        start = data + span * index // DATA_FLIPS
        stop = data + span * (index + 1) // DATA_FLIPS
        at = rng.randrange(start, stop)
        add("data_flip", f"byte-{at}", xor(raw, at), UNNOTICED)

    for name, mutated in _absurd(raw, layout):
        add("absurd", name, mutated, INVALID)

    for name, content in _not_gguf(rng):
        add("not_gguf", name, content, INVALID)

    arch = write_demo_model(
        root / "architecture-frobnicator.gguf", DemoSpec(architecture="frobnicator")
    )
    cases.append(CorruptCase(arch.stem, arch, "architecture", UNSUPPORTED))
    return cases


def _header_region_cuts(layout: Layout) -> list[int]:
    """TRUNCATED_HEADER_REGION lengths between the header and the data section: inside the
    fields of the first entries and tensor infos, at the region's edges, then evenly spread."""
    first, array = layout.kvs[0], layout.first_array(_STRING)
    tensor = layout.tensors[0]
    cuts = {
        first.key_len_at + 4,  # inside the first key's length
        first.key_text[0] + 3,  # inside the first key
        first.type_at + 2,  # inside the first value type
        first.value_at + 4,  # inside the first string value's length
        array.element_type_at + 2,
        array.count_at + 4,  # inside an array's count
        array.count_at + 8 + 3,  # inside its first element's length
        (array.count_at + array.end) // 2,  # in the middle of the vocabulary
        layout.tensor_info_start,  # every key-value, no tensor info
        tensor.name_len_at + 4,
        tensor.n_dims_at + 2,
        tensor.dims_at[0] + 4,
        tensor.type_at + 2,
        tensor.offset_at + 4,
        layout.tensor_info_end - 1,
        layout.tensor_info_end,  # every tensor info, no padding
        layout.data_offset - 1,  # inside the padding
    }
    cuts = {cut for cut in cuts if cut > TRUNCATED_HEAD}  # shorter ones are all there already
    lo, hi = TRUNCATED_HEAD, layout.data_offset
    parts = TRUNCATED_HEADER_REGION - len(cuts) + 1
    while len(cuts) < TRUNCATED_HEADER_REGION:
        for k in range(1, parts):
            if len(cuts) < TRUNCATED_HEADER_REGION:
                cuts.add(lo + (hi - lo) * k // parts)
        parts += 1
    return sorted(cuts)


def _absurd(raw: bytes, layout: Layout) -> list[tuple[str, bytes]]:
    first = layout.kvs[0]
    strings = layout.first_array(_STRING)  # tokenizer.ggml.tokens
    floats = layout.first_array(6)  # tokenizer.ggml.scores
    tensor = layout.tensors[0]
    last = layout.tensors[-1]
    past_end = _align(layout.size, layout.alignment)
    return [
        ("magic-GGUX", b"GGUX" + raw[4:]),
        ("magic-lowercase", b"gguf" + raw[4:]),
        ("version-0", patch(raw, 4, "<I", 0)),
        ("version-1", patch(raw, 4, "<I", 1)),
        ("version-99", patch(raw, 4, "<I", 99)),
        ("version-big-endian-3", patch(raw, 4, ">I", 3)),
        ("version-big-endian-2", patch(raw, 4, ">I", 2)),
        ("tensor-count-2e60", patch(raw, 8, "<Q", 2**60)),
        ("tensor-count-max", patch(raw, 8, "<Q", 2**64 - 1)),
        ("kv-count-2e60", patch(raw, 16, "<Q", 2**60)),
        ("kv-count-max", patch(raw, 16, "<Q", 2**64 - 1)),
        ("key-length-2e62", patch(raw, first.key_len_at, "<Q", 2**62)),
        ("string-value-length-2e62", patch(raw, first.value_at, "<Q", 2**62)),
        ("value-type-9999", patch(raw, first.type_at, "<I", 9999)),
        ("string-array-count-2e61", patch(raw, strings.count_at, "<Q", 2**61)),
        ("float-array-count-2e61", patch(raw, floats.count_at, "<Q", 2**61)),
        ("array-element-type-array", patch(raw, floats.element_type_at, "<I", _ARRAY)),
        ("array-element-length-2e63", patch(raw, strings.count_at + 8, "<Q", 2**63)),
        ("tensor-n-dims-99", patch(raw, tensor.n_dims_at, "<I", 99)),
        ("tensor-n-dims-0", patch(raw, tensor.n_dims_at, "<I", 0)),
        ("tensor-dim-2e62", patch(raw, tensor.dims_at[0], "<Q", 2**62)),
        ("tensor-dim-max", patch(raw, tensor.dims_at[-1], "<Q", 2**64 - 1)),
        ("tensor-dim-0", patch(raw, tensor.dims_at[0], "<Q", 0)),
        ("tensor-type-9999", patch(raw, tensor.type_at, "<I", 9999)),
        ("tensor-type-removed-q4-2", patch(raw, tensor.type_at, "<I", 4)),
        ("tensor-offset-past-end", patch(raw, last.offset_at, "<Q", past_end)),
        ("tensor-offset-misaligned", patch(raw, last.offset_at, "<Q", last.offset + 1)),
        ("alignment-3", with_alignment(raw, 3)),
        ("alignment-0", with_alignment(raw, 0)),
        ("alignment-2e31", with_alignment(raw, 2**31)),
        # llama.cpp requires general.alignment to be a uint32 and rejects any other type.
        ("alignment-bool", with_alignment(raw, 1, value_type=7)),
        ("alignment-uint64", with_alignment(raw, 32, value_type=10)),
    ]


def _not_gguf(rng: random.Random) -> list[tuple[str, bytes]]:
    png = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
        + bytes(4)
        + bytes(64)
    )
    text = b"This is a text file that someone renamed to .gguf.\n" * 40
    return [
        ("text", text),
        ("short-text", b"hello\n"),
        ("png", png),
        ("zip", b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(200))),
        ("random-4096", rng.randbytes(4096)),
        ("random-23", rng.randbytes(23)),
        ("zeros-4096", bytes(4096)),
        ("magic-then-random", b"GGUF" + rng.randbytes(2048)),
    ]


def build_filesystem_cases(root: Path) -> list[CorruptCase]:
    """FILESYSTEM_CASES paths that are not regular files. `read_gguf` raises the OSError;
    `expect` is the kind the engine reports for it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    directory = root / "directory.gguf"
    directory.mkdir(exist_ok=True)
    loop_a, loop_b = root / "loop-a.gguf", root / "loop-b.gguf"
    for link, target in ((loop_a, loop_b), (loop_b, loop_a)):
        if not link.is_symlink():
            os.symlink(target.name, link)
    broken = root / "broken-link.gguf"
    if not broken.is_symlink():
        os.symlink("nowhere.gguf", broken)
    return [
        CorruptCase("missing", root / "missing.gguf", "missing", NOT_FOUND),
        CorruptCase("directory", directory, "directory", INVALID),
        CorruptCase("symlink_loop", loop_a, "symlink_loop", NOT_FOUND),
        CorruptCase("broken_symlink", broken, "broken_symlink", NOT_FOUND),
    ]
