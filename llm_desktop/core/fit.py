"""Will this model fit? A memory estimate made before loading, from the GGUF header alone.

The numbers are an estimate, on purpose on the high side: weights are taken as the file's size,
the KV cache as full attention over every layer, and the compute buffer from a rough constant.
They decide a default (GPU, partial offload, CPU) and warn before a load that cannot succeed;
the load itself, and llama.cpp's own allocation, remain the truth. A GPU counts only when the
llama.cpp build can offload to it (`hardware.LlamaBuild`): a CPU-only build runs every layer on
the CPU, whatever NVML finds.

This module reads plain numbers through `ModelShape`, so it depends on neither the catalog nor
Qt; `format_bytes` is the one way sizes are written for people, in the CLI and the UI alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from llm_desktop.core.hardware import GpuInfo, LlamaBuild, RamInfo, gpus_found_text

if TYPE_CHECKING:
    from llm_desktop.core.gguf_header import GGUFInfo

MiB = 1024 * 1024

# Compute-buffer estimate. llama.cpp sizes its compute buffers by building the graph for one
# batch; the dominant terms are the logits (n_vocab floats per output row, and a full batch can
# ask for every row) and the activations of one layer for one batch. The activation factor of 8
# f32 tensors of n_batch x n_embd is a rough constant that covers attention scores and the
# feed-forward intermediate of common llama-style models; the 32 MiB covers the small fixed
# buffers (graph metadata, CUDA/BLAS workspace) seen on a tiny model.
LOGIT_BYTES = 4  # f32
ACTIVATION_TENSORS = 8
ACTIVATION_BYTES = 4  # f32
COMPUTE_OVERHEAD = 32 * MiB

# Safety margins: VRAM also holds the CUDA context and suffers fragmentation; RAM is shared with
# everything else the person is running.
VRAM_MARGIN_FRACTION = 0.05  # of the GPU's total memory
VRAM_MARGIN_FIXED = 256 * MiB
RAM_MARGIN_FRACTION = 0.10  # of the available memory

# What llama.cpp does with n_ctx=0 when the model states no training context.
FALLBACK_CONTEXT = 4096
# The context a load gets unless the person chose one: the model's own, at most this. A 128k
# training context would otherwise reserve gigabytes of KV cache nobody asked for.
DEFAULT_LOAD_CONTEXT = 4096


def default_context(context_length: int | None) -> int:
    return min(context_length or DEFAULT_LOAD_CONTEXT, DEFAULT_LOAD_CONTEXT)


Verdict = Literal["gpu", "partial", "cpu", "no"]

# GGUF / catalog attribute names -> ModelShape field names. `GGUFInfo` and the catalog's
# `ModelEntry` both carry the left-hand names, which is what makes `from_entry` duck-typed.
_ENTRY_FIELDS = {
    "block_count": "n_layers",
    "embedding_length": "n_embd",
    "head_count": "n_head",
    "head_count_kv": "n_head_kv",
    "key_length": "key_length",
    "value_length": "value_length",
    "vocab_size": "n_vocab",
    "context_length": "n_ctx_train",
}


def format_bytes(n: float) -> str:
    """Decimal units for people: "512 B", "1.2 GB", "79.1 GB", "123 GB"."""
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    if value < 1000:
        return f"{sign}{int(value)} B"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        # Choose the unit after rounding, so 999.96 MB is written 1.0 GB and not 1000.0 MB.
        shown = f"{value:.1f}" if round(value, 1) < 100 else f"{value:.0f}"
        if float(shown) < 1000 or unit == "PB":
            return f"{sign}{shown} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ModelShape:
    """The numbers a memory estimate needs; None where the model does not say.

    `n_head_kv` None means the same as `n_head` (as in GGUF); `key_length` and `value_length`
    None mean `n_embd // n_head`. `file_size` stands for the weights: for a split model, pass the
    total over all parts.
    """

    file_size: int
    n_layers: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    n_head_kv: int | None = None
    key_length: int | None = None
    value_length: int | None = None
    n_vocab: int | None = None
    n_ctx_train: int | None = None

    def __post_init__(self) -> None:
        if self.file_size < 0:
            raise ValueError(f"file_size must not be negative, got {self.file_size}")

    @classmethod
    def from_fields(cls, file_size: int, **fields: Any) -> ModelShape:
        """From GGUF/catalog names (block_count, embedding_length, head_count, head_count_kv,
        key_length, value_length, vocab_size, context_length). Other names are ignored, so a
        whole catalog record can be passed; values that are not positive numbers become None."""
        values = {
            shape_name: _positive_int(fields.get(entry_name))
            for entry_name, shape_name in _ENTRY_FIELDS.items()
        }
        return cls(file_size=int(file_size), **values)

    @classmethod
    def from_entry(cls, entry: Any) -> ModelShape:
        """From any object with the GGUF/catalog attribute names (`ModelEntry`, `GGUFInfo`)."""
        fields = {name: getattr(entry, name, None) for name in _ENTRY_FIELDS}
        return cls.from_fields(entry.file_size, **fields)

    @classmethod
    def from_gguf(cls, info: GGUFInfo, *, file_size: int | None = None) -> ModelShape:
        """From a parsed header; `file_size` overrides the file's own for split models."""
        shape = cls.from_entry(info)
        if file_size is None:
            return shape
        return replace(shape, file_size=int(file_size))


def _positive_int(value: Any) -> int | None:
    if isinstance(value, list | tuple):  # per-layer values: the largest bounds memory
        value = max(value, default=None)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if value > 0 else None


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a load would take. `approximate` is True when shape fields were missing, so the
    parts they feed were left out and the total is a floor rather than an estimate."""

    weights: int
    kv_cache: int
    compute: int
    total: int
    approximate: bool = False
    n_ctx: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    shape: ModelShape,
    n_ctx: int,
    *,
    kv_bytes_per_element: float = 2,
    n_batch: int = 512,
) -> MemoryEstimate:
    """Memory for loading `shape` with a context of `n_ctx` tokens (0: the model's own).

    `kv_bytes_per_element` is 2 for the default f16 cache (q8_0 is 1.0625, q4_0 0.5625).
    """
    if n_ctx < 0:
        raise ValueError(f"n_ctx must not be negative, got {n_ctx}")
    if n_batch <= 0:
        raise ValueError(f"n_batch must be positive, got {n_batch}")
    approximate = False
    if n_ctx == 0:  # llama.cpp's meaning: the context the model was trained with
        if shape.n_ctx_train is None:
            approximate = True
        n_ctx = shape.n_ctx_train or FALLBACK_CONTEXT
    # llama.cpp clamps the logical batch to the context for causal models.
    batch = min(n_batch, n_ctx)

    weights = shape.file_size

    # KV cache: per layer and token, one key and one value vector per KV head. This is full
    # attention on every layer: sliding-window layers (Gemma) and compressed caches (DeepSeek's
    # MLA) take less, so for them this errs high.
    head_dim = shape.n_embd // shape.n_head if shape.n_embd and shape.n_head else None
    kv_heads = shape.n_head_kv or shape.n_head
    key_length = shape.key_length or head_dim
    value_length = shape.value_length or head_dim
    if shape.n_layers and kv_heads and key_length and value_length:
        per_token = kv_heads * key_length + kv_heads * value_length
        kv_cache = round(shape.n_layers * n_ctx * per_token * kv_bytes_per_element)
    else:
        kv_cache = 0
        approximate = True

    compute = COMPUTE_OVERHEAD
    if shape.n_vocab:
        compute += shape.n_vocab * batch * LOGIT_BYTES
    else:
        approximate = True
    if shape.n_embd:
        compute += batch * shape.n_embd * ACTIVATION_BYTES * ACTIVATION_TENSORS
    else:
        approximate = True

    return MemoryEstimate(
        weights=weights,
        kv_cache=kv_cache,
        compute=compute,
        total=weights + kv_cache + compute,
        approximate=approximate,
        n_ctx=n_ctx,
    )


@dataclass(frozen=True)
class FitVerdict:
    """Where a model can run, and the layer split to ask llama.cpp for.

    `gpu_layers` is the value for llama.cpp's n_gpu_layers. llama.cpp counts the output layer
    as one more than the model's blocks, so "everything on the GPU" is `total_layers + 1`
    (or -1, llama.cpp's "all", when the block count is unknown). `vram_free` is that of the GPU
    chosen (`gpu_index`), 0 without one; both free figures are before the safety margins.
    """

    verdict: Verdict
    gpu_layers: int
    total_layers: int | None
    estimate: MemoryEstimate
    ram_available: int
    vram_free: int
    gpu_index: int | None
    summary: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["estimate"] = self.estimate.to_dict()
        return data


def usable_vram(gpu: GpuInfo) -> int:
    """Free VRAM less the safety margin (5% of the card's total + 256 MiB)."""
    margin = gpu.memory_total * VRAM_MARGIN_FRACTION + VRAM_MARGIN_FIXED
    return max(0, int(gpu.memory_free - margin))


def usable_ram(ram: RamInfo) -> int:
    """Available RAM less the safety margin (10% of it)."""
    return max(0, int(ram.available * (1 - RAM_MARGIN_FRACTION)))


def assess(
    shape: ModelShape,
    n_ctx: int,
    ram: RamInfo,
    gpus: Sequence[GpuInfo],
    *,
    gpu_layers: int | None = None,
    kv_bytes_per_element: float = 2,
    n_batch: int = 512,
    llama_build: LlamaBuild | None = None,
) -> FitVerdict:
    """Judge where the model fits. `gpu_layers=None` picks the best split; a number (llama.cpp's
    n_gpu_layers, negative meaning all) judges that split instead.

    Only one GPU is considered, the one with the most free VRAM: llama.cpp can spread layers
    over several, which this estimate does not count on. `llama_build` (from
    `HardwareSnapshot.llama_build` or `GpuMonitor.llama_build`) says whether llama.cpp can use
    the GPUs: when it cannot, they are left out and a CPU verdict says why. None means not
    known, and the GPUs count.
    """
    memory = estimate(shape, n_ctx, kv_bytes_per_element=kv_bytes_per_element, n_batch=n_batch)
    gpu = max(gpus, key=lambda g: g.memory_free, default=None)
    unused_gpu = ""
    if gpu is not None and llama_build is not None and not llama_build.gpu_offload:
        unused_gpu = f"{gpus_found_text(len(gpus))}; {llama_build.why_not_gpu}"
        gpu = None
    return _Assessment(shape, memory, ram, gpu, unused_gpu).judge(gpu_layers)


class _Assessment:
    """The arithmetic of one `assess` call, kept together so each verdict reads the same."""

    def __init__(
        self,
        shape: ModelShape,
        memory: MemoryEstimate,
        ram: RamInfo,
        gpu: GpuInfo | None,
        unused_gpu: str = "",
    ):
        self.shape = shape
        self.memory = memory
        self.ram = ram
        self.gpu = gpu
        self.unused_gpu = unused_gpu  # why a GPU that is there does not count ("" if none is)
        self.n_layers = shape.n_layers
        self.ram_usable = usable_ram(ram)
        self.vram_usable = usable_vram(gpu) if gpu else 0
        self.vram_free = gpu.memory_free if gpu else 0
        # Bytes one block adds wherever it lives: its share of the weights and of the KV cache.
        # Embeddings and the output layer are spread over the blocks too; that is part of the
        # estimate's roughness.
        self.layered_bytes = memory.weights + memory.kv_cache

    def judge(self, requested: int | None) -> FitVerdict:
        if requested is not None:
            return self._judge_requested(requested)
        if self.gpu is not None and self.memory.total <= self.vram_usable:
            return self._all_on_gpu()
        layers = self._layers_that_fit()
        if layers >= 1 and self._ram_needed(layers) <= self.ram_usable:
            return self._partial(layers)
        return self._cpu_or_nothing()

    def _judge_requested(self, requested: int) -> FitVerdict:
        if requested == 0 or self.gpu is None:
            why = self.unused_gpu or "no GPU found"
            note = "" if requested == 0 else f" (asked for {requested} GPU layers, {why})"
            return self._cpu_or_nothing(note)
        everything = requested < 0 or self.n_layers is None or requested > self.n_layers
        if everything:
            if self.memory.total <= self.vram_usable:
                return self._all_on_gpu()
            return self._too_large_for_split(self._all_layers_value(), self.memory.total, 0)
        if self._vram_needed(requested) <= self.vram_usable and (
            self._ram_needed(requested) <= self.ram_usable
        ):
            return self._partial(requested)
        return self._too_large_for_split(
            requested, self._vram_needed(requested), self._ram_needed(requested)
        )

    def _layers_that_fit(self) -> int:
        if self.gpu is None or not self.n_layers or self.layered_bytes <= 0:
            return 0
        room = self.vram_usable - self.memory.compute
        if room <= 0:
            return 0
        # Integer form of room / (layered_bytes / n_layers); at most all blocks but the output
        # layer, since the full fit was ruled out first.
        return min(room * self.n_layers // self.layered_bytes, self.n_layers - 1)

    def _offloaded_bytes(self, layers: int) -> int:
        if not self.n_layers:
            return 0
        return math.ceil(self.layered_bytes * min(layers, self.n_layers) / self.n_layers)

    def _vram_needed(self, layers: int) -> int:
        return self._offloaded_bytes(layers) + self.memory.compute

    def _ram_needed(self, layers: int) -> int:
        # The compute buffer is counted on both sides: llama.cpp keeps one per backend.
        return self.memory.total - self._offloaded_bytes(layers)

    def _all_layers_value(self) -> int:
        return self.n_layers + 1 if self.n_layers else -1

    def _verdict(self, verdict: Verdict, gpu_layers: int, summary: str) -> FitVerdict:
        if self.memory.approximate:
            summary += " (rough: the model does not state its full shape)"
        return FitVerdict(
            verdict=verdict,
            gpu_layers=gpu_layers,
            total_layers=self.n_layers,
            estimate=self.memory,
            ram_available=self.ram.available,
            vram_free=self.vram_free,
            gpu_index=self.gpu.index if self.gpu else None,
            summary=summary,
        )

    def _gpu_label(self) -> str:
        assert self.gpu is not None
        return f"GPU {self.gpu.index} ({self.gpu.name})"

    def _all_on_gpu(self) -> FitVerdict:
        return self._verdict(
            "gpu",
            self._all_layers_value(),
            f"Fits on {self._gpu_label()}: needs {format_bytes(self.memory.total)} "
            f"of {format_bytes(self.vram_free)} free",
        )

    def _partial(self, layers: int) -> FitVerdict:
        assert self.n_layers is not None
        output_note = " (output layer on CPU)" if layers == self.n_layers else ""
        return self._verdict(
            "partial",
            layers,
            f"Partial offload: {layers}/{self.n_layers} layers on {self._gpu_label()}"
            f"{output_note}; needs {format_bytes(self._vram_needed(layers))} of "
            f"{format_bytes(self.vram_free)} VRAM free and "
            f"{format_bytes(self._ram_needed(layers))} of "
            f"{format_bytes(self.ram.available)} RAM available",
        )

    def _cpu_or_nothing(self, note: str = "") -> FitVerdict:
        if self.unused_gpu and not note:
            note = f" ({self.unused_gpu})"
        total = format_bytes(self.memory.total)
        if self.memory.total <= self.ram_usable:
            summary = f"CPU only: needs {total} of {format_bytes(self.ram.available)} RAM available"
            return self._verdict("cpu", 0, summary + note)
        available = f"{format_bytes(self.ram.available)} RAM"
        if self.gpu is not None:
            available += f" + {format_bytes(self.vram_free)} VRAM"
        return self._verdict("no", 0, f"Too large: needs {total}, {available} available{note}")

    def _too_large_for_split(self, layers: int, vram_needed: int, ram_needed: int) -> FitVerdict:
        if layers < 0 or self.n_layers is None or layers > self.n_layers:
            shown, ram_part = "all layers", ""
        else:
            shown = f"{layers}/{self.n_layers} layers"
            ram_part = (
                f" and {format_bytes(ram_needed)} of {format_bytes(self.ram.available)} "
                "RAM available"
            )
        return self._verdict(
            "no",
            layers,
            f"Too large for {shown} on {self._gpu_label()}: needs "
            f"{format_bytes(vram_needed)} of {format_bytes(self.vram_free)} VRAM free{ram_part}",
        )
