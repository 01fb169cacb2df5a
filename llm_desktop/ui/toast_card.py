"""One toast on screen: the `Toast` card, its timer, its motion and what it tells screen readers.

Accessibility: a toast's kind is never carried by colour alone. Each kind has its own icon
shape (`toast_icon`), and the accessible name starts with the kind ("Error: …"). Showing a
toast sends an ``Alert`` accessibility event and, where Qt has it (6.8+), a
``QAccessibleAnnouncementEvent`` with the full text (assertive for errors and warnings), which is
the event Qt's platform bridges pass to screen readers as speech. The timer pauses while the
pointer is over the toast or the keyboard focus is in it.

Styling: the card (rounded rectangle tinted in the kind's colour, border, soft shadow) is
painted, and its children are styled by a built-in style sheet (`toast_style`); every colour
comes from the app theme (`theme.colors`), and a theme switch restyles shown toasts. That style
sheet also takes the card box away from the application style sheet's ``QFrame#toast`` rule
(which would add a second border and padding). Object names (``toast``, ``toastIcon``,
``toastTitle``, ``toastText``, ``toastAction``, ``toastClose``) and the ``kind`` property are
there for style sheets: pass ``use_default_style=False`` to let the application's style sheet
style the whole toast (then ``QFrame#toast[kind="error"] {...}`` draws the box, with no painted
shadow).
"""

from __future__ import annotations

from PySide6.QtCore import (
    QEasingCurve,
    QEvent,
    QMargins,
    QObject,
    QPoint,
    QPropertyAnimation,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAccessible,
    QAccessibleEvent,
    QColor,
    QEnterEvent,
    QFocusEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsOpacityEffect,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.ui import theme
from llm_desktop.ui.motion import reduced_motion
from llm_desktop.ui.toast_icon import KindIcon
from llm_desktop.ui.toast_message import ToastKind, ToastMessage
from llm_desktop.ui.toast_style import ToastColors, style_sheet

try:  # Qt 6.8+: the announcement screen readers actually speak
    from PySide6.QtGui import QAccessibleAnnouncementEvent
except ImportError:  # pragma: no cover - older Qt
    QAccessibleAnnouncementEvent = None

__all__ = ["Toast"]


class Toast(QFrame):
    """One message as a card: icon, optional title, text, optional action, close button.

    Signals:
        dismissed(): the toast has been dismissed and hidden (after its fade, if any).
        action_triggered(): the action button was clicked (the toast then dismisses itself).
    """

    dismissed = Signal()
    action_triggered = Signal()

    CARD_WIDTH = 380  # the widest a card gets; a narrow host makes it narrower
    MIN_CARD_WIDTH = 220
    RADIUS = 10.0
    SHADOW = QMargins(8, 4, 8, 10)  # room around the card for its shadow
    PADDING = QMargins(14, 12, 10, 12)
    ENTER_MS = 220
    EXIT_MS = 180
    MOVE_MS = 200
    SLIDE_PX = 28

    def __init__(
        self,
        message: ToastMessage,
        parent: QWidget | None = None,
        *,
        use_default_style: bool = True,
    ) -> None:
        super().__init__(parent)
        self._theme_restyle = theme.RestyleAfterThemeChange(self, self._restyle_if_changed)
        self.setObjectName("toast")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, not use_default_style)
        self._use_default_style = use_default_style
        # Room around the painted card for its shadow; none when a style sheet draws the box.
        self.shadow = QMargins(self.SHADOW) if use_default_style else QMargins()
        self._dismissing = False
        self._target: QPoint | None = None
        self._remaining_ms = 0
        self._pause_reasons: set[str] = set()
        self.message = message
        self.colors = ToastColors.for_kind(message.kind)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)  # a coarse one reports slack
        self._timer.timeout.connect(self.dismiss)

        self._opacity = QGraphicsOpacityEffect(self)
        self._opacity.setOpacity(1.0)
        self._opacity.setEnabled(False)  # only while fading: off, the card renders directly
        self.setGraphicsEffect(self._opacity)
        self._fade = QPropertyAnimation(self._opacity, b"opacity", self)
        self._fade.finished.connect(self._fade_finished)
        self._slide = QPropertyAnimation(self, b"pos", self)

        self._build()
        self.set_message(message, restart=False)

    # -- construction ----------------------------------------------------------------------

    def _build(self) -> None:
        self.icon = KindIcon(self)
        self.title_label = QLabel(self)
        self.title_label.setObjectName("toastTitle")
        self.text_label = QLabel(self)
        self.text_label.setObjectName("toastText")
        for label in (self.title_label, self.text_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setWordWrap(True)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.action_button = QPushButton(self)
        self.action_button.setObjectName("toastAction")
        self.action_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.action_button.clicked.connect(self._on_action)
        self.close_button = QToolButton(self)
        self.close_button.setObjectName("toastClose")
        self.close_button.setText("×")
        self.close_button.setAutoRaise(True)
        self.close_button.setFixedSize(24, 24)
        self.close_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.close_button.setAccessibleName("Dismiss notification")
        self.close_button.setToolTip("Dismiss (Esc)")
        self.close_button.clicked.connect(self.dismiss)
        for button in (self.action_button, self.close_button):
            button.installEventFilter(self)

        body = QVBoxLayout()
        body.setContentsMargins(0, 1, 0, 0)
        body.setSpacing(3)
        body.addWidget(self.title_label)
        body.addWidget(self.text_label)
        action_row = QHBoxLayout()
        action_row.setContentsMargins(0, 6, 0, 0)
        action_row.addWidget(self.action_button)
        action_row.addStretch(1)
        self._action_row = action_row
        body.addLayout(action_row)

        row = QHBoxLayout(self)
        # With the app's style sheet in charge, its padding and border make the margins.
        margins = self.shadow + self.PADDING if self._use_default_style else QMargins()
        row.setContentsMargins(margins)
        row.setSpacing(12)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(body, 1)
        row.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)

    def _apply_style(self) -> None:
        self.colors = ToastColors.for_kind(self.message.kind)
        self.icon.set_kind(self.message.kind, self.colors.accent, self.colors.on_accent)
        if self._use_default_style:
            self.setStyleSheet(style_sheet(self.colors))
        else:
            theme.repolish(self)  # `kind` may have changed: match the app's selectors again
        self.update()

    def _restyle_if_changed(self) -> None:
        if ToastColors.for_kind(self.message.kind) != self.colors:
            self._apply_style()

    # -- public API ------------------------------------------------------------------------

    @property
    def kind(self) -> ToastKind:
        return self.message.kind

    def set_message(self, message: ToastMessage, *, restart: bool = True) -> None:
        """Show `message` in this card (kind, texts, action); restart the timer if asked."""
        self.message = message
        self.setProperty("kind", str(message.kind))
        self.title_label.setText(message.title or "")
        self.title_label.setVisible(bool(message.title))
        self.text_label.setText(message.text)
        self.action_button.setText(message.action_text or "")
        self.action_button.setVisible(bool(message.action_text))
        self._action_row.setContentsMargins(0, 6 if message.action_text else 0, 0, 0)
        if message.action_text:
            self.action_button.setAccessibleName(message.action_text)
        self.setAccessibleName(message.spoken)
        self.setAccessibleDescription("Notification. Press Escape or click it to dismiss.")
        self._apply_style()
        if restart:
            self.restart_timer()
            if self.isVisible():
                self._announce()

    def card_rect(self) -> QRect:
        """The painted card inside this widget (the rest is room for the shadow)."""
        return self.rect().marginsRemoved(self.shadow)

    def card_geometry(self) -> QRect:
        """The card in the parent's coordinates."""
        return self.card_rect().translated(self.pos())

    def size_for_card_width(self, card_width: int) -> QSize:
        width = card_width + self.shadow.left() + self.shadow.right()
        layout = self.layout()
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
        if height < 0:
            height = layout.totalSizeHint().height()
        return QSize(width, height)

    def present(self, pos: QPoint) -> None:
        """Show the toast with its widget's top-left at `pos`, sliding and fading in."""
        self._target = QPoint(pos)
        self.raise_()
        if reduced_motion():
            self.move(pos)
            self.show()
        else:
            self.move(pos + QPoint(self.SLIDE_PX, 0))
            self._opacity.setOpacity(0.0)
            self._opacity.setEnabled(True)
            self.show()
            self._animate_fade(1.0, self.ENTER_MS)
            self._animate_slide(pos, self.ENTER_MS)
        self.restart_timer()
        self._announce()

    def move_to(self, pos: QPoint, *, animate: bool = True) -> None:
        """Move to `pos`: glide there (unless motion is reduced), or jump."""
        if self._dismissing:
            return
        self._target = QPoint(pos)
        if animate and self.isVisible() and not reduced_motion() and self.pos() != pos:
            self._animate_slide(pos, self.MOVE_MS)
        else:
            self._slide.stop()
            self.move(pos)

    def target_pos(self) -> QPoint:
        """Where the toast is, or is moving to."""
        return QPoint(self._target) if self._target is not None else self.pos()

    def is_animating(self) -> bool:
        running = QPropertyAnimation.State.Running
        return self._fade.state() == running or self._slide.state() == running

    def is_dismissing(self) -> bool:
        return self._dismissing

    def is_paused(self) -> bool:
        return bool(self._pause_reasons)

    def remaining_ms(self) -> int:
        """Time left before the toast times out (-1: it never does)."""
        if self.message.effective_timeout_ms == 0:
            return -1
        if self._timer.isActive():
            return self._timer.remainingTime()
        return self._remaining_ms

    def restart_timer(self) -> None:
        """Give the toast its full timeout again (kept paused if it is paused)."""
        self._timer.stop()
        self._remaining_ms = self.message.effective_timeout_ms
        if self._remaining_ms > 0 and not self._pause_reasons and not self._dismissing:
            self._timer.start(self._remaining_ms)

    def dismiss(self) -> None:
        """Fade out (or hide at once with reduced motion), then emit `dismissed`."""
        if self._dismissing:
            return
        self._dismissing = True
        self._timer.stop()
        if not self.isVisible() or reduced_motion():
            self._finish_dismiss()
            return
        self._opacity.setEnabled(True)
        self._animate_fade(0.0, self.EXIT_MS)
        self._animate_slide(self.pos() + QPoint(self.SLIDE_PX, 0), self.EXIT_MS)

    # -- timing ----------------------------------------------------------------------------

    def _pause(self, reason: str) -> None:
        if not self._pause_reasons and self._timer.isActive():
            remaining = self._timer.remainingTime()
            self._remaining_ms = min(max(0, remaining), self.message.effective_timeout_ms)
            self._timer.stop()
        self._pause_reasons.add(reason)

    def _resume(self, reason: str) -> None:
        self._pause_reasons.discard(reason)
        if self._pause_reasons or self._dismissing or self.message.effective_timeout_ms == 0:
            return
        if not self._timer.isActive():
            self._timer.start(self._remaining_ms)

    # -- animation -------------------------------------------------------------------------

    def _animate_fade(self, end: float, duration: int) -> None:
        self._fade.stop()
        self._fade.setDuration(duration)
        self._fade.setStartValue(self._opacity.opacity())
        self._fade.setEndValue(end)
        self._fade.setEasingCurve(
            QEasingCurve.Type.OutCubic if end > 0 else QEasingCurve.Type.InCubic
        )
        self._fade.start()

    def _animate_slide(self, end: QPoint, duration: int) -> None:
        self._slide.stop()
        self._slide.setDuration(duration)
        self._slide.setStartValue(self.pos())
        self._slide.setEndValue(end)
        self._slide.setEasingCurve(QEasingCurve.Type.OutCubic)
        self._slide.start()

    def _fade_finished(self) -> None:
        if self._dismissing:
            self._finish_dismiss()
        else:
            self._opacity.setEnabled(False)

    def _finish_dismiss(self) -> None:
        self._fade.stop()
        self._slide.stop()
        self.hide()
        self.dismissed.emit()

    # -- accessibility ---------------------------------------------------------------------

    def _announce(self) -> None:
        try:
            QAccessible.updateAccessibility(QAccessibleEvent(self, QAccessible.Event.Alert))
            if QAccessibleAnnouncementEvent is not None:
                announcement = QAccessibleAnnouncementEvent(self, self.message.spoken)
                urgent = self.message.kind in (ToastKind.ERROR, ToastKind.WARNING)
                politeness = QAccessible.AnnouncementPoliteness
                announcement.setPoliteness(politeness.Assertive if urgent else politeness.Polite)
                QAccessible.updateAccessibility(announcement)
        except (AttributeError, TypeError):  # pragma: no cover - an older binding
            pass

    # -- Qt overrides ----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self._use_default_style:
            super().paintEvent(event)
            return
        c = self.colors
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = QRectF(self.card_rect())
        painter.setPen(Qt.PenStyle.NoPen)
        if c.shadow:  # soft and a little below the card: layers of faint rounded rectangles
            shade = QColor(0, 0, 0)
            layers = 7
            for i in range(layers, 0, -1):
                shade.setAlphaF(0.045 * (layers + 1 - i) / layers)
                grown = card.adjusted(-i * 0.9, -i * 0.45 + 1.5, i * 0.9, i * 1.05 + 1.5)
                painter.setBrush(shade)
                painter.drawRoundedRect(grown, self.RADIUS + i, self.RADIUS + i)
        half = c.line / 2
        painter.setBrush(c.card)
        painter.setPen(QPen(c.border, c.line))
        painter.drawRoundedRect(card.adjusted(half, half, -half, -half), self.RADIUS, self.RADIUS)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._theme_restyle.request()

    def enterEvent(self, event: QEnterEvent) -> None:
        super().enterEvent(event)
        self._pause("hover")

    def leaveEvent(self, event: QEvent) -> None:
        super().leaveEvent(event)
        self._resume("hover")

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self._pause("focus")

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self._resume("focus")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusIn:
            self._pause("focus")
        elif event.type() == QEvent.Type.FocusOut:
            self._resume("focus")
        return False

    def mousePressEvent(self, event: QMouseEvent) -> None:
        inside = self.card_rect().contains(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and inside:
            event.accept()
        else:
            event.ignore()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        inside = self.card_rect().contains(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and inside:
            event.accept()
            self.dismiss()
        else:
            event.ignore()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            event.accept()
            self.dismiss()
            return
        super().keyPressEvent(event)

    def _on_action(self) -> None:
        self.action_triggered.emit()
        self.dismiss()
