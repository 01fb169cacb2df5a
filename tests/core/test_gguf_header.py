"""The GGUF header reader on a valid model, a large vocabulary, a corrupted-file corpus, random
mutations and paths that are not regular files."""

from __future__ import annotations

import errno
import hashlib
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from gguf import GGUFReader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.gguf_header import VOCAB_ARRAY, read_gguf
from tests.helpers.corpus import (
    CATEGORY_COUNTS,
    CORPUS_SIZE,
    FILESYSTEM_CASES,
    CorruptCase,
    build_corpus,
    build_filesystem_cases,
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


def test_valid_model_summary_read(valid_model: Path) -> None:
    full = read_gguf(valid_model)
    summary = read_gguf(valid_model, tensors=False)

    assert not summary.complete
    assert summary.data_offset is None
    assert summary.tensor_bytes is None
    assert summary.parameter_count is None
    assert summary.tensor_count == full.tensor_count
    # A 259-token vocabulary is below VOCAB_ARRAY: the summary reads every entry.
    assert summary.metadata == full.metadata
    assert summary.vocab_size == DemoSpec().vocab
    assert summary.block_count == 2
    assert summary.context_length == 2048


def test_summary_of_large_vocabulary_stops_at_the_vocabulary(tmp_path: Path) -> None:
    spec = DemoSpec(vocab=150_000)
    path = write_demo_model(tmp_path / "big-vocab.gguf", spec)

    summary = read_gguf(path, tensors=False)
    assert not summary.complete
    assert summary.vocab_size == 150_000 > VOCAB_ARRAY
    assert summary.block_count == spec.layer_count()
    assert summary.context_length == spec.context_length
    assert summary.architecture == "llama"
    # It stopped at the token list: the scores and token types after it were never read.
    assert "tokenizer.ggml.scores" not in summary.metadata
    assert len(summary.metadata) < summary.kv_count

    full = read_gguf(path)
    assert full.complete
    assert full.vocab_size == 150_000
    assert full.parameter_count == spec.parameter_count()
    assert full.data_offset + full.tensor_bytes == full.file_size


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
    # Summary mode stops before the tensor infos, so it may accept a file truncated there; what
    # it rejects, it rejects with ModelError(INVALID_MODEL) and nothing else.
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
