"""What a person reads in "Get models": search results, a repository's models, their fit badges
and download buttons, and the transfer tray's summary line.

Qt-free (it imports only the core), like `core/presenter.py` and `core/transfer_presenter.py`:
the widgets in `get_models.py` and `transfers_panel.py` only bind these views. It sits in `ui/`
for now only because this round's owner of the core modules was someone else; it belongs beside
the other presenters in `core/` (nothing here needs moving but the file).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llm_desktop.core import hf_hub
from llm_desktop.core.download import KEY_PREFIX
from llm_desktop.core.events import ModelError, Stage
from llm_desktop.core.fit import FitVerdict, format_bytes
from llm_desktop.core.presenter import FACTS_SEPARATOR, FitBadge, fit_badge
from llm_desktop.core.transfer_presenter import TransferView

# Verdicts of a badge that is not (yet) a fit verdict; the stylesheet colours them quietly.
FIT_PENDING = "pending"
FIT_UNKNOWN = "unknown"
# Stages whose button shows how far the download is.
_COUNTING = frozenset({Stage.DOWNLOADING, Stage.PAUSED, Stage.RETRYING})


@dataclass(frozen=True)
class RepoView:
    """One search result."""

    repo_id: str
    owner: str
    name: str
    meta: str  # "↓ 1,520 · ♥ 42 · updated 2026-11-24"
    gated: bool
    gated_label: str  # "Gated" or ""
    gated_hint: str
    accessible_name: str


@dataclass(frozen=True)
class ButtonView:
    """A row's one button: what it does ("download", "load" or "" for none), says, and whether
    it can be pressed now."""

    action: str
    label: str
    enabled: bool
    accessible_name: str
    hint: str
    primary: bool


@dataclass(frozen=True)
class RemoteModelView:
    """One model a repository offers, with its fit and its download button."""

    key: str  # the transfer key its download has
    reference: str  # what `Transfers.download` is given: "org/repo:file.gguf"
    quantization: str
    size_text: str
    files_text: str  # the file name, or "name · 2 files" for a split model
    recommended: bool
    recommended_label: str
    fit: FitBadge
    button: ButtonView
    accessible_name: str


@dataclass(frozen=True)
class ListingView:
    """The header of the repository shown on the right."""

    repo_id: str
    title: str
    summary: str  # "3 GGUF models · commit fc6cb39a"
    gated: bool
    gated_label: str


def repo_view(hit: hf_hub.RepoHit) -> RepoView:
    owner, _, name = hit.repo_id.partition("/")
    parts = [f"↓ {hit.downloads:,}", f"♥ {hit.likes:,}"]
    if hit.updated:
        parts.append(f"updated {hit.updated}")
    spoken = [f"{hit.downloads:,} downloads", f"{hit.likes:,} likes"]
    if hit.gated:
        spoken.append("gated: accept its terms on the hub and log in to download")
    return RepoView(
        repo_id=hit.repo_id,
        owner=owner,
        name=name or hit.repo_id,
        meta=FACTS_SEPARATOR.join(parts),
        gated=hit.gated,
        gated_label="Gated" if hit.gated else "",
        gated_hint=(
            "Accept the model's terms on the hub, then log in (hf auth login) or set HF_TOKEN"
            if hit.gated
            else ""
        ),
        accessible_name=f"{hit.repo_id}, " + ", ".join(spoken),
    )


def searching_text(text: str) -> str:
    return f"Searching the hub for “{text.strip()}”…" if text.strip() else "Listing GGUF models…"


def results_text(text: str, hits: list[hf_hub.RepoHit]) -> str:
    if not hits:
        return (
            f"No GGUF repositories match “{text.strip()}”"
            if text.strip()
            else "The hub lists no GGUF repositories"
        )
    count = len(hits)
    noun = "repository" if count == 1 else "repositories"
    where = f" for “{text.strip()}”" if text.strip() else ""
    return f"{count} {noun}{where}"


def listing_loading_text(repo_id: str) -> str:
    return f"Reading {repo_id}…"


def listing_view(listing: hf_hub.RepoListing) -> ListingView:
    count = len(listing.models)
    noun = "GGUF model" if count == 1 else "GGUF models"
    parts = [f"{count} {noun}" if count else "No GGUF models in this repository"]
    if listing.commit:
        parts.append(f"commit {listing.commit[:8]}")
    return ListingView(
        repo_id=listing.repo_id,
        title=listing.repo_id,
        summary=FACTS_SEPARATOR.join(parts),
        gated=listing.gated,
        gated_label="Gated" if listing.gated else "",
    )


def download_reference(model: hf_hub.RemoteModel) -> str:
    """The reference that names exactly this model: its repository and first file."""
    return f"{model.repo_id}:{model.first.path}"


def download_key(model: hf_hub.RemoteModel) -> str:
    return KEY_PREFIX + download_reference(model)


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


def remote_model_view(
    model: hf_hub.RemoteModel,
    *,
    fit: FitBadge,
    transfer: TransferView | None = None,
    on_disk: str | None = None,
    recommended: bool = False,
) -> RemoteModelView:
    """A repository's model: `transfer` is its download's row if there is one, `on_disk` the
    path where an earlier download left it."""
    size = format_bytes(model.size)
    name = model.first.path.rsplit("/", 1)[-1]
    files = (
        name if len(model.files) == 1 else f"{model.name}{FACTS_SEPARATOR}{len(model.files)} files"
    )
    button = _button(model, size, transfer, on_disk, recommended)
    return RemoteModelView(
        key=download_key(model),
        reference=download_reference(model),
        quantization=model.quantization,
        size_text=size,
        files_text=files,
        recommended=recommended,
        recommended_label="Recommended" if recommended else "",
        fit=fit,
        button=button,
        accessible_name=f"{model.label}, {size}, {fit.text}",
    )


def _button(
    model: hf_hub.RemoteModel,
    size: str,
    transfer: TransferView | None,
    on_disk: str | None,
    recommended: bool,
) -> ButtonView:
    label = model.label
    if transfer is not None and transfer.active:
        text = transfer.stage_label
        if transfer.stage in _COUNTING:
            text = f"{text} {transfer.pct}%"
        return ButtonView(
            "", text, False, f"{label}: {text}", "Pause, resume or cancel it under Transfers", False
        )
    if transfer is not None and transfer.stage is Stage.COMPLETE and transfer.result_path:
        return ButtonView(
            "load", "Load", True, f"Load {label}", f"Downloaded to {transfer.result_path}", True
        )
    if on_disk and transfer is None:
        return ButtonView("load", "Load", True, f"Load {label}", f"Downloaded to {on_disk}", False)
    resuming = transfer is not None and transfer.stage in (Stage.FAILED, Stage.CANCELLED)
    return ButtonView(
        "download",
        "Download",
        True,
        f"Download {label}",
        f"Download {size} into the Hugging Face cache"
        + (" (continues from the bytes kept, if any)" if resuming else ""),
        recommended,
    )


def recommended_key(listing: hf_hub.RepoListing) -> str | None:
    """The model `pull org/repo` would take (the usual balance of size and quality)."""
    if not listing.models:
        return None
    return download_key(hf_hub.choose(listing, None))


def error_text(exc: BaseException, doing: str) -> str:
    """A failure as a person reads it: the core's named message, never a traceback."""
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
