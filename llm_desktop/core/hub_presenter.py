"""What a person reads in "Get models", for every surface: the search's lines and its hits, a
repository's listing, each model it offers (its size, fit badge and button), why something
failed, and the transfer tray's summary line.

One presenter, as `presenter.py` is for the model cards: the Qt widgets (`ui/get_models.py`,
`ui/hub_browser.py`, `ui/transfers_panel.py`) bind these views, the server renders them into the
page's HTML and sends them as JSON (`to_dict`) for `getmodels.js` to bind, and the CLI prints
them. None of those formats a size or writes a label of its own. Built from `hf_hub`'s
`RepoHit`, `RepoListing` and `RemoteModel`, the fit verdicts and the transfers' views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from llm_desktop.core import hf_hub
from llm_desktop.core.download import KEY_PREFIX
from llm_desktop.core.events import ModelError, Stage
from llm_desktop.core.fit import FitVerdict, format_bytes
from llm_desktop.core.presenter import FACTS_SEPARATOR, FitBadge, fit_badge
from llm_desktop.core.transfer_presenter import TransferView

GATED_LABEL = "Gated"
GATED_HINT = "Gated: accept its terms on the hub, then log in (hf auth login) or set HF_TOKEN"
RECOMMENDED_LABEL = "Recommended"
# Verdicts of a badge that is not (yet) a fit verdict; both surfaces colour them quietly.
FIT_PENDING = "pending"
FIT_UNKNOWN = "unknown"
# Stages whose button shows how far the download is.
_COUNTING = frozenset({Stage.DOWNLOADING, Stage.PAUSED, Stage.RETRYING})

SEARCHING = "Searching the hub for “{query}”…"
SEARCHING_ALL = "Listing the hub's GGUF repositories…"
LISTING = "Reading the files of {repo}…"
# The lines the page shows before the server answers ({query} and {repo} filled in by the page).
PAGE_TEXT = {
    "hub.searching": SEARCHING,
    "hub.searching_all": SEARCHING_ALL,
    "hub.listing": LISTING,
}


@dataclass(frozen=True)
class Button:
    """A button of Get models: what it does ("download", "load", or "" while a download
    runs), its words, the name a screen reader says, its hint, whether it can be pressed now
    and whether it is the one to press."""

    action: str
    label: str
    accessible_name: str
    hint: str = ""
    enabled: bool = True
    primary: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HitView:
    """One repository a search found."""

    repo_id: str
    title: str
    owner: str
    name: str
    facts: str  # "1,520 downloads · 42 likes · updated 2026-11-20"
    gated: bool
    gated_label: str  # "Gated" or ""
    gated_hint: str  # what to do about it, or ""
    accessible_name: str
    href: str  # the page that lists its models (the link works without scripts)
    open: Button  # show its models

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "open": self.open.to_dict()}


@dataclass(frozen=True)
class SearchView:
    query: str
    summary: str  # "3 repositories for “qwen”", "No GGUF repositories match “x”"
    hits: tuple[HitView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "summary": self.summary,
            "hits": [hit.to_dict() for hit in self.hits],
        }


@dataclass(frozen=True)
class RemoteModelView:
    """One model a repository offers, with its fit and its button."""

    key: str  # the transfer key its download has
    reference: str  # what a download is given: "org/repo:file.gguf"
    repo_id: str
    file: str  # the (first) file's path in the repository
    title: str
    quantization: str
    size_text: str
    facts: str  # "12.3 MB" or "41.9 MB in 2 files"
    recommended: bool
    recommended_label: str  # "Recommended" or ""
    fit: FitBadge | None  # checking, unknown (and why) or the verdict; None: nobody reads it
    button: Button
    accessible_name: str

    @property
    def fit_pending(self) -> bool:
        """Its header is still to be read (the page reads it after the listing)."""
        return self.fit is None or self.fit.verdict == FIT_PENDING

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in self.__dataclass_fields__},
            "button": self.button.to_dict(),
            "fit": asdict(self.fit) if self.fit else None,
            "fit_pending": self.fit_pending,
        }


@dataclass(frozen=True)
class RepoView:
    """A repository's listing: its header, and the models when the caller gave them."""

    repo_id: str
    title: str
    summary: str  # "3 GGUF models · commit fc6cb39a", "No GGUF models in this repository"
    gated: bool
    gated_label: str  # "Gated" or ""
    gated_hint: str  # what to do about it, or ""
    models: tuple[RemoteModelView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in self.__dataclass_fields__},
            "models": [model.to_dict() for model in self.models],
        }


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


# -- searching ------------------------------------------------------------------------------------


def page_href(query: str | None, repo_id: str | None = None) -> str:
    """The page's address that searches for `query` and lists `repo_id`'s models."""
    values = {"q": query or "", **({"repo": repo_id} if repo_id else {})}
    return f"/?{urlencode(values)}#hub-repo"


def searching_text(query: str) -> str:
    return SEARCHING.format(query=query.strip()) if query.strip() else SEARCHING_ALL


def results_text(query: str, hits: list[hf_hub.RepoHit]) -> str:
    query = query.strip()
    if not hits:
        return f"No GGUF repositories match “{query}”" if query else "No GGUF repositories found"
    where = f" for “{query}”" if query else ""
    return _count(len(hits), "repository", "repositories") + where


def hit_view(hit: hf_hub.RepoHit, query: str = "") -> HitView:
    owner, _, name = hit.repo_id.partition("/")
    facts = [_count(hit.downloads, "download", "downloads"), _count(hit.likes, "like", "likes")]
    if hit.updated:
        facts.append(f"updated {hit.updated}")
    spoken = [hit.repo_id, *facts, *([GATED_HINT] if hit.gated else [])]
    return HitView(
        repo_id=hit.repo_id,
        title=hit.repo_id,
        owner=owner,
        name=name or hit.repo_id,
        facts=FACTS_SEPARATOR.join(facts),
        gated=hit.gated,
        gated_label=GATED_LABEL if hit.gated else "",
        gated_hint=GATED_HINT if hit.gated else "",
        accessible_name=", ".join(spoken),
        href=page_href(query.strip(), hit.repo_id),
        open=Button("open", "Show models", f"Show models of {hit.repo_id}"),
    )


def search_view(query: str, hits: list[hf_hub.RepoHit]) -> SearchView:
    return SearchView(
        query.strip(), results_text(query, hits), tuple(hit_view(hit, query) for hit in hits)
    )


# -- a repository and its models ------------------------------------------------------------------


def listing_loading_text(repo_id: str) -> str:
    return LISTING.format(repo=repo_id)


def repo_view(listing: hf_hub.RepoListing, models: Iterable[RemoteModelView] = ()) -> RepoView:
    """The listing's header; `models` its rows (from `model_views`), or none where the caller
    shows each row on its own."""
    count = len(listing.models)
    parts = [_count(count, "GGUF model", "GGUF models") if count else "No GGUF models"]
    if listing.commit:
        parts.append(f"commit {listing.commit[:8]}")
    return RepoView(
        repo_id=listing.repo_id,
        title=listing.repo_id,
        summary=FACTS_SEPARATOR.join(parts),
        gated=listing.gated,
        gated_label=GATED_LABEL if listing.gated else "",
        gated_hint=GATED_HINT if listing.gated else "",
        models=tuple(models),
    )


def download_reference(model: hf_hub.RemoteModel) -> str:
    """The reference that names exactly this model: its repository and first file."""
    return f"{model.repo_id}:{model.first.path}"


def download_key(model: hf_hub.RemoteModel) -> str:
    return KEY_PREFIX + download_reference(model)


def recommended_key(listing: hf_hub.RepoListing) -> str | None:
    """The model `pull org/repo` would take (the usual balance of size and quality)."""
    if not listing.models:
        return None
    return download_key(hf_hub.choose(listing, None))


def model_views(
    listing: hf_hub.RepoListing,
    fits: Mapping[str, FitBadge | None] | None = None,
    *,
    fit: FitBadge | None = None,
) -> tuple[RemoteModelView, ...]:
    """Each model of `listing`, with its badge from `fits` (by download key) or else `fit`."""
    fits = fits or {}
    recommended = recommended_key(listing)
    return tuple(
        remote_model_view(
            model,
            fit=fits.get(download_key(model), fit),
            recommended=download_key(model) == recommended,
        )
        for model in listing.models
    )


def remote_model_view(
    model: hf_hub.RemoteModel,
    *,
    fit: FitBadge | None = None,
    transfer: TransferView | None = None,
    on_disk: str | None = None,
    recommended: bool = False,
) -> RemoteModelView:
    """A repository's model: `transfer` is its download's row if there is one, `on_disk` the
    path where an earlier download left it."""
    size = format_bytes(model.size)
    parts = len(model.files)
    facts = size if parts == 1 else f"{size} in {parts} files"
    spoken = [model.label, facts, *([fit.text] if fit else [])]
    return RemoteModelView(
        key=download_key(model),
        reference=download_reference(model),
        repo_id=model.repo_id,
        file=model.first.path,
        title=model.name,
        quantization=model.quantization,
        size_text=size,
        facts=facts,
        recommended=recommended,
        recommended_label=RECOMMENDED_LABEL if recommended else "",
        fit=fit,
        button=_button(model, facts, transfer, on_disk, recommended),
        accessible_name=", ".join(spoken),
    )


def _button(
    model: hf_hub.RemoteModel,
    facts: str,
    transfer: TransferView | None,
    on_disk: str | None,
    recommended: bool,
) -> Button:
    label = model.label
    if transfer is not None and transfer.active:
        text = transfer.stage_label
        if transfer.stage in _COUNTING:
            text = f"{text} {transfer.pct}%"
        return Button(
            "", text, f"{label}: {text}", "Pause, resume or cancel it under Transfers", False
        )
    if transfer is not None and transfer.stage is Stage.COMPLETE and transfer.result_path:
        return Button(
            "load", "Load", f"Load {label}", f"Downloaded to {transfer.result_path}", True, True
        )
    if on_disk and transfer is None:
        return Button("load", "Load", f"Load {label}", f"Downloaded to {on_disk}")
    resuming = transfer is not None and transfer.stage in (Stage.FAILED, Stage.CANCELLED)
    return Button(
        "download",
        "Download",
        f"Download {label} ({facts})",
        "Into the Hugging Face cache; the model then appears in the library"
        + ("; it continues from the bytes kept, if any" if resuming else ""),
        True,
        recommended,
    )


# -- fit ------------------------------------------------------------------------------------------


def fit_checking() -> FitBadge:
    return FitBadge(
        FIT_PENDING,
        "Checking fit…",
        "Reading the model's header from the hub to see whether it fits this machine",
        "Memory fit: checking",
    )


def fit_unknown(reason: str) -> FitBadge:
    return FitBadge(FIT_UNKNOWN, "Fit unknown", reason, f"Memory fit unknown: {reason}")


def fit_of(verdict: FitVerdict | None, error: str | None = None) -> FitBadge:
    """The badge for a finished header read: its verdict, or why there is none."""
    badge = fit_badge(verdict)
    if badge is not None:
        return badge
    return fit_unknown(error or "The model's header could not be read")


def fit_failure_text(exc: BaseException) -> str:
    """Why a model's header could not be read: the core's named message, or what the parser
    could not make sense of (never a traceback)."""
    if isinstance(exc, ModelError):
        return exc.info.message
    return f"The model's header could not be read ({type(exc).__name__}: {exc})"


def fit_answer(model: hf_hub.RemoteModel, verdict: FitVerdict) -> dict[str, Any]:
    """A fit read for the page: the verdict and the badge a person reads."""
    return {
        "reference": download_reference(model),
        "verdict": verdict.to_dict(),
        "badge": asdict(fit_of(verdict)),
    }


# -- failures and the tray -----------------------------------------------------------------------


def error_text(exc: BaseException, doing: str) -> str:
    """A failure of the hub as a person reads it: the core's named message, never a traceback."""
    if isinstance(exc, ModelError):
        return exc.info.message
    return hf_hub.hub_error(exc, doing).info.message


def tray_summary(views: Iterable[TransferView]) -> str:
    """The transfer tray's header line: "2 running · 1 done"."""
    views = list(views)
    running = sum(1 for view in views if view.active)
    done = sum(1 for view in views if view.stage is Stage.COMPLETE)
    failed = sum(1 for view in views if view.stage in (Stage.FAILED, Stage.CANCELLED))
    parts = []
    if running:
        parts.append(f"{running} running")
    if done:
        parts.append(f"{done} done")
    if failed:
        parts.append(f"{failed} stopped")
    return FACTS_SEPARATOR.join(parts)
