"""Light, dark and high-contrast themes that follow the system.

One accent blue over neutral greys, on the Fusion style (the same look on every platform),
with a QPalette for Qt's own widgets and an application stylesheet for this app's widgets.
Widgets opt in by object name and dynamic properties, never by colours of their own:

==============================  ===========================================================
``QFrame#modelCard``            a model card; property ``state``: unloaded, loading, loaded,
                                failed, cancelled, unloading (border colour per state)
``QLabel#badge``                a neutral pill
``QLabel#fitBadge``             a fit verdict pill; property ``verdict``: gpu, partial, cpu, no
``QPushButton#primaryButton``   the one main action of a view
``QProgressBar``                rounded, accent chunk; property ``level="warning"`` turns the
                                chunk amber (say it in the text too: colour is never alone)
``QFrame#toast``                a notification; property ``kind``: success, error, warning, info
``QFrame#sidePanel``            a panel beside the main view
``QLabel#panelTitle``           a panel's title; ``QLabel#sectionTitle`` a heading inside one
``QLabel[muted="true"]``        secondary text
``QLabel#badge[tone=...]``      a pill toned ``warning`` (gated), ``accent`` (recommended,
                                busy), ``success`` (a server running, an engine connected)
                                or ``error`` (an engine unreachable)
``QFrame#transferTray``         the transfer tray; ``QFrame#transferRow`` one row, property
                                ``stage`` (complete, failed, cancelled, paused, ...)
``QProgressBar#slimBar``        a thin bar with no text (the line under it says the numbers)
``QPushButton#linkButton``      a quiet text-only button
``QFrame#remoteModel``          a model in "Get models"; ``QLabel#inlineError`` an error
                                shown in place, ``QLabel#inlineNote`` a result shown in place
``QFrame#engineRow``            an engine in the Engines tab; property ``tone`` as a badge's
``QLabel#codeLine``             one line of code or a command to copy
==============================  ===========================================================

After changing a dynamic property on a shown widget, call `repolish(widget)` so the
stylesheet is matched again. Colours for custom painting come from `colors(scheme)`.

High contrast is chosen when any of these says so, first match wins:

1. the environment variable ``LLM_DESKTOP_HIGH_CONTRAST`` (``1``/``0``; it also forces off);
2. Qt's accessibility hints (``QStyleHints.accessibility().contrastPreference()``, Qt 6.10+),
   which platforms that know the setting report;
3. a heuristic for the platforms that do not: the system palette's window and window-text
   colours have a WCAG contrast ratio of at least 19.5 (pure black on white is 21; Windows'
   and GNOME's high-contrast themes are 21; Fusion's default light palette is 18.3 and
   typical dark themes 12-16, so ordinary themes stay below it).

The palette the heuristic reads is the one the application had before the first
`apply_theme` (once a theme is applied, the application palette is ours, not the system's).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from string import Template

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from llm_desktop.core.palette import (
    DARK,
    HIGH_CONTRAST,
    HIGH_CONTRAST_LIGHT,
    LIGHT,
    PALETTES,
    SCHEMES,
    mix,
)

HIGH_CONTRAST_ENV = "LLM_DESKTOP_HIGH_CONTRAST"
HIGH_CONTRAST_RATIO = 19.5
BASE_POINT_SIZE = 10.0

_SCHEME_PROPERTY = "llmDesktopScheme"


_METRICS: dict[str, dict[str, str]] = {
    LIGHT: {"line": "1px", "focus_line": "2px", "badge_line": "1px"},
    DARK: {"line": "1px", "focus_line": "2px", "badge_line": "1px"},
    HIGH_CONTRAST: {"line": "2px", "focus_line": "3px", "badge_line": "2px"},
    HIGH_CONTRAST_LIGHT: {"line": "2px", "focus_line": "3px", "badge_line": "2px"},
}


def is_high_contrast_scheme(scheme: str) -> bool:
    return scheme in (HIGH_CONTRAST, HIGH_CONTRAST_LIGHT)


def colors(scheme: str | None = None) -> dict[str, str]:
    """A copy of the named colours of `scheme`; None means the scheme applied to the app now."""
    return dict(PALETTES[_checked(scheme or applied_scheme() or preferred_scheme())])


def applied_scheme(app: QApplication | None = None) -> str | None:
    """The scheme the last `apply_theme` set on `app`, or None before any."""
    app = app or QApplication.instance()
    if app is None:
        return None
    value = app.property(_SCHEME_PROPERTY)
    return value if value in SCHEMES else None


# --- what the system asks for ----------------------------------------------------------------

_system_palette: QPalette | None = None


def _remember_system_palette() -> QPalette:
    global _system_palette
    if _system_palette is None:
        _system_palette = QPalette(QGuiApplication.palette())
    return _system_palette


def current_scheme() -> str:
    """ "light" or "dark", as the system's colour scheme says.

    Where the platform does not say (`Qt.ColorScheme.Unknown`), the system palette's window
    colour decides: a window darker than mid-grey means dark.
    """
    return _scheme_for(QGuiApplication.styleHints().colorScheme())


def _scheme_for(color_scheme: Qt.ColorScheme) -> str:
    if color_scheme == Qt.ColorScheme.Dark:
        return DARK
    if color_scheme == Qt.ColorScheme.Light:
        return LIGHT
    window = _remember_system_palette().color(QPalette.ColorRole.Window)
    return DARK if window.lightnessF() < 0.5 else LIGHT


def is_high_contrast() -> bool:
    """Whether the system asks for high contrast; see the module docstring for the order."""
    forced = os.environ.get(HIGH_CONTRAST_ENV, "").strip().lower()
    if forced:
        return forced not in ("0", "false", "no", "off")
    hints = QGuiApplication.styleHints()
    if hints.accessibility().contrastPreference() == Qt.ContrastPreference.HighContrast:
        return True
    palette = _remember_system_palette()
    ratio = contrast_ratio(
        palette.color(QPalette.ColorRole.Window), palette.color(QPalette.ColorRole.WindowText)
    )
    return ratio >= HIGH_CONTRAST_RATIO


def preferred_scheme(color_scheme: Qt.ColorScheme | None = None) -> str:
    """The scheme to use now: one of `SCHEMES`, high contrast included."""
    if color_scheme is None:
        color_scheme = QGuiApplication.styleHints().colorScheme()
    base = _scheme_for(color_scheme)
    if is_high_contrast():
        return HIGH_CONTRAST if base == DARK else HIGH_CONTRAST_LIGHT
    return base


def contrast_ratio(first: QColor | str, second: QColor | str) -> float:
    """WCAG 2 contrast ratio, from 1 (the same) to 21 (black on white)."""

    def luminance(color: QColor) -> float:
        def linear(channel: float) -> float:
            if channel <= 0.04045:
                return channel / 12.92
            return ((channel + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * linear(color.redF())
            + 0.7152 * linear(color.greenF())
            + 0.0722 * linear(color.blueF())
        )

    lighter, darker = sorted((luminance(QColor(first)), luminance(QColor(second))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# --- applying ---------------------------------------------------------------------------------


def apply_theme(app: QApplication, scheme: str | None = None) -> str:
    """Fusion, a palette and the stylesheet for `scheme` (None: what the system asks for).

    Returns the scheme applied. Safe to call again; switching schemes re-polishes all widgets.
    """
    _remember_system_palette()  # before the first setPalette replaces it
    resolved = _checked(scheme or preferred_scheme())
    # Always set: under a stylesheet, app.style() is Qt's QStyleSheetStyle, which does not
    # say which style it wraps, and a theme switch re-polishes every widget anyway.
    app.setStyle("Fusion")
    app.setPalette(build_palette(resolved))
    font = QFont(app.font())
    if 0 < font.pointSizeF() < BASE_POINT_SIZE:
        font.setPointSizeF(BASE_POINT_SIZE)
        app.setFont(font)
    app.setStyleSheet(stylesheet(resolved))
    app.setProperty(_SCHEME_PROPERTY, resolved)
    return resolved


def follow_system(app: QApplication) -> Callable[[], None]:
    """Apply the system's scheme now and again whenever it changes (colour or contrast).

    Returns a function that stops following. Calling this twice replaces the first link.
    """
    previous = getattr(follow_system, "_stop", None)
    if previous is not None:
        previous()
    hints = QGuiApplication.styleHints()
    accessibility = hints.accessibility()

    def on_color_scheme(color_scheme: Qt.ColorScheme) -> None:
        wanted = preferred_scheme(color_scheme)
        if wanted != applied_scheme(app):
            apply_theme(app, wanted)

    def on_contrast(*_: object) -> None:
        on_color_scheme(hints.colorScheme())

    hints.colorSchemeChanged.connect(on_color_scheme)
    accessibility.contrastPreferenceChanged.connect(on_contrast)
    apply_theme(app)

    def stop() -> None:
        hints.colorSchemeChanged.disconnect(on_color_scheme)
        accessibility.contrastPreferenceChanged.disconnect(on_contrast)
        if getattr(follow_system, "_stop", None) is stop:
            follow_system._stop = None  # type: ignore[attr-defined]

    follow_system._stop = stop  # type: ignore[attr-defined]
    return stop


def repolish(widget: QWidget) -> None:
    """Match the stylesheet again after a dynamic property of `widget` changed."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def build_palette(scheme: str) -> QPalette:
    c = PALETTES[_checked(scheme)]
    high_contrast = is_high_contrast_scheme(scheme)
    palette = QPalette()
    bevel_light = c["surface"] if high_contrast else mix("#ffffff", c["surface"], 0.08)
    roles = {
        QPalette.ColorRole.Window: c["window"],
        QPalette.ColorRole.WindowText: c["text"],
        QPalette.ColorRole.Base: c["surface"],
        QPalette.ColorRole.AlternateBase: c["surface_alt"],
        QPalette.ColorRole.Text: c["text"],
        QPalette.ColorRole.Button: c["surface"],
        QPalette.ColorRole.ButtonText: c["text"],
        QPalette.ColorRole.BrightText: c["error"],
        QPalette.ColorRole.Highlight: c["accent"],
        QPalette.ColorRole.HighlightedText: c["on_accent"],
        QPalette.ColorRole.Accent: c["accent"],
        QPalette.ColorRole.ToolTipBase: c["tooltip"],
        QPalette.ColorRole.ToolTipText: c["tooltip_text"],
        QPalette.ColorRole.PlaceholderText: c["muted"],
        QPalette.ColorRole.Link: c["link"],
        QPalette.ColorRole.LinkVisited: c["link"],
        # Fusion draws bevels and frames from these.
        QPalette.ColorRole.Light: bevel_light,
        QPalette.ColorRole.Midlight: c["surface_alt"],
        QPalette.ColorRole.Mid: c["border"],
        QPalette.ColorRole.Dark: c["border_strong"],
        QPalette.ColorRole.Shadow: c["border_strong"] if high_contrast else "#000000",
    }
    for role, value in roles.items():
        palette.setColor(role, QColor(value))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.PlaceholderText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(c["disabled"]))
    palette.setColor(
        QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(c["border_strong"])
    )
    return palette


def stylesheet(scheme: str) -> str:
    """The application stylesheet for `scheme` (see the module docstring for the names)."""
    values = {**PALETTES[_checked(scheme)], **_METRICS[scheme]}
    return _STYLESHEET.substitute(values)


def _checked(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    return scheme


_STYLESHEET = Template(
    """
QToolTip {
    background: $tooltip; color: $tooltip_text;
    border: $line solid $border_strong; border-radius: 4px; padding: 4px 8px;
}

/* Buttons: quiet by default, one accent-filled primary per view. */
QPushButton {
    background: $surface; color: $text;
    border: $line solid $border_strong; border-radius: 6px;
    padding: 5px 14px; min-height: 18px;
}
QPushButton:hover { background: $surface_hover; border-color: $accent; }
QPushButton:pressed { background: $surface_alt; }
QPushButton:focus { border: $focus_line solid $focus; }
QPushButton:disabled { color: $disabled; border-color: $border; background: $surface; }
QPushButton#primaryButton {
    background: $accent; color: $on_accent; border: $line solid $accent; font-weight: 600;
}
QPushButton#primaryButton:hover { background: $accent_hover; border-color: $accent_hover; }
QPushButton#primaryButton:pressed { background: $accent_pressed; border-color: $accent_pressed; }
QPushButton#primaryButton:focus { border: $focus_line solid $text; }
QPushButton#primaryButton:disabled {
    background: $surface_alt; color: $disabled; border-color: $border;
}

/* A quiet text-only button (a tray's "Clear finished"). */
QPushButton#linkButton {
    background: $window; color: $link; border: none; padding: 2px 4px; min-height: 0;
}
QPushButton#linkButton:hover { text-decoration: underline; background: $window; }
QPushButton#linkButton:focus { border: $focus_line solid $focus; border-radius: 4px; }

QLineEdit, QPlainTextEdit, QTextEdit {
    background: $surface; color: $text;
    border: $line solid $border_strong; border-radius: 6px; padding: 4px 6px;
    selection-background-color: $accent; selection-color: $on_accent;
}
QLineEdit:focus, QPlainTextEdit:focus, QTextEdit:focus { border: $focus_line solid $focus; }

/* Progress: a rounded track, an accent chunk, the numbers always written on it. */
QProgressBar {
    background: $track; color: $bar_text;
    border: $line solid $border; border-radius: 6px;
    min-height: 18px; text-align: center;
}
QProgressBar::chunk { background: $chunk; border-radius: 5px; }
QProgressBar[level="warning"]::chunk { background: $chunk_warning; }

/* Model cards: a quiet surface whose border says the state (the card's text says it too). */
QFrame#modelCard {
    background: $surface; border: $line solid $border; border-radius: 10px; padding: 12px;
}
QFrame#modelCard[state="loading"], QFrame#modelCard[state="unloading"] { border-color: $accent; }
QFrame#modelCard[state="loaded"] { border-color: $success; }
QFrame#modelCard[state="failed"] { border-color: $error; }
QFrame#modelCard[state="cancelled"] { border-color: $warning; }

/* Badges: small pills. */
QLabel#badge, QLabel#fitBadge {
    background: $surface_alt; color: $muted;
    border: $badge_line solid $border; border-radius: 9px;
    padding: 1px 8px; font-weight: 600;
}
QLabel#fitBadge[verdict="gpu"] { background: $success_bg; color: $success; border-color: $success; }
QLabel#fitBadge[verdict="partial"] { background: $info_bg; color: $info; border-color: $info; }
QLabel#fitBadge[verdict="cpu"] { background: $warning_bg; color: $warning; border-color: $warning; }
QLabel#fitBadge[verdict="no"] { background: $error_bg; color: $error; border-color: $error; }

/* Card text: a strong title, the facts, and quieter path and status lines. */
QLabel#cardTitle { font-size: 12pt; font-weight: 600; color: $text; }
QLabel#cardFacts { color: $text; }
QLabel#cardPath { color: $muted; font-size: 9pt; }
QLabel#cardStatus { color: $muted; }
QLabel#muted { color: $muted; }
QLabel#emptyTitle { font-size: 16pt; font-weight: 600; color: $text; }

QLabel#badge[tone="warning"] {
    background: $warning_bg; color: $warning; border-color: $warning;
}
QLabel#badge[tone="accent"] { background: $accent_bg; color: $accent; border-color: $accent; }
QLabel#badge[tone="success"] {
    background: $success_bg; color: $success; border-color: $success;
}
QLabel#badge[tone="error"] { background: $error_bg; color: $error; border-color: $error; }
QLabel#fitBadge[verdict="pending"], QLabel#fitBadge[verdict="unknown"] {
    font-weight: 400;
}

/* The transfer tray: rows of downloads and quantize jobs under the current view. */
QFrame#transferTray { background: $window; border-top: $line solid $border; }
QWidget#transferRows { background: $window; }
QFrame#transferRow {
    background: $surface; border: $line solid $border; border-radius: 8px;
    border-left: 4px solid $accent;
}
QFrame#transferRow[stage="complete"] { border-left-color: $success; }
QFrame#transferRow[stage="failed"] { border-left-color: $error; }
QFrame#transferRow[stage="cancelled"], QFrame#transferRow[stage="paused"] {
    border-left-color: $warning;
}
QLabel#transferTitle { font-weight: 600; color: $text; }
QLabel#transferLine { color: $text; }
QProgressBar#slimBar {
    min-height: 6px; max-height: 6px; border-radius: 3px; border: none; background: $track;
}
QProgressBar#slimBar::chunk { border-radius: 3px; background: $chunk; }

/* Get models: search results and the models of the repository chosen. */
QListWidget#repoList {
    background: $surface; border: $line solid $border; border-radius: 8px; padding: 4px;
    outline: none;
}
QListWidget#repoList::item { border-radius: 6px; color: $text; }
QListWidget#repoList::item:hover { background: $surface_hover; }
QListWidget#repoList::item:selected { background: $accent_bg; border: $line solid $accent; }
QLabel#repoName { font-weight: 600; color: $text; }
QLabel#repoMeta { color: $muted; font-size: 9pt; }
QWidget#modelRows { background: $window; }
QFrame#remoteModel {
    background: $surface; border: $line solid $border; border-radius: 8px;
}
QFrame#remoteModel:hover { border-color: $border_strong; }
QLabel#quantName { font-size: 11pt; font-weight: 600; color: $text; }
QLabel#inlineError {
    background: $error_bg; color: $error; border: $line solid $error; border-radius: 6px;
    padding: 6px 10px;
}

/* The Engines tab: one row per engine, its left edge saying the connection (the chip says it
   in words too); a note after adding one. */
QFrame#engineRow {
    background: $surface; border: $line solid $border; border-radius: 8px;
    border-left: 4px solid $border_strong;
}
QFrame#engineRow[tone="success"] { border-left-color: $success; }
QFrame#engineRow[tone="accent"] { border-left-color: $accent; }
QFrame#engineRow[tone="error"] { border-left-color: $error; }
QLabel#engineName { font-size: 11pt; font-weight: 600; color: $text; }
QLabel#codeLine {
    background: $surface_alt; color: $text; border: $line solid $border; border-radius: 6px;
    padding: 5px 8px;
}
QLabel#inlineNote {
    background: $success_bg; color: $text; border: $line solid $success; border-radius: 6px;
    padding: 6px 10px;
}

/* Side panels and the labels inside them. */
QFrame#sidePanel { background: $surface; border: $line solid $border; border-radius: 10px; }
QLabel#panelTitle { font-size: 12pt; font-weight: 600; color: $text; }
QLabel#sectionTitle { font-weight: 600; color: $muted; }
QLabel[muted="true"] { color: $muted; }

QScrollBar:vertical { background: $window; width: 10px; margin: 0; }
QScrollBar:horizontal { background: $window; height: 10px; margin: 0; }
QScrollBar::handle:vertical {
    background: $border_strong; border-radius: 3px; min-height: 28px; margin: 2px;
}
QScrollBar::handle:horizontal {
    background: $border_strong; border-radius: 3px; min-width: 28px; margin: 2px;
}
QScrollBar::handle:hover { background: $muted; }
QScrollBar::add-line, QScrollBar::sub-line { width: 0; height: 0; }
QScrollBar::add-page, QScrollBar::sub-page { background: none; }
"""
)


class RestyleAfterThemeChange:
    """Runs a widget's restyle once the event loop is back after a theme or palette change
    (only then is the new scheme known), however many change events arrived meanwhile."""

    def __init__(self, owner: QObject, restyle: Callable[[], None]):
        self._owner = owner
        self._restyle = restyle
        self._pending = False

    def request(self) -> None:
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self._owner, self._run)

    def _run(self) -> None:
        self._pending = False
        self._restyle()
