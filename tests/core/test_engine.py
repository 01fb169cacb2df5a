"""The engine with real model hosts and real llama.cpp loads of generated models."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from pathlib import Path

import psutil
import pytest

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine, LoadOptions, split_parts
from llm_desktop.core.events import ErrorKind, ModelState, ProgressEvent, Stage
from llm_desktop.core.gguf_header import read_gguf

LOAD_ORDER = [
    Stage.CONNECTING,
    Stage.INITIALIZING,
    Stage.PARSING,
    Stage.LOADING,
    Stage.OPTIMIZING,
    Stage.FINALIZING,
    Stage.COMPLETE,
]


def collect(engine: Engine, path, options=None, *, on_event=None, timeout=120) -> list:
    model = engine.model_id(path)
    with engine.events(model) as stream:
        engine.load(path, options, model=model)
        events = []
        for event in stream.until_terminal(timeout):
            events.append(event)
            if on_event:
                on_event(event)
    assert events and events[-1].is_terminal, f"no terminal event: {events[-3:]}"
    return events


def stages_of(events: list[ProgressEvent]) -> list[Stage]:
    seen: list[Stage] = []
    for event in events:
        if not seen or seen[-1] is not event.stage:
            seen.append(event.stage)
    return seen


def assert_monotonic(events: list[ProgressEvent]) -> None:
    pcts = [event.pct for event in events]
    assert pcts == sorted(pcts), pcts
    seqs = [event.seq for event in events]
    # The bus numbers every event of every model: one model's numbers rise, with gaps where
    # another model's events fall between them.
    assert seqs == sorted(set(seqs)), seqs


def test_load_reports_every_real_stage_in_order(engine, big_model):
    events = collect(engine, big_model, LoadOptions(use_mmap=False, n_ctx=256))
    assert stages_of(events) == LOAD_ORDER
    assert_monotonic(events)
    assert events[-1].pct == 100
    assert events[-1].state is ModelState.LOADED
    assert events[-1].memory_bytes > big_model.stat().st_size

    loading = [event for event in events if event.stage is Stage.LOADING]
    tensor_bytes = read_gguf(big_model).tensor_bytes
    assert len(loading) >= 3, "the progress callback should report several steps"
    assert all(event.bytes_total == tensor_bytes for event in loading)
    done = [event.bytes_done for event in loading]
    assert done == sorted(done) and done[0] == 0 and done[-1] == tensor_bytes
    assert any(event.rate_bps and event.rate_bps > 0 for event in loading)
    assert any(event.eta_s is not None for event in loading)


def test_loaded_model_streams_tokens_then_unload_frees_its_host(engine, tiny_model):
    events = collect(engine, tiny_model, LoadOptions(n_ctx=128))
    model = events[-1].model
    pieces = list(engine.generate(model, "Hello", max_tokens=8))
    assert len(pieces) >= 1
    pid = engine.host_pid(model)
    assert pid and psutil.pid_exists(pid)

    with engine.events(model) as stream:
        assert engine.unload(model)
        unload = list(stream.until_terminal(30))
    assert [event.stage for event in unload] == [Stage.UNLOADING, Stage.UNLOADED]
    assert unload[-1].memory_bytes and unload[-1].op == "unload"
    assert unload[-1].seq > events[-1].seq
    assert not _running(pid)
    assert engine.state(model).state is ModelState.UNLOADED


def test_second_request_for_a_loading_model_attaches(engine, medium_model):
    model = engine.model_id(medium_model)
    with engine.events(model) as first, engine.events(model) as second:
        engine.load(medium_model, LoadOptions(use_mmap=False))
        assert engine.load(medium_model) == model
        one = list(first.until_terminal(60))
        two = list(second.until_terminal(60))
    assert one == two
    assert sum(event.stage is Stage.CONNECTING for event in one) == 1
    assert one[-1].stage is Stage.COMPLETE


def test_two_models_load_at_once_each_with_its_own_progress(engine, medium_model, model_dir):
    other = write_demo_model(model_dir / "other.gguf", DemoSpec(size_mb=20, seed=7))
    results: dict[str, list] = {}

    def run(path):
        results[str(path)] = collect(engine, path, LoadOptions(use_mmap=False))

    threads = [threading.Thread(target=run, args=(p,)) for p in (medium_model, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 2
    for events in results.values():
        assert stages_of(events) == LOAD_ORDER
        assert_monotonic(events)
        assert len({event.model for event in events}) == 1
    pids = {engine.host_pid(events[-1].model) for events in results.values()}
    assert len(pids) == 2, "each model gets its own host"


@pytest.mark.parametrize("cancel_at", [0.0, 0.05, 0.3, 0.6])
def test_cancel_mid_load_always_ends_cancelled(engine, big_model, cancel_at):
    """`cancel_at` is the loaded fraction of the weights at which Cancel is pressed
    (0.0: before the weights start, while the host is being attached)."""
    model = engine.model_id(big_model)
    host_pids: set[int] = set()
    pressed = threading.Event()

    def press(event: ProgressEvent):
        if (pid := engine.host_pid(model)) is not None:
            host_pids.add(pid)
        fraction = (event.bytes_done or 0) / (event.bytes_total or 1)
        ready = cancel_at == 0.0 or (event.stage is Stage.LOADING and fraction >= cancel_at)
        if ready and not pressed.is_set():
            pressed.set()
            engine.cancel(model)

    events = collect(engine, big_model, LoadOptions(use_mmap=False), on_event=press)
    assert pressed.is_set()
    assert events[-1].stage is Stage.CANCELLED
    assert events[-1].error.kind is ErrorKind.CANCELLED
    assert_monotonic(events)
    if 0 < cancel_at <= 0.3:
        # Far from the end, the progress callback's False must stop the weights mid-way. (Near
        # the end, the host can finish the weights before the cancel reaches it: still cancelled.)
        assert events[-1].pct < 90, "cancel during loading stops the weights, not after them"
    for pid in host_pids:
        assert not _running(pid)


# A real model host whose context creation lasts until Cancel reaches it (a stand-in for a big
# context on a slow disk): the only way past the weights is the cancel path, so a test that
# cancels there cannot race the load to its end.
CONTEXT_WAITS_FOR_CANCEL = """
import sys
from llm_desktop.core.host import child

class ContextWaitsForCancel(child.ModelHost):
    def _construct(self, llama_module, command):
        llm = super()._construct(llama_module, command)
        self.cancel.wait(60)
        return llm

child.ModelHost = ContextWaitsForCancel
sys.exit(child.main())
"""


def test_cancel_after_weights_ends_the_host(big_model):
    """Past the progress callback (context creation, warm-up) cancel ends the host."""
    command = [sys.executable, "-c", CONTEXT_WAITS_FOR_CANCEL]
    with Engine(warm_hosts=0, host_command=command) as engine:
        model = engine.model_id(big_model)
        pids = []

        def press(event):
            if event.stage is Stage.OPTIMIZING and not pids:
                pids.append(engine.host_pid(model))
                assert engine.cancel(model)

        events = collect(engine, big_model, LoadOptions(use_mmap=False), on_event=press)
    assert pids, "never reached optimizing"
    assert stages_of(events)[-2:] == [Stage.OPTIMIZING, Stage.CANCELLED]
    assert events[-1].error.kind is ErrorKind.CANCELLED
    assert not _running(pids[0])


def test_host_killed_mid_load_is_engine_crashed_and_engine_goes_on(engine, big_model, tiny_model):
    model = engine.model_id(big_model)
    killed = []

    def kill(event):
        if event.stage is Stage.LOADING and (event.bytes_done or 0) > 0 and not killed:
            killed.append(engine.host_pid(model))
            os.kill(killed[0], signal.SIGKILL)

    events = collect(engine, big_model, LoadOptions(use_mmap=False), on_event=kill)
    assert events[-1].stage is Stage.FAILED
    assert events[-1].error.kind is ErrorKind.ENGINE_CRASHED
    assert "SIGKILL" in events[-1].error.message
    assert collect(engine, tiny_model)[-1].stage is Stage.COMPLETE


def test_a_stalled_host_trips_the_watchdog(big_model, no_leaked_processes):
    with Engine(warm_hosts=0, stall_timeout_s=1.0) as engine:
        model = engine.model_id(big_model)
        stopped = []

        def freeze(event):
            if event.stage is Stage.LOADING and (event.bytes_done or 0) > 0 and not stopped:
                stopped.append(engine.host_pid(model))
                os.kill(stopped[0], signal.SIGSTOP)

        events = collect(engine, big_model, LoadOptions(use_mmap=False), on_event=freeze)
    assert events[-1].error.kind is ErrorKind.TIMEOUT
    assert "no progress" in events[-1].error.message
    assert not _running(stopped[0])


def test_unknown_architecture_is_named_from_llama_cpp_log(engine, model_dir):
    path = write_demo_model(model_dir / "frob.gguf", DemoSpec(architecture="frobnicator"))
    events = collect(engine, path)
    assert events[-1].error.kind is ErrorKind.UNSUPPORTED_MODEL
    assert "frobnicator" in events[-1].error.message


def test_model_larger_than_memory_is_refused_before_loading(engine, tmp_path):
    """A sparse file whose header describes 64 GB of weights: the fit check refuses it."""
    path = tmp_path / "huge.gguf"
    write_sparse_giant(path, 64 * 1024**3)
    events = collect(engine, path)
    assert events[-1].error.kind is ErrorKind.OUT_OF_MEMORY
    assert "Out of memory" in events[-1].error.message
    assert Stage.LOADING not in stages_of(events)


def test_split_model_loads_from_its_first_part(engine, model_dir):
    first = write_demo_model(model_dir / "split.gguf", DemoSpec(split_max_tensors=8, seed=3))
    assert len(split_parts(first)) == 3
    events = collect(engine, first)
    assert events[-1].stage is Stage.COMPLETE
    total = sum(read_gguf(part).tensor_bytes for part in split_parts(first))
    assert events[-1].bytes_total == total


def test_missing_split_part_is_not_found(engine, model_dir, tmp_path):
    first = write_demo_model(tmp_path / "gone.gguf", DemoSpec(split_max_tensors=8))
    split_parts(first)[1].unlink()
    events = collect(engine, first)
    assert events[-1].error.kind is ErrorKind.NOT_FOUND
    assert "00002" in events[-1].error.message


def write_sparse_giant(path: Path, tensor_bytes: int) -> None:
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(path, "llama")
    writer.add_block_count(1)
    writer.add_context_length(2048)
    writer.add_embedding_length(4096)
    writer.add_head_count(32)
    rows = tensor_bytes // (4096 * 4)
    writer.add_tensor_info("token_embd.weight", (rows, 4096), np.dtype(np.float32), rows * 4096 * 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    with open(path, "r+b") as handle:
        handle.truncate(handle.seek(0, os.SEEK_END) + rows * 4096 * 4 + 64)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_more_layers_than_llama_cpp_allows_is_refused_not_crashed(engine, model_dir):
    """llama.cpp aborts on a GGML_ASSERT past 512 layers; the engine names it first."""
    path = write_demo_model(model_dir / "deep.gguf", DemoSpec(layers=600, embedding=32, heads=2))
    events = collect(engine, path)
    assert events[-1].error.kind is ErrorKind.UNSUPPORTED_MODEL
    assert "600 layers" in events[-1].error.message


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_a_real_allocation_failure_is_out_of_memory(big_model, no_leaked_processes):
    """A host whose address space is capped at 400 MB cannot allocate 300 MB of weights."""
    command = [
        "prlimit",
        f"--as={400 * 1024 * 1024}",
        sys.executable,
        "-m",
        "llm_desktop.core.host",
    ]
    with Engine(warm_hosts=0, host_command=command) as engine:
        events = collect(engine, big_model, LoadOptions(use_mmap=False))
    assert events[-1].error.kind is ErrorKind.OUT_OF_MEMORY
    assert "Out of memory" in events[-1].error.message
    assert any("allocate" in line for line in events[-1].error.detail)
