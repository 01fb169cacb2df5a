"""The Hugging Face Hub, as the app sees it: repositories of GGUF models and their files.

Everything that talks to the hub's API goes through the official `huggingface_hub` client, so the
endpoint (`HF_ENDPOINT`), the token (`HF_TOKEN` or the one `hf auth login` stored) and the cache
layout are the ones every other tool on this machine uses. The bytes themselves are fetched by
`core/transfer.py`, which can pause, resume and report progress the way a person needs.

A repository's GGUF files become `RemoteModel`s: one per file, except that the parts of a split
model ("name-00001-of-00003.gguf") are one model, as the local catalog lists them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from llm_desktop.core.events import ErrorKind, ModelError
from llm_desktop.core.model_names import SPLIT_NAME, clean_stem

SEARCH_LIMIT = 30
# What a GGUF file name says its quantization is ("…-Q4_K_M.gguf", "….IQ4_XS.gguf", "…-f16.gguf").
_QUANT_IN_NAME = re.compile(
    r"(?:^|[-_.])(?P<quant>I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4(?:_MOE)?|TQ\d_\d)(?=$|[-_.])",
    re.IGNORECASE,
)
# Which file `pull org/repo` takes when no quantization is named: the usual balance of size and
# quality, as llama.cpp's own `-hf` default does.
DEFAULT_QUANTS = ("Q4_K_M", "Q4_K_S", "Q4_0", "Q5_K_M", "Q8_0")


@dataclass(frozen=True)
class RepoHit:
    """One repository a search found."""

    repo_id: str
    downloads: int
    likes: int
    updated: str | None  # ISO date of the last commit, when the hub says
    gated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "downloads": self.downloads,
            "likes": self.likes,
            "updated": self.updated,
            "gated": self.gated,
        }


@dataclass(frozen=True)
class RemoteFile:
    path: str  # inside the repository
    size: int
    sha256: str | None  # from the hub's LFS metadata; None for a file stored without LFS

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class RemoteModel:
    """One model a repository offers: a single GGUF file or all parts of a split one."""

    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]  # in part order
    quantization: str

    @property
    def size(self) -> int:
        return sum(file.size for file in self.files)

    @property
    def first(self) -> RemoteFile:
        return self.files[0]

    @property
    def name(self) -> str:
        return clean_stem(os.path.basename(self.first.path))

    @property
    def label(self) -> str:
        """What a person calls it: "org/repo · Q4_K_M"."""
        return f"{self.repo_id} · {self.quantization}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "commit": self.commit,
            "name": self.name,
            "quantization": self.quantization,
            "size": self.size,
            "label": self.label,
            "files": [file.to_dict() for file in self.files],
        }


@dataclass(frozen=True)
class RepoListing:
    repo_id: str
    commit: str
    gated: bool
    models: tuple[RemoteModel, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "commit": self.commit,
            "gated": self.gated,
            "models": [model.to_dict() for model in self.models],
        }


def endpoint() -> str:
    """The hub's address: `HF_ENDPOINT` as it is now, else huggingface_hub's default.

    huggingface_hub reads `HF_ENDPOINT` once, at import; reading it here as well lets a process
    that set it later (a test, the demo) reach the hub it named."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def token() -> str | None:
    """The user's token: `HF_TOKEN`, else the one `hf auth login` stored; None without one."""
    from huggingface_hub import get_token

    return os.environ.get("HF_TOKEN") or get_token()


def auth_headers() -> dict[str, str]:
    """The headers huggingface_hub itself sends (user agent, and the token when there is one)."""
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(token=token() or False)


def file_url(repo_id: str, path: str, revision: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, path, revision=revision, endpoint=endpoint())


def quantization_from_name(file_name: str) -> str | None:
    """The quantization a file's name states ("Q4_K_M"), or None when it states none."""
    found = None
    for match in _QUANT_IN_NAME.finditer(clean_stem(file_name)):
        found = match["quant"].upper()  # the last one: "Qwen2-7B-Q8_0" is Q8_0, not Q2
    return found


def search(text: str, limit: int = SEARCH_LIMIT) -> list[RepoHit]:
    """GGUF repositories whose name contains `text`, most downloaded first."""
    api = _api()
    try:
        found = api.list_models(
            search=text.strip() or None,
            filter="gguf",
            sort="downloads",
            limit=limit,
            expand=["downloads", "likes", "lastModified", "gated"],
        )
        return [_hit(info) for info in found]
    except Exception as exc:
        raise hub_error(exc, f"Searching the hub for {text!r}") from exc


def list_models(repo_id: str, revision: str | None = None) -> RepoListing:
    """The GGUF models of `repo_id` with their sizes and checksums, at one commit."""
    api = _api()
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:
        raise hub_error(exc, f"Reading {repo_id}") from exc
    files = []
    for sibling in info.siblings or ():
        if not sibling.rfilename.lower().endswith(".gguf"):
            continue
        lfs = sibling.lfs
        sha256 = getattr(lfs, "sha256", None) if lfs is not None else None
        size = sibling.size if sibling.size is not None else getattr(lfs, "size", 0)
        files.append(RemoteFile(sibling.rfilename, int(size or 0), sha256))
    commit = info.sha or revision or "main"
    return RepoListing(
        repo_id=repo_id,
        commit=commit,
        gated=bool(info.gated),
        models=tuple(group_files(repo_id, commit, files)),
    )


def group_files(repo_id: str, commit: str, files: list[RemoteFile]) -> list[RemoteModel]:
    """Files as models: split parts joined (all parts present, in order), the rest one each;
    models whose split set is incomplete on the hub are left out rather than offered broken."""
    singles: list[RemoteModel] = []
    splits: dict[tuple[str, int], dict[int, RemoteFile]] = {}
    for file in sorted(files, key=lambda f: f.path):
        split = SPLIT_NAME.match(os.path.basename(file.path))
        if split:
            key = (os.path.join(os.path.dirname(file.path), split["base"]), int(split["count"]))
            splits.setdefault(key, {})[int(split["index"])] = file
        else:
            singles.append(_model(repo_id, commit, (file,)))
    for (_base, count), parts in splits.items():
        if sorted(parts) == list(range(1, count + 1)):
            ordered = tuple(parts[index] for index in range(1, count + 1))
            singles.append(_model(repo_id, commit, ordered))
    return sorted(singles, key=lambda model: (model.size, model.first.path))


def choose(listing: RepoListing, selector: str | None) -> RemoteModel:
    """The model `selector` names: a file name (or the path of its first part), or a
    quantization ("Q4_K_M", any case). Without one, the first of `DEFAULT_QUANTS` offered, else
    the smallest model. A selector that names nothing is a NOT_FOUND listing what there is."""
    if not listing.models:
        raise ModelError(ErrorKind.NOT_FOUND, f"{listing.repo_id} has no GGUF files")
    if selector:
        wanted = selector.strip()
        for model in listing.models:
            paths = {file.path for file in model.files} | {os.path.basename(model.first.path)}
            if wanted in paths or model.quantization.upper() == wanted.upper():
                return model
        offered = ", ".join(model.quantization for model in listing.models)
        raise ModelError(
            ErrorKind.NOT_FOUND, f"{listing.repo_id} has no {wanted!r}; it offers: {offered}"
        )
    by_quant = {model.quantization.upper(): model for model in reversed(listing.models)}
    for quant in DEFAULT_QUANTS:
        if quant in by_quant:
            return by_quant[quant]
    return listing.models[0]


def parse_reference(reference: str) -> tuple[str, str | None]:
    """ "org/repo", "org/repo:Q4_K_M" or "org/repo:file.gguf" as (repo_id, selector)."""
    repo_id, _, selector = reference.strip().partition(":")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ModelError(
            ErrorKind.NOT_FOUND,
            f"{reference!r} is not a hub repository: write it as org/name, "
            "optionally with :QUANT or :FILE",
        )
    return repo_id, selector or None


def hub_error(exc: BaseException, doing: str) -> ModelError:
    """A failure of the hub client, named: not found, unauthorized, rate limited or network."""
    from huggingface_hub import errors

    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, errors.GatedRepoError):
        return ModelError(
            ErrorKind.UNAUTHORIZED,
            f"{doing}: the repository is gated; accept its terms on the hub and log in "
            "(hf auth login) or set HF_TOKEN",
        )
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, errors.RepositoryNotFoundError) or status == 401:
        # The hub answers 401 for a private repository, so "not found" may mean "not yours".
        hint = "" if token() else " (if it is private, log in with hf auth login or set HF_TOKEN)"
        return ModelError(ErrorKind.NOT_FOUND, f"{doing}: no such repository{hint}")
    if isinstance(exc, (errors.EntryNotFoundError, errors.RevisionNotFoundError)) or status == 404:
        return ModelError(ErrorKind.NOT_FOUND, f"{doing}: not found on the hub")
    if status == 403:
        return ModelError(ErrorKind.UNAUTHORIZED, f"{doing}: access denied by the hub")
    if status == 429:
        return ModelError(
            ErrorKind.RATE_LIMITED, f"{doing}: the hub is limiting requests; try again later"
        )
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ModelError(ErrorKind.NETWORK, f"{doing}: could not reach the hub ({reason})")


def _api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), token=token() or False)


def _hit(info: Any) -> RepoHit:
    updated = getattr(info, "last_modified", None)
    return RepoHit(
        repo_id=info.id,
        downloads=int(getattr(info, "downloads", 0) or 0),
        likes=int(getattr(info, "likes", 0) or 0),
        updated=updated.date().isoformat() if hasattr(updated, "date") else None,
        gated=bool(getattr(info, "gated", False)),
    )


def _model(repo_id: str, commit: str, files: tuple[RemoteFile, ...]) -> RemoteModel:
    quant = quantization_from_name(os.path.basename(files[0].path))
    return RemoteModel(repo_id, commit, files, quant or "GGUF")
