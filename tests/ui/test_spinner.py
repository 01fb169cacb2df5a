"""The busy overlay: covering, spinning, stopping, reduced motion, input and clean-up."""

from __future__ import annotations

import pytest
import shiboken6
from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QWidget

from llm_desktop.ui import motion
from llm_desktop.ui.spinner import SpinnerOverlay

WAIT_MS = 3000


@pytest.fixture(autouse=True)
def full_motion(monkeypatch):
    monkeypatch.setenv(motion.ENV_VAR, "0")


@pytest.fixture
def host(qtbot):
    widget = QWidget()
    widget.resize(800, 600)
    widget.setStyleSheet("background: white;")
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def card(qtbot, host):
    frame = QFrame(host)
    frame.setGeometry(100, 100, 400, 200)
    host.show()
    qtbot.waitExposed(host)
    return frame


def test_start_covers_the_parent_and_names_itself(card):
    overlay = SpinnerOverlay(card)
    assert not overlay.isVisible() and not overlay.is_spinning()
    overlay.start("Loading tensors")
    assert overlay.isVisible() and overlay.is_spinning() and overlay.is_animating()
    assert overlay.geometry() == card.rect()
    assert overlay.label.text() == "Loading tensors" and overlay.label.isVisible()
    assert overlay.accessibleName() == "Busy: Loading tensors"
    assert overlay.focusPolicy() == Qt.FocusPolicy.NoFocus


def test_angle_advances_while_spinning(qtbot, card):
    overlay = SpinnerOverlay(card)
    overlay.start("Loading")
    first = overlay.angle
    qtbot.waitUntil(lambda: overlay.angle != first, timeout=WAIT_MS)
    overlay.angle = 370.0
    assert overlay.angle == pytest.approx(10.0)


def test_stop_hides_and_stops_the_timer(card):
    overlay = SpinnerOverlay(card)
    overlay.start("Loading")
    overlay.stop()
    assert not overlay.isVisible() and not overlay.is_spinning() and not overlay.is_animating()


def test_message_updates(card):
    overlay = SpinnerOverlay(card)
    overlay.start("Parsing header")
    overlay.set_message("Creating context")
    assert overlay.label.text() == "Creating context" and overlay.message() == "Creating context"
    assert overlay.accessibleName() == "Busy: Creating context"
    overlay.set_message("")
    assert not overlay.label.isVisible() and overlay.accessibleName() == "Busy"


def test_reduced_motion_draws_a_still_ring(qtbot, card, monkeypatch):
    monkeypatch.setenv(motion.ENV_VAR, "1")
    overlay = SpinnerOverlay(card)
    overlay.start("Loading")
    angle = overlay.angle
    qtbot.wait(100)
    assert overlay.angle == angle and not overlay.is_animating()
    assert not overlay.findChild(QTimer).isActive()
    assert overlay.isVisible() and overlay.label.text() == "Loading"


def test_follows_the_parent_when_resized(card):
    overlay = SpinnerOverlay(card)
    overlay.start("Loading")
    card.resize(520, 90)
    assert overlay.geometry() == QRect(0, 0, 520, 90)
    assert overlay.label.isVisible(), "a short parent puts the message beside the arc"


def test_renders_a_visible_arc(card):
    overlay = SpinnerOverlay(card)
    overlay.start("Loading")
    image = card.grab().toImage()
    corner = image.pixelColor(2, 2)
    centre = QRect(card.width() // 2 - 30, card.height() // 2 - 40, 60, 60)
    pixels = [
        image.pixelColor(x, y)
        for x in range(centre.left(), centre.right())
        for y in range(centre.top(), centre.bottom())
    ]
    assert any(pixel != corner for pixel in pixels)
    assert any(p.blue() > p.red() + 60 for p in pixels), "the blue-ish arc is painted"


def test_no_timer_runs_while_hidden(qtbot, host, card):
    overlay = SpinnerOverlay(card)
    overlay.start("Loading")
    host.hide()
    assert not overlay.is_animating() and overlay.is_spinning()
    host.show()
    qtbot.waitUntil(overlay.is_animating, timeout=WAIT_MS)


def test_no_timer_outlives_the_overlay(card):
    overlay = SpinnerOverlay(card)
    overlay.start("Loading")
    timers = overlay.findChildren(QTimer)
    assert timers
    shiboken6.delete(overlay)
    assert not any(shiboken6.isValid(timer) for timer in timers)
    card.resize(300, 150)  # the parent's event filter went with it


def test_blocks_clicks_except_on_widgets_kept_clickable(qtbot, host, card):
    layout = QHBoxLayout(card)
    covered, cancel = QPushButton("Covered"), QPushButton("Cancel")
    layout.addWidget(covered)
    layout.addWidget(cancel)
    covered.show()
    cancel.show()
    overlay = SpinnerOverlay(card, keep_clickable=[cancel])
    overlay.start("Loading")
    qtbot.waitUntil(lambda: cancel.geometry().width() > 0, timeout=WAIT_MS)
    overlay.start("Loading")  # lay out again now that the buttons have their places

    def centre_in_window(widget: QWidget) -> QPoint:
        return widget.mapTo(host, widget.rect().center())

    clicks: list[str] = []
    covered.clicked.connect(lambda: clicks.append("covered"))
    cancel.clicked.connect(lambda: clicks.append("cancel"))
    window = host.windowHandle()
    QTest.mouseClick(window, Qt.MouseButton.LeftButton, pos=centre_in_window(covered))
    QTest.mouseClick(window, Qt.MouseButton.LeftButton, pos=centre_in_window(cancel))
    assert clicks == ["cancel"]
    assert card.childAt(covered.geometry().center()) is overlay
    assert card.childAt(cancel.geometry().center()) is cancel
