"""What a person reads about a transfer (download, upload, quantize): the second half of the
presentation contract, beside `presenter.py`'s model cards.

`transfer_view` turns the last event of a transfer into a frozen, serialisable `TransferView`:
title, stage, bar, "412 MB of 1.2 GB", "38 MB/s" (or "stalled 6 s" when the bytes stop, never a
frozen rate), "about 21 s left", the detail line and the actions (pause, resume, cancel with its
question, load the result). `transfer_notice` is the toast for its outcome. The Qt rows, the CLI
and the page only render these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_desktop.core.events import (
    OP_DOWNLOAD,
    OP_QUANTIZE,
    OP_UPLOAD,
    RESUMABLE_TRANSFER_ERRORS,
    ErrorInfo,
    ProgressEvent,
    Stage,
)
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.presenter import (
    FACTS_SEPARATOR,
    Action,
    ActionId,
    Notice,
    NoticeKind,
    format_eta,
    format_seconds,
)

OP_WORDS = {OP_DOWNLOAD: "Download", OP_UPLOAD: "Upload", OP_QUANTIZE: "Quantize"}
OP_DONE_WORDS = {OP_DOWNLOAD: "Downloaded", OP_UPLOAD: "Uploaded", OP_QUANTIZE: "Quantized"}

TRANSFER_STAGE_LABELS: dict[Stage, str] = {
    Stage.CONNECTING: "Connecting",
    Stage.DOWNLOADING: "Downloading",
    Stage.UPLOADING: "Uploading",
    Stage.QUANTIZING: "Quantizing",
    Stage.RETRYING: "Reconnecting",
    Stage.PAUSED: "Paused",
    Stage.VERIFYING: "Verifying",
    Stage.FINALIZING: "Finishing",
    Stage.COMPLETE: "Done",
    Stage.FAILED: "Failed",
    Stage.CANCELLED: "Cancelled",
}
# Stages with no measured fraction of their own: the bar says "busy".
BUSY_STAGES = frozenset({Stage.CONNECTING, Stage.FINALIZING})
# Only downloads keep partial bytes a person may want to keep or delete.
PAUSABLE_OPS = frozenset({OP_DOWNLOAD})


@dataclass(frozen=True)
class CancelQuestion:
    """What to ask before cancelling a transfer that has bytes worth keeping."""

    text: str
    keep: Action
    discard: Action

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "keep": self.keep.to_dict(), "discard": self.discard.to_dict()}


@dataclass(frozen=True)
class TransferView:
    key: str
    op: str
    title: str
    kind_word: str  # "Download"
    stage: Stage
    stage_label: str
    active: bool  # still running (paused and retrying included)
    pct: int
    indeterminate: bool
    amount_text: str  # "412 MB of 1.2 GB"
    rate_text: str  # "38.2 MB/s", "stalled 6 s", ""
    eta_text: str  # "about 21 s left", ""
    detail: str
    progress_text: str  # the whole line, for a terminal and for the bar's accessible text
    actions: tuple[Action, ...]
    cancel_question: CancelQuestion | None
    error: ErrorInfo | None
    result_path: str | None
    announcement: str
    seq: int

    def has(self, action_id: ActionId) -> bool:
        return any(action.id is action_id for action in self.actions)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{key: getattr(self, key) for key in self.__dataclass_fields__},
            "stage": str(self.stage),
            "actions": [action.to_dict() for action in self.actions],
            "cancel_question": self.cancel_question.to_dict() if self.cancel_question else None,
            "error": self.error.to_dict() if self.error else None,
        }


def format_rate(bytes_per_s: float) -> str:
    return f"{format_bytes(bytes_per_s)}/s"


def transfer_view(event: ProgressEvent) -> TransferView:
    op = event.op
    title = event.label or event.model.partition(":")[2] or event.model
    stage = event.stage
    active = not event.is_terminal
    amount = _amount_text(event)
    rate = _rate_text(event)
    eta = (
        f"about {format_eta(event.eta_s)} left"
        if event.eta_s and rate and not event.stalled_s
        else ""
    )
    detail = _detail(event)
    stage_label = TRANSFER_STAGE_LABELS.get(stage, str(stage).title())
    line = FACTS_SEPARATOR.join(
        part
        for part in (stage_label, f"{int(event.pct)}%" if active else "", amount, rate, eta)
        if part
    )
    actions = _actions(event)
    question = _cancel_question(event) if any(a.id is ActionId.CANCEL for a in actions) else None
    return TransferView(
        key=event.model,
        op=op,
        title=title,
        kind_word=OP_WORDS.get(op, op.title()),
        stage=stage,
        stage_label=stage_label,
        active=active,
        pct=int(event.pct),
        indeterminate=active and stage in BUSY_STAGES,
        amount_text=amount,
        rate_text=rate,
        eta_text=eta,
        detail=detail,
        progress_text=line,
        actions=actions,
        cancel_question=question,
        error=event.error,
        result_path=event.result_path,
        announcement=_announcement(title, event, stage_label),
        seq=event.seq,
    )


def _amount_text(event: ProgressEvent) -> str:
    if event.op == OP_QUANTIZE and event.stage is not Stage.COMPLETE:
        return ""  # its message counts tensors; bytes of the output are known only at the end
    done, total = event.bytes_done, event.bytes_total
    if event.stage is Stage.COMPLETE and total:
        return format_bytes(total)
    if not done and event.is_terminal:
        return ""  # failed or cancelled before a byte: "0 B" would say nothing
    if done is None:
        return format_bytes(total) if total else ""
    return f"{format_bytes(done)} of {format_bytes(total)}" if total else format_bytes(done)


def _rate_text(event: ProgressEvent) -> str:
    if event.stage not in (Stage.DOWNLOADING, Stage.UPLOADING):
        return ""
    if event.stalled_s:
        # The readout shows the stall instead of freezing on its last value.
        return f"stalled {format_seconds(event.stalled_s)}"
    return format_rate(event.rate_bps) if event.rate_bps is not None else ""


def _detail(event: ProgressEvent) -> str:
    if event.stage is Stage.FAILED and event.error is not None:
        return event.error.message
    if event.stage in (Stage.DOWNLOADING, Stage.UPLOADING):
        return ""  # the amount and rate say it; the message repeats the amount
    if event.stage is Stage.COMPLETE and event.result_path:
        return f"{event.message}{FACTS_SEPARATOR}{event.result_path}"
    return event.message


def _actions(event: ProgressEvent) -> tuple[Action, ...]:
    title = event.label or event.model
    stage = event.stage
    pausable = event.op in PAUSABLE_OPS
    if stage is Stage.COMPLETE:
        if event.result_path is None:
            return (_dismiss(title),)
        return (
            Action(ActionId.LOAD, "Load", f"Load {title}", "Load the new model", primary=True),
            _dismiss(title),
        )
    if stage is Stage.PAUSED:
        return (
            _resume(title, "Continue from the bytes kept"),
            _cancel(title),
        )
    if stage is Stage.FAILED:
        kind = event.error.kind if event.error else None
        if pausable and kind in RESUMABLE_TRANSFER_ERRORS:
            return (
                _resume(title, "Try again from the bytes already received"),
                _discard(title),
            )
        return (_dismiss(title),)
    if stage is Stage.CANCELLED:
        if pausable and event.bytes_done:
            return (
                _resume(title, "Continue from the bytes kept"),
                _discard(title),
            )
        return (_dismiss(title),)
    if pausable and stage in (Stage.DOWNLOADING, Stage.RETRYING):
        return (
            Action(ActionId.PAUSE, "Pause", f"Pause {title}", "Stop for now; keep the bytes"),
            _cancel(title),
        )
    return (_cancel(title),)


def _resume(title: str, hint: str) -> Action:
    return Action(ActionId.RESUME, "Resume", f"Resume {title}", hint, primary=True)


def _cancel(title: str) -> Action:
    return Action(ActionId.CANCEL, "Cancel", f"Cancel {title}")


def _discard(title: str) -> Action:
    return Action(ActionId.DISCARD, "Delete partial file", f"Delete the partial file of {title}")


def _dismiss(title: str) -> Action:
    return Action(ActionId.DISMISS, "Dismiss", f"Remove {title} from the list")


def _cancel_question(event: ProgressEvent) -> CancelQuestion | None:
    """Ask only when there is something to keep: a download with bytes on disk."""
    if event.op not in PAUSABLE_OPS or not event.bytes_done:
        return None
    title = event.label or event.model
    kept = format_bytes(event.bytes_done)
    return CancelQuestion(
        text=f"Cancel downloading {title}? Keep the {kept} received to resume later, "
        "or delete them.",
        keep=Action(
            ActionId.CANCEL, f"Keep {kept}", f"Cancel and keep the {kept} received", primary=True
        ),
        discard=Action(ActionId.DISCARD, "Delete", f"Cancel and delete the {kept} received"),
    )


def _announcement(title: str, event: ProgressEvent, stage_label: str) -> str:
    if event.stage is Stage.FAILED and event.error is not None:
        return f"{title}: failed. {event.error.message}"
    if event.stage in (Stage.DOWNLOADING, Stage.UPLOADING, Stage.QUANTIZING):
        return f"{title}: {stage_label.lower()}, {int(event.pct)} percent"
    return f"{title}: {stage_label.lower()}"


def transfer_notice(view: TransferView, event: ProgressEvent) -> Notice | None:
    """The toast for a transfer's outcome (None while it runs)."""
    key = f"transfer:{event.model}"
    done_word = OP_DONE_WORDS.get(event.op, "Finished")
    if event.stage is Stage.COMPLETE:
        actions = tuple(a for a in view.actions if a.id is ActionId.LOAD)
        return Notice(
            NoticeKind.SUCCESS,
            f"{done_word} {view.title}",
            key,
            model=event.model,
            actions=actions,
        )
    if event.stage is Stage.FAILED and event.error is not None:
        heading = f"{view.kind_word} of {view.title} failed"
        return Notice(
            NoticeKind.ERROR,
            event.error.message,
            key,
            heading,
            event.model,
            actions=view.actions[:1] if view.actions[0].id is ActionId.RESUME else (),
        )
    if event.stage is Stage.CANCELLED:
        return Notice(NoticeKind.INFO, event.message, key, model=event.model)
    return None


def transfer_line(view: TransferView) -> str:
    """One line for a terminal: "org/repo · Q4_K_M: Downloading · 42% · 1.2 GB of 3.0 GB · …"."""
    parts = [view.progress_text]
    if view.detail:
        parts.append(view.detail)
    return f"{view.title}: " + FACTS_SEPARATOR.join(parts)
