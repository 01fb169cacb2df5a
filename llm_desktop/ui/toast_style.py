"""How a toast looks: its colours, taken from the app theme for its kind, and the style sheet
that styles the card's children with them.

Every colour comes from the app theme (`theme.colors`); in high contrast the border is the
kind's own colour, twice as wide, and there is no shadow.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor

from llm_desktop.ui import theme
from llm_desktop.ui.toast_message import ToastKind

__all__ = ["ToastColors", "style_sheet"]


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


def style_sheet(colors: ToastColors) -> str:
    """The card's built-in style sheet: its children in `colors`. The box is painted, so the
    sheet takes it away from the application style sheet's ``QFrame#toast`` rule."""
    c = colors
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
