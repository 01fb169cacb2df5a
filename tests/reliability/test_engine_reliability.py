"""Reliability of the engine under abuse: fuzzed files, cancels and kills at random moments.

Each fuzzed file comes from a mutation class that names the one outcome its load must end in
(a load, or one `ErrorKind`), decided by what the mutation changed: the rules were measured field
by field against llama.cpp 0.3.36 and the header reader. Marked `slow`; CI still runs them.
Randomness is seeded, so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import struct
import threading
import time
from dataclasses import dataclass, field

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_desktop.core.demo import SPECIAL_TOKENS
from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import ErrorKind, ModelState, Stage
from tests.core.test_engine import collect
from tests.helpers.corpus import walk_layout, xor

pytestmark = pytest.mark.slow

FUZZ_CASES = 200

INVALID = ErrorKind.INVALID_MODEL.value
UNSUPPORTED = ErrorKind.UNSUPPORTED_MODEL.value
CRASHED = ErrorKind.ENGINE_CRASHED.value
OK = "ok"

# What llama.cpp 0.3.36 does when a metadata key of the tiny model goes missing (its name is
# changed): it refuses the model when it needs the key, and loads it without the optional ones.
REQUIRED_KEYS = frozenset(
    {
        "llama.context_length",
        "llama.embedding_length",
        "llama.block_count",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.layer_norm_rms_epsilon",
        "tokenizer.ggml.model",
        "tokenizer.ggml.tokens",
    }
)
# Architectures llama.cpp knows that one changed character of "llama" can spell: the file then
# misses every key under that name's prefix.
LLAMA_NEIGHBOURS = frozenset({"llada"})
# Hyperparameters whose changed value gives the same outcome on every machine (the others, such
# as the embedding width, make the fit check's verdict depend on this machine's memory).
MACHINE_INDEPENDENT = (
    "general.file_type",
    "llama.context_length",
    "llama.block_count",
    "llama.rope.dimension_count",
    "llama.attention.layer_norm_rms_epsilon",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
)


@dataclass(frozen=True)
class Mutation:
    """One broken copy of the tiny model and the one outcome its load must end in."""

    what: str
    data: bytes = field(repr=False)
    expect: str  # OK or an ErrorKind value


class Fuzz:
    """The mutation classes: each draws one mutation (with hypothesis) and says its outcome."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.layout = walk_layout(raw)
        self.tokens = self._tokens()

    def _tokens(self) -> list[tuple[int, int]]:
        """[start, end) of each vocabulary entry's text."""
        array = self.layout.kv("tokenizer.ggml.tokens")
        spans, pos = [], array.count_at + 8
        for _ in range(array.count):
            (length,) = struct.unpack_from("<Q", self.raw, pos)
            spans.append((pos + 8, pos + 8 + length))
            pos += 8 + length
        return spans

    def flipped(self, at: int, mask: int) -> bytes:
        return xor(self.raw, at, mask)

    # -- the classes ---------------------------------------------------------------------------

    def truncated(self, draw) -> Mutation:
        length = draw(st.integers(0, len(self.raw) - 1))
        return Mutation(f"truncated to {length} bytes", self.raw[:length], INVALID)

    def header_flip(self, draw) -> Mutation:
        """Magic, version and counts: only version 2 (the same layout as 3) still loads; a lower
        tensor count passes the header reader and leaves llama.cpp missing a tensor."""
        at, mask = draw(st.integers(0, 23)), draw(st.integers(1, 255))
        data = self.flipped(at, mask)
        (version,) = struct.unpack_from("<I", data, 4)
        expect = OK if 4 <= at < 8 and version == 2 else INVALID
        return Mutation(f"header byte {at} ^ {mask:#x}", data, expect)

    def text_not_utf8(self, draw) -> Mutation:
        """A key, string value or tensor name with a byte >= 0x80 among ASCII: never UTF-8."""
        begin, end = draw(st.sampled_from(self.layout.utf8_checked()))
        at, mask = draw(st.integers(begin, end - 1)), draw(st.integers(0x80, 0xFF))
        return Mutation(f"text byte {at} ^ {mask:#x}", self.flipped(at, mask), INVALID)

    def _renamed(self, draw, keys: list[str]) -> Mutation:
        kv = self.layout.kv(draw(st.sampled_from(keys)))
        at = draw(st.integers(kv.key_text[0], kv.key_text[1] - 1))
        data = self.flipped(at, draw(st.integers(1, 0x7F)))
        name = data[kv.key_text[0] : kv.key_text[1]].decode()
        if any(other.key == name for other in self.layout.kvs):
            expect = INVALID  # a duplicate key: gguf refuses the file
        elif kv.key == "general.architecture":
            expect = UNSUPPORTED  # no architecture: llama.cpp names it unknown
        else:
            expect = INVALID if kv.key in REQUIRED_KEYS else OK
        return Mutation(f"key {kv.key!r} renamed {name!r}", data, expect)

    def required_key_renamed(self, draw) -> Mutation:
        return self._renamed(draw, sorted(REQUIRED_KEYS))

    def other_key_renamed(self, draw) -> Mutation:
        return self._renamed(
            draw, [kv.key for kv in self.layout.kvs if kv.key not in REQUIRED_KEYS]
        )

    def string_changed(self, draw) -> Mutation:
        kv = draw(st.sampled_from([kv for kv in self.layout.kvs if kv.text is not None]))
        at = draw(st.integers(kv.text[0], kv.text[1] - 1))
        data = self.flipped(at, draw(st.integers(1, 0x7F)))
        value = data[kv.text[0] : kv.text[1]].decode()
        if kv.key == "general.architecture":
            expect = INVALID if value in LLAMA_NEIGHBOURS else UNSUPPORTED
        elif kv.key == "tokenizer.ggml.model":
            expect = INVALID  # an unknown tokenizer
        else:
            expect = OK  # a name or a size label: shown, never used
        return Mutation(f"{kv.key} = {value!r}", data, expect)

    def token_changed(self, draw) -> Mutation:
        """A token's text: harmless, unless it becomes another token's text, and llama.cpp
        aborts on GGML_ASSERT(id_to_token.size() == token_to_id.size())."""
        index = draw(st.integers(0, len(self.tokens) - 1))
        begin, end = self.tokens[index]
        data = self.flipped(draw(st.integers(begin, end - 1)), draw(st.integers(1, 0x7F)))
        return self._token(index, data)

    def token_duplicated(self, draw) -> Mutation:
        """A byte token ("<0x4A>") whose hex digit changes to another: another token's text."""
        index = draw(st.integers(len(SPECIAL_TOKENS), len(self.tokens) - 1))
        begin, _end = self.tokens[index]
        at = begin + draw(st.sampled_from([3, 4]))  # the two digits of "<0xAB>"
        digit = draw(st.sampled_from(b"0123456789ABCDEF").filter(lambda d: d != self.raw[at]))
        return self._token(index, self.flipped(at, self.raw[at] ^ digit))

    def _token(self, index: int, data: bytes) -> Mutation:
        begin, end = self.tokens[index]
        text = data[begin:end]
        duplicate = any(self.raw[b:e] == text for b, e in self.tokens)
        return Mutation(f"token {index} = {text!r}", data, CRASHED if duplicate else OK)

    def array_element(self, draw) -> Mutation:
        """A token score or a token type: llama.cpp reads them and checks neither."""
        key = draw(st.sampled_from(["tokenizer.ggml.scores", "tokenizer.ggml.token_type"]))
        kv = self.layout.kv(key)
        at = draw(st.integers(kv.count_at + 8, kv.end - 1))
        mask = draw(st.integers(1, 255))
        return Mutation(f"{key} byte {at} ^ {mask:#x}", self.flipped(at, mask), OK)

    def hyperparameter(self, draw) -> Mutation:
        kv = self.layout.kv(draw(st.sampled_from(MACHINE_INDEPENDENT)))
        at = draw(st.integers(kv.value_at, kv.end - 1))
        data = self.flipped(at, draw(st.integers(1, 255)))
        (value,) = struct.unpack_from("<f" if kv.value_type == 6 else "<I", data, kv.value_at)
        if kv.key == "llama.block_count":
            # 0 trips a GGML_ASSERT in llama.cpp; past 512 the engine refuses it first; any
            # other count leaves tensors missing or unused.
            expect = CRASHED if value == 0 else UNSUPPORTED if value > 512 else INVALID
        elif kv.key == "llama.rope.dimension_count":
            expect = INVALID  # llama.cpp checks it against the head size
        elif kv.key == "llama.attention.layer_norm_rms_epsilon":
            # The first decode aborts on GGML_ASSERT(eps >= 0.0f): negative or NaN.
            expect = OK if value >= 0 else CRASHED
        else:
            expect = OK  # a training context, a file type or a special token id: not checked
        return Mutation(f"{kv.key} = {value!r}", data, expect)

    def tensor_info(self, draw) -> Mutation:
        """A tensor's name, dimensions or offset: a missing or duplicate tensor, a wrong shape,
        or data out of place; the header reader or llama.cpp refuses each."""
        tensor = draw(st.sampled_from(self.layout.tensors))
        part = draw(st.sampled_from(["name", "n_dims", "dims", "offset"]))
        if part == "name":
            at = draw(st.integers(tensor.name_text[0], tensor.name_text[1] - 1))
            mask = draw(st.integers(1, 0x7F))
        else:
            first = {"n_dims": tensor.n_dims_at, "dims": tensor.dims_at[0]}.get(
                part, tensor.offset_at
            )
            size = {"n_dims": 4, "dims": 8 * len(tensor.dims_at)}.get(part, 8)
            at, mask = draw(st.integers(first, first + size - 1)), draw(st.integers(1, 255))
        return Mutation(
            f"{tensor.name} {part} byte {at} ^ {mask:#x}", self.flipped(at, mask), INVALID
        )

    def past_the_infos(self, draw) -> Mutation:
        """Padding and weights: llama.cpp checks neither the padding nor the weights' values."""
        count = draw(st.integers(1, 4))
        steps = [
            (
                draw(st.integers(self.layout.tensor_info_end, len(self.raw) - 1)),
                draw(st.integers(1, 255)),
            )
            for _ in range(count)
        ]
        data = bytearray(self.raw)
        for at, mask in steps:
            data[at] ^= mask
        return Mutation(f"flips {steps}", bytes(data), OK)

    def inserted(self, draw) -> Mutation:
        """Before the data section a byte shifts every field after it; from the padding on, it
        shifts weights, which nothing checks (a longer file is fine)."""
        at, value = draw(st.integers(0, len(self.raw))), draw(st.integers(0, 255))
        expect = INVALID if at < self.layout.tensor_info_end else OK
        return Mutation(
            f"byte {value:#x} inserted at {at}",
            self.raw[:at] + bytes([value]) + self.raw[at:],
            expect,
        )

    def deleted(self, draw) -> Mutation:
        """Any deletion leaves the fields misread or the last tensor short of the file's end."""
        at, count = draw(st.integers(0, len(self.raw) - 1)), draw(st.integers(1, 64))
        return Mutation(
            f"{count} bytes deleted at {at}", self.raw[:at] + self.raw[at + count :], INVALID
        )


CLASSES = [
    Fuzz.truncated,
    Fuzz.header_flip,
    Fuzz.text_not_utf8,
    Fuzz.required_key_renamed,
    Fuzz.other_key_renamed,
    Fuzz.string_changed,
    Fuzz.token_changed,
    Fuzz.token_duplicated,
    Fuzz.array_element,
    Fuzz.hyperparameter,
    Fuzz.tensor_info,
    Fuzz.past_the_infos,
    Fuzz.inserted,
    Fuzz.deleted,
]


WARM_HOSTS = 1


@pytest.fixture
def fuzz_engine():
    with Engine(warm_hosts=WARM_HOSTS, stall_timeout_s=30) as engine:
        yield engine
    assert not model_hosts(), "a model host outlived the engine's shutdown"


@pytest.fixture
def fuzz(tmp_path_factory, tiny_model):
    """The mutation classes over the valid model; fuzzed files go in a folder of their own."""
    return Fuzz(tiny_model.read_bytes()), tmp_path_factory.mktemp("fuzz")


def model_hosts() -> set[int]:
    """Our child processes that are model hosts (alive, not zombies)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if (
                "llm_desktop.core.host" in child.cmdline()
                and child.status() != psutil.STATUS_ZOMBIE
            ):
                pids.add(child.pid)
    return pids


_counter = itertools.count()


@settings(
    max_examples=FUZZ_CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_files_end_in_the_outcome_their_mutation_calls_for(fuzz_engine, fuzz, data):
    mutations, folder = fuzz
    make = data.draw(st.sampled_from(CLASSES), label="class")
    mutation = make(mutations, data.draw)
    # A new name for each case: a new model id, so no case sees another's events.
    path = folder / f"fuzzed-{next(_counter)}.gguf"
    path.write_bytes(mutation.data)
    final = collect(fuzz_engine, path, LoadOptions(n_ctx=64), timeout=60)[-1]
    if final.stage is Stage.COMPLETE:
        outcome = OK
        fuzz_engine.unload(final.model)
        _wait_state(fuzz_engine, final.model, ModelState.UNLOADED)
    else:
        outcome = final.error.kind.value
        assert final.error.message
    assert outcome == mutation.expect, (mutation.what, final.message)
    # The host that tried the file is gone; only the warm one waits for the next load.
    assert len(model_hosts()) <= WARM_HOSTS, mutation.what
    path.unlink()


def test_cancel_at_a_hundred_random_moments(big_model, no_leaked_processes):
    rng = random.Random(7)
    outcomes = {"cancelled": 0, "finished_first": 0}
    rss_before = psutil.Process().memory_info().rss
    with Engine(warm_hosts=1) as engine:
        model = engine.model_id(big_model)
        for _ in range(100):
            delay = rng.uniform(0.0, 0.35)
            with engine.events(model) as stream:
                engine.load(big_model, LoadOptions(use_mmap=False), model=model)
                pressed: list[bool] = []
                timer = threading.Timer(
                    delay, lambda pressed=pressed: pressed.append(engine.cancel(model))
                )
                timer.start()
                final = list(stream.until_terminal(60))[-1]
                timer.join()
            if pressed and pressed[0]:
                assert final.stage is Stage.CANCELLED, final
                outcomes["cancelled"] += 1
            else:
                assert final.stage is Stage.COMPLETE
                outcomes["finished_first"] += 1
                engine.unload(model)
                _wait_state(engine, model, ModelState.UNLOADED)
    print(f"\ncancel outcomes: {outcomes}")
    assert outcomes["cancelled"] >= 50
    growth = psutil.Process().memory_info().rss - rss_before
    assert growth < 100 * 1024 * 1024, f"the app grew by {growth / 1e6:.0f} MB"


def test_hosts_killed_at_random_moments(big_model, tiny_model):
    rng = random.Random(11)
    crashed = 0
    with Engine(warm_hosts=1) as engine:
        model = engine.model_id(big_model)
        for _ in range(30):
            delay = rng.uniform(0.0, 0.3)
            killed: list[int] = []

            def strike(killed=killed):
                pid = engine.host_pid(model)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

            with engine.events(model) as stream:
                engine.load(big_model, LoadOptions(use_mmap=False), model=model)
                timer = threading.Timer(delay, strike)
                timer.start()
                final = list(stream.until_terminal(60))[-1]
                timer.join()
                if not killed:
                    # Struck before a host was attached: nothing was killed, the load is whole.
                    assert final.stage is Stage.COMPLETE, final
                    with engine.events(model) as unload:
                        assert engine.unload(model)
                        assert list(unload.until_terminal(30))[-1].stage is Stage.UNLOADED
                    continue
                if final.stage is Stage.COMPLETE:
                    # Killed once loaded: the loaded model's host death is reported next.
                    final = list(stream.until_terminal(30))[-1]
                else:
                    crashed += 1
            assert final.stage is Stage.FAILED, final
            assert final.error.kind is ErrorKind.ENGINE_CRASHED, final
            assert "SIGKILL" in final.error.message
            assert killed[0] not in model_hosts(), "the killed host is reaped"
            assert collect(engine, tiny_model)[-1].stage is Stage.COMPLETE
            engine.unload(engine.model_id(tiny_model))
            _wait_state(engine, engine.model_id(tiny_model), ModelState.UNLOADED)
    assert not model_hosts(), "a model host outlived the engine's shutdown"
    print(f"\nkilled mid-load: {crashed} of 30")
    assert crashed >= 10


def _wait_state(engine, model, state, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = engine.state(model)
        if last is not None and last.state is state:
            return
        time.sleep(0.01)
    raise AssertionError(f"{model} never reached {state}")
