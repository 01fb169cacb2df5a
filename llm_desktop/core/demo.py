"""Write small, valid llama-architecture GGUF models with random weights.

The demo model lets anyone press Load without downloading anything, and the same generator makes
the test fixtures: tiny files, files big enough for a visible progress bar, large vocabularies,
multi-part files and architectures llama.cpp does not know. The weights are random, so the text
a demo model writes is gibberish; what it proves is that the whole load path really runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType, PoolingType, TokenType

from llm_desktop.core.model_names import size_label

# The demo model's chat template: Zephyr's turns, in tokens its small vocabulary spells out.
DEMO_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
BYTE_TOKENS = [f"<0x{value:02X}>" for value in range(256)]
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]


@dataclass(frozen=True)
class DemoSpec:
    """Shape of a generated model. `layers=None` picks the count that reaches `size_mb`."""

    size_mb: float = 0.0
    embedding: int = 64
    heads: int = 4
    kv_heads: int = 4
    feed_forward: int = 176
    layers: int | None = None
    vocab: int = len(SPECIAL_TOKENS) + len(BYTE_TOKENS)
    context_length: int = 2048
    architecture: str = "llama"
    name: str = "llm-desktop demo"
    split_max_tensors: int = 0
    seed: int = 0
    chat_template: str | None = DEMO_CHAT_TEMPLATE  # None: a base model, with no template
    pooling_type: int | None = None  # 1 mean, 2 CLS, 3 last: an embedding model

    def layer_parameters(self) -> int:
        head_dim = self.embedding // self.heads
        attention = (
            2 * self.embedding * self.embedding + 2 * self.embedding * head_dim * self.kv_heads
        )
        return attention + 3 * self.embedding * self.feed_forward + 2 * self.embedding

    def fixed_parameters(self) -> int:
        return 2 * self.vocab * self.embedding + self.embedding

    def layer_count(self) -> int:
        if self.layers is not None:
            return self.layers
        wanted = self.size_mb * 1024 * 1024 / 4 - self.fixed_parameters()
        return max(2, round(wanted / self.layer_parameters()))

    def parameter_count(self) -> int:
        return self.fixed_parameters() + self.layer_count() * self.layer_parameters()


MAX_DEMO_LAYERS = 256  # well under llama.cpp's 512-layer limit


def spec_for_size(size_mb: float, **overrides) -> DemoSpec:
    """A spec whose file is about `size_mb` MB: wider layers for bigger files, so the tensor
    count (and so the progress callback's granularity) stays in the hundreds."""
    if size_mb >= 32:
        overrides = {"embedding": 256, "feed_forward": 688, **overrides}
    spec = DemoSpec(size_mb=size_mb, **overrides)
    while spec.layers is None and spec.layer_count() > MAX_DEMO_LAYERS:
        width = spec.embedding * 2
        spec = DemoSpec(**{**spec.__dict__, "embedding": width, "feed_forward": width * 11 // 4})
    return spec


def write_demo_model(path: str | os.PathLike[str], spec: DemoSpec | None = None) -> Path:
    """Write the model and return the path of its (first) file."""
    spec = spec or DemoSpec()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layers = spec.layer_count()
    head_dim = spec.embedding // spec.heads
    rng = np.random.default_rng(spec.seed)

    writer = GGUFWriter(path, spec.architecture, split_max_tensors=spec.split_max_tensors)
    writer.add_name(spec.name)
    writer.add_size_label(size_label(spec.parameter_count()))
    writer.add_file_type(LlamaFileType.ALL_F32)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.embedding)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(spec.feed_forward)
    writer.add_head_count(spec.heads)
    writer.add_head_count_kv(spec.kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    _add_vocabulary(writer, spec.vocab)
    if spec.chat_template is not None:
        writer.add_chat_template(spec.chat_template)
    if spec.pooling_type is not None:
        writer.add_pooling_type(PoolingType(spec.pooling_type))

    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("token_embd.weight", (spec.vocab, spec.embedding)),
        ("output_norm.weight", (spec.embedding,)),
        ("output.weight", (spec.vocab, spec.embedding)),
    ]
    for layer in range(layers):
        prefix = f"blk.{layer}"
        shapes += [
            (f"{prefix}.attn_norm.weight", (spec.embedding,)),
            (f"{prefix}.attn_q.weight", (spec.embedding, spec.embedding)),
            (f"{prefix}.attn_k.weight", (head_dim * spec.kv_heads, spec.embedding)),
            (f"{prefix}.attn_v.weight", (head_dim * spec.kv_heads, spec.embedding)),
            (f"{prefix}.attn_output.weight", (spec.embedding, spec.embedding)),
            (f"{prefix}.ffn_norm.weight", (spec.embedding,)),
            (f"{prefix}.ffn_gate.weight", (spec.feed_forward, spec.embedding)),
            (f"{prefix}.ffn_up.weight", (spec.feed_forward, spec.embedding)),
            (f"{prefix}.ffn_down.weight", (spec.embedding, spec.feed_forward)),
        ]
    float32 = np.dtype(np.float32)
    for name, shape in shapes:
        writer.add_tensor_info(name, shape, float32, int(np.prod(shape)) * 4)

    # Header first, then one tensor at a time: a 500 MB model never sits in memory whole.
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, shape in shapes:
        if name.endswith("norm.weight"):
            tensor = np.ones(shape, dtype=np.float32)
        else:
            tensor = rng.standard_normal(shape, dtype=np.float32)
            tensor *= 0.02
        writer.write_tensor_data(tensor)
    writer.close()
    if spec.split_max_tensors:
        return first_split_path(path, writer)
    return path


def first_split_path(path: Path, writer: GGUFWriter) -> Path:
    parts = len(writer.tensors)
    if parts <= 1:
        return path
    return path.with_name(f"{path.stem}-00001-of-{parts:05d}.gguf")


def _add_vocabulary(writer: GGUFWriter, vocab: int) -> None:
    base = SPECIAL_TOKENS + BYTE_TOKENS
    words = [f"▁w{index}" for index in range(max(0, vocab - len(base)))]
    tokens = (base + words)[:vocab]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    types += [TokenType.BYTE] * len(BYTE_TOKENS) + [TokenType.NORMAL] * len(words)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types[: len(tokens)])
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
