"""Reliability of the engine under abuse: fuzzed files, cancels and kills at random moments.

Marked `slow`; CI still runs them. Randomness is seeded, so a failure reproduces.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import ErrorKind, ModelState, Stage
from tests.core.test_engine import collect

pytestmark = pytest.mark.slow

FUZZ_CASES = 200
NAMED = {kind.value for kind in ErrorKind}


@pytest.fixture(scope="module")
def fuzz_engine():
    with Engine(warm_hosts=1, stall_timeout_s=30) as engine:
        yield engine


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory, tiny_model):
    """Where fuzzed files go; the valid model's bytes ride on the folder, not in the test's
    arguments (hypothesis would print half a megabyte on a failure)."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "valid.bin").write_bytes(tiny_model.read_bytes())
    return folder


_counter = iter(range(1_000_000))


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 8191), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 600_000), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 8191), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 8191), st.integers(1, 64)),
)


def mutate(raw: bytes, steps) -> bytes:
    data = bytearray(raw)
    for kind, at, value in steps:
        at = min(at, len(data))
        if kind == "flip" and at < len(data):
            data[at] ^= value
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value])
        elif kind == "delete":
            del data[at : at + value]
    return bytes(data)


@settings(
    max_examples=FUZZ_CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(mutation, min_size=1, max_size=4))
def test_fuzzed_files_end_in_a_named_error_or_a_load(fuzz_engine, fuzz_dir, steps):
    # A new name for each case: a new model id, so no case sees another's events.
    path = fuzz_dir / f"fuzzed-{next(_counter)}.gguf"
    path.write_bytes(mutate((fuzz_dir / "valid.bin").read_bytes(), steps))
    final = collect(fuzz_engine, path, LoadOptions(n_ctx=64), timeout=60)[-1]
    if final.stage is Stage.COMPLETE:
        fuzz_engine.unload(final.model)
        _wait_state(fuzz_engine, final.model, ModelState.UNLOADED)
    else:
        assert final.error.kind.value in NAMED and final.error.message
    assert psutil.Process().is_running()  # this process (the app) is alive


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


def test_hosts_killed_at_random_moments(big_model, tiny_model, no_leaked_processes):
    rng = random.Random(11)
    crashed = 0
    with Engine(warm_hosts=1) as engine:
        model = engine.model_id(big_model)
        for _ in range(30):
            delay = rng.uniform(0.0, 0.3)

            def strike():
                pid = engine.host_pid(model)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)

            with engine.events(model) as stream:
                engine.load(big_model, LoadOptions(use_mmap=False), model=model)
                timer = threading.Timer(delay, strike)
                timer.start()
                events = list(stream.until_terminal(60))
                timer.join()
            final = events[-1]
            if final.stage is Stage.COMPLETE:
                # Killed after it loaded (or before a host was attached): report, then free.
                time.sleep(0.05)
                if engine.unload(model):
                    _wait_state(engine, model, ModelState.UNLOADED)
            else:
                assert final.error.kind is ErrorKind.ENGINE_CRASHED, final
                assert "SIGKILL" in final.error.message
                crashed += 1
            assert collect(engine, tiny_model)[-1].stage is Stage.COMPLETE
            engine.unload(engine.model_id(tiny_model))
            _wait_state(engine, engine.model_id(tiny_model), ModelState.UNLOADED)
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
