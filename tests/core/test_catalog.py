"""The catalog lists every model once, with the header's metadata, whatever the folder holds."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from llm_desktop.core import catalog
from llm_desktop.core.catalog import MetadataCache, ModelEntry, known_locations, model_id, scan
from llm_desktop.core.demo import DemoSpec, size_label, write_demo_model
from llm_desktop.core.gguf_header import read_gguf
from tests.core.test_gguf_header import late_keys_parameters, write_late_keys_model

ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{10}$")
LOCATION_ENV = (
    "HF_HOME",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "XDG_CACHE_HOME",
    "OLLAMA_MODELS",
    "LLM_DESKTOP_MODELS_DIR",
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees an empty home, so the machine's own models never leak into a listing."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for name in LOCATION_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def template_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_model(tmp_path_factory.mktemp("template") / "template.gguf")


def list_folder(folder: Path, **kwargs) -> list[ModelEntry]:
    return scan([folder], include_known=False, **kwargs)


def by_name(entries: list[ModelEntry]) -> dict[str, ModelEntry]:
    return {Path(entry.path).name: entry for entry in entries}


def test_entry_carries_the_header_metadata(tmp_path: Path) -> None:
    spec = DemoSpec(name="Tiny Test", context_length=4096, heads=4, kv_heads=2, layers=3)
    path = write_demo_model(tmp_path / "models" / "Tiny-Test.Q8.gguf", spec)

    (entry,) = list_folder(tmp_path / "models")

    assert entry.path == str(path)
    assert entry.parts == (str(path),)
    assert entry.id == model_id(path)
    assert entry.source == "folder"
    assert entry.display_name == "Tiny Test"
    assert entry.architecture == "llama"
    assert entry.size_label == size_label(spec.parameter_count())
    assert entry.quantization == "F32"
    assert entry.context_length == 4096
    assert entry.block_count == 3
    assert entry.embedding_length == 64
    assert entry.head_count == 4
    assert entry.head_count_kv == 2
    assert entry.key_length is None and entry.value_length is None
    assert entry.vocab_size == spec.vocab
    assert entry.file_size == path.stat().st_size
    assert entry.mtime == pytest.approx(path.stat().st_mtime)
    assert entry.error is None


def test_entry_round_trips_through_json(tmp_path: Path) -> None:
    write_demo_model(tmp_path / "m.gguf")
    (entry,) = list_folder(tmp_path)

    data = json.loads(json.dumps(entry.to_dict()))

    assert data["parts"] == [entry.path]
    assert ModelEntry.from_dict(data) == entry


def test_model_id_is_a_slug_plus_a_hash_of_the_real_path(tmp_path: Path) -> None:
    path = tmp_path / "a" / "TinyLlama-1.1B-Q4_K_M.gguf"
    other = tmp_path / "b" / "TinyLlama-1.1B-Q4_K_M.gguf"
    link = tmp_path / "link.gguf"
    for file in (path, other):
        file.parent.mkdir()
        file.write_bytes(b"")
    link.symlink_to(path)

    identifier = model_id(path)

    assert ID_PATTERN.match(identifier)
    assert identifier.startswith("tinyllama-1-1b-q4-k-m-")
    assert model_id(str(path)) == identifier  # stable, str or Path
    assert model_id(other) != identifier  # same name, other file
    assert model_id(link).endswith(identifier[-10:])  # same file through a symlink
    assert ID_PATTERN.match(model_id(tmp_path / "....gguf"))


def test_nested_folders_are_walked(tmp_path: Path, template_model: Path) -> None:
    models = tmp_path / "models"
    for relative in ("top.gguf", "a/one.gguf", "a/b/c/deep.GGUF", "z/last.gguf"):
        (models / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_model, models / relative)
    (models / "a" / "notes.txt").write_text("not a model")
    (models / "a" / "model.gguf.part").write_bytes(b"downloading")

    entries = list_folder(models)

    assert sorted(by_name(entries)) == ["deep.GGUF", "last.gguf", "one.gguf", "top.gguf"]
    assert all(entry.error is None and entry.block_count == 2 for entry in entries)


def test_split_model_is_one_entry(tmp_path: Path) -> None:
    first = write_demo_model(tmp_path / "split" / "big.gguf", DemoSpec(split_max_tensors=10))
    parts = sorted((tmp_path / "split").iterdir())
    assert len(parts) == 3 and first == parts[0]

    (entry,) = list_folder(tmp_path)

    assert entry.path == str(first)
    assert entry.parts == tuple(str(part) for part in parts)
    assert entry.file_size == sum(part.stat().st_size for part in parts)
    assert entry.display_name == "llm-desktop demo"
    assert entry.block_count == 2 and entry.vocab_size == DemoSpec().vocab
    assert entry.id == model_id(first) and entry.id.startswith("big-")
    assert entry.error is None


def test_split_model_without_part_one_is_listed_with_an_error(tmp_path: Path) -> None:
    first = write_demo_model(tmp_path / "split" / "big.gguf", DemoSpec(split_max_tensors=10))
    first.unlink()

    (entry,) = list_folder(tmp_path)

    assert entry.error == "part 1 of 3 missing"
    assert entry.path == str(first)
    assert entry.id == model_id(first)
    assert [Path(part).name for part in entry.parts] == [
        "big-00002-of-00003.gguf",
        "big-00003-of-00003.gguf",
    ]
    assert entry.display_name == "big"
    assert entry.block_count is None


def test_split_model_without_a_later_part_keeps_its_metadata(tmp_path: Path) -> None:
    first = write_demo_model(tmp_path / "split" / "big.gguf", DemoSpec(split_max_tensors=10))
    (tmp_path / "split" / "big-00003-of-00003.gguf").unlink()

    (entry,) = list_folder(tmp_path)

    assert entry.path == str(first)
    assert entry.error == "part 3 of 3 missing"
    assert entry.block_count == 2


def test_corrupt_and_empty_files_are_listed_with_errors(tmp_path: Path) -> None:
    write_demo_model(tmp_path / "good.gguf")
    (tmp_path / "empty.gguf").write_bytes(b"")
    (tmp_path / "corrupt.gguf").write_bytes(b"NOPE" + os.urandom(200))
    truncated = (tmp_path / "good.gguf").read_bytes()[:300]
    (tmp_path / "truncated.gguf").write_bytes(truncated)

    entries = by_name(list_folder(tmp_path))

    assert entries["good.gguf"].error is None
    for name in ("empty.gguf", "corrupt.gguf", "truncated.gguf"):
        entry = entries[name]
        assert entry.error and entry.error.startswith("Not a valid GGUF model"), entry.error
        assert entry.architecture == "unknown" and entry.block_count is None
        assert entry.display_name == Path(name).stem
    assert "empty" in entries["empty.gguf"].error
    assert "GGUF signature" in entries["corrupt.gguf"].error


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_and_folder(tmp_path: Path, template_model: Path) -> None:
    shutil.copyfile(template_model, tmp_path / "locked.gguf")
    (tmp_path / "locked.gguf").chmod(0)
    (tmp_path / "closed").mkdir()
    shutil.copyfile(template_model, tmp_path / "closed" / "hidden.gguf")
    (tmp_path / "closed").chmod(0)
    try:
        (entry,) = list_folder(tmp_path)
    finally:
        (tmp_path / "closed").chmod(0o755)

    assert entry.error == "Permission denied accessing model file"


def test_read_and_listing_errors_are_contained(
    tmp_path: Path, template_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as above for any user, root included: the OS errors are simulated."""
    for name in ("locked.gguf", "odd.gguf", "fine.gguf"):
        shutil.copyfile(template_model, tmp_path / name)
    (tmp_path / "closed").mkdir()
    shutil.copyfile(template_model, tmp_path / "closed" / "hidden.gguf")
    real_scandir = os.scandir

    def failing_read(path, **kwargs):
        name = Path(path).name
        if name == "locked.gguf":
            raise PermissionError(13, "Permission denied", str(path))
        if name == "odd.gguf":
            raise RuntimeError("reader bug")
        return read_gguf(path, **kwargs)

    def failing_scandir(path="."):
        if Path(path).name == "closed":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(catalog, "read_gguf", failing_read)
    monkeypatch.setattr(os, "scandir", failing_scandir)
    entries = by_name(list_folder(tmp_path))

    assert sorted(entries) == ["fine.gguf", "locked.gguf", "odd.gguf"]
    assert entries["locked.gguf"].error == "Permission denied accessing model file"
    assert entries["odd.gguf"].error == "Could not read the model header: reader bug"
    assert entries["fine.gguf"].error is None


def test_large_vocabulary_is_counted_not_read(tmp_path: Path) -> None:
    spec = DemoSpec(vocab=150_000, embedding=8, heads=2, kv_heads=2, feed_forward=16)
    write_demo_model(tmp_path / "wide.gguf", spec)

    (entry,) = list_folder(tmp_path)

    assert entry.vocab_size == 150_000
    assert entry.block_count == 2 and entry.error is None


def test_keys_after_a_long_vocabulary_reach_the_card(tmp_path: Path) -> None:
    # As the real Gemma-3 270M Q4_K_M file: general.file_type follows the vocabulary.
    write_late_keys_model(tmp_path / "late.gguf", layers=3)

    (entry,) = list_folder(tmp_path)

    assert entry.error is None
    assert entry.quantization == "Q4_K_M"
    assert entry.parameter_count == late_keys_parameters(3)
    assert entry.size_label == size_label(late_keys_parameters(3))  # the header has none
    assert entry.vocab_size == 5_000 and entry.block_count == 3


def test_quantization_of_a_file_without_a_file_type_is_guessed(tmp_path: Path) -> None:
    write_late_keys_model(tmp_path / "unmarked.gguf", file_type=None)

    (entry,) = list_folder(tmp_path)

    assert entry.quantization == "Q4_K_M (guessed)"  # llama.cpp's guess, and its words


def test_lmstudio_folders_are_found(isolated_home: Path, template_model: Path) -> None:
    new = isolated_home / ".lmstudio" / "models" / "publisher" / "repo" / "model-q4.gguf"
    old = isolated_home / ".cache" / "lm-studio" / "models" / "pub" / "repo" / "old.gguf"
    for path in (new, old):
        path.parent.mkdir(parents=True)
        shutil.copyfile(template_model, path)

    assert [source for source, _ in known_locations()] == ["lmstudio", "lmstudio"]
    entries = scan([isolated_home / "nowhere"])

    assert sorted(entry.path for entry in entries) == sorted([str(new), str(old)])
    assert {entry.source for entry in entries} == {"lmstudio"}


def make_hub_repo(hub: Path, repo: str, template: Path, file_name: str) -> Path:
    """A hub cache layout: the snapshot file is a relative symlink to a blob."""
    repo_dir = hub / f"models--{repo.replace('/', '--')}"
    blob = repo_dir / "blobs" / "0123456789abcdef0123456789abcdef01234567"
    blob.parent.mkdir(parents=True)
    shutil.copyfile(template, blob)
    snapshot = repo_dir / "snapshots" / "deadbeef" / file_name
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(Path("..", "..", "blobs", blob.name))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("deadbeef")
    # The hub marks files it looked for and did not find with empty files under .no_exist.
    (repo_dir / ".no_exist" / "deadbeef").mkdir(parents=True)
    (repo_dir / ".no_exist" / "deadbeef" / "other.gguf").write_bytes(b"")
    return snapshot


def test_huggingface_hub_cache_is_found(isolated_home: Path, tmp_path: Path) -> None:
    unnamed = write_demo_model(tmp_path / "unnamed.gguf", DemoSpec(name=""))
    hub = isolated_home / ".cache" / "huggingface" / "hub"
    snapshot = make_hub_repo(hub, "someorg/Tiny-GGUF", unnamed, "tiny-Q4_K_M.gguf")

    assert known_locations() == [("huggingface", hub)]
    (entry,) = scan([], include_known=True)

    assert entry.path == str(snapshot)  # the snapshot path, not the blob
    assert entry.source == "huggingface"
    assert entry.display_name == "someorg/Tiny-GGUF"
    assert entry.id.startswith("tiny-q4-k-m-")
    assert entry.error is None and entry.block_count == 2


def test_huggingface_cache_location_follows_the_environment(
    isolated_home: Path, tmp_path: Path, template_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf_home = tmp_path / "hf"
    make_hub_repo(hf_home / "hub", "org/a", template_model, "a.gguf")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    assert known_locations() == [("huggingface", hf_home / "hub")]

    explicit = tmp_path / "explicit-hub"
    make_hub_repo(explicit, "org/b", template_model, "b.gguf")
    monkeypatch.setenv("HF_HUB_CACHE", str(explicit))
    assert known_locations() == [("huggingface", explicit)]


def write_ollama_model(root: Path, manifest: str, blob_source: Path, seed: str) -> Path:
    digest = (seed * 64)[:64]
    blob = root / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    if not blob.exists():
        shutil.copyfile(blob_source, blob)
    manifest_path = root / "manifests" / manifest
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    layers = [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "e" * 64},
        {
            "mediaType": "application/vnd.ollama.image.model",
            "digest": f"sha256:{digest}",
            "size": blob.stat().st_size,
        },
    ]
    manifest_path.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))
    return blob


def model_layer(digest: str) -> str:
    return json.dumps(
        {"layers": [{"mediaType": catalog.OLLAMA_MODEL_MEDIA_TYPE, "digest": digest}]}
    )


def write_manifest(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_ollama_manifests_name_their_blobs(
    isolated_home: Path, template_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = isolated_home / ".ollama" / "models"
    llama = write_ollama_model(root, "registry.ollama.ai/library/llama3/8b", template_model, "a")
    write_ollama_model(root, "registry.ollama.ai/library/llama3/latest", template_model, "a")
    other = write_ollama_model(root, "registry.ollama.ai/someone/coder/q4", template_model, "b")
    hf = write_ollama_model(root, "hf.co/org/Repo-GGUF/Q8_0", template_model, "c")
    library = root / "manifests" / "registry.ollama.ai" / "library"
    write_manifest(library / "broken" / "latest", "{not json")
    write_manifest(library / "gone" / "latest", model_layer("sha256:" + "f" * 64))
    write_manifest(library / "evil" / "latest", model_layer("sha256:../../../etc/passwd"))

    assert known_locations() == [("ollama", root)]
    entries = scan([], include_known=True)

    # Two tags of one blob are one model, named by the explicit tag.
    assert [(entry.display_name, entry.path) for entry in entries] == [
        ("hf.co/org/Repo-GGUF:Q8_0", str(hf)),
        ("llama3:8b", str(llama)),
        ("someone/coder:q4", str(other)),
    ]
    assert {entry.source for entry in entries} == {"ollama"}
    assert all(entry.error is None and entry.block_count == 2 for entry in entries)

    custom = isolated_home / "elsewhere"
    write_ollama_model(custom, "registry.ollama.ai/library/phi/mini", template_model, "d")
    monkeypatch.setenv("OLLAMA_MODELS", str(custom))
    assert [entry.display_name for entry in scan([], include_known=True)] == ["phi:mini"]


def test_symlink_loop_does_not_hang(tmp_path: Path, template_model: Path) -> None:
    models = tmp_path / "models"
    (models / "a" / "b").mkdir(parents=True)
    shutil.copyfile(template_model, models / "a" / "b" / "m.gguf")
    (models / "a" / "b" / "back-to-top").symlink_to(models, target_is_directory=True)
    (models / "a" / "self").symlink_to(models / "a" / "self")
    (models / "dangling.gguf").symlink_to(tmp_path / "missing.gguf")

    entries = list_folder(models)

    assert [Path(entry.path).name for entry in entries] == ["m.gguf"]


def test_same_file_reached_twice_is_listed_once(tmp_path: Path, template_model: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(template_model, models / "real.gguf")
    (models / "alias.gguf").symlink_to(models / "real.gguf")
    other = tmp_path / "other"
    other.mkdir()
    (other / "linked-dir").symlink_to(models, target_is_directory=True)
    (other / "link.gguf").symlink_to(models / "real.gguf")

    entries = scan([models, other, models / ".." / "models"], include_known=False)

    (entry,) = entries
    assert entry.path == str(models / "real.gguf")  # where it really is, not an alias
    assert entry.id == model_id(models / "real.gguf") == model_id(other / "link.gguf")
    assert entry.id.startswith("real-")


def test_relative_folder_gives_absolute_paths(
    tmp_path: Path, template_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(template_model, tmp_path / "m.gguf")
    monkeypatch.chdir(tmp_path)

    (entry,) = scan(["."], include_known=False)

    assert entry.path == str(tmp_path / "m.gguf")


def test_folder_given_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "my-models"
    write_demo_model(folder / "m.gguf")
    monkeypatch.setenv("LLM_DESKTOP_MODELS_DIR", str(folder))

    assert catalog.default_models_dir() == folder
    assert [entry.path for entry in scan()] == [str(folder / "m.gguf")]


def test_missing_folders_and_a_file_given_directly(tmp_path: Path, template_model: Path) -> None:
    assert scan([tmp_path / "absent"], include_known=False) == []
    blob = tmp_path / "sha256-abc"
    shutil.copyfile(template_model, blob)

    (entry,) = scan([blob], include_known=False)

    assert entry.path == str(blob) and entry.error is None


def test_sorted_by_display_name_ignoring_case(tmp_path: Path) -> None:
    for name in ("beta", "Alpha", "gamma", "Delta"):
        write_demo_model(tmp_path / f"{name}.gguf", DemoSpec(name=name, layers=1))

    names = [entry.display_name for entry in list_folder(tmp_path)]

    assert names == ["Alpha", "beta", "Delta", "gamma"]


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []

    def counting_read(path, **kwargs):
        reads.append(os.fspath(path))
        return read_gguf(path, **kwargs)

    monkeypatch.setattr(catalog, "read_gguf", counting_read)
    return reads


def test_cache_hit_avoids_reading_and_a_change_reads_again(
    tmp_path: Path, template_model: Path, counted_reads: list[str]
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for index in range(3):
        shutil.copyfile(template_model, models / f"m{index}.gguf")
    (models / "bad.gguf").write_bytes(b"junk" * 10)
    cache_path = tmp_path / "cache" / "catalog-v1.json"

    first = list_folder(models, cache=MetadataCache(cache_path))
    assert len(counted_reads) == 4
    assert cache_path.is_file()

    counted_reads.clear()
    second = list_folder(models, cache=MetadataCache(cache_path))
    assert counted_reads == []  # errors of content are cached too
    assert second == first

    stat = (models / "m1.gguf").stat()
    os.utime(models / "m1.gguf", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    third = list_folder(models, cache=MetadataCache(cache_path))
    assert counted_reads == [str(models / "m1.gguf")]
    assert by_name(third)["m1.gguf"].mtime != by_name(first)["m1.gguf"].mtime


def test_cache_follows_a_replaced_file(tmp_path: Path, counted_reads: list[str]) -> None:
    path = write_demo_model(tmp_path / "models" / "m.gguf", DemoSpec(name="old", layers=1))
    cache = MetadataCache(tmp_path / "cache.json")
    assert list_folder(tmp_path / "models", cache=cache)[0].display_name == "old"
    stat = path.stat()
    write_demo_model(path, DemoSpec(name="new", layers=3))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, other size

    (entry,) = list_folder(tmp_path / "models", cache=MetadataCache(tmp_path / "cache.json"))

    assert entry.display_name == "new" and entry.block_count == 3
    assert len(counted_reads) == 2


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 99, "entries": {}}',
        b'{"version": 1, "entries": []}',
        b'{"version": 1, "entries": {"X": {"size": 1, "mtime_ns": 1, "header": 3}}}',
    ],
)
def test_corrupt_cache_is_ignored_and_rewritten(
    tmp_path: Path, template_model: Path, content: bytes
) -> None:
    shutil.copyfile(template_model, tmp_path / "m.gguf")
    cache_path = tmp_path / "cache" / "catalog-v1.json"
    cache_path.parent.mkdir()
    cache_path.write_bytes(content)

    (entry,) = scan([tmp_path / "m.gguf"], include_known=False, cache=MetadataCache(cache_path))

    assert entry.error is None and entry.block_count == 2
    data = json.loads(cache_path.read_text())
    assert data["version"] == 1
    assert list(data["entries"]) == [os.path.realpath(tmp_path / "m.gguf")]
    assert not [p for p in cache_path.parent.iterdir() if p != cache_path]  # no temp left


@pytest.mark.parametrize(
    "header",
    [
        {"architecture": "llama", "quantization": "F32", "block_count": "lots"},
        {"architecture": "llama", "quantization": "F32", "block_count": 7},  # fields missing
    ],
)
def test_malformed_cache_record_is_read_again(
    tmp_path: Path, template_model: Path, counted_reads: list[str], header: dict
) -> None:
    model = tmp_path / "m.gguf"
    shutil.copyfile(template_model, model)
    stat = model.stat()
    cache_path = tmp_path / "cache.json"
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "header": header}
    cache_path.write_text(json.dumps({"version": 1, "entries": {str(model): record}}))

    (entry,) = list_folder(tmp_path, cache=MetadataCache(cache_path))

    assert entry.block_count == 2 and len(counted_reads) == 1


def test_header_cached_by_the_reader_that_stopped_at_the_vocabulary_is_read_again(
    tmp_path: Path, counted_reads: list[str]
) -> None:
    model = write_late_keys_model(tmp_path / "models" / "late.gguf")
    stat = model.stat()
    cache_path = tmp_path / "cache.json"
    # What the earlier reader stored for this file: no parameter count, no quantization.
    stale = catalog.summarize_header(read_gguf(model))
    stale.update(quantization="unknown", parameter_count=None, size_label=None)
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "header": stale}
    cache_path.write_text(json.dumps({"version": 1, "entries": {str(model): record}}))

    (entry,) = list_folder(tmp_path / "models", cache=MetadataCache(cache_path))

    assert entry.quantization == "Q4_K_M" and entry.parameter_count == late_keys_parameters(2)
    assert counted_reads == [str(model)]
    counted_reads.clear()
    assert list_folder(tmp_path / "models", cache=MetadataCache(cache_path)) == [entry]
    assert counted_reads == []  # what it stored instead is used


def test_cache_forgets_deleted_files(tmp_path: Path, template_model: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("keep.gguf", "drop.gguf"):
        shutil.copyfile(template_model, models / name)
    cache_path = tmp_path / "cache.json"
    list_folder(models, cache=MetadataCache(cache_path))
    (models / "drop.gguf").unlink()
    shutil.copyfile(template_model, models / "new.gguf")

    list_folder(models, cache=MetadataCache(cache_path))

    kept = json.loads(cache_path.read_text())["entries"]
    assert sorted(Path(path).name for path in kept) == ["keep.gguf", "new.gguf"]


def test_two_hundred_models_all_listed_right(
    tmp_path: Path, template_model: Path, counted_reads: list[str]
) -> None:
    models = tmp_path / "models"
    for index in range(200):
        folder = models / f"group{index % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_model, folder / f"model-{index:03d}.gguf")
    expected = {str(path) for path in models.rglob("*.gguf")}
    cache = MetadataCache(tmp_path / "cache.json")

    entries = list_folder(models, cache=cache)

    assert {entry.path for entry in entries} == expected
    assert len({entry.id for entry in entries}) == 200
    for entry in entries:
        assert entry.id == model_id(entry.path)
        assert ID_PATTERN.match(entry.id)
        assert entry.error is None
        assert entry.display_name == "llm-desktop demo"
        assert (entry.block_count, entry.embedding_length, entry.vocab_size) == (2, 64, 259)
        assert entry.file_size == template_model.stat().st_size
    assert len(counted_reads) == 200

    counted_reads.clear()
    assert list_folder(models, cache=MetadataCache(tmp_path / "cache.json")) == entries
    assert counted_reads == []
