"""Quantizing in a model host: llama.cpp's per-tensor log read as progress, cancel, crash, and
the errors named before a host starts. The models are generated F32 files with every row a
multiple of 256, so the K-quants apply to every weight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gguf
import llama_cpp
import psutil
import pytest

from llm_desktop.core import quantize
from llm_desktop.core.bus import EventBus
from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import (
    OP_QUANTIZE,
    ErrorKind,
    ModelState,
    ProgressEvent,
    Stage,
    stage_pct,
)
from llm_desktop.core.gguf_header import read_gguf
from llm_desktop.core.host.client import HostMessage, HostProcess
from llm_desktop.core.host.quantize_log import (
    QUANTIZE_TYPES,
    classify_quantize_failure,
    parse_tensor_line,
    partial_path,
    quantize_file_type,
)
from llm_desktop.core.quantize import QUANT_TYPES, QuantizeJob, default_output_path

# Captured from llama-cpp-python 0.3.36 quantizing a generated model to Q8_0 and to Q4_K_M:
# each line arrives as fragments; the first ends after "type =    f32, ".
HEAD = (
    "[   4/  39] blk.0.attn_k.weight                  - [   256,    128,      1,      1], "
    "type =    f32, "
)
CONVERTED = HEAD + "converting to q8_0 .. size =     0.12 MiB ->     0.03 MiB"
COPIED = (
    "[   5/  39] blk.0.attn_norm.weight               - [   256,      1,      1,      1], "
    "type =    f32, size =    0.001 MiB"
)
K_MIX = (
    "[  26/  39] blk.2.attn_v.weight                  - [   256,    128,      1,      1], "
    "type =    f32, converting to q6_K .. size =     0.12 MiB ->     0.03 MiB"
)
REQUANTIZE_HEAD = (
    "[   1/  39] output.weight                        - [   256,    259,      1,      1], "
    "type =   q6_K, "
)
LOADER_LINE = "llama_model_loader: - type  f32:   39 tensors"


# -- the log lines ---------------------------------------------------------------------------


def test_a_converted_tensor_line_gives_index_count_name_shape_and_bytes():
    line = parse_tensor_line(CONVERTED)
    assert line is not None
    assert (line.index, line.count, line.name) == (4, 39, "blk.0.attn_k.weight")
    assert line.shape == (256, 128)
    assert (line.source_type, line.target_type, line.complete) == ("f32", "q8_0", True)
    assert line.source_bytes == 256 * 128 * 4


def test_the_head_of_a_line_says_a_tensor_starts():
    line = parse_tensor_line(HEAD, complete=False)
    assert line is not None and line.index == 4 and not line.complete
    # The head alone, even passed as a whole line, has no sizes yet: not converted.
    assert not parse_tensor_line(HEAD).complete


def test_copied_and_mixed_tensors_and_other_lines():
    copied = parse_tensor_line(COPIED)
    assert copied.target_type is None and copied.complete and copied.shape == (256,)
    assert copied.source_bytes == 1024
    assert parse_tensor_line(K_MIX).target_type == "q6_K"
    requantized = parse_tensor_line(REQUANTIZE_HEAD, complete=False)
    assert requantized.source_type == "q6_K" and requantized.source_bytes == 259 * 210
    assert parse_tensor_line(LOADER_LINE) is None
    assert parse_tensor_line("") is None


def test_failures_are_named_from_the_log_and_the_output_folder():
    requantize = classify_quantize_failure(
        [
            REQUANTIZE_HEAD,
            "llama_model_quantize: failed to quantize: requantizing from type q6_K is disabled",
        ],
        out="/m/x.gguf",
        free_bytes=10 << 30,
        writable=True,
    )
    assert requantize.kind is ErrorKind.UNSUPPORTED_MODEL and "already quantized" in (
        requantize.message
    )
    missing = classify_quantize_failure(
        [
            "gguf_init_from_file: failed to open GGUF file '/m/a.gguf' (No such file or directory)",
            "llama_model_quantize: failed to quantize: llama_model_loader: failed to load "
            "model from /m/a.gguf",
        ],
        out="/m/x.gguf",
        free_bytes=10 << 30,
        writable=True,
    )
    assert missing.kind is ErrorKind.INVALID_MODEL
    write_failed = ["llama_model_quantize: failed to quantize: basic_ios::clear: iostream error"]
    full = classify_quantize_failure(write_failed, out="/m/x.gguf", free_bytes=0, writable=True)
    assert full.kind is ErrorKind.DISK_FULL and "/m/x.gguf" in full.message
    denied = classify_quantize_failure(
        write_failed, out="/m/x.gguf", free_bytes=10 << 30, writable=False
    )
    assert denied.kind is ErrorKind.PERMISSION_DENIED


def test_the_offered_types_are_llama_cpps_file_types():
    for name in QUANT_TYPES:
        assert quantize_file_type(name) == getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}")
        assert gguf.LlamaFileType[f"MOSTLY_{name}"] == quantize_file_type(name.lower())
    for required in (
        "F16",
        "BF16",
        "Q8_0",
        "Q6_K",
        "Q5_K_M",
        "Q5_0",
        "Q4_K_M",
        "Q4_K_S",
        "Q4_0",
        "Q3_K_M",
        "Q2_K",
    ):
        assert required in QUANT_TYPES
    assert quantize_file_type("Q9_X") is None
    assert quantize_file_type("ALL_F32") is None
    assert set(QUANTIZE_TYPES) == set(QUANT_TYPES)


def test_default_output_path_replaces_a_quantization_suffix():
    assert default_output_path("/m/tiny.gguf", "q8_0") == Path("/m/tiny-Q8_0.gguf")
    assert default_output_path("/m/Llama-3-8B-F16.gguf", "Q4_K_M") == Path(
        "/m/Llama-3-8B-Q4_K_M.gguf"
    )
    assert default_output_path("/m/gemma.f32.gguf", "Q6_K") == Path("/m/gemma-Q6_K.gguf")
    assert default_output_path("/m/big-bf16-00001-of-00003.gguf", "Q8_0") == Path(
        "/m/big-Q8_0.gguf"
    )
    assert default_output_path("/m/F16.gguf", "Q8_0") == Path("/m/F16-Q8_0.gguf")


def test_progress_and_eta_weigh_tensors_by_their_bytes(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(quantize.time, "monotonic", lambda: clock[0])
    progress = quantize._Progress(total=1000, count=2)
    clock[0] = 101.0
    progress.tensor_done(1, 2, 100)  # one tensor of two, but a tenth of the bytes, in 1 s
    assert progress.fraction == 0.1
    fields = progress.fields()
    assert (fields["bytes_done"], fields["bytes_total"], fields["rate_bps"]) == (100, 1000, 100.0)
    assert fields["eta_s"] == 9.0 and fields["elapsed_s"] == 1.0
    clock[0] = 104.0  # the big tensor has run 3 s: the estimate counts down
    assert progress.fields()["eta_s"] == 6.0
    clock[0] = 120.0  # longer than estimated: never a negative time left
    assert progress.fields()["eta_s"] == 0.0


# -- real quantizations ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def f32_model(tmp_path_factory) -> Path:
    """About 25 MB of F32 weights in 75 tensors; every row 256 or 768 wide."""
    folder = tmp_path_factory.mktemp("quantize")
    spec = DemoSpec(embedding=256, feed_forward=768, heads=4, kv_heads=2, layers=8, seed=3)
    return write_demo_model(folder / "demo-F32.gguf", spec)


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> Path:
    """About 50 MB, quantized with one thread in the cancel and crash tests: long enough that
    a host stopped at its first tensor is stopped mid-way."""
    folder = tmp_path_factory.mktemp("quantize-slow")
    spec = DemoSpec(embedding=256, feed_forward=768, heads=4, kv_heads=2, layers=16, seed=4)
    return write_demo_model(folder / "slow.gguf", spec)


def run_job(job: QuantizeJob, *, on_event=None, timeout: float = 120) -> list[ProgressEvent]:
    with job.bus.stream(job.key) as stream:
        job.start()
        events = []
        for event in stream.until_terminal(timeout):
            events.append(event)
            if on_event is not None:
                on_event(event)
    assert events and events[-1].is_terminal, events[-3:]
    assert job.wait(30) == events[-1]
    return events


def stages_of(events: list[ProgressEvent]) -> list[Stage]:
    seen: list[Stage] = []
    for event in events:
        if not seen or seen[-1] is not event.stage:
            seen.append(event.stage)
    return seen


def tensor_bytes_by_name(path: Path) -> dict[str, int]:
    reader = gguf.GGUFReader(path)
    return {tensor.name: int(tensor.n_bytes) for tensor in reader.tensors}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("type_name", ["Q8_0", "Q4_K_M"])
def test_quantize_reports_each_tensor_by_its_bytes_and_writes_a_loadable_file(
    f32_model, tmp_path, type_name
):
    out = tmp_path / f"demo-{type_name}.gguf"
    job = QuantizeJob(EventBus(), f32_model, type_name, out=out, throttle_s=0.0)
    events = run_job(job)

    assert stages_of(events) == [
        Stage.CONNECTING,
        Stage.QUANTIZING,
        Stage.FINALIZING,
        Stage.COMPLETE,
    ], [(e.stage, e.message) for e in events]
    assert {event.op for event in events} == {OP_QUANTIZE}
    assert {event.model for event in events} == {f"quantize:{out}"}
    assert {event.label for event in events} == {f"demo-F32 → {type_name}"}
    pcts = [event.pct for event in events]
    assert pcts == sorted(pcts) and pcts[0] == 0 and pcts[-1] == 100

    source = read_gguf(f32_model)
    sizes = tensor_bytes_by_name(f32_model)
    per_tensor = [e for e in events if e.stage is Stage.QUANTIZING and e.message.startswith("T")]
    assert len(per_tensor) == source.tensor_count  # one event as each tensor starts
    done_before = 0
    for index, event in enumerate(per_tensor, start=1):
        name = event.message.split(" · ")[1]
        assert event.message == f"Tensor {index} of {source.tensor_count} · {name}"
        # Weighted by bytes: what is done is exactly the bytes of the tensors before this one.
        assert (event.bytes_done, event.bytes_total) == (done_before, source.tensor_bytes)
        fraction = done_before / source.tensor_bytes
        assert event.pct == stage_pct(Stage.QUANTIZING, fraction, op=OP_QUANTIZE)
        assert 1.0 <= event.pct <= 99.0
        assert event.elapsed_s is not None
        done_before += sizes[name]
    assert done_before == source.tensor_bytes
    assert any(event.eta_s is not None for event in per_tensor[1:])
    finalizing = next(e for e in events if e.stage is Stage.FINALIZING)
    assert finalizing.bytes_done == source.tensor_bytes

    complete = events[-1]
    assert complete.stage is Stage.COMPLETE and complete.state is ModelState.LOADED
    assert complete.result_path == str(out)
    assert complete.bytes_total == complete.bytes_done == out.stat().st_size
    assert out.stat().st_size < f32_model.stat().st_size / 2
    assert read_gguf(out).quantization == type_name
    assert leftovers(tmp_path) == []
    assert job.host_pid is not None and not psutil.pid_exists(job.host_pid)

    with Engine(warm_hosts=0, stall_timeout_s=60.0) as engine:
        model = engine.model_id(out)
        with engine.events(model) as stream:
            engine.load(out, LoadOptions(n_ctx=128), model=model)
            loaded = list(stream.until_terminal(60))
        assert loaded[-1].stage is Stage.COMPLETE, loaded[-1]
        assert list(engine.generate(model, "Hello", max_tokens=4))


def stop_at_first_tensor(job: QuantizeJob, stopped: list[int]):
    """A bus listener that freezes the host (SIGSTOP) as its first tensor starts, so the test
    acts on a host that is certainly mid-way."""

    def on_event(event: ProgressEvent) -> None:
        if not stopped and event.message.startswith("Tensor 1 of"):
            pid = job.host_pid
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)

    return on_event


def test_cancel_while_quantizing_kills_the_host_and_leaves_no_file(slow_model, tmp_path):
    out = tmp_path / "slow-Q4_K_M.gguf"
    job = QuantizeJob(EventBus(), slow_model, "Q4_K_M", out=out, threads=1, throttle_s=0.0)
    stopped: list[int] = []
    freeze = stop_at_first_tensor(job, stopped)

    def cancel_when_stopped(event: ProgressEvent) -> None:
        freeze(event)
        if stopped and event.stage is Stage.QUANTIZING:
            assert Path(partial_path(str(out))).exists(), "the host is writing its .part"

    with job.bus.stream(job.key) as stream:
        job.start()
        events = []
        for event in stream.until_terminal(60):
            events.append(event)
            cancel_when_stopped(event)
            if stopped:
                break
        final = job.cancel()
        events += list(stream.until_terminal(30))
    assert final is not None and final.stage is Stage.CANCELLED, final
    assert final.error.kind is ErrorKind.CANCELLED
    assert events[-1] == final
    assert Stage.FINALIZING not in stages_of(events)
    assert not psutil.pid_exists(stopped[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cancel_before_the_host_quantizes_ends_cancelled(f32_model, tmp_path):
    job = QuantizeJob(EventBus(), f32_model, "Q8_0", out=tmp_path / "x.gguf")
    job.start()
    final = job.cancel()
    assert final is not None and final.stage is Stage.CANCELLED
    assert list(tmp_path.iterdir()) == []


def test_a_host_killed_mid_way_is_an_engine_crash_and_leaves_no_file(slow_model, tmp_path):
    out = tmp_path / "slow-Q4_K_M.gguf"
    job = QuantizeJob(EventBus(), slow_model, "Q4_K_M", out=out, threads=1, throttle_s=0.0)
    stopped: list[int] = []
    freeze = stop_at_first_tensor(job, stopped)

    def kill_it(event: ProgressEvent) -> None:
        freeze(event)
        if stopped and event.stage is Stage.QUANTIZING:
            os.kill(stopped[0], signal.SIGKILL)

    events = run_job(job, on_event=kill_it)
    final = events[-1]
    assert final.stage is Stage.FAILED, final
    assert final.error.kind is ErrorKind.ENGINE_CRASHED
    assert "killed by SIGKILL" in final.error.message
    assert final.pct == max(event.pct for event in events)
    assert list(tmp_path.iterdir()) == []


# A stand-in host that renames a whole file into place and then goes quiet (or exits) without
# saying `quantized`: what the app sees when Cancel, or a crash, comes just after the rename.
FAKE_HOST = """
import json, os, shutil, sys, time
out = sys.stdout.buffer
out.write(json.dumps({"t": "ready", "pid": os.getpid()}).encode() + b"\\n"); out.flush()
command = json.loads(sys.stdin.buffer.readline())
shutil.copyfile(os.environ["WHOLE_FILE"], command["out"] + ".part")
out.write(json.dumps({"t": "stage", "stage": "finalizing"}).encode() + b"\\n"); out.flush()
os.replace(command["out"] + ".part", command["out"])
out.write(b'{"t": "log", "level": 2, "text": "renamed"}\\n'); out.flush()
if os.environ["THEN"] == "exit":
    os._exit(3)
time.sleep(60)
"""


@pytest.mark.parametrize("then", ["cancel", "exit"])
def test_a_file_renamed_before_cancel_or_a_crash_is_kept_and_reported_complete(
    f32_model, tmp_path, monkeypatch, then
):
    whole = tmp_path / "whole.gguf"
    assert run_job(QuantizeJob(EventBus(), f32_model, "Q8_0", out=whole))[-1].result_path
    monkeypatch.setenv("WHOLE_FILE", str(whole))
    monkeypatch.setenv("THEN", then)
    out = tmp_path / "out-Q8_0.gguf"
    job = QuantizeJob(
        EventBus(), f32_model, "Q8_0", out=out, host_command=[sys.executable, "-c", FAKE_HOST]
    )

    def cancel_once_renamed(event: ProgressEvent) -> None:
        if then == "cancel" and event.stage is Stage.FINALIZING:
            while not out.exists():
                time.sleep(0.01)
            threading.Thread(target=job.cancel, name="test-cancel").start()

    final = run_job(job, on_event=cancel_once_renamed)[-1]
    assert final.stage is Stage.COMPLETE, final
    assert final.result_path == str(out) and read_gguf(out).quantization == "Q8_0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-Q8_0.gguf", "whole.gguf"]


def test_a_host_whose_app_is_gone_stops_quantizing_and_removes_its_part(slow_model, tmp_path):
    """The app died mid-way (its end of the pipes closes): nobody waits for the file, so the
    host does not finish it in the background."""
    out = tmp_path / "orphan.gguf"
    host = HostProcess()
    try:
        assert host.send(
            {
                "op": "quantize",
                "path": str(slow_model),
                "out": str(out),
                "type": "Q4_K_M",
                "threads": 1,
            }
        )
        while True:
            item = host.inbox.get(timeout=60)
            assert isinstance(item, HostMessage), item
            if item.data["t"] == "quantize_progress":
                break
        assert Path(partial_path(str(out))).exists()
        host.process.stdin.close()
        assert host.process.wait(timeout=30) == 0
    finally:
        host.kill()
        host.reap()
    assert list(tmp_path.iterdir()) == []


# -- refused before a host starts --------------------------------------------------------------


def failed(job: QuantizeJob) -> ProgressEvent:
    events = run_job(job)
    assert [event.stage for event in events] == [Stage.CONNECTING, Stage.FAILED]
    assert job.host_pid is None, "no host is started for a job refused by its checks"
    return events[-1]


def test_unknown_type_missing_source_and_existing_output_are_named(f32_model, tmp_path):
    unknown = failed(QuantizeJob(EventBus(), f32_model, "Q9_X", out=tmp_path / "a.gguf"))
    assert unknown.error.kind is ErrorKind.UNSUPPORTED_MODEL
    assert "Q9_X" in unknown.message and "Q4_K_M" in unknown.message

    missing = failed(QuantizeJob(EventBus(), tmp_path / "none.gguf", "Q8_0"))
    assert missing.error.kind is ErrorKind.NOT_FOUND

    existing = tmp_path / "taken.gguf"
    existing.write_bytes(b"mine")
    taken = failed(QuantizeJob(EventBus(), f32_model, "Q8_0", out=existing))
    assert taken.error.kind is ErrorKind.PERMISSION_DENIED and "already exists" in taken.message
    assert existing.read_bytes() == b"mine"

    no_folder = failed(QuantizeJob(EventBus(), f32_model, "Q8_0", out=tmp_path / "no" / "a.gguf"))
    assert no_folder.error.kind is ErrorKind.NOT_FOUND


def test_not_a_gguf_and_already_quantized_sources_are_refused(f32_model, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all" * 10)
    invalid = failed(QuantizeJob(EventBus(), junk, "Q8_0"))
    assert invalid.error.kind is ErrorKind.INVALID_MODEL

    q8 = tmp_path / "demo-Q8_0.gguf"
    assert run_job(QuantizeJob(EventBus(), f32_model, "Q8_0", out=q8))[-1].stage is Stage.COMPLETE
    again = failed(QuantizeJob(EventBus(), q8, "Q4_K_M"))
    assert again.error.kind is ErrorKind.UNSUPPORTED_MODEL and "Q8_0" in again.message


def test_not_enough_disk_space_is_refused_with_the_numbers(f32_model, tmp_path, monkeypatch):
    monkeypatch.setattr(quantize, "free_space", lambda folder: 1_000_000)
    full = failed(QuantizeJob(EventBus(), f32_model, "Q8_0", out=tmp_path / "a.gguf"))
    assert full.error.kind is ErrorKind.DISK_FULL
    assert "1.0 MB is free" in full.message and "needs about" in full.message


def test_the_size_estimate_covers_what_llama_cpp_writes(f32_model, tmp_path):
    infos = [read_gguf(f32_model)]
    for type_name in ("Q8_0", "Q4_K_M", "Q2_K"):
        out = tmp_path / f"{type_name}.gguf"
        assert run_job(QuantizeJob(EventBus(), f32_model, type_name, out=out))[-1].result_path
        written = out.stat().st_size
        estimate = quantize.estimate_output_bytes(infos, type_name)
        assert written <= estimate < written * 1.6, (type_name, written, estimate)


def test_a_second_job_for_the_same_output_is_refused_while_one_runs(f32_model, tmp_path):
    bus = EventBus()
    job = QuantizeJob(bus, f32_model, "Q8_0", out=tmp_path / "a.gguf")
    # Another job's operation on the same output, still running.
    bus.publish(ProgressEvent(job.key, 0, Stage.QUANTIZING, 40.0, "Tensor 3 of 75", op=OP_QUANTIZE))
    with pytest.raises(RuntimeError, match="already being quantized"):
        job.start()
    assert job.wait(1) is None and bus.latest(job.key).stage is Stage.QUANTIZING


# -- a disk that really fills up ------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (root only; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_disk_that_fills_while_writing_is_disk_full_and_the_part_is_removed(
    f32_model, small_disk, monkeypatch
):
    # The check before starting passes (it is told there is room); the disk then fills for real.
    monkeypatch.setattr(quantize, "free_space", lambda folder: 1 << 40)
    final = run_job(QuantizeJob(EventBus(), f32_model, "Q8_0", out=small_disk / "a.gguf"))[-1]
    assert final.stage is Stage.FAILED and final.error.kind is ErrorKind.DISK_FULL, final
    assert list(small_disk.iterdir()) == []
