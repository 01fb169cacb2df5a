"""The transfer half of the presentation contract: what a person reads about a download,
an upload or a quantize, decided once."""

from __future__ import annotations

from llm_desktop.core.events import (
    OP_DOWNLOAD,
    OP_QUANTIZE,
    OP_UPLOAD,
    ErrorInfo,
    ErrorKind,
    ProgressEvent,
    Stage,
)
from llm_desktop.core.presenter import ActionId, NoticeKind
from llm_desktop.core.store import ModelStore, TransferChange
from llm_desktop.core.transfer_presenter import transfer_line, transfer_notice, transfer_view

MB = 1_000_000


def event(stage: Stage, op: str = OP_DOWNLOAD, seq: int = 1, **fields) -> ProgressEvent:
    fields.setdefault("pct", 40.0)
    fields.setdefault("message", "")
    return ProgressEvent(
        model="download:acme/Tiny-GGUF",
        seq=seq,
        stage=stage,
        op=op,
        label="acme/Tiny · Q8_0",
        **fields,
    )


def ids(view) -> list[ActionId]:
    return [action.id for action in view.actions]


def test_a_running_download_reads_amount_rate_and_eta():
    view = transfer_view(
        event(
            Stage.DOWNLOADING,
            bytes_done=412 * MB,
            bytes_total=1200 * MB,
            rate_bps=38.2 * MB,
            eta_s=21,
        )
    )
    assert view.amount_text == "412 MB of 1.2 GB"
    assert view.rate_text == "38.2 MB/s"
    assert view.eta_text == "about 21 s left"
    assert (
        view.progress_text == "Downloading · 40% · 412 MB of 1.2 GB · 38.2 MB/s · about 21 s left"
    )
    assert ids(view) == [ActionId.PAUSE, ActionId.CANCEL]
    assert view.active and not view.indeterminate
    assert transfer_line(view).startswith("acme/Tiny · Q8_0: Downloading")


def test_a_stall_replaces_the_rate_and_the_eta():
    view = transfer_view(
        event(
            Stage.DOWNLOADING,
            bytes_done=412 * MB,
            bytes_total=1200 * MB,
            rate_bps=3.1 * MB,
            eta_s=250,
            stalled_s=6.0,
        )
    )
    assert view.rate_text == "stalled 6.0 s"
    assert view.eta_text == ""


def test_cancel_asks_whether_to_keep_only_when_there_are_bytes_to_keep():
    with_bytes = transfer_view(event(Stage.DOWNLOADING, bytes_done=412 * MB, bytes_total=1200 * MB))
    question = with_bytes.cancel_question
    assert question is not None and "412 MB" in question.text
    assert (question.keep.id, question.discard.id) == (ActionId.CANCEL, ActionId.DISCARD)
    assert transfer_view(event(Stage.CONNECTING, pct=0.0)).cancel_question is None
    # An upload or a quantize has nothing worth keeping: cancel just cancels.
    upload = transfer_view(event(Stage.UPLOADING, op=OP_UPLOAD, bytes_done=MB, bytes_total=9 * MB))
    assert upload.cancel_question is None and ids(upload) == [ActionId.CANCEL]


def test_paused_offers_resume_and_a_resumable_failure_offers_resume_too():
    paused = transfer_view(event(Stage.PAUSED, bytes_done=MB, bytes_total=9 * MB))
    assert ids(paused) == [ActionId.RESUME, ActionId.CANCEL] and paused.rate_text == ""
    network = ErrorInfo(ErrorKind.NETWORK, "The download failed 6 times in a row")
    failed = transfer_view(event(Stage.FAILED, error=network, bytes_done=MB))
    assert ids(failed) == [ActionId.RESUME, ActionId.DISCARD]
    assert failed.detail == network.message and not failed.active
    checksum = ErrorInfo(ErrorKind.CHECKSUM_MISMATCH, "arrived damaged")
    assert ids(transfer_view(event(Stage.FAILED, error=checksum))) == [ActionId.DISMISS]


def test_a_finished_download_offers_load_and_a_success_toast():
    done = event(
        Stage.COMPLETE,
        pct=100.0,
        bytes_total=1200 * MB,
        result_path="/m/x.gguf",
        message="Downloaded 1.2 GB in 31 s",
    )
    view = transfer_view(done)
    assert ids(view) == [ActionId.LOAD, ActionId.DISMISS]
    notice = transfer_notice(view, done)
    assert notice.kind is NoticeKind.SUCCESS and notice.text == "Downloaded acme/Tiny · Q8_0"
    assert [a.id for a in notice.actions] == [ActionId.LOAD]
    assert (
        transfer_notice(transfer_view(event(Stage.DOWNLOADING)), event(Stage.DOWNLOADING)) is None
    )


def test_quantize_counts_tensors_in_its_message_not_bytes():
    view = transfer_view(
        event(
            Stage.QUANTIZING,
            op=OP_QUANTIZE,
            bytes_done=5 * MB,
            bytes_total=20 * MB,
            message="Tensor 45 of 236 · blk.3.ffn_up.weight",
        )
    )
    assert view.amount_text == "" and view.detail == "Tensor 45 of 236 · blk.3.ffn_up.weight"
    assert view.kind_word == "Quantize" and ids(view) == [ActionId.CANCEL]


def test_the_store_keeps_transfers_apart_from_model_cards():
    store = ModelStore()
    change = store.apply(event(Stage.DOWNLOADING, seq=3, bytes_done=MB, bytes_total=9 * MB))
    assert isinstance(change, TransferChange) and change.previous is None
    assert store.apply(event(Stage.DOWNLOADING, seq=2)) is None  # older than what is shown
    assert store.views() == []  # not a model card
    assert [view.key for view in store.transfers()] == ["download:acme/Tiny-GGUF"]
    assert not store.dismiss_transfer("download:acme/Tiny-GGUF")  # still running
    store.apply(event(Stage.COMPLETE, seq=4, pct=100.0, result_path="/m/x.gguf"))
    assert store.dismiss_transfer("download:acme/Tiny-GGUF") and store.transfers() == []


def test_a_failure_before_any_byte_shows_no_amount():
    refused = ErrorInfo(ErrorKind.NOT_FOUND, "no such repository")
    view = transfer_view(event(Stage.FAILED, error=refused, bytes_done=0, bytes_total=None))
    assert view.amount_text == "" and view.progress_text == "Failed"
