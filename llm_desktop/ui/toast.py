"""Toasts: the one path for user-facing messages (after qutebrowser's messageview).

Code that has something to tell the user builds a `ToastMessage` and hands it to the window's
`ToastManager`, which stacks `Toast` cards in the top-right corner of its host widget, times
them out, dismisses them on click or Esc, and replaces a visible toast that has the same key
instead of adding another.

This module is the manager and the entry point; the parts have their own modules: the message
(`toast_message`), one card with its timer, motion and accessibility (`toast_card`), its colours
and style sheet (`toast_style`) and its painted kind icon (`toast_icon`).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, Signal
from PySide6.QtWidgets import QWidget

from llm_desktop.core.presenter import NOTICE_LIMIT
from llm_desktop.ui.toast_card import Toast
from llm_desktop.ui.toast_message import DEFAULT_TIMEOUT_MS, ToastKind, ToastMessage

# What callers import from here.
__all__ = ["DEFAULT_TIMEOUT_MS", "Toast", "ToastKind", "ToastManager", "ToastMessage"]


class ToastManager(QObject):
    """Stacks toasts in the top-right corner of `host`, newest on top.

    Toasts are child widgets of the host, raised above its other children and laid out again
    when the host is resized. At most `MAX_VISIBLE` are shown: a new one drops the oldest.
    A message whose `dedupe_key` matches a visible toast replaces that toast's contents in
    place and restarts its timer.

    Signals:
        action_triggered(str): a toast's action button was clicked; the payload is the
            message's key, or its text when it has no key.
    """

    action_triggered = Signal(str)

    MARGIN = 12
    SPACING = 8
    MAX_VISIBLE = NOTICE_LIMIT

    def __init__(
        self,
        host: QWidget,
        parent: QObject | None = None,
        *,
        use_default_style: bool = True,
    ) -> None:
        super().__init__(parent if parent is not None else host)
        self._host = host
        self._use_default_style = use_default_style
        self._toasts: list[Toast] = []  # oldest first; fading ones keep their place
        host.installEventFilter(self)

    def set_host(self, host: QWidget) -> None:
        """Float the toasts over another widget (the window keeps them off the cards)."""
        if host is self._host:
            return
        self._host.removeEventFilter(self)
        self._host = host
        host.installEventFilter(self)
        for toast in self._toasts:
            toast.setParent(host)
            toast.show()
        self._relayout(animate=False)

    def show(self, message: ToastMessage) -> Toast:
        """Show `message`, or refresh the visible toast that has the same key."""
        for toast in self.visible_toasts():
            if toast.message.dedupe_key == message.dedupe_key:
                toast.set_message(message)
                self._relayout(animate=True)
                return toast
        toast = Toast(message, self._host, use_default_style=self._use_default_style)
        toast.dismissed.connect(lambda t=toast: self._on_dismissed(t))
        toast.action_triggered.connect(
            lambda t=toast: self.action_triggered.emit(t.message.action_key)
        )
        self._toasts.append(toast)
        for old in self.visible_toasts()[self.MAX_VISIBLE :]:
            old.dismiss()
        self._fit(toast)
        self._relayout(animate=True, skip=toast)
        toast.present(self._positions()[toast])
        return toast

    def info(self, text: str, **kwargs) -> Toast:
        return self.show(ToastMessage(ToastKind.INFO, text, **kwargs))

    def success(self, text: str, **kwargs) -> Toast:
        return self.show(ToastMessage(ToastKind.SUCCESS, text, **kwargs))

    def warning(self, text: str, **kwargs) -> Toast:
        return self.show(ToastMessage(ToastKind.WARNING, text, **kwargs))

    def error(self, text: str, **kwargs) -> Toast:
        return self.show(ToastMessage(ToastKind.ERROR, text, **kwargs))

    def visible_toasts(self) -> list[Toast]:
        """The toasts being shown (not those fading out), newest (topmost) first."""
        return [toast for toast in reversed(self._toasts) if not toast.is_dismissing()]

    def dismiss_key(self, key: str) -> None:
        """Dismiss the visible toast with this key (its subject is gone)."""
        for toast in self.visible_toasts():
            if toast.message.key == key:
                toast.dismiss()

    def dismiss_all(self) -> None:
        for toast in self.visible_toasts():
            toast.dismiss()

    # -- layout ----------------------------------------------------------------------------

    def _card_width(self) -> int:
        available = self._host.width() - 2 * self.MARGIN
        return max(min(Toast.CARD_WIDTH, available), Toast.MIN_CARD_WIDTH)

    def _fit(self, toast: Toast) -> None:
        toast.resize(toast.size_for_card_width(self._card_width()))

    def _positions(self) -> dict[Toast, QPoint]:
        """Where each toast's widget goes so that its card sits in the stack."""
        positions = {}
        right = self._host.width() - self.MARGIN
        y = self.MARGIN
        for toast in reversed(self._toasts):  # newest at the top
            shadow = toast.shadow
            card_height = toast.height() - shadow.top() - shadow.bottom()
            card_width = toast.width() - shadow.left() - shadow.right()
            positions[toast] = QPoint(right - card_width - shadow.left(), y - shadow.top())
            y += card_height + self.SPACING
        return positions

    def _relayout(self, *, animate: bool, skip: Toast | None = None) -> None:
        for toast in self._toasts:
            self._fit(toast)
        for toast, pos in self._positions().items():
            if toast is not skip:
                toast.move_to(pos, animate=animate)
        for toast in self._toasts:  # oldest first, so the newest ends on top
            toast.raise_()

    def _on_dismissed(self, toast: Toast) -> None:
        if toast in self._toasts:
            self._toasts.remove(toast)
            self._relayout(animate=True)
        toast.deleteLater()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._host:
            kind = event.type()
            if kind == QEvent.Type.Resize:
                self._relayout(animate=False)
            elif kind == QEvent.Type.ChildAdded and self._toasts:
                child = event.child()
                if child.isWidgetType() and not isinstance(child, Toast):
                    for toast in self._toasts:
                        toast.raise_()
        return False
