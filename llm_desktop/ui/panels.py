"""Pieces the tabs' panels share: a titled panel card and a line of secondary text."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout


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
