"""The GGUF header reader on a valid model, a large vocabulary, keys after the vocabulary, a
quantization guessed from the tensors, a corrupted-file corpus, random mutations, prefixes of a
file and paths that are not regular files."""

from __future__ import annotations

import errno
import hashlib
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter, LlamaFileType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.ggml_types import FILE_TYPE_GUESSED, GUESSED_FILE_TYPES, QUANT_SIZES
from llm_desktop.core.gguf_header import (
    GGUFInfo,
    NeedMoreBytes,
    guess_file_type,
    parse_gguf,
    quantization_name,
    read_gguf,
)
from tests.helpers.corpus import (
    CATEGORY_COUNTS,
    CORPUS_SIZE,
    FILESYSTEM_CASES,
    CorruptCase,
    build_corpus,
    build_filesystem_cases,
    patch,
    walk_layout,
    with_alignment,
)

PREFIX = "Not a valid GGUF model: "
# A header read maps the file and keeps a few hundred small values: anything near this much
# Python memory means a length or count was trusted.
MAX_PEAK_BYTES = 8 * 1024 * 1024
KNOWN_OUTCOMES = {kind.value for kind in ErrorKind} | {"ok"}


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_model(tmp_path_factory.mktemp("valid") / "demo.gguf")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, valid_model: Path) -> list[CorruptCase]:
    return build_corpus(tmp_path_factory.mktemp("corpus"), valid_model)


def _read(path: Path, *, tensors: bool = True) -> tuple[object, int]:
    """(GGUFInfo or the exception raised, peak traced Python memory in bytes)."""
    tracemalloc.start()
    try:
        try:
            outcome: object = read_gguf(path, tensors=tensors)
        except Exception as error:  # classified by the caller
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _problem(case: CorruptCase, outcome: object, peak: int) -> str | None:
    """Why `outcome` is wrong for `case`, or None."""
    if peak > MAX_PEAK_BYTES:
        return f"{case.name}: read used {peak} bytes of Python memory"
    if isinstance(outcome, ModelError):
        if outcome.kind is not ErrorKind.INVALID_MODEL:
            return f"{case.name}: kind {outcome.kind}"
        message = str(outcome)
        if not message.startswith(PREFIX) or len(message) - len(PREFIX) < 10:
            return f"{case.name}: message {message!r}"
        if " -" in message:  # a negative count of bytes: the message describes a wrong state
            return f"{case.name}: message {message!r}"
        if "invalid_model" not in case.expect:
            return f"{case.name}: rejected ({message}), expected {sorted(case.expect)}"
        return None
    if isinstance(outcome, BaseException):
        return f"{case.name}: leaked {type(outcome).__name__}: {outcome}"
    if "ok" not in case.expect and case.category != "architecture":
        return f"{case.name}: accepted, expected {sorted(case.expect)}"
    return None


# --- the valid model -------------------------------------------------------------------------


def test_valid_model_full_read(valid_model: Path) -> None:
    spec = DemoSpec()
    info = read_gguf(valid_model)
    reference = GGUFReader(valid_model)

    assert info.complete
    assert info.version == 3
    assert info.file_size == valid_model.stat().st_size
    assert info.architecture == "llama"
    assert info.name == spec.name
    assert info.quantization == "F32"
    assert info.block_count == spec.layer_count() == 2
    assert info.context_length == spec.context_length
    assert info.embedding_length == spec.embedding
    assert info.head_count == spec.heads
    assert info.head_count_kv == spec.kv_heads
    assert info.vocab_size == spec.vocab
    assert info.tensor_count == len(reference.tensors) == 3 + 9 * spec.layer_count()
    assert info.kv_count == len(reference.fields) - 3  # GGUFReader adds 3 pseudo-fields
    assert info.tensor_bytes == sum(int(t.n_bytes) for t in reference.tensors)
    assert info.parameter_count == spec.parameter_count()
    assert info.parameter_count == sum(int(t.n_elements) for t in reference.tensors)
    assert info.data_offset == reference.data_offset
    assert info.data_offset % 32 == 0
    assert info.data_offset + info.tensor_bytes == info.file_size


def test_valid_model_keys_only_read(valid_model: Path) -> None:
    full = read_gguf(valid_model)
    keys_only = read_gguf(valid_model, tensors=False)

    assert not keys_only.complete
    assert keys_only.data_offset is None
    assert keys_only.tensor_bytes is None
    assert keys_only.parameter_count is None
    assert keys_only.tensor_count == full.tensor_count
    assert keys_only.metadata == full.metadata
    assert keys_only.vocab_size == DemoSpec().vocab
    assert keys_only.block_count == 2
    assert keys_only.context_length == 2048


def test_large_vocabulary_is_skipped_and_every_key_after_it_read(tmp_path: Path) -> None:
    spec = DemoSpec(vocab=150_000)
    path = write_demo_model(tmp_path / "big-vocab.gguf", spec)

    for info in (read_gguf(path, tensors=False), read_gguf(path)):
        assert info.vocab_size == 150_000
        assert info.block_count == spec.layer_count()
        assert info.architecture == "llama"
        # The token list is counted, not kept; the keys after it are all there.
        assert "tokenizer.ggml.scores" in info.metadata
        assert info.get("tokenizer.ggml.eos_token_id") == 2
        assert len(info.metadata) == info.kv_count

    full = read_gguf(path)
    assert full.complete
    assert full.parameter_count == spec.parameter_count()
    assert full.data_offset + full.tensor_bytes == full.file_size


# --- keys after the vocabulary, quantization from the tensors -------------------------------

LATE_VOCAB = 5_000  # long enough to be skipped, not kept (the real Gemma-3 270M has 262,144)
LATE_EMBEDDING = 256  # a multiple of the K-quants' 256-element blocks


def write_late_keys_model(
    path: Path,
    *,
    file_type: int | None = LlamaFileType.MOSTLY_Q4_K_M,
    matrix_type: GGMLQuantizationType = GGMLQuantizationType.Q4_K,
    layers: int = 2,
    vocab: int = LATE_VOCAB,
    embedding: int = LATE_EMBEDDING,
) -> Path:
    """A model laid out as the real Gemma-3 270M Q4_K_M file is: general.file_type (left out
    when None) and general.quantization_version come after the tokenizer's vocabulary. Weight
    matrices are `matrix_type` (zero bytes: no reader here looks at weights), norms F32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(path, "llama")
    writer.add_name("late keys")
    writer.add_context_length(2048)
    writer.add_embedding_length(embedding)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(embedding)
    writer.add_head_count(4)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"t{index}" for index in range(vocab)])
    writer.add_token_scores([0.0] * vocab)
    writer.add_eos_token_id(2)
    writer.add_quantization_version(2)
    if file_type is not None:
        writer.add_file_type(file_type)

    tensors = late_keys_tensors(matrix_type, layers, vocab, embedding)
    for name, (rows, columns), ggml_type in tensors:
        block_size, type_size = QUANT_SIZES[ggml_type]
        data = np.zeros((rows, columns // block_size * type_size), dtype=np.uint8)
        writer.add_tensor(name, data, raw_dtype=GGMLQuantizationType(ggml_type))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def late_keys_tensors(
    matrix_type: int, layers: int, vocab: int = LATE_VOCAB, embedding: int = LATE_EMBEDDING
) -> list[tuple[str, tuple[int, int], int]]:
    """(name, (rows, columns), ggml type) of each tensor `write_late_keys_model` writes."""
    f32 = GGMLQuantizationType.F32
    tensors = [
        ("token_embd.weight", (vocab, embedding), matrix_type),
        ("output_norm.weight", (1, embedding), f32),
    ]
    for layer in range(layers):
        tensors.append((f"blk.{layer}.attn_norm.weight", (1, embedding), f32))
        for matrix in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_down"):
            tensors.append((f"blk.{layer}.{matrix}.weight", (embedding, embedding), matrix_type))
    return tensors


def late_keys_parameters(layers: int) -> int:
    return sum(rows * columns for _, (rows, columns), _ in late_keys_tensors(0, layers))


def test_keys_after_the_vocabulary_are_read(tmp_path: Path) -> None:
    path = write_late_keys_model(tmp_path / "late.gguf")
    info = read_gguf(path)

    keys = list(info.metadata)
    assert keys.index("general.file_type") > keys.index("tokenizer.ggml.tokens")
    assert info.vocab_size == LATE_VOCAB
    assert info.file_type == LlamaFileType.MOSTLY_Q4_K_M
    assert info.quantization == "Q4_K_M"
    assert info.guessed_file_type is None  # the file says it; nothing is guessed
    assert info.get("general.quantization_version") == 2
    assert info.parameter_count == late_keys_parameters(2)
    assert info.data_offset + info.tensor_bytes == info.file_size


def test_a_file_without_a_file_type_gets_the_one_llama_cpp_guesses(tmp_path: Path) -> None:
    path = write_late_keys_model(tmp_path / "unmarked.gguf", file_type=None)
    info = read_gguf(path)

    assert "general.file_type" not in info.metadata
    # 13 Q4_K matrices against 3 F32 norms: llama.cpp says "Q4_K - Medium (guessed)".
    assert info.guessed_file_type == LlamaFileType.MOSTLY_Q4_K_M | FILE_TYPE_GUESSED
    assert info.file_type == info.guessed_file_type
    assert info.quantization == "Q4_K_M (guessed)"
    assert read_gguf(path, tensors=False).quantization == "unknown"  # no tensors, no guess


def test_guess_follows_llama_cpps_tensor_order_on_a_tie() -> None:
    q4_k, q6_k = GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q6_K
    # Two of each: llama.cpp walks blk.2, blk.9, then blk.10 (layer numbers, not text), so
    # Q6_K reaches two first and keeps the lead. File order or text order would pick Q4_K.
    tensors = [
        ("blk.10.attn_q.weight", q4_k),
        ("blk.10.ffn_up.weight", q4_k),
        ("blk.2.attn_q.weight", q6_k),
        ("blk.9.attn_q.weight", q6_k),
    ]
    assert guess_file_type(tensors) == LlamaFileType.MOSTLY_Q6_K | FILE_TYPE_GUESSED
    # Names without a layer come first.
    untied = [*tensors[2:], ("token_embd.weight", q4_k), ("output.weight", q4_k)]
    assert guess_file_type(untied) == LlamaFileType.MOSTLY_Q4_K_M | FILE_TYPE_GUESSED


def test_guess_of_a_type_llama_cpp_has_no_file_type_for_is_f32() -> None:
    mxfp4 = GGMLQuantizationType.MXFP4
    assert guess_file_type([("blk.0.ffn_up_exps.weight", mxfp4)]) == FILE_TYPE_GUESSED
    assert guess_file_type([]) == FILE_TYPE_GUESSED  # llama.cpp starts from F32
    assert quantization_name(FILE_TYPE_GUESSED) == "F32 (guessed)"


def test_guessed_file_types_are_named_as_llama_cpp_names_them() -> None:
    # llama.cpp guesses the Medium variant for a K-quant with Small/Medium/Large variants, and
    # the file type of the same name for every other type.
    for ggml_type, file_type in GUESSED_FILE_TYPES.items():
        type_name = GGMLQuantizationType(ggml_type).name
        expected = {"F32": "ALL_F32", "Q3_K": "MOSTLY_Q3_K_M", "Q4_K": "MOSTLY_Q4_K_M"}.get(
            type_name, "MOSTLY_Q5_K_M" if type_name == "Q5_K" else f"MOSTLY_{type_name}"
        )
        assert LlamaFileType(file_type).name == expected, type_name


@pytest.mark.parametrize("alignment", [32, 64, 256])
def test_explicit_alignment_is_honoured(valid_model: Path, tmp_path: Path, alignment: int) -> None:
    # Control for the corpus's alignment cases: the inserted key itself is well formed.
    path = tmp_path / "aligned.gguf"
    path.write_bytes(with_alignment(valid_model.read_bytes(), alignment))
    info = read_gguf(path)
    assert info.get("general.alignment") == alignment
    assert info.data_offset % alignment == 0
    assert info.data_offset + info.tensor_bytes == info.file_size
    assert info.parameter_count == DemoSpec().parameter_count()


# --- the corpus ------------------------------------------------------------------------------


def test_corpus_shape(corpus: list[CorruptCase], tmp_path: Path, valid_model: Path) -> None:
    assert len(corpus) == CORPUS_SIZE
    assert 150 <= CORPUS_SIZE <= 250
    assert Counter(case.category for case in corpus) == CATEGORY_COUNTS
    assert len({case.name for case in corpus}) == len(corpus)
    assert len({case.path for case in corpus}) == len(corpus)
    for case in corpus:
        assert case.path.is_file(), case.name
        assert case.expect and case.expect <= KNOWN_OUTCOMES, case.name
    # Deterministic: a second build is byte for byte the same.
    again = build_corpus(tmp_path, valid_model)
    assert [case.name for case in again] == [case.name for case in corpus]
    for first, second in zip(corpus, again, strict=True):
        assert _digest(first.path) == _digest(second.path), first.name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_walker_matches_the_reader(valid_model: Path) -> None:
    layout = walk_layout(valid_model.read_bytes())
    info = read_gguf(valid_model)
    assert len(layout.kvs) == info.kv_count
    assert [kv.key for kv in layout.kvs] == list(info.metadata)
    assert len(layout.tensors) == info.tensor_count
    assert layout.data_offset == info.data_offset
    assert layout.size == info.file_size


def test_corpus_rejected_cases_raise_invalid_model(corpus: list[CorruptCase]) -> None:
    must_reject = [case for case in corpus if case.expect == {"invalid_model"}]
    assert len(must_reject) > 120
    problems = []
    for case in must_reject:
        outcome, peak = _read(case.path)
        if not isinstance(outcome, ModelError):
            problems.append(f"{case.name}: expected ModelError, got {outcome!r}")
            continue
        problems.append(_problem(case, outcome, peak))
    assert [p for p in problems if p] == []


def test_corpus_unnoticed_mutations_parse_or_raise_model_error(
    corpus: list[CorruptCase],
) -> None:
    may_load = [case for case in corpus if "ok" in case.expect or case.category == "architecture"]
    assert {case.category for case in may_load} >= {"metadata_flip", "data_flip", "architecture"}
    problems = [_problem(case, *_read(case.path)) for case in may_load]
    assert [p for p in problems if p] == []
    for case in may_load:
        if case.category == "data_flip":  # the header reader never looks at weights
            assert read_gguf(case.path).complete, case.name


def test_corpus_summary_reads_never_leak_other_exceptions(corpus: list[CorruptCase]) -> None:
    # A keys-only read stops before the tensor infos, so it may accept a file truncated there;
    # what it rejects, it rejects with ModelError(INVALID_MODEL) and nothing else.
    problems = []
    for case in corpus:
        outcome, peak = _read(case.path, tensors=False)
        if isinstance(outcome, BaseException) and not isinstance(outcome, ModelError):
            problems.append(f"{case.name}: leaked {type(outcome).__name__}: {outcome}")
        elif isinstance(outcome, ModelError) and outcome.kind is not ErrorKind.INVALID_MODEL:
            problems.append(f"{case.name}: kind {outcome.kind}")
        elif peak > MAX_PEAK_BYTES:
            problems.append(f"{case.name}: read used {peak} bytes of Python memory")
    assert problems == []


def test_architecture_case_is_a_valid_file_of_an_unknown_architecture(
    corpus: list[CorruptCase],
) -> None:
    (case,) = [case for case in corpus if case.category == "architecture"]
    assert case.expect == {"unsupported_model"}
    info = read_gguf(case.path)
    assert info.complete
    assert info.architecture == "frobnicator"
    assert info.block_count == 2


def _message(corpus: list[CorruptCase], name: str) -> str:
    (case,) = [case for case in corpus if case.name == name]
    with pytest.raises(ModelError) as caught:
        read_gguf(case.path)
    assert caught.value.kind is ErrorKind.INVALID_MODEL
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("empty-zero-bytes", "empty"),
        ("truncated-at-10", "too short for a GGUF header"),
        ("truncated-one-byte-short", "truncated"),
        ("absurd-magic-GGUX", "'GGUX'"),
        ("absurd-version-1", "version 1 is not supported"),
        ("absurd-version-99", "version 99 is not supported"),
        ("absurd-version-0", "version 0 is not supported"),
        ("absurd-version-big-endian-3", "big-endian"),
        ("absurd-kv-count-2e60", "1152921504606846976 metadata entries"),
        ("absurd-tensor-count-2e60", "1152921504606846976 tensors"),
        ("absurd-key-length-2e62", "metadata key #0"),
        ("absurd-string-array-count-2e61", "2305843009213693952 strings"),
        ("absurd-array-element-length-2e63", "runs past the end of the file"),
        ("absurd-tensor-n-dims-99", "99 dimensions"),
        ("absurd-tensor-dim-2e62", "truncated"),
        ("absurd-tensor-type-9999", "unknown data type 9999"),
        ("absurd-tensor-offset-past-end", "truncated"),
        ("absurd-alignment-3", "not a power of two"),
        ("absurd-alignment-0", "not a power of two"),
        ("absurd-alignment-bool", "not uint32"),
        ("absurd-alignment-uint64", "not uint32"),
        ("not_gguf-text", "not the GGUF signature"),
        ("not_gguf-png", "not the GGUF signature"),
    ],
)
def test_messages_say_what_is_wrong(corpus: list[CorruptCase], name: str, fragment: str) -> None:
    message = _message(corpus, name)
    assert message.startswith(PREFIX)
    assert fragment in message


def test_last_token_running_past_the_end_is_named(valid_bytes: bytes, tmp_path: Path) -> None:
    # The corpus breaks the first token's length; the last one's is checked after the skip.
    tokens = walk_layout(valid_bytes).kv("tokenizer.ggml.tokens")
    at = tokens.count_at + 8
    for _ in range(tokens.count - 1):
        at += 8 + int.from_bytes(valid_bytes[at : at + 8], "little")
    broken = patch(valid_bytes, at, "<Q", len(valid_bytes))
    path = tmp_path / "last-token.gguf"
    path.write_bytes(broken)

    for outcome in (_read(path)[0], parse_by_prefixes(broken, 64, double=True)[0]):
        assert isinstance(outcome, ModelError)
        assert str(outcome) == (
            PREFIX
            + "file is truncated: array 'tokenizer.ggml.tokens' runs past the end of the file"
        )


# --- random mutations ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_bytes(valid_model: Path) -> bytes:
    return valid_model.read_bytes()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "mutated.gguf"


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 8192)),
)
def test_random_mutations_of_the_first_4kb_raise_only_model_error(
    valid_bytes: bytes, scratch: Path, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(valid_bytes)
    for at, value in edits:
        data[at] = value
    scratch.write_bytes(bytes(data[:cut]) if cut is not None else bytes(data))
    for tensors in (True, False):
        outcome, peak = _read(scratch, tensors=tensors)
        assert peak <= MAX_PEAK_BYTES
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, ModelError), repr(outcome)
            assert outcome.kind is ErrorKind.INVALID_MODEL
            assert str(outcome).startswith(PREFIX)


# --- prefixes of a file (what a header read over HTTP parses) ---------------------------------


def parse_by_prefixes(raw: bytes, first: int, *, double: bool) -> tuple[object, list[int]]:
    """Parse `raw` the way a remote read does: from its first `first` bytes, growing the prefix
    to what NeedMoreBytes asks for (or double, when `double`). (GGUFInfo or the exception
    raised, the prefix lengths tried)."""
    tried = []
    length = first
    while True:
        tried.append(length)
        try:
            return parse_gguf(raw[:length], file_size=len(raw), path="p"), tried
        except NeedMoreBytes as more:
            assert length < more.end <= len(raw), (length, more.end, len(raw))
            length = max(more.end, 2 * length) if double else more.end
        except Exception as error:  # classified by the caller
            return error, tried


def _outcome(result: object) -> tuple:
    """What two reads of one file must agree on: the error's type and message, or the header's
    counts, sizes and keys (not the values: a flipped float may be a NaN, unequal to itself)."""
    if isinstance(result, BaseException):
        return (type(result), str(result))
    assert isinstance(result, GGUFInfo)
    return (
        result.tensor_count,
        result.kv_count,
        result.parameter_count,
        result.data_offset,
        result.tensor_bytes,
        result.guessed_file_type,
        list(result.metadata),
    )


def test_smallest_prefixes_give_the_same_header(valid_bytes: bytes, valid_model: Path) -> None:
    # Growing by exactly what is asked for stops inside every field of the header once.
    info, tried = parse_by_prefixes(valid_bytes, 0, double=False)
    full = read_gguf(valid_model)

    assert _outcome(info) == _outcome(full)
    assert info.metadata == full.metadata
    assert info.file_size == len(valid_bytes)
    # It never needed the weights: the last prefix ends with the tensor infos.
    assert tried[-1] <= full.data_offset < len(valid_bytes)
    assert len(tried) > full.kv_count + full.tensor_count


def test_a_long_vocabulary_asks_for_more_as_it_goes(tmp_path: Path) -> None:
    path = write_late_keys_model(tmp_path / "late.gguf")
    raw = path.read_bytes()
    info, tried = parse_by_prefixes(raw, 4096, double=True)

    assert info.quantization == "Q4_K_M"
    assert info.parameter_count == late_keys_parameters(2)
    assert tried[-1] < len(raw)  # the weights were never needed
    assert tried == sorted(tried) and len(tried) > 2


def test_bytes_past_the_file_size_are_never_read(valid_bytes: bytes) -> None:
    # A caller holding more bytes than it says the file has gets the file it says.
    layout = walk_layout(valid_bytes)
    for size in (100, layout.tensor_info_start + 3, layout.tensor_info_end - 5):
        outcomes = []
        for data in (valid_bytes, valid_bytes[:size]):
            try:
                outcomes.append(_outcome(parse_gguf(data, file_size=size, path="p")))
            except ModelError as error:
                outcomes.append(_outcome(error))
        assert outcomes[0] == outcomes[1], size
        assert outcomes[0][0] is ModelError


def test_corpus_gives_the_same_outcome_from_prefixes(corpus: list[CorruptCase]) -> None:
    """A file parsed from growing prefixes, as over HTTP, ends as a read of the whole file does:
    the same header or the same named error."""
    problems = []
    for case in corpus:
        raw = case.path.read_bytes()
        try:
            from_file: object = read_gguf(case.path)
        except ModelError as error:
            from_file = error
        from_prefixes, _ = parse_by_prefixes(raw, 64, double=True)
        if _outcome(from_prefixes) != _outcome(from_file):
            problems.append(f"{case.name}: {from_prefixes!r} != {from_file!r}")
    assert problems == []


# --- paths that are not regular files ---------------------------------------------------------


def test_filesystem_cases_raise_os_errors(tmp_path: Path) -> None:
    cases = {case.category: case for case in build_filesystem_cases(tmp_path)}
    assert len(cases) == FILESYSTEM_CASES
    assert {case.category: set(case.expect) for case in cases.values()} == {
        "missing": {"not_found"},
        "directory": {"invalid_model"},
        "symlink_loop": {"not_found"},
        "broken_symlink": {"not_found"},
    }
    with pytest.raises(FileNotFoundError):
        read_gguf(cases["missing"].path)
    with pytest.raises(IsADirectoryError):
        read_gguf(cases["directory"].path)
    with pytest.raises(OSError) as loop:
        read_gguf(cases["symlink_loop"].path)
    assert loop.value.errno == errno.ELOOP
    with pytest.raises(FileNotFoundError):
        read_gguf(cases["broken_symlink"].path)
    # Building twice in the same place is harmless.
    assert len(build_filesystem_cases(tmp_path)) == FILESYSTEM_CASES
