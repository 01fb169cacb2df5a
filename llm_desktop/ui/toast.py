"""Toasts: the one path for user-facing messages (after qutebrowser's messageview).

Code that has something to tell the user builds a `ToastMessage` and hands it to the window's
`ToastManager`, which stacks `Toast` cards in the top-right corner of its host widget, times
them out, dismisses them on click or Esc, and replaces a visible toast that has the same key
instead of adding another.

Accessibility: a toast's kind is never carried by colour alone. Each kind has its own icon
shape (check, "!" in a circle, "!" in a triangle, "i"), and the accessible name starts with the
kind ("Error: …"). Showing a toast sends an ``Alert`` accessibility event and, where Qt has it
(6.8+), a ``QAccessibleAnnouncementEvent`` with the full text (assertive for errors and
warnings), which is the event Qt's platform bridges pass to screen readers as speech. The
timer pauses while the pointer is over the toast or the keyboard focus is in it.

Styling: the card (rounded rectangle tinted in the kind's colour, border, soft shadow) is
painted, and its children are styled by a built-in style sheet; every colour comes from the app
theme (`theme.colors`), and a theme switch restyles shown toasts. That style sheet also takes
the card box away from the application style sheet's ``QFrame#toast`` rule (which would add a
second border and padding). Object names (``toast``, ``toastIcon``, ``toastTitle``,
``toastText``, ``toastAction``, ``toastClose``) and the ``kind`` property are there for style
sheets: pass ``use_default_style=False`` to let the application's style sheet style the whole
toast (then ``QFrame#toast[kind="error"] {...}`` draws the box, with no painted shadow).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import (
    QEasingCurve,
    QEvent,
    QMargins,
    QObject,
    QPoint,
    QPointF,
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
    QPainterPath,
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

from llm_desktop.core.presenter import (
    NOTICE_KIND_WORDS,
    NOTICE_LIMIT,
    NOTICE_TIMEOUT_MS,
    Notice,
    NoticeKind,
)
from llm_desktop.ui import theme
from llm_desktop.ui.motion import reduced_motion

try:  # Qt 6.8+: the announcement screen readers actually speak
    from PySide6.QtGui import QAccessibleAnnouncementEvent
except ImportError:  # pragma: no cover - older Qt
    QAccessibleAnnouncementEvent = None


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


@dataclass(frozen=True)
class ToastColors:
    """What a toast paints with, taken from the app theme's named colours (`theme.colors`)."""

    card: QColor
    border: QColor
    accent: QColor  # the kind's colour: icon, edge, action text
    on_accent: QColor  # the icon's glyph
    text: QColor
    muted: QColor
    focus: QColor
    hover: QColor  # the kind's colour, faint: button hover
    line: float  # border width: 2 in high contrast
    shadow: bool  # none in high contrast

    @classmethod
    def for_kind(cls, kind: ToastKind, scheme: str | None = None) -> ToastColors:
        scheme = scheme or theme.applied_scheme() or theme.preferred_scheme()
        named = theme.colors(scheme)
        high_contrast = theme.is_high_contrast_scheme(scheme)
        accent = QColor(named[kind.value])
        surface = QColor(named["surface"])
        hover = QColor(accent)
        hover.setAlpha(30)
        return cls(
            card=QColor(named[f"{kind.value}_bg"]),
            border=accent if high_contrast else _blend(accent, surface, 0.45),
            accent=accent,
            on_accent=surface,
            text=QColor(named["text"]),
            muted=QColor(named["muted"]),
            focus=QColor(named["focus"]),
            hover=hover,
            line=2.0 if high_contrast else 1.0,
            shadow=not high_contrast,
        )


def _blend(color: QColor, other: QColor, amount: float) -> QColor:
    """`amount` of `color` over `other`, opaque."""
    return QColor.fromRgbF(
        color.redF() * amount + other.redF() * (1 - amount),
        color.greenF() * amount + other.greenF() * (1 - amount),
        color.blueF() * amount + other.blueF() * (1 - amount),
    )


def _rgba(color: QColor) -> str:
    return f"rgba({color.red()}, {color.green()}, {color.blue()}, {color.alpha()})"


class _KindIcon(QWidget):
    """The kind as a shape, so colour is never the only cue."""

    SIZE = 22

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("toastIcon")
        self.setFixedSize(self.SIZE, self.SIZE)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.kind = ToastKind.INFO
        self.color = QColor(Qt.GlobalColor.darkBlue)
        self.glyph_color = QColor(Qt.GlobalColor.white)

    def set_kind(self, kind: ToastKind, color: QColor, glyph_color: QColor) -> None:
        self.kind, self.color, self.glyph_color = kind, color, glyph_color
        self.setAccessibleName(NOTICE_KIND_WORDS[kind])
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = float(self.SIZE)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.color)
        if self.kind is ToastKind.WARNING:
            triangle = QPainterPath()
            triangle.moveTo(s / 2, 1.5)
            triangle.lineTo(s - 1, s - 2.5)
            triangle.lineTo(1, s - 2.5)
            triangle.closeSubpath()
            painter.setPen(
                QPen(
                    self.color,
                    2.5,
                    Qt.PenStyle.SolidLine,
                    Qt.PenCapStyle.RoundCap,
                    Qt.PenJoinStyle.RoundJoin,
                )
            )
            painter.drawPath(triangle)
        else:
            painter.drawEllipse(QRectF(0, 0, s, s))

        pen = QPen(
            self.glyph_color,
            2.2,
            Qt.PenStyle.SolidLine,
            Qt.PenCapStyle.RoundCap,
            Qt.PenJoinStyle.RoundJoin,
        )
        painter.setPen(pen)
        painter.setBrush(self.glyph_color)
        c = s / 2
        if self.kind is ToastKind.SUCCESS:
            check = QPainterPath()
            check.moveTo(c - 4.5, c + 0.2)
            check.lineTo(c - 1.2, c + 3.4)
            check.lineTo(c + 4.8, c - 3.6)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(check)
        elif self.kind is ToastKind.INFO:
            painter.drawLine(QPointF(c, c - 0.5), QPointF(c, c + 5))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(QPointF(c, c - 4.6), 1.5, 1.5)
        else:  # "!" for error (in a circle) and warning (in a triangle)
            top, bottom = (c - 5.5, c + 1.2) if self.kind is ToastKind.ERROR else (c - 3, c + 2.5)
            painter.drawLine(QPointF(c, top), QPointF(c, bottom))
            painter.setPen(Qt.PenStyle.NoPen)
            dot = c + 5 if self.kind is ToastKind.ERROR else c + 6
            painter.drawEllipse(QPointF(c, dot), 1.45, 1.45)


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
        self._restyle_pending = False
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
        self.icon = _KindIcon(self)
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

    def _style_sheet(self) -> str:
        c = self.colors
        line = f"{c.line:g}px"
        return f"""
            QFrame#toast {{ background: transparent; border: none; padding: 0; margin: 0; }}
            QLabel#toastTitle {{
                color: {c.text.name()}; font-size: 14px; font-weight: 600;
                background: transparent;
            }}
            QLabel#toastText {{ color: {c.text.name()}; font-size: 13px; background: transparent; }}
            QPushButton#toastAction {{
                color: {c.accent.name()}; background: transparent;
                border: {line} solid {c.border.name()}; border-radius: 6px;
                padding: 4px 10px; font-size: 13px; font-weight: 600; min-height: 0;
            }}
            QPushButton#toastAction:hover {{ background: {_rgba(c.hover)}; }}
            QPushButton#toastAction:pressed {{ background: {_rgba(c.hover)}; }}
            QPushButton#toastAction:focus {{ border: 2px solid {c.focus.name()}; }}
            QToolButton#toastClose {{
                color: {c.muted.name()}; background: transparent; border: none;
                border-radius: 6px; font-size: 18px; padding: 0 0 2px 0;
            }}
            QToolButton#toastClose:hover {{ background: {_rgba(c.hover)}; color: {c.text.name()}; }}
            QToolButton#toastClose:focus {{ border: 2px solid {c.focus.name()}; }}
        """

    def _apply_style(self) -> None:
        self.colors = ToastColors.for_kind(self.message.kind)
        self.icon.set_kind(self.message.kind, self.colors.accent, self.colors.on_accent)
        if self._use_default_style:
            self.setStyleSheet(self._style_sheet())
        else:
            theme.repolish(self)  # `kind` may have changed: match the app's selectors again
        self.update()

    def _restyle_later(self) -> None:
        """After a theme switch: once the event loop is back, the new scheme is known."""
        if not self._restyle_pending:
            self._restyle_pending = True
            QTimer.singleShot(0, self, self._restyle_if_changed)

    def _restyle_if_changed(self) -> None:
        self._restyle_pending = False
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
            self._restyle_later()

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

    @property
    def host(self) -> QWidget:
        return self._host

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
