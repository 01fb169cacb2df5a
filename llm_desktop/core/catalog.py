"""Find the GGUF models on this machine and describe them without loading them.

`scan()` walks the app's own models folder plus the places other tools keep models (LM Studio,
the Hugging Face hub cache, Ollama) and returns one `ModelEntry` per model: multi-part files are
one model, a file reachable by two paths is listed once, and a file that cannot be read is listed
with its error rather than breaking the list. Metadata comes from the fast header reader in
summary mode, which stops before the vocabulary, and `MetadataCache` keeps it between runs so a
second listing opens no model file that has not changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from llm_desktop.core.demo import size_label as format_parameter_count
from llm_desktop.core.events import ERROR_MESSAGES, ErrorKind, ModelError
from llm_desktop.core.gguf_header import GGUFInfo, read_gguf

log = logging.getLogger(__name__)

APP_NAME = "llm-desktop"
MODELS_DIR_ENV = "LLM_DESKTOP_MODELS_DIR"
CACHE_FILE_NAME = "catalog-v1.json"
CACHE_FORMAT_VERSION = 1

SOURCE_FOLDER = "folder"
SOURCE_LMSTUDIO = "lmstudio"
SOURCE_HUGGINGFACE = "huggingface"
SOURCE_OLLAMA = "ollama"

OLLAMA_MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
OLLAMA_LIBRARY_NAMESPACE = "library"
# A manifest is a few hundred bytes; anything far larger is not one, and is not read whole.
OLLAMA_MANIFEST_MAX_BYTES = 1 << 20

# llama.cpp names the parts of a split model "<stem>-%05d-of-%05d.gguf".
_SPLIT_NAME = re.compile(
    r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})(?P<ext>\.gguf)$", re.IGNORECASE
)
_GGUF_SUFFIX = re.compile(r"\.gguf$", re.IGNORECASE)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# The digest names a file under blobs/, so it must be exactly a digest and never a path.
_OLLAMA_DIGEST = re.compile(r"^sha256[:-](?P<hex>[0-9a-f]{64})$")
SLUG_MAX_CHARS = 48
ID_HASH_CHARS = 10
DISPLAY_NAME_MAX_CHARS = 200


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parts"] = list(self.parts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEntry:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["parts"] = tuple(fields.get("parts", ()))
        return cls(**fields)


# What the header says about a model, the part of an entry the cache keeps. Types are checked
# when a cache file is read, since that file is outside this program's control.
_HEADER_STR_FIELDS = ("architecture", "quantization")
_HEADER_OPTIONAL_STR_FIELDS = ("name", "size_label", "error")
_HEADER_INT_FIELDS = (
    "parameter_count",
    "context_length",
    "block_count",
    "embedding_length",
    "head_count",
    "head_count_kv",
    "key_length",
    "value_length",
    "vocab_size",
)
_HEADER_FIELDS = _HEADER_STR_FIELDS + _HEADER_OPTIONAL_STR_FIELDS + _HEADER_INT_FIELDS


def model_id(path: str | os.PathLike[str]) -> str:
    """A stable id for the model whose (first) file is `path`.

    A readable slug of the file name, then the first hex digits of the SHA-1 of the file's real
    path: the same file reached through symlinks gets the same id, two files with the same name
    in different folders do not. The id is not stable across renames or moves, by design: a
    moved file is, to llama.cpp, a different path.
    """
    path = os.fspath(path)
    return _model_id(path, os.path.realpath(path))


def _model_id(path: str, real_path: str) -> str:
    digest = hashlib.sha1(_path_key(real_path).encode("utf-8", "surrogateescape")).hexdigest()
    # The real file's name keeps the id the same whichever alias is seen first; a hub or Ollama
    # blob is named by its hash, though, so there the name the link gives is the readable one.
    real_name = os.path.basename(real_path)
    name = real_name if _GGUF_SUFFIX.search(real_name) else os.path.basename(path)
    return f"{_slug(_clean_stem(name))}-{digest[:ID_HASH_CHARS]}"


def _slug(text: str) -> str:
    slug = _NOT_SLUG.sub("-", text.lower()).strip("-")
    return slug[:SLUG_MAX_CHARS].rstrip("-") or "model"


def _clean_stem(file_name: str) -> str:
    split = _SPLIT_NAME.match(file_name)
    stem = split["base"] if split else _GGUF_SUFFIX.sub("", file_name)
    return stem.strip() or file_name


def _path_key(real_path: str) -> str:
    # Windows paths differ in case only when they name the same file.
    return os.path.normcase(real_path)


def split_parts(first: Path) -> list[Path]:
    """All files of a `name-00001-of-0000N.gguf` model (just `first` for a single file)."""
    split = _SPLIT_NAME.match(first.name)
    if split is None:
        return [first]
    base, count, ext = split["base"], int(split["count"]), split["ext"]
    return [
        first.with_name(f"{base}-{index:05d}-of-{count:05d}{ext}") for index in range(1, count + 1)
    ]


def default_models_dir() -> Path:
    """The app's own models folder; `LLM_DESKTOP_MODELS_DIR` overrides it."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path(APP_NAME) / "models"


def default_cache_path() -> Path:
    return platformdirs.user_cache_path(APP_NAME) / CACHE_FILE_NAME


def known_locations() -> list[tuple[str, Path]]:
    """(source, folder) for each folder other tools keep models in that exists here."""
    home = Path.home()
    locations = [
        (SOURCE_LMSTUDIO, home / ".lmstudio" / "models"),
        (SOURCE_LMSTUDIO, home / ".cache" / "lm-studio" / "models"),
        (SOURCE_HUGGINGFACE, _huggingface_hub_cache(home)),
        (SOURCE_OLLAMA, _env_path("OLLAMA_MODELS") or home / ".ollama" / "models"),
    ]
    return [(source, folder) for source, folder in locations if _is_dir(folder)]


def _huggingface_hub_cache(home: Path) -> Path:
    # The order huggingface_hub itself resolves its cache in.
    explicit = _env_path("HF_HUB_CACHE") or _env_path("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return explicit
    hf_home = _env_path("HF_HOME")
    if hf_home:
        return hf_home / "hub"
    cache_home = _env_path("XDG_CACHE_HOME") or home / ".cache"
    return cache_home / "huggingface" / "hub"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


class MetadataCache:
    """Header metadata by real path, kept in a JSON file between runs.

    A hit needs the file's size and mtime (in ns) to match what was stored, so a replaced or
    re-downloaded file is read again. Read errors of the file's content are cached too (a corrupt
    file stays corrupt until it changes); OS errors are not, since permissions change without
    touching mtime. An unreadable or malformed cache file is ignored and rewritten on save.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self._entries: dict[str, dict[str, Any]] | None = None
        self._used: set[str] = set()
        self._dirty = False
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._loaded())

    def get(self, real_path: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
        """The stored header fields for this file, or None when absent or stale."""
        key = _path_key(real_path)
        with self._lock:
            record = self._loaded().get(key)
            self._used.add(key)
        if not isinstance(record, dict):
            return None
        if record.get("size") != size or record.get("mtime_ns") != mtime_ns:
            return None
        header = record.get("header")
        if not _is_valid_header(header):
            return None
        return {key: header.get(key) for key in _HEADER_FIELDS}

    def put(self, real_path: str, size: int, mtime_ns: int, header: dict[str, Any]) -> None:
        key = _path_key(real_path)
        with self._lock:
            self._loaded()[key] = {"size": size, "mtime_ns": mtime_ns, "header": dict(header)}
            self._used.add(key)
            self._dirty = True

    def save(self) -> None:
        """Write the cache if anything changed: to a temporary file, then renamed over the old
        one, so a crash mid-write never leaves a half-written cache."""
        with self._lock:
            entries = self._loaded()
            if not self._dirty:
                return
            # Forget files that are gone; ones merely outside this scan's folders are kept.
            for key in [k for k in entries if k not in self._used and not os.path.exists(k)]:
                del entries[key]
            payload = json.dumps(
                {"version": CACHE_FORMAT_VERSION, "entries": entries}, separators=(",", ":")
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_path = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as temp_file:
                    temp_file.write(payload)
                os.replace(temp_path, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp_path)
                raise
            self._dirty = False

    def _loaded(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read_file()
        return self._entries

    def _read_file(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("Ignoring unreadable model cache %s: %s", self.path, exc)
            self._dirty = True
            return {}
        is_current = isinstance(data, dict) and data.get("version") == CACHE_FORMAT_VERSION
        entries = data.get("entries") if is_current else None
        if not isinstance(entries, dict):
            log.info(
                "Ignoring model cache %s: not a version %d cache", self.path, CACHE_FORMAT_VERSION
            )
            self._dirty = True
            return {}
        return entries


def _is_valid_header(header: Any) -> bool:
    # Every field present: a record missing one would show None until the file changed.
    if not isinstance(header, dict) or not all(key in header for key in _HEADER_FIELDS):
        return False
    for key in _HEADER_STR_FIELDS:
        if not isinstance(header.get(key), str):
            return False
    for key in _HEADER_OPTIONAL_STR_FIELDS:
        if not isinstance(header.get(key), str | None):
            return False
    for key in _HEADER_INT_FIELDS:
        value = header.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return False
    return True


@dataclass
class _Found:
    """A file that may be (part of) a model, as the walk reached it."""

    path: str  # as reached: an HF snapshot link, not the blob it points to
    real_path: str
    size: int
    mtime_ns: int
    source: str
    ollama_name: str | None = None


@dataclass
class _Model:
    """Files grouped into one model; `first` is None when part 1 of a split model is missing."""

    path: str
    real_path: str
    source: str
    first: _Found | None
    parts: list[_Found] = field(default_factory=list)
    missing_parts: list[int] = field(default_factory=list)
    part_count: int = 1


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
    found: list[_Found] = []
    for source, root in roots:
        found.extend(_walk(root, source, visited_dirs))

    entries = [_entry(model, cache) for model in _group(found)]
    if cache is not None:
        try:
            cache.save()
        except OSError as exc:
            log.warning("Could not save the model cache %s: %s", cache.path, exc)
    entries.sort(key=lambda entry: (entry.display_name.casefold(), entry.path))
    return entries


def _walk(root: Path, source: str, visited_dirs: set[str]) -> Iterator[_Found]:
    """Model files under `root`, depth first in name order, each directory once however many
    symlinks lead to it (which is also what stops symlink loops)."""
    root_path = os.path.abspath(root)  # entries outlive the working directory
    try:
        if os.path.isfile(root_path):  # a file named explicitly is taken whatever its name
            stat = os.stat(root_path)
            yield _Found(
                root_path, os.path.realpath(root_path), stat.st_size, stat.st_mtime_ns, source
            )
            return
    except OSError:
        return
    real_root = os.path.realpath(root_path)
    if _path_key(real_root) in visited_dirs or not os.path.isdir(real_root):
        return
    visited_dirs.add(_path_key(real_root))

    stack = [(root_path, real_root)]
    while stack:
        dir_path, real_dir = stack.pop()
        try:
            with os.scandir(dir_path) as listing:
                children = sorted(listing, key=lambda child: child.name)
        except OSError:
            continue
        names = {child.name for child in children}
        if "manifests" in names and "blobs" in names:
            yield from _ollama_models(dir_path, visited_dirs)
        subdirs: list[tuple[str, str]] = []
        for child in children:
            # Hidden entries are other tools' bookkeeping (the hub's .no_exist markers, macOS
            # "._" resource forks on external drives), never models to list.
            if child.name.startswith("."):
                continue
            try:
                is_symlink = child.is_symlink()
                if child.name.lower().endswith(".gguf") and child.is_file():
                    stat = child.stat()
                    real_path = (
                        os.path.realpath(child.path)
                        if is_symlink
                        else os.path.join(real_dir, child.name)
                    )
                    file_source = _source_for(child.path, source)
                    yield _Found(child.path, real_path, stat.st_size, stat.st_mtime_ns, file_source)
                elif child.is_dir():
                    real_path = (
                        os.path.realpath(child.path)
                        if is_symlink
                        else os.path.join(real_dir, child.name)
                    )
                    if _path_key(real_path) not in visited_dirs:
                        visited_dirs.add(_path_key(real_path))
                        subdirs.append((child.path, real_path))
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def _source_for(path: str, root_source: str) -> str:
    if root_source == SOURCE_FOLDER and _huggingface_repo(path) is not None:
        return SOURCE_HUGGINGFACE
    return root_source


def _huggingface_repo(path: str) -> str | None:
    """The hub's "org/name" for a file in a snapshot (models--org--name/snapshots/<rev>/...)."""
    parts = Path(path).parts
    for index in range(len(parts) - 3, -1, -1):
        if parts[index].startswith("models--") and parts[index + 1] == "snapshots":
            return parts[index].removeprefix("models--").replace("--", "/", 1)
    return None


def _ollama_models(root: str, visited_dirs: set[str]) -> Iterator[_Found]:
    """The model blob of every readable manifest under `root`/manifests."""
    manifests_dir = os.path.join(root, "manifests")
    named_blobs: list[tuple[str, str]] = []
    for manifest_path in _files_under(manifests_dir, visited_dirs):
        digest = _ollama_model_digest(manifest_path)
        if digest is None:
            continue
        relative = Path(os.path.relpath(manifest_path, manifests_dir)).parts
        named_blobs.append((_ollama_name(relative), os.path.join(root, "blobs", digest)))
    # Tags often share a blob and only one name is listed: prefer an explicit tag to "latest".
    named_blobs.sort(key=lambda item: (item[0].endswith(":latest"), item[0].casefold()))
    for name, blob in named_blobs:
        try:
            stat = os.stat(blob)
        except OSError:  # not pulled yet, or pulled partly: Ollama cannot run it either
            continue
        yield _Found(
            blob, os.path.realpath(blob), stat.st_size, stat.st_mtime_ns, SOURCE_OLLAMA, name
        )


def _files_under(top: str, visited_dirs: set[str]) -> Iterator[str]:
    stack = [top]
    while stack:
        directory = stack.pop()
        real_dir = _path_key(os.path.realpath(directory))
        if real_dir in visited_dirs:
            continue
        visited_dirs.add(real_dir)
        try:
            with os.scandir(directory) as listing:
                children = sorted(listing, key=lambda child: child.name)
        except OSError:
            continue
        for child in children:
            if child.name.startswith("."):
                continue
            try:
                if child.is_dir():
                    stack.append(child.path)
                elif child.is_file():
                    yield child.path
            except OSError:
                continue


def _ollama_model_digest(manifest_path: str) -> str | None:
    """The blob file name of the manifest's model layer, or None for anything malformed."""
    try:
        with open(manifest_path, "rb") as handle:
            manifest = json.loads(handle.read(OLLAMA_MANIFEST_MAX_BYTES))
    except (OSError, ValueError):
        return None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        return None
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_MEDIA_TYPE:
            match = _OLLAMA_DIGEST.match(str(layer.get("digest", "")))
            return f"sha256-{match['hex']}" if match else None
    return None


def _ollama_name(relative: tuple[str, ...]) -> str:
    """The name Ollama shows for a manifest at manifests/<registry>/<namespace>/<model>/<tag>."""
    *repository, tag = relative
    # Ollama leaves its own registry, and then its own library namespace, out of names.
    if len(repository) >= 3 and repository[0] == OLLAMA_DEFAULT_REGISTRY:
        repository = repository[1:]
        if len(repository) == 2 and repository[0] == OLLAMA_LIBRARY_NAMESPACE:
            repository = repository[1:]
    return f"{'/'.join(repository)}:{tag}" if repository else tag


def _group(found: list[_Found]) -> list[_Model]:
    """Split parts joined into one model each, then one model per real path, first seen wins."""
    groups: dict[tuple[str, ...], list[tuple[int, _Found]]] = {}
    for item in found:
        split = _SPLIT_NAME.match(os.path.basename(item.path)) if item.ollama_name is None else None
        index, count = (int(split["index"]), int(split["count"])) if split else (0, 0)
        if split and 1 <= index <= count:
            directory = os.path.dirname(item.path)
            key = ("split", _path_key(directory), split["base"], str(count))
            groups.setdefault(key, []).append((index, item))
        else:
            key = ("file", _path_key(item.real_path))
            kept = groups.get(key)
            # Reached both directly and through a link: list it where it really is.
            if kept is None or (kept[0][1].path != item.real_path == item.path):
                groups[key] = [(0, item)]

    models: list[_Model] = []
    seen: set[str] = set()
    for key, members in groups.items():
        if key[0] == "file":
            (_, item), *_ = members
            model = _Model(item.path, item.real_path, item.source, item, [item])
        else:
            model = _split_model(members)
        if _path_key(model.real_path) in seen:
            continue
        seen.add(_path_key(model.real_path))
        models.append(model)
    return models


def _split_model(members: list[tuple[int, _Found]]) -> _Model:
    by_index: dict[int, _Found] = {}
    for index, item in members:
        by_index.setdefault(index, item)
    any_part = next(iter(by_index.values()))
    split = _SPLIT_NAME.match(os.path.basename(any_part.path))
    assert split is not None  # grouped by this very match
    count = int(split["count"])
    parts = [by_index[index] for index in sorted(by_index)]
    missing = [index for index in range(1, count + 1) if index not in by_index]
    first = by_index.get(1)
    if first is not None:
        path, real_path = first.path, first.real_path
    else:
        first_name = f"{split['base']}-{1:05d}-of-{count:05d}{split['ext']}"
        path = os.path.join(os.path.dirname(any_part.path), first_name)
        real_path = os.path.join(os.path.realpath(os.path.dirname(any_part.path)), first_name)
    return _Model(path, real_path, any_part.source, first, parts, missing, count)


def _entry(model: _Model, cache: MetadataCache | None) -> ModelEntry:
    header = _header(model.first, cache) if model.first is not None else _failed_header(None)
    error = _missing_parts_message(model.missing_parts, model.part_count) or header["error"]
    return ModelEntry(
        id=_model_id(model.path, model.real_path),
        path=model.path,
        parts=tuple(part.path for part in model.parts),
        source=model.source,
        display_name=_display_name(model, header["name"]),
        architecture=header["architecture"],
        size_label=header["size_label"],
        parameter_count=header["parameter_count"],
        quantization=header["quantization"],
        context_length=header["context_length"],
        block_count=header["block_count"],
        embedding_length=header["embedding_length"],
        head_count=header["head_count"],
        head_count_kv=header["head_count_kv"],
        key_length=header["key_length"],
        value_length=header["value_length"],
        vocab_size=header["vocab_size"],
        file_size=sum(part.size for part in model.parts),
        mtime=max(part.mtime_ns for part in model.parts) / 1e9,
        error=error,
    )


def _missing_parts_message(missing: list[int], count: int) -> str | None:
    if not missing:
        return None
    noun = "part" if len(missing) == 1 else "parts"
    return f"{noun} {', '.join(map(str, missing))} of {count} missing"


def _display_name(model: _Model, header_name: str | None) -> str:
    first = model.first or model.parts[0]
    if first.ollama_name:
        return first.ollama_name
    name = " ".join(header_name.split()) if header_name else ""
    if not name:
        name = _huggingface_repo(model.path) or _clean_stem(os.path.basename(model.path))
    return name[:DISPLAY_NAME_MAX_CHARS]


def _header(item: _Found, cache: MetadataCache | None) -> dict[str, Any]:
    if cache is not None:
        cached = cache.get(item.real_path, item.size, item.mtime_ns)
        if cached is not None:
            return cached
    try:
        header = _summarize(read_gguf(item.path, tensors=False))
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


def _summarize(info: GGUFInfo) -> dict[str, Any]:
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
        "error": None,
    }


def _failed_header(error: str | None) -> dict[str, Any]:
    header: dict[str, Any] = dict.fromkeys(_HEADER_INT_FIELDS + _HEADER_OPTIONAL_STR_FIELDS)
    header.update(architecture="unknown", quantization="unknown", error=error)
    return header


def _os_error_message(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return ERROR_MESSAGES[ErrorKind.NOT_FOUND]
    if isinstance(exc, PermissionError):
        return ERROR_MESSAGES[ErrorKind.PERMISSION_DENIED]
    return f"Could not read the model file: {exc.strerror or exc}"
