"""The Qt binding must not corrupt the interpreter over a long session.

PySide6 6.12.0 on Python 3.11 loses one reference to None on every call that returns nothing
(`update()`, `move()`, QPainter calls...). Python 3.12 made None immortal, which hides it; on 3.11
(Debian 12's Python) the count reaches zero after a few seconds of painting and the process
aborts with "deallocating None". That is why the project pins PySide6 6.11.3. This test fails at
once if a binding upgrade brings the bug back.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QWidget


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="None is immortal from Python 3.12 on: its reference count never changes, so the bug "
    "cannot corrupt the interpreter and this count cannot see it",
)
def test_void_calls_do_not_leak_references_to_none(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    image = QImage(32, 32, QImage.Format.Format_ARGB32)
    before = sys.getrefcount(None)
    for _ in range(500):
        widget.update()
        widget.move(QPoint(1, 1))
        widget.setObjectName("probe")
        QApplication.sendPostedEvents()
        painter = QPainter(image)
        painter.drawLine(0, 0, 31, 31)
        painter.end()
    assert sys.getrefcount(None) - before > -50, "the Qt binding drops references to None"
