"""Naming failures from llama.cpp's log and a dead host's last words."""

from __future__ import annotations

import signal

from llm_desktop.core.events import GPU_OOM_MESSAGE, ErrorKind
from llm_desktop.core.host.protocol import classify_failure, decode, encode, summarize_crash


def test_messages_round_trip_and_junk_is_ignored():
    assert decode(encode({"t": "progress", "f": 0.5})) == {"t": "progress", "f": 0.5}
    assert decode(b"not json\n") is None
    assert decode(b"[1, 2]\n") is None


def test_unknown_architecture_is_unsupported():
    info = classify_failure(
        ["llama_model_load: error loading model: unknown model architecture: 'frob'"]
    )
    assert info.kind is ErrorKind.UNSUPPORTED_MODEL and "'frob'" in info.message


def test_allocation_failures_are_out_of_memory():
    gpu = classify_failure(
        ["ggml_backend_cuda_buffer_type_alloc_buffer: cudaMalloc failed: out of memory"]
    )
    assert gpu.kind is ErrorKind.OUT_OF_MEMORY and gpu.message == GPU_OOM_MESSAGE
    ram = classify_failure(
        ["ggml_aligned_malloc: insufficient memory (attempted to allocate 4096 MB)"]
    )
    assert ram.kind is ErrorKind.OUT_OF_MEMORY and "RAM" in ram.message


def test_other_load_errors_keep_llama_cpp_reason():
    info = classify_failure(
        ["llama_model_load: error loading model: missing tensor 'blk.0.attn_q.weight'"]
    )
    assert info.kind is ErrorKind.INVALID_MODEL
    assert info.message.endswith("missing tensor 'blk.0.attn_q.weight'")


def test_a_crash_names_the_signal_and_the_failed_assertion():
    stderr = [
        "some noise",
        "/tmp/pip-install-x/llama-cpp-python_1/vendor/llama.cpp/src/llama-model.cpp:1328: "
        "GGML_ASSERT(hparams.n_layer_all <= LLAMA_MAX_LAYERS) failed",
        "more noise",
    ]
    info = summarize_crash(-signal.SIGABRT, ["loading"], stderr)
    assert info.kind is ErrorKind.ENGINE_CRASHED
    assert info.message.startswith("The model engine crashed (killed by SIGABRT): src/llama-model")
    assert "GGML_ASSERT" in info.message
    assert summarize_crash(3, [], []).message == "The model engine crashed (exited with status 3)"


def test_a_bad_alloc_abort_is_out_of_memory():
    stderr = [
        "terminate called after throwing an instance of 'std::bad_alloc'",
        "  what():  std::bad_alloc",
    ]
    info = summarize_crash(-signal.SIGABRT, [], stderr)
    assert info.kind is ErrorKind.OUT_OF_MEMORY
