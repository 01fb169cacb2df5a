"""Every broken file of the corpus, loaded through the real engine and real model hosts.

Each case must end in a named error (or, for a mutation nothing can notice, a load), and this
process, the app's stand-in, must survive all of them.
"""

from __future__ import annotations

import collections
import os
import signal

import pytest

from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import ErrorKind, Stage
from tests.core.test_engine import collect
from tests.helpers.corpus import CORPUS_SIZE, build_corpus, build_filesystem_cases


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("corpus")
    cases = build_corpus(root, tiny_model) + build_filesystem_cases(root / "fs")
    assert len(cases) == CORPUS_SIZE + 4
    return cases


def outcome(event) -> str:
    if event.stage is Stage.COMPLETE:
        return "ok"
    return event.error.kind.value


def test_every_corrupt_file_ends_in_a_named_error(corpus, no_leaked_processes):
    tally: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    unexpected = []
    with Engine(warm_hosts=1, stall_timeout_s=30) as engine:
        for case in corpus:
            events = collect(engine, case.path, LoadOptions(n_ctx=128), timeout=60)
            final = events[-1]
            result = outcome(final)
            tally[case.category][result] += 1
            if result not in case.expect:
                unexpected.append((case.name, result, final.message))
            if final.error is not None:
                assert final.error.message, case.name
                assert final.pct <= 100
            if final.stage is Stage.COMPLETE:
                engine.unload(final.model)
                engine.wait(final.model, 30)
    print("\ncorpus outcomes by category:")
    for category, counts in sorted(tally.items()):
        print(f"  {category:14} {dict(counts)}")
    assert not unexpected, unexpected


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT])
def test_a_host_dying_by_any_signal_is_named(engine, medium_model, signal_number):
    model = engine.model_id(medium_model)
    sent = []

    def strike(event):
        if event.stage is Stage.PARSING and not sent:
            sent.append(engine.host_pid(model))
            os.kill(sent[0], signal_number)

    events = collect(engine, medium_model, LoadOptions(use_mmap=False), on_event=strike)
    assert events[-1].error.kind is ErrorKind.ENGINE_CRASHED
    assert signal.Signals(signal_number).name in events[-1].error.message


def test_a_loaded_model_whose_host_dies_is_reported_failed(engine, tiny_model):
    events = collect(engine, tiny_model)
    model = events[-1].model
    with engine.events(model) as stream:
        os.kill(engine.host_pid(model), signal.SIGKILL)
        after = list(stream.until_terminal(30))
    assert after[-1].stage is Stage.FAILED
    assert after[-1].error.kind is ErrorKind.ENGINE_CRASHED
    assert collect(engine, tiny_model)[-1].stage is Stage.COMPLETE, "the same model loads again"
