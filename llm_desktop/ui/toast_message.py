"""What a toast says: `ToastMessage`, its kind, and how long it stays.

The kinds, their words and their lifetimes are the presenter's (`core.presenter`: one table for
every surface); a message can be built from the presenter's `Notice` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_desktop.core.presenter import NOTICE_KIND_WORDS, NOTICE_TIMEOUT_MS, Notice, NoticeKind

__all__ = ["DEFAULT_TIMEOUT_MS", "ToastKind", "ToastMessage"]

# The kinds, their words and their lifetimes are the presenter's (one table for every surface).
ToastKind = NoticeKind
DEFAULT_TIMEOUT_MS = NOTICE_TIMEOUT_MS


@dataclass(frozen=True)
class ToastMessage:
    """What to tell the user.

    `key` names the subject: a later message with the same key replaces a visible toast's text
    and kind and restarts its timer. With no key, a message with the same kind and text counts
    as the same. `timeout_ms` None takes the kind's default; 0 keeps the toast until dismissed.
    """

    kind: ToastKind
    text: str
    key: str | None = None
    title: str | None = None
    action_text: str | None = None
    timeout_ms: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ToastKind(self.kind))

    @classmethod
    def from_notice(cls, notice: Notice) -> ToastMessage:
        """The presenter's notice as a toast; its first action is the toast's button."""
        action = notice.actions[0].label if notice.actions else None
        return cls(
            notice.kind, notice.text, notice.key, notice.title or None, action, notice.timeout_ms
        )

    @property
    def dedupe_key(self) -> str:
        """What two messages share when one should replace the other."""
        if self.key is not None:
            return f"key:{self.key}"
        return f"{self.kind}:{self.text}"

    @property
    def action_key(self) -> str:
        """The payload of `ToastManager.action_triggered`: the key, or else the text."""
        return self.key if self.key is not None else self.text

    @property
    def effective_timeout_ms(self) -> int:
        if self.timeout_ms is None:
            return DEFAULT_TIMEOUT_MS[self.kind]
        return max(0, self.timeout_ms)

    @property
    def spoken(self) -> str:
        """The whole message as one sentence: accessible name and announcement."""
        parts = [p.strip() for p in (self.title, self.text) if p and p.strip()]
        body = ". ".join(p.rstrip(".") for p in parts[:-1]) + (". " if len(parts) > 1 else "")
        return f"{NOTICE_KIND_WORDS[self.kind]}: {body}{parts[-1] if parts else ''}"
