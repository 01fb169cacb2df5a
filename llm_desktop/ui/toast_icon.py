"""The toast kind's icon, painted: a check (success), "!" in a circle (error), "!" in a triangle
(warning), "i" in a circle (info), so colour is never the only cue.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from llm_desktop.core.presenter import NOTICE_KIND_WORDS
from llm_desktop.ui.toast_message import ToastKind

__all__ = ["KindIcon"]


class KindIcon(QWidget):
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
