"""The "Get models" half of the presentation contract: what a person reads about the hub's
search, a repository and its models, decided once for the app, the page and the CLI."""

from __future__ import annotations

import json

from llm_desktop.core import hf_hub, hub_presenter
from llm_desktop.core.events import (
    OP_DOWNLOAD,
    ErrorInfo,
    ErrorKind,
    ModelError,
    ProgressEvent,
    Stage,
)
from llm_desktop.core.transfer_presenter import transfer_view
from tests.golden.generate import verdict

MB = 1_000_000
REPO = "acme/Tiny-GGUF"
Q4 = hf_hub.RemoteModel(
    REPO, "c" * 40, (hf_hub.RemoteFile("Tiny-Q4_K_M.gguf", 12_600_000, None),), "Q4_K_M"
)
Q8 = hf_hub.RemoteModel(
    REPO, "c" * 40, (hf_hub.RemoteFile("Tiny-Q8_0.gguf", 22_000_000, None),), "Q8_0"
)
SPLIT = hf_hub.RemoteModel(
    REPO,
    "c" * 40,
    (
        hf_hub.RemoteFile("Big-Q4_K_M-00001-of-00002.gguf", 21 * MB, None),
        hf_hub.RemoteFile("Big-Q4_K_M-00002-of-00002.gguf", 20 * MB, None),
    ),
    "Q4_K_M",
)
LISTING = hf_hub.RepoListing(REPO, "fc6cb39a0123456789", False, (Q8, Q4))
KEY = hub_presenter.download_key(Q4)


def download(stage: Stage, pct: float = 42.0, **fields) -> ProgressEvent:
    return ProgressEvent(KEY, 1, stage, pct, "", op=OP_DOWNLOAD, label=Q4.label, **fields)


def test_a_search_says_what_it_looked_for_and_how_many_it_found():
    hits = [hf_hub.RepoHit(REPO, 1520, 42, "2026-11-20", False)]
    assert hub_presenter.searching_text(" qwen ") == "Searching the hub for “qwen”…"
    assert hub_presenter.searching_text("") == hub_presenter.SEARCHING_ALL
    assert hub_presenter.results_text("qwen", hits) == "1 repository for “qwen”"
    assert hub_presenter.results_text("", hits * 3) == "3 repositories"
    assert hub_presenter.results_text("x ", []) == "No GGUF repositories match “x”"
    assert hub_presenter.results_text("", []) == "No GGUF repositories found"
    # The page fills the same words in before the server answers.
    assert hub_presenter.PAGE_TEXT["hub.searching"].format(query="qwen") == (
        hub_presenter.searching_text("qwen")
    )
    assert hub_presenter.PAGE_TEXT["hub.listing"].format(repo=REPO) == (
        hub_presenter.listing_loading_text(REPO)
    )


def test_a_hit_reads_its_numbers_in_words_and_says_what_gated_asks():
    hit = hub_presenter.hit_view(hf_hub.RepoHit(REPO, 1520, 42, "2026-11-20", False), "tiny")
    assert (hit.owner, hit.name, hit.title) == ("acme", "Tiny-GGUF", REPO)
    assert hit.facts == "1,520 downloads · 42 likes · updated 2026-11-20"
    assert (hit.gated_label, hit.gated_hint) == ("", "")
    assert hit.accessible_name == f"{REPO}, 1,520 downloads, 42 likes, updated 2026-11-20"
    assert hit.href == "/?q=tiny&repo=acme%2FTiny-GGUF#hub-repo"
    gated = hub_presenter.hit_view(hf_hub.RepoHit("acme/G", 1, 1, None, True))
    assert gated.facts == "1 download · 1 like"
    assert gated.gated_label == "Gated" and "HF_TOKEN" in gated.gated_hint
    assert gated.gated_hint in gated.accessible_name


def test_a_repository_says_how_many_models_at_which_commit_and_which_is_recommended():
    view = hub_presenter.repo_view(LISTING, hub_presenter.model_views(LISTING))
    assert view.summary == "2 GGUF models · commit fc6cb39a"
    assert [model.recommended for model in view.models] == [False, True]  # Q4_K_M, as `pull`
    assert view.models[1].recommended_label == "Recommended"
    assert view.models[1].button.primary and not view.models[0].button.primary
    empty = hf_hub.RepoListing(REPO, "", True, ())
    header = hub_presenter.repo_view(empty)
    assert header.summary == "No GGUF models" and header.gated_label == "Gated"
    assert header.gated_hint == hub_presenter.GATED_HINT


def test_a_model_reads_its_size_and_parts_once_for_every_surface():
    single = hub_presenter.remote_model_view(Q4)
    assert (single.title, single.facts, single.size_text) == ("Tiny-Q4_K_M", "12.6 MB", "12.6 MB")
    assert (
        single.reference == f"{REPO}:Tiny-Q4_K_M.gguf"
        and single.key == f"download:{REPO}:Tiny-Q4_K_M.gguf"
    )
    assert single.fit is None and single.fit_pending
    split = hub_presenter.remote_model_view(SPLIT, fit=hub_presenter.fit_of(verdict("cpu")))
    assert split.facts == "41.0 MB in 2 files" and split.file == SPLIT.first.path
    assert split.accessible_name == f"{SPLIT.label}, 41.0 MB in 2 files, CPU only"
    assert not split.fit_pending
    json.dumps(split.to_dict())  # what the server sends


def test_the_button_follows_the_download_from_download_to_load():
    def button(**kwargs):
        return hub_presenter.remote_model_view(
            Q4, fit=hub_presenter.fit_checking(), **kwargs
        ).button

    fresh = button()
    assert (fresh.action, fresh.label, fresh.enabled) == ("download", "Download", True)
    assert fresh.accessible_name == f"Download {Q4.label} (12.6 MB)"
    moving = button(transfer=transfer_view(download(Stage.DOWNLOADING)))
    assert (moving.action, moving.label, moving.enabled) == ("", "Downloading 42%", False)
    assert "Transfers" in moving.hint
    paused = button(transfer=transfer_view(download(Stage.PAUSED)))
    assert paused.label.startswith("Paused") and paused.label.endswith("42%")
    done = button(
        transfer=transfer_view(download(Stage.COMPLETE, 100, result_path="/cache/Tiny.gguf"))
    )
    assert (done.action, done.label, done.primary) == ("load", "Load", True)
    assert done.hint == "Downloaded to /cache/Tiny.gguf"
    here = button(on_disk="/cache/Tiny.gguf")
    assert (here.action, here.label, here.primary) == ("load", "Load", False)
    failed = download(Stage.FAILED, error=ErrorInfo(ErrorKind.NETWORK, "offline"))
    stopped = button(transfer=transfer_view(failed))
    assert stopped.action == "download" and "bytes kept" in stopped.hint


def test_fit_badges_checking_unknown_and_known():
    checking = hub_presenter.fit_checking()
    assert (checking.verdict, checking.text) == (hub_presenter.FIT_PENDING, "Checking fit…")
    unknown = hub_presenter.fit_of(None, "Access denied")
    assert (unknown.verdict, unknown.text, unknown.summary) == (
        "unknown",
        "Fit unknown",
        "Access denied",
    )
    assert hub_presenter.fit_of(verdict("gpu", 33)).text == "Fits on GPU"
    answer = hub_presenter.fit_answer(Q4, verdict("cpu"))
    assert (
        answer["reference"] == f"{REPO}:Tiny-Q4_K_M.gguf" and answer["badge"]["text"] == "CPU only"
    )
    gated = ModelError(ErrorKind.UNAUTHORIZED, "Access denied: gated")
    assert hub_presenter.fit_failure_text(gated) == "Access denied: gated"
    odd = hub_presenter.fit_failure_text(ValueError("bad magic"))
    assert odd == "The model's header could not be read (ValueError: bad magic)"


def test_errors_are_the_cores_words_and_the_tray_sums_up_its_rows():
    assert hub_presenter.error_text(ModelError(ErrorKind.NOT_FOUND, "No such repo"), "x") == (
        "No such repo"
    )
    assert hub_presenter.error_text(OSError("down"), "Reading acme/x").startswith(
        "Reading acme/x: could not reach the hub"
    )
    rows = [
        transfer_view(download(Stage.DOWNLOADING)),
        transfer_view(download(Stage.COMPLETE, 100, result_path="/x.gguf")),
        transfer_view(download(Stage.CANCELLED)),
    ]
    assert hub_presenter.tray_summary(rows) == "1 running · 1 done · 1 stopped"
    assert hub_presenter.tray_summary([]) == ""
