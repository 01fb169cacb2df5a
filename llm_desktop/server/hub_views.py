"""What a person reads about the hub on the page: search hits, a repository's models, fit badges.

The page's "Get models" section shows these views; the server renders them into HTML and sends
them as JSON for `llm.js` to bind, so the page formats no size and writes no label of its own
(the same contract as the model cards: `core/presenter.py`). Built from `core/hf_hub.py`'s
`RepoHit`, `RepoListing` and `RemoteModel` and the presenter's fit badge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from llm_desktop.core import hf_hub
from llm_desktop.core.fit import FitVerdict, format_bytes
from llm_desktop.core.presenter import FACTS_SEPARATOR, FitBadge, fit_badge

GATED_TEXT = "Gated: accept its terms on the hub and log in (hf auth login) to download"


@dataclass(frozen=True)
class Button:
    """A button of a hub view: its words, the name a screen reader says and its hint."""

    label: str
    accessible_name: str
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HitView:
    """One repository a search found."""

    repo_id: str
    title: str
    facts: str  # "1,520 downloads · 42 likes · updated 2026-11-20"
    gated: bool
    gated_text: str
    href: str  # the page that lists its models (the link works without scripts)
    open: Button  # show its models

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "open": self.open.to_dict()}


@dataclass(frozen=True)
class SearchView:
    query: str
    summary: str  # "3 repositories", "No GGUF repositories match 'x'"
    hits: tuple[HitView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "summary": self.summary,
            "hits": [hit.to_dict() for hit in self.hits],
        }


@dataclass(frozen=True)
class RemoteModelView:
    """One model a repository offers, with the button that downloads it."""

    reference: str  # what POST /api/downloads takes: "org/repo:file.gguf"
    repo_id: str
    file: str  # the (first) file's path in the repository
    title: str
    quantization: str
    size_text: str
    facts: str  # "12.3 MB" or "41.9 MB in 2 files"
    download: Button
    fit: FitBadge | None  # filled by a later /api/hub/fit, or by the page without scripts
    fit_error: str  # why the fit is unknown, "" when it is known or not asked yet

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in self.__dataclass_fields__},
            "download": self.download.to_dict(),
            "fit": asdict(self.fit) if self.fit else None,
        }


@dataclass(frozen=True)
class RepoView:
    repo_id: str
    title: str
    summary: str  # "3 GGUF models at 1a2b3c4d5e6f", "No GGUF files"
    gated_text: str
    models: tuple[RemoteModelView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "title": self.title,
            "summary": self.summary,
            "gated_text": self.gated_text,
            "models": [model.to_dict() for model in self.models],
        }


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def page_href(query: str | None, repo_id: str | None = None) -> str:
    """The page's address that searches for `query` and lists `repo_id`'s models."""
    values = {"q": query or "", **({"repo": repo_id} if repo_id else {})}
    return f"/?{urlencode(values)}#hub-repo"


def hit_view(hit: hf_hub.RepoHit, query: str = "") -> HitView:
    facts = [_count(hit.downloads, "download", "downloads"), _count(hit.likes, "like", "likes")]
    if hit.updated:
        facts.append(f"updated {hit.updated}")
    return HitView(
        repo_id=hit.repo_id,
        title=hit.repo_id,
        facts=FACTS_SEPARATOR.join(facts),
        gated=hit.gated,
        gated_text="Gated" if hit.gated else "",
        href=page_href(query, hit.repo_id),
        open=Button("Show models", f"Show models of {hit.repo_id}"),
    )


def search_view(query: str, hits: list[hf_hub.RepoHit]) -> SearchView:
    if hits:
        summary = _count(len(hits), "repository", "repositories")
    elif query.strip():
        summary = f"No GGUF repositories match {query.strip()!r}"
    else:
        summary = "No GGUF repositories found"
    return SearchView(query.strip(), summary, tuple(hit_view(hit, query.strip()) for hit in hits))


def remote_model_view(
    model: hf_hub.RemoteModel, fit: FitVerdict | None = None, fit_error: str = ""
) -> RemoteModelView:
    size = format_bytes(model.size)
    parts = len(model.files)
    title = model.name
    return RemoteModelView(
        reference=f"{model.repo_id}:{model.first.path}",
        repo_id=model.repo_id,
        file=model.first.path,
        title=title,
        quantization=model.quantization,
        size_text=size,
        facts=size if parts == 1 else f"{size} in {parts} files",
        download=Button(
            "Download",
            f"Download {model.label} ({size})",
            "Into the Hugging Face cache; the model then appears in the library",
        ),
        fit=fit_badge(fit),
        fit_error=fit_error,
    )


def repo_view(
    listing: hf_hub.RepoListing,
    fits: dict[str, FitVerdict | None] | None = None,
    fit_errors: dict[str, str] | None = None,
) -> RepoView:
    """`fits` and `fit_errors` by the model's first file path (the page without scripts)."""
    fits = fits or {}
    fit_errors = fit_errors or {}
    models = tuple(
        remote_model_view(model, fits.get(model.first.path), fit_errors.get(model.first.path, ""))
        for model in listing.models
    )
    if models:
        summary = f"{_count(len(models), 'GGUF model', 'GGUF models')} at {listing.commit[:12]}"
    else:
        summary = "No GGUF files in this repository"
    return RepoView(
        repo_id=listing.repo_id,
        title=listing.repo_id,
        summary=summary,
        gated_text=GATED_TEXT if listing.gated else "",
        models=models,
    )


def fit_answer(model: hf_hub.RemoteModel, verdict: FitVerdict) -> dict[str, Any]:
    """GET /api/hub/fit's answer: the verdict and the badge a person reads."""
    badge = fit_badge(verdict)
    return {
        "reference": f"{model.repo_id}:{model.first.path}",
        "verdict": verdict.to_dict(),
        "badge": asdict(badge) if badge else None,
    }
