"""Pieces the tabs' panels share: a titled panel card, a line of secondary text, and the
scrolling a whole tab's content needs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget


def panel_card(title: str) -> tuple[QFrame, QVBoxLayout]:
    """A side-panel card with its title; the layout to fill under it."""
    card = QFrame()
    card.setObjectName("sidePanel")
    layout = QVBoxLayout(card)
    layout.setContentsMargins(16, 12, 16, 14)
    layout.setSpacing(8)
    heading = QLabel(title)
    heading.setObjectName("panelTitle")
    layout.addWidget(heading)
    return card, layout


def muted_label(text: str = "") -> QLabel:
    """Secondary text, wrapped."""
    label = QLabel(text)
    label.setObjectName("muted")
    label.setWordWrap(True)
    return label


def fill_with_scrolling(tab: QWidget, content: QWidget) -> None:
    """Lay `content` out as the whole of `tab`, scrolling down when the window is short."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(content)
    outer = QVBoxLayout(tab)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
