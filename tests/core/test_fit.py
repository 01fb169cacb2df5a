"""Memory-fit estimates and verdicts, on hand-computed shapes and synthetic machines."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.fit import (
    COMPUTE_OVERHEAD,
    MiB,
    ModelShape,
    assess,
    estimate,
    format_bytes,
    usable_ram,
    usable_vram,
)
from llm_desktop.core.gguf_header import read_gguf
from llm_desktop.core.hardware import GpuInfo, LlamaBuild, RamInfo, cached_llama_build
from tests.helpers.fake_nvml import CUDA_BUILD, LLAMA_GPU_BACKEND_LIBS

GiB = 1024**3
GB = 1000**3

# A llama-7B-like model at about 4.1 GB (a Q4_K_M file).
LLAMA_7B = ModelShape(
    file_size=4_100_000_000,
    n_layers=32,
    n_embd=4096,
    n_head=32,
    n_head_kv=32,
    n_vocab=32000,
    n_ctx_train=4096,
)


def ram(available: int, total: int = 64 * GiB) -> RamInfo:
    return RamInfo(total=total, available=available, used=total - available)


def gpu(free: int, *, index: int = 0, total: int | None = None, name: str = "Test GPU") -> GpuInfo:
    total = total if total is not None else free
    return GpuInfo(index, name, total, total - free, free, None, None)


# --- format_bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_234_567, "1.2 MB"),
        (5_200_000_000, "5.2 GB"),
        (79_100_000_000, "79.1 GB"),
        (123_000_000_000, "123 GB"),
        (999_960_000, "1.0 GB"),  # rounds into the next unit, not "1000.0 MB"
        (2_500_000_000_000, "2.5 TB"),
        (-1_500_000, "-1.5 MB"),
    ],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


# --- estimate -------------------------------------------------------------------------------


def test_kv_cache_of_a_7b_model_at_4k_context_is_2_gib():
    # 32 layers x 4096 tokens x (32 heads x 128 + 32 heads x 128) x 2 bytes = 2^31
    memory = estimate(LLAMA_7B, 4096)
    assert memory.kv_cache == 2 * GiB
    assert memory.weights == LLAMA_7B.file_size
    logits = 32000 * 512 * 4
    activations = 512 * 4096 * 4 * 8
    assert memory.compute == logits + activations + COMPUTE_OVERHEAD
    assert memory.total == memory.weights + memory.kv_cache + memory.compute
    assert memory.approximate is False
    assert memory.n_ctx == 4096


def test_kv_cache_scales_with_kv_heads_context_and_cache_type():
    gqa = ModelShape(file_size=1, n_layers=32, n_embd=4096, n_head=32, n_head_kv=8, n_vocab=1)
    assert estimate(gqa, 4096).kv_cache == GiB // 2
    assert estimate(gqa, 8192).kv_cache == GiB
    assert estimate(gqa, 4096, kv_bytes_per_element=1).kv_cache == GiB // 4


def test_explicit_key_and_value_lengths_override_the_head_dimension():
    shape = ModelShape(
        file_size=1,
        n_layers=2,
        n_embd=1024,
        n_head=8,
        n_head_kv=4,
        key_length=192,
        value_length=128,
        n_vocab=1,
    )
    assert estimate(shape, 100).kv_cache == 2 * 100 * (4 * 192 + 4 * 128) * 2


def test_missing_kv_head_count_means_as_many_as_query_heads():
    shape = ModelShape(file_size=1, n_layers=32, n_embd=4096, n_head=32, n_vocab=1)
    assert estimate(shape, 4096).kv_cache == 2 * GiB


def test_batch_is_clamped_to_the_context():
    small = estimate(LLAMA_7B, 128)
    assert small.compute == 32000 * 128 * 4 + 128 * 4096 * 4 * 8 + COMPUTE_OVERHEAD


def test_zero_context_means_the_training_context():
    assert estimate(LLAMA_7B, 0) == estimate(LLAMA_7B, 4096)


def test_negative_context_is_refused():
    with pytest.raises(ValueError, match="n_ctx"):
        estimate(LLAMA_7B, -1)


def test_unknown_shape_estimates_from_file_size_only():
    memory = estimate(ModelShape(file_size=3 * GiB), 4096)
    assert memory.approximate is True
    assert memory.weights == 3 * GiB
    assert memory.kv_cache == 0
    assert memory.compute == COMPUTE_OVERHEAD
    assert memory.total == 3 * GiB + COMPUTE_OVERHEAD


def test_partly_known_shape_is_approximate():
    no_vocab = ModelShape(file_size=1, n_layers=32, n_embd=4096, n_head=32)
    memory = estimate(no_vocab, 4096)
    assert memory.kv_cache == 2 * GiB
    assert memory.approximate is True


# --- ModelShape constructors ----------------------------------------------------------------


def test_from_gguf_reads_a_written_model(tmp_path):
    spec = DemoSpec(layers=3, embedding=64, heads=4, kv_heads=2, context_length=512)
    path = write_demo_model(tmp_path / "m.gguf", spec)
    info = read_gguf(path)
    shape = ModelShape.from_gguf(info)
    assert shape == ModelShape(
        file_size=path.stat().st_size,
        n_layers=3,
        n_embd=64,
        n_head=4,
        n_head_kv=2,
        n_vocab=spec.vocab,
        n_ctx_train=512,
    )
    assert estimate(shape, 512).kv_cache == 3 * 512 * (2 * 16 + 2 * 16) * 2
    assert ModelShape.from_gguf(info, file_size=10**9).file_size == 10**9


def test_from_gguf_on_a_summary_read(tmp_path):
    path = write_demo_model(tmp_path / "m.gguf")
    summary = read_gguf(path, tensors=False)
    assert ModelShape.from_gguf(summary) == ModelShape.from_gguf(read_gguf(path))


@dataclass(frozen=True)
class CatalogLikeEntry:
    """The attribute names of the catalog's ModelEntry, without importing the catalog."""

    id: str
    path: str
    file_size: int
    architecture: str | None
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    vocab_size: int | None
    parameter_count: int | None


def test_from_entry_and_from_fields_read_catalog_names():
    entry = CatalogLikeEntry(
        id="llama-7b",
        path="/models/llama-7b.gguf",
        file_size=4_100_000_000,
        architecture="llama",
        context_length=4096,
        block_count=32,
        embedding_length=4096,
        head_count=32,
        head_count_kv=32,
        key_length=None,
        value_length=None,
        vocab_size=32000,
        parameter_count=6_700_000_000,
    )
    assert ModelShape.from_entry(entry) == LLAMA_7B
    assert ModelShape.from_fields(**vars(entry)) == LLAMA_7B  # extra names are ignored


def test_from_fields_turns_nonsense_into_unknown():
    shape = ModelShape.from_fields(
        file_size=10, block_count=0, embedding_length=True, head_count=-4, vocab_size="many"
    )
    assert shape == ModelShape(file_size=10)
    assert ModelShape.from_fields(file_size=10, head_count_kv=[8, 8, 4]).n_head_kv == 8


# --- assess ---------------------------------------------------------------------------------


def test_margins():
    assert usable_vram(gpu(10 * GiB, total=20 * GiB)) == 10 * GiB - GiB - 256 * MiB
    assert usable_vram(gpu(100 * MiB, total=20 * GiB)) == 0
    assert usable_ram(ram(10 * GiB)) == 9 * GiB


def test_fits_on_the_gpu_with_the_most_free_memory():
    gpus = [
        gpu(6 * GiB, index=0, name="Small"),
        gpu(70 * GiB, index=1, total=80 * GiB, name="NVIDIA H100"),
    ]
    verdict = assess(LLAMA_7B, 4096, ram(16 * GiB), gpus)
    assert verdict.verdict == "gpu"
    assert verdict.gpu_index == 1
    assert verdict.gpu_layers == 33  # 32 blocks + the output layer, as llama.cpp counts
    assert verdict.total_layers == 32
    assert verdict.vram_free == 70 * GiB
    assert verdict.ram_available == 16 * GiB
    total = format_bytes(verdict.estimate.total)
    assert verdict.summary == f"Fits on GPU 1 (NVIDIA H100): needs {total} of 75.2 GB free"


def test_partial_offload_when_only_some_layers_fit():
    vram = 4 * GiB
    verdict = assess(LLAMA_7B, 4096, ram(32 * GiB), [gpu(vram, total=8 * GiB)])
    assert verdict.verdict == "partial"
    memory = verdict.estimate
    room = vram - (0.05 * 8 * GiB + 256 * MiB) - memory.compute
    per_layer = (memory.weights + memory.kv_cache) / 32
    assert verdict.gpu_layers == int(room // per_layer)
    assert 1 <= verdict.gpu_layers < 32
    assert verdict.summary.startswith(f"Partial offload: {verdict.gpu_layers}/32 layers on GPU 0")


def test_cpu_only_without_a_gpu():
    verdict = assess(LLAMA_7B, 4096, ram(32 * GiB), [])
    assert verdict.verdict == "cpu"
    assert verdict.gpu_layers == 0
    assert verdict.gpu_index is None
    assert verdict.vram_free == 0
    total = format_bytes(verdict.estimate.total)
    assert verdict.summary == f"CPU only: needs {total} of 34.4 GB RAM available"


def test_cpu_only_when_the_gpu_cannot_hold_a_layer():
    verdict = assess(LLAMA_7B, 4096, ram(32 * GiB), [gpu(400 * MiB, total=2 * GiB)])
    assert verdict.verdict == "cpu"
    assert verdict.gpu_layers == 0


def test_too_large_for_ram_and_vram():
    big = ModelShape(
        file_size=40 * GB, n_layers=80, n_embd=8192, n_head=64, n_head_kv=8, n_vocab=128256
    )
    verdict = assess(big, 8192, ram(18 * GB), [gpu(8 * GB)])
    assert verdict.verdict == "no"
    assert verdict.gpu_layers == 0
    total = format_bytes(verdict.estimate.total)
    assert verdict.summary == f"Too large: needs {total}, 18.0 GB RAM + 8.0 GB VRAM available"
    alone = assess(big, 8192, ram(18 * GB), [])
    assert alone.summary == f"Too large: needs {total}, 18.0 GB RAM available"


def test_partial_needs_the_rest_to_fit_in_ram():
    # Half the layers fit on the GPU, but the other half does not fit in RAM.
    verdict = assess(LLAMA_7B, 4096, ram(1 * GiB), [gpu(4 * GiB, total=8 * GiB)])
    assert verdict.verdict == "no"


def test_explicit_gpu_layers_judges_that_split():
    machine = (ram(32 * GiB), [gpu(70 * GiB, total=80 * GiB)])
    split = assess(LLAMA_7B, 4096, *machine, gpu_layers=10)
    assert split.verdict == "partial"
    assert split.gpu_layers == 10
    assert split.summary.startswith("Partial offload: 10/32 layers on GPU 0 (Test GPU); needs")

    blocks_only = assess(LLAMA_7B, 4096, *machine, gpu_layers=32)
    assert blocks_only.verdict == "partial"
    assert "(output layer on CPU)" in blocks_only.summary

    for everything in (33, 99, -1):
        verdict = assess(LLAMA_7B, 4096, *machine, gpu_layers=everything)
        assert (verdict.verdict, verdict.gpu_layers) == ("gpu", 33)

    cpu = assess(LLAMA_7B, 4096, *machine, gpu_layers=0)
    assert (cpu.verdict, cpu.gpu_layers) == ("cpu", 0)


def test_explicit_gpu_layers_that_do_not_fit():
    machine = (ram(32 * GiB), [gpu(4 * GiB, total=8 * GiB)])
    too_many = assess(LLAMA_7B, 4096, *machine, gpu_layers=30)
    assert too_many.verdict == "no"
    assert too_many.gpu_layers == 30
    assert too_many.summary.startswith("Too large for 30/32 layers on GPU 0 (Test GPU): needs")
    everything = assess(LLAMA_7B, 4096, *machine, gpu_layers=-1)
    assert everything.verdict == "no"
    assert everything.summary.startswith("Too large for all layers on GPU 0")


def test_explicit_gpu_layers_without_a_gpu_runs_on_cpu():
    verdict = assess(LLAMA_7B, 4096, ram(32 * GiB), [], gpu_layers=20)
    assert (verdict.verdict, verdict.gpu_layers) == ("cpu", 0)
    assert "no GPU found" in verdict.summary


# --- what the llama.cpp build can use ----------------------------------------------------------

CPU_ONLY = LlamaBuild(gpu_offload=False, backends=("CPU",))
BIG_GPU = [gpu(70 * GiB, index=1, total=80 * GiB, name="NVIDIA H100")]


def test_a_cpu_only_build_never_offloads_and_says_why():
    verdict = assess(LLAMA_7B, 4096, ram(32 * GiB), BIG_GPU, llama_build=CPU_ONLY)
    assert (verdict.verdict, verdict.gpu_layers) == ("cpu", 0)
    assert (verdict.gpu_index, verdict.vram_free) == (None, 0)
    total = format_bytes(verdict.estimate.total)
    assert verdict.summary == (
        f"CPU only: needs {total} of 34.4 GB RAM available "
        "(NVIDIA GPU found; this llama.cpp build is CPU-only)"
    )


def test_a_cpu_only_build_never_offloads_what_would_be_a_partial_split():
    machine = (ram(32 * GiB), [gpu(4 * GiB, total=8 * GiB), gpu(2 * GiB, index=1)])
    assert assess(LLAMA_7B, 4096, *machine).verdict == "partial"
    verdict = assess(LLAMA_7B, 4096, *machine, llama_build=CPU_ONLY)
    assert (verdict.verdict, verdict.gpu_layers) == ("cpu", 0)
    assert verdict.summary.endswith("(2 NVIDIA GPUs found; this llama.cpp build is CPU-only)")


def test_a_cpu_only_build_judges_asked_for_layers_on_the_cpu():
    for layers in (10, 33, -1):
        verdict = assess(
            LLAMA_7B, 4096, ram(32 * GiB), BIG_GPU, gpu_layers=layers, llama_build=CPU_ONLY
        )
        assert (verdict.verdict, verdict.gpu_layers) == ("cpu", 0)
        assert verdict.summary.endswith(
            f"(asked for {layers} GPU layers, NVIDIA GPU found; this llama.cpp build is CPU-only)"
        )


def test_a_cpu_only_build_does_not_count_vram_for_a_model_too_large():
    big = ModelShape(
        file_size=40 * GB, n_layers=80, n_embd=8192, n_head=64, n_head_kv=8, n_vocab=128256
    )
    verdict = assess(big, 8192, ram(18 * GB), [gpu(80 * GB)], llama_build=CPU_ONLY)
    assert verdict.verdict == "no"
    total = format_bytes(verdict.estimate.total)
    assert verdict.summary == (
        f"Too large: needs {total}, 18.0 GB RAM available "
        "(NVIDIA GPU found; this llama.cpp build is CPU-only)"
    )


def test_a_gpu_build_that_finds_no_device_says_so():
    cuda_without_device = LlamaBuild(gpu_offload=False, backends=("CUDA", "CPU"))
    verdict = assess(LLAMA_7B, 4096, ram(32 * GiB), BIG_GPU, llama_build=cuda_without_device)
    assert verdict.verdict == "cpu"
    assert verdict.summary.endswith("(NVIDIA GPU found; llama.cpp (CUDA) found no GPU it can use)")


def test_a_gpu_build_or_an_unknown_one_keeps_the_gpu_verdicts():
    plain = assess(LLAMA_7B, 4096, ram(32 * GiB), BIG_GPU)
    assert plain.verdict == "gpu"
    assert assess(LLAMA_7B, 4096, ram(32 * GiB), BIG_GPU, llama_build=CUDA_BUILD) == plain
    assert assess(LLAMA_7B, 4096, ram(32 * GiB), BIG_GPU, llama_build=None) == plain


def test_without_a_gpu_the_build_changes_nothing():
    plain = assess(LLAMA_7B, 4096, ram(32 * GiB), [])
    assert assess(LLAMA_7B, 4096, ram(32 * GiB), [], llama_build=CPU_ONLY) == plain


@pytest.mark.skipif(bool(LLAMA_GPU_BACKEND_LIBS), reason="this llama.cpp ships GPU backends")
def test_the_real_build_here_keeps_a_big_gpu_out_of_the_verdict(no_leaked_processes):
    verdict = assess(LLAMA_7B, 4096, ram(32 * GiB), BIG_GPU, llama_build=cached_llama_build())
    assert verdict.verdict == "cpu"
    assert "this llama.cpp build is CPU-only" in verdict.summary


def test_unknown_shape_is_judged_on_file_size_and_says_so():
    shape = ModelShape(file_size=3 * GiB)
    on_gpu = assess(shape, 4096, ram(8 * GiB), [gpu(16 * GiB)])
    assert on_gpu.verdict == "gpu"
    assert on_gpu.gpu_layers == -1  # block count unknown: llama.cpp's "all"
    assert on_gpu.total_layers is None
    assert on_gpu.estimate.approximate is True
    assert "rough" in on_gpu.summary

    # Without a block count there is no partial split: CPU, or nothing.
    small_gpu = assess(shape, 4096, ram(8 * GiB), [gpu(2 * GiB)])
    assert small_gpu.verdict == "cpu"
    assert assess(shape, 4096, ram(2 * GiB), [gpu(2 * GiB)]).verdict == "no"


def test_verdict_to_dict():
    data = assess(LLAMA_7B, 4096, ram(32 * GiB), []).to_dict()
    assert data["verdict"] == "cpu"
    assert data["estimate"]["kv_cache"] == 2 * GiB
    assert set(data) == {
        "verdict",
        "gpu_layers",
        "total_layers",
        "estimate",
        "ram_available",
        "vram_free",
        "gpu_index",
        "summary",
    }
