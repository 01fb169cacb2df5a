"""A busy overlay: dims a widget and shows a painted, rotating arc with a short message.

What it covers is chosen by where it is put: the overlay always covers its parent widget and
blocks mouse input to it, and nothing else. To keep a Cancel button usable, give the overlay a
parent that does not contain the button (a card's info area rather than the whole card), or
name the button in ``keep_clickable``: those widgets are cut out of the overlay (with a mask),
so they stay visible, undimmed and clickable. The overlay never takes keyboard focus; keyboard
access to the widgets below is the owner's to disable if it must be.

The arc is painted with QPainter and turned by a QTimer (about 60 fps) only while the overlay
is visible; hidden, or with `reduced_motion()`, there is no timer at all and a still ring is
drawn. The timer is the overlay's child, so it cannot outlive it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import (
    Property,
    QElapsedTimer,
    QEvent,
    QObject,
    QPoint,
    QRect,
    QRectF,
    Qt,
    QTimer,
)
from PySide6.QtGui import (
    QAccessible,
    QAccessibleEvent,
    QColor,
    QFont,
    QFontMetrics,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QRegion,
)
from PySide6.QtWidgets import QLabel, QWidget

from llm_desktop.ui import theme
from llm_desktop.ui.motion import reduced_motion


@dataclass(frozen=True)
class OverlayColors:
    """What the overlay paints with, from the app theme's named colours (`theme.colors`).

    The message sits on a panel of its own, so it stays readable over whatever is dimmed:
    a dark panel in the light scheme, a raised surface in the dark one, and in high contrast
    an opaque surface with a solid border and no translucent panel.
    """

    backdrop: QColor
    panel: QColor
    panel_border: QColor
    text: QColor
    track: QColor
    arc: QColor
    line: float

    @classmethod
    def current(cls, scheme: str | None = None) -> OverlayColors:
        scheme = scheme or theme.applied_scheme() or theme.preferred_scheme()
        named = theme.colors(scheme)
        if theme.is_high_contrast_scheme(scheme):
            backdrop = QColor(named["window"])
            backdrop.setAlpha(190)
            track = QColor(named["text"])
            track.setAlpha(70)
            return cls(
                backdrop=backdrop,
                panel=QColor(named["surface"]),
                panel_border=QColor(named["border"]),
                text=QColor(named["text"]),
                track=track,
                arc=QColor(named["focus"]),
                line=2.0,
            )
        if QColor(named["window"]).lightnessF() < 0.5:
            panel = QColor(named["surface_alt"])
            panel.setAlpha(245)
            text = QColor(named["text"])
            arc = QColor(named["focus"])
            # Fade the card's text into its own surface: a grey veil looked like a smudge.
            backdrop = QColor(named["surface"])
            backdrop.setAlpha(200)
            border = QColor(named["border_strong"])
        else:  # a dark panel over the light scheme, with the dark scheme's colours
            dark = theme.colors(theme.DARK)
            panel = QColor(17, 24, 39, 222)
            text = QColor("#ffffff")
            arc = QColor(dark["focus"])
            backdrop = QColor(named["surface"])
            backdrop.setAlpha(200)
            border = QColor(0, 0, 0, 0)
        track = QColor(text)
        track.setAlpha(50)
        return cls(
            backdrop=backdrop,
            panel=panel,
            panel_border=border,
            text=text,
            track=track,
            arc=arc,
            line=1.0,
        )


_GEOMETRY_EVENTS = (QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Hide)


class SpinnerOverlay(QWidget):
    """Covers its parent while work runs: backdrop, spinning arc, message.

    The message sits below the arc when the parent is tall enough, beside it otherwise.
    The accessible name is "Busy", or "Busy: <message>".

    Signals: none (the owner calls `start`, `set_message` and `stop`).
    """

    FRAME_MS = 16  # about 60 fps
    TURN_MS = 1100  # one full turn of the arc
    BREATH_MS = 1700  # the arc grows and shrinks on this period
    PAD = 10  # inside the message panel
    GAP = 8  # between arc and message

    def __init__(
        self,
        parent: QWidget,
        *,
        keep_clickable: Iterable[QWidget] = (),
        radius: float = 0.0,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("spinnerOverlay")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setCursor(Qt.CursorShape.BusyCursor)
        self.setAccessibleName("Busy")
        self._radius = radius
        self._angle = 0.0
        self._span = 270.0
        self._spinning = False
        self._still = False
        self._message = ""
        self._keep = list(keep_clickable)

        self._timer = QTimer(self)
        self._timer.setInterval(self.FRAME_MS)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._clock = QElapsedTimer()

        self.label = QLabel(self)
        self.label.setObjectName("spinnerMessage")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        font = QFont(self.font())
        font.setPixelSize(13)
        font.setWeight(QFont.Weight.Medium)
        self.label.setFont(font)
        self.label.hide()
        self.colors = OverlayColors.current()
        self._theme_restyle = theme.RestyleAfterThemeChange(self, self._restyle_if_changed)
        self._apply_colors()

        self._spinner_rect = QRectF()
        self._panel_rect = QRectF()
        parent.installEventFilter(self)
        for widget in self._keep:
            widget.installEventFilter(self)
        self.hide()

    # -- public API ------------------------------------------------------------------------

    def start(self, message: str = "") -> None:
        """Cover the parent and spin (or, with reduced motion, show a still ring)."""
        self._spinning = True
        self._still = reduced_motion()
        self._clock.start()
        self.set_message(message)
        self._relayout()
        self.raise_()
        self.show()
        self._sync_timer()

    def message_height(self) -> int:
        """The least height that shows the arc and a one-line message uncut: a parent as
        short as one line of text gives its overlay at least this much."""
        return QFontMetrics(self.label.font()).height() + 2 * self.PAD

    def set_message(self, message: str) -> None:
        """Change the message under the arc; an empty one shows the arc alone."""
        self._message = message
        self.label.setToolTip(message)
        self.setAccessibleName(f"Busy: {message}" if message else "Busy")
        self._relayout()
        with contextlib.suppress(AttributeError, TypeError):  # an older binding
            QAccessible.updateAccessibility(QAccessibleEvent(self, QAccessible.Event.NameChanged))

    def message(self) -> str:
        return self._message

    def stop(self) -> None:
        """Hide the overlay and stop its timer."""
        self._spinning = False
        self._timer.stop()
        self.hide()

    def is_spinning(self) -> bool:
        """True between `start` and `stop`, whether or not the parent is on screen."""
        return self._spinning

    def is_animating(self) -> bool:
        """True while the frame timer runs (never when hidden or with reduced motion)."""
        return self._timer.isActive()

    def _get_angle(self) -> float:
        return self._angle

    def _set_angle(self, angle: float) -> None:
        self._angle = float(angle) % 360.0
        self.update()

    angle = Property(float, _get_angle, _set_angle)
    """Where the arc's head is, in degrees clockwise from 12 o'clock."""

    # -- internals -------------------------------------------------------------------------

    def _sync_timer(self) -> None:
        if self._spinning and not self._still and self.isVisible():
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()

    def _tick(self) -> None:
        elapsed = self._clock.elapsed()
        breath = 0.5 - 0.5 * math.cos(2 * math.pi * (elapsed % self.BREATH_MS) / self.BREATH_MS)
        self._span = 50.0 + 220.0 * breath
        self._set_angle(elapsed * 360.0 / self.TURN_MS)

    def _relayout(self) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        if self.geometry() != parent.rect():
            self.setGeometry(parent.rect())
        w, h = self.width(), self.height()
        size = max(16.0, min(36.0, min(w, h) * 0.32))
        metrics = QFontMetrics(self.label.font())
        text_h = metrics.height()
        has_text = bool(self._message)
        vertical = not has_text or h >= size + self.GAP + text_h + 2 * self.PAD + 8
        if vertical:
            size = min(size, max(16.0, h - 2 * self.PAD - (self.GAP + text_h if has_text else 0)))
        else:
            size = min(size, max(14.0, h - 2 * self.PAD), float(text_h) + 4)
        max_text = max(0, w - 2 * self.PAD - 16 - (0 if vertical else int(size) + self.GAP))
        text = metrics.elidedText(self._message, Qt.TextElideMode.ElideRight, max_text)
        text_w = metrics.horizontalAdvance(text) if has_text else 0
        if vertical:
            panel_w = max(size, text_w) + 2 * self.PAD + (8 if has_text else 0)
            panel_h = size + (self.GAP + text_h if has_text else 0) + 2 * self.PAD
        else:
            panel_w = size + self.GAP + text_w + 2 * self.PAD + 4
            panel_h = max(size, text_h) + 2 * self.PAD
        panel = QRectF((w - panel_w) / 2, (h - panel_h) / 2, panel_w, panel_h)
        if vertical:
            spinner = QRectF(panel.center().x() - size / 2, panel.top() + self.PAD, size, size)
            label = QRect(int(panel.left()), int(spinner.bottom() + self.GAP), int(panel_w), text_h)
        else:
            spinner = QRectF(panel.left() + self.PAD, panel.center().y() - size / 2, size, size)
            label = QRect(
                int(spinner.right() + self.GAP),
                int(panel.center().y() - text_h / 2),
                int(text_w) + 4,
                text_h,
            )
        self._panel_rect, self._spinner_rect = panel, spinner
        self.label.setText(text)
        self.label.setAlignment(
            Qt.AlignmentFlag.AlignHCenter if vertical else Qt.AlignmentFlag.AlignLeft
        )
        self.label.setGeometry(label)
        self.label.setVisible(has_text)
        self._update_mask()
        self.update()

    def _update_mask(self) -> None:
        region = QRegion(self.rect())
        cut = False
        for widget in self._keep:
            if widget.isVisible() and widget.window() is self.window():
                top_left = self.mapFromGlobal(widget.mapToGlobal(QPoint(0, 0)))
                hole = QRect(top_left, widget.size()).intersected(self.rect())
                if not hole.isEmpty():
                    region -= QRegion(hole)
                    cut = True
        if cut:
            self.setMask(region)
        else:
            self.clearMask()

    def _apply_colors(self) -> None:
        self.label.setStyleSheet(
            f"color: {self.colors.text.name()}; background: transparent; padding: 0;"
        )
        self.update()

    def _restyle_if_changed(self) -> None:
        colors = OverlayColors.current()
        if colors != self.colors:
            self.colors = colors
            self._apply_colors()

    # -- Qt overrides ----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        c = self.colors
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        if self._radius > 0:
            shape = QPainterPath()
            shape.addRoundedRect(QRectF(self.rect()), self._radius, self._radius)
            painter.fillPath(shape, c.backdrop)
        else:
            painter.fillRect(self.rect(), c.backdrop)
        painter.setBrush(c.panel)
        if c.panel_border.alpha():
            painter.setPen(QPen(c.panel_border, c.line))
        half = c.line / 2 if c.panel_border.alpha() else 0.0
        painter.drawRoundedRect(self._panel_rect.adjusted(half, half, -half, -half), 10, 10)

        ring = self._spinner_rect
        width = max(2.5, ring.width() / 9)
        ring = ring.adjusted(width / 2, width / 2, -width / 2, -width / 2)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(c.track, width))
        painter.drawEllipse(ring)
        painter.setPen(QPen(c.arc, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        if self._still:
            painter.drawEllipse(ring)
            return
        # Qt angles: 1/16 degree, counter-clockwise from 3 o'clock; ours: clockwise from 12.
        start = 90.0 - self._angle
        painter.drawArc(ring, round(start * 16), round(self._span * 16))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._theme_restyle.request()

    def showEvent(self, event: QEvent) -> None:
        super().showEvent(event)
        self._relayout()
        self._sync_timer()

    def hideEvent(self, event: QEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self.parentWidget():
            if kind == QEvent.Type.Resize:
                self._relayout()
            elif kind == QEvent.Type.ChildAdded and self._spinning:
                self.raise_()
        elif self._spinning and kind in _GEOMETRY_EVENTS:
            self._update_mask()
        return False

    # The overlay swallows the pointer, so nothing under it is clicked while busy.
    def mousePressEvent(self, event) -> None:
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        event.accept()

    def wheelEvent(self, event) -> None:
        event.accept()

    def contextMenuEvent(self, event) -> None:
        event.accept()
