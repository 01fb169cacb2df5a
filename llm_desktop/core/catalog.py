"""Find the GGUF models on this machine and describe them without loading them.

`scan()` walks the app's own models folder plus the places other tools keep models (LM Studio,
the Hugging Face hub cache, Ollama) and returns one `ModelEntry` per model: multi-part files are
one model, a file reachable by two paths is listed once, and a file that cannot be read is listed
with its error rather than breaking the list. Metadata comes from the fast header reader, which
skips the vocabulary's strings by their lengths and reads every key and tensor info (some files
keep general.file_type after the vocabulary; the parameter count is the tensors' sum), and
`MetadataCache` keeps it between runs so a second listing opens no model file that has not
changed.

The steps have their own modules: `catalog_walk` finds the files (`catalog_ollama` reads Ollama's
manifests), `catalog_groups` joins them into models, `catalog_cache` keeps the headers; what
file names mean is `model_names`, where models are kept is `model_locations`. This module builds
the entries and reads the headers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_desktop.core.catalog_cache import (
    HEADER_FIELDS,
    HEADER_INT_FIELDS,
    HEADER_OPTIONAL_STR_FIELDS,
    MetadataCache,
)
from llm_desktop.core.catalog_groups import GroupedModel, group
from llm_desktop.core.catalog_ollama import OLLAMA_MODEL_MEDIA_TYPE
from llm_desktop.core.catalog_walk import Found, walk
from llm_desktop.core.events import ERROR_MESSAGES, ErrorKind, ModelError
from llm_desktop.core.gguf_header import GGUFInfo, read_gguf
from llm_desktop.core.model_locations import (
    APP_NAME,
    SOURCE_FOLDER,
    default_models_dir,
    huggingface_repo,
    known_locations,
)
from llm_desktop.core.model_names import clean_stem, model_id, model_id_for, split_parts
from llm_desktop.core.model_names import size_label as format_parameter_count

log = logging.getLogger(__name__)

# What callers reach through `catalog`; the walk, the grouping, the cache and the naming rules
# have their own modules.
__all__ = [
    "APP_NAME",
    "OLLAMA_MODEL_MEDIA_TYPE",
    "MetadataCache",
    "ModelEntry",
    "default_models_dir",
    "entry_from_header",
    "known_locations",
    "model_id",
    "scan",
    "split_parts",
    "summarize_header",
]

DISPLAY_NAME_MAX_CHARS = 200
# The header's fields an entry carries as they are; the name becomes the display name, and the
# error is the entry's own (a missing part is one too).
# llama.cpp's LLAMA_POOLING_TYPE_MEAN, _CLS and _LAST: the pooled output of an embedding model.
EMBEDDING_POOLING_TYPES = frozenset({1, 2, 3})
_ENTRY_HEADER_FIELDS = tuple(name for name in HEADER_FIELDS if name not in ("name", "error"))


@dataclass(frozen=True)
class ModelEntry:
    """One model as the catalog lists it: where it is, what it is, what loading it will need.

    The shape fields (layers, embedding, heads, key/value length, context length) are the raw
    header values, `None` where the header has no such key, so a memory estimate can tell a
    missing value from a real one. `error` is set when the model cannot be loaded as listed.
    """

    id: str
    path: str  # what to give llama.cpp: the first part of a multi-part model
    parts: tuple[str, ...]
    source: str
    display_name: str
    architecture: str
    size_label: str | None
    parameter_count: int | None
    quantization: str
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    vocab_size: int | None
    file_size: int  # all parts together
    mtime: float  # the newest part's, in seconds since the epoch
    error: str | None = None
    # llama.cpp's pooling type (1 mean, 2 CLS, 3 last) when the file declares one: the model
    # makes embeddings, not text.
    pooling_type: int | None = None
    # Characters of the file's own chat template (None: it has none, as base models do; chat
    # then uses llama.cpp's built-in template of its family).
    chat_template_size: int | None = None
    # The remote engine that lists it ("lab-gpu"; `path` is then its id there); None for a
    # file on this machine.
    engine: str | None = None
    # What that engine will run it with, as far as its command line says (`router_options`).
    engine_context: int | None = None
    engine_gpu_layers: int | None = None

    @property
    def makes_embeddings(self) -> bool:
        return self.pooling_type in EMBEDDING_POOLING_TYPES

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template_size)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parts"] = list(self.parts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEntry:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["parts"] = tuple(fields.get("parts", ()))
        return cls(**fields)


def scan(
    dirs: Iterable[Path | str] | None = None,
    *,
    include_known: bool = True,
    cache: MetadataCache | None = None,
) -> list[ModelEntry]:
    """List the models in `dirs` (default: the app's models folder) and, with `include_known`,
    in the folders of LM Studio, the Hugging Face hub cache and Ollama; sorted by display name.

    Missing or unreadable folders are skipped; an unreadable model is listed with `error` set.
    With a `cache`, unchanged files are not opened and the cache is saved before returning.
    """
    roots: list[tuple[str, Path]] = [
        (SOURCE_FOLDER, Path(d).expanduser())
        for d in (dirs if dirs is not None else [default_models_dir()])
    ]
    if include_known:
        roots += known_locations()

    visited_dirs: set[str] = set()
    found: list[Found] = []
    for source, root in roots:
        found.extend(walk(root, source, visited_dirs))

    entries = [_entry(model, cache) for model in group(found)]
    if cache is not None:
        try:
            cache.save()
        except OSError as exc:
            log.warning("Could not save the model cache %s: %s", cache.path, exc)
    entries.sort(key=lambda entry: (entry.display_name.casefold(), entry.path))
    return entries


def _entry(model: GroupedModel, cache: MetadataCache | None) -> ModelEntry:
    header = _header(model.first, cache) if model.first is not None else _failed_header(None)
    error = _missing_parts_message(model.missing_parts, model.part_count) or header["error"]
    return entry_from_header(
        header,
        id=model_id_for(model.path, model.real_path),
        path=model.path,
        parts=tuple(part.path for part in model.parts),
        source=model.source,
        display_name=_display_name(model, header["name"]),
        file_size=sum(part.size for part in model.parts),
        mtime=max(part.mtime_ns for part in model.parts) / 1e9,
        error=error,
    )


def entry_from_header(
    header: dict[str, Any],
    *,
    id: str,
    path: str,
    parts: tuple[str, ...],
    source: str,
    display_name: str,
    file_size: int,
    mtime: float,
    error: str | None = None,
) -> ModelEntry:
    """An entry from `summarize_header`'s fields and where the model is: the catalog's for a
    file on this machine, `gguf_remote`'s for one read over HTTP."""
    return ModelEntry(
        id=id,
        path=path,
        parts=parts,
        source=source,
        display_name=display_name,
        **{name: header[name] for name in _ENTRY_HEADER_FIELDS},
        file_size=file_size,
        mtime=mtime,
        error=error,
    )


def _missing_parts_message(missing: list[int], count: int) -> str | None:
    if not missing:
        return None
    noun = "part" if len(missing) == 1 else "parts"
    return f"{noun} {', '.join(map(str, missing))} of {count} missing"


def _display_name(model: GroupedModel, header_name: str | None) -> str:
    first = model.first or model.parts[0]
    if first.ollama_name:
        return first.ollama_name
    name = " ".join(header_name.split()) if header_name else ""
    if not name:
        name = huggingface_repo(model.path) or clean_stem(os.path.basename(model.path))
    return name[:DISPLAY_NAME_MAX_CHARS]


def _header(item: Found, cache: MetadataCache | None) -> dict[str, Any]:
    if cache is not None:
        cached = cache.get(item.real_path, item.size, item.mtime_ns)
        if cached is not None and not _from_the_reader_that_stopped_early(cached):
            return cached
    try:
        header = summarize_header(read_gguf(item.path))
    except ModelError as exc:
        header = _failed_header(exc.info.message)
    except OSError as exc:
        return _failed_header(_os_error_message(exc))
    except Exception as exc:  # a reader bug must cost one entry, not the whole list
        log.exception("Reading the header of %s failed", item.path)
        return _failed_header(f"Could not read the model header: {exc}")
    if cache is not None:
        cache.put(item.real_path, item.size, item.mtime_ns, header)
    return header


def _from_the_reader_that_stopped_early(header: dict[str, Any]) -> bool:
    """Whether a cached header was read by the earlier catalog reader, which stopped at the
    vocabulary: it never had a parameter count and missed keys stored after the vocabulary
    (the quantization, for some files). Every header read since has a count or an error."""
    return header["error"] is None and header["parameter_count"] is None


def summarize_header(info: GGUFInfo) -> dict[str, Any]:
    """The catalog's fields of a read header (a local file's or, over HTTP, a remote one's):
    what a `ModelEntry` says about the model, and what `MetadataCache` keeps."""
    parameter_count = info.parameter_count
    size_label = info.size_label
    if size_label is None and parameter_count:
        size_label = format_parameter_count(parameter_count)
    return {
        "name": info.name,
        "architecture": info.architecture,
        "size_label": size_label,
        "parameter_count": parameter_count,
        "quantization": info.quantization,
        "context_length": info.context_length,
        "block_count": info.block_count,
        "embedding_length": info.embedding_length,
        "head_count": info.head_count,
        "head_count_kv": info.head_count_kv,
        "key_length": info.key_length,
        "value_length": info.value_length,
        "vocab_size": info.vocab_size,
        "pooling_type": info.pooling_type,
        "chat_template_size": info.chat_template_size,
        "error": None,
    }


def _failed_header(error: str | None) -> dict[str, Any]:
    header: dict[str, Any] = dict.fromkeys(HEADER_INT_FIELDS + HEADER_OPTIONAL_STR_FIELDS)
    header.update(architecture="unknown", quantization="unknown", error=error)
    return header


def _os_error_message(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return ERROR_MESSAGES[ErrorKind.NOT_FOUND]
    if isinstance(exc, PermissionError):
        return ERROR_MESSAGES[ErrorKind.PERMISSION_DENIED]
    return f"Could not read the model file: {exc.strerror or exc}"
