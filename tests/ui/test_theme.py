"""Themes: each scheme applies cleanly, follows the system, and keeps its colours readable."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from llm_desktop.ui import theme

REQUIRED_COLOURS = {
    "window",
    "surface",
    "surface_alt",
    "border",
    "text",
    "muted",
    "accent",
    "on_accent",
    "success",
    "warning",
    "error",
    "info",
    "focus",
    "disabled",
}


@pytest.fixture
def app(qapp, monkeypatch):
    """The application, put back as it was afterwards (other tests share it)."""
    monkeypatch.delenv(theme.HIGH_CONTRAST_ENV, raising=False)
    saved = (
        qapp.styleSheet(),
        qapp.palette(),
        qapp.font(),
        qapp.style().name(),
        qapp.property("llmDesktopScheme"),
    )
    yield qapp
    sheet, palette, font, style, scheme = saved
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setFont(font)
    if qapp.style().name() != style:
        qapp.setStyle(style)
    qapp.setProperty("llmDesktopScheme", scheme)


def lightness(app, role: QPalette.ColorRole) -> float:
    return app.palette().color(role).lightnessF()


@pytest.fixture
def themed_widgets(qtbot) -> QWidget:
    """One of each widget the stylesheet names; `grab()` polishes and paints them."""
    root = QWidget()
    layout = QVBoxLayout(root)
    for state in ("unloaded", "loading", "loaded", "failed", "cancelled", "unloading"):
        card = QFrame()
        card.setObjectName("modelCard")
        card.setProperty("state", state)
        layout.addWidget(card)
    for verdict in ("gpu", "partial", "cpu", "no"):
        badge = QLabel(verdict)
        badge.setObjectName("fitBadge")
        badge.setProperty("verdict", verdict)
        layout.addWidget(badge)
    for kind in ("success", "error", "warning", "info"):
        toast = QFrame()
        toast.setObjectName("toast")
        toast.setProperty("kind", kind)
        layout.addWidget(toast)
    plain = QLabel("badge")
    plain.setObjectName("badge")
    primary = QPushButton("Load")
    primary.setObjectName("primaryButton")
    bar = QProgressBar()
    bar.setValue(95)
    bar.setProperty("level", "warning")
    side = QFrame()
    side.setObjectName("sidePanel")
    for widget in (plain, primary, QPushButton("Cancel"), bar, side):
        layout.addWidget(widget)
    qtbot.addWidget(root)  # not shown: offscreen warns about size hints of shown windows
    return root


@pytest.mark.parametrize("scheme", theme.SCHEMES)
def test_each_scheme_applies_without_warnings(app, themed_widgets, scheme):
    assert theme.apply_theme(app, scheme) == scheme
    assert theme.applied_scheme(app) == scheme
    assert app.font().pointSizeF() >= theme.BASE_POINT_SIZE
    sheet = app.styleSheet()
    app.setStyleSheet("")  # under a stylesheet, style() is Qt's wrapper, which has no name
    assert app.style().name().lower() == "fusion"
    app.setStyleSheet(sheet)
    for selector in (
        "QFrame#modelCard",
        'QFrame#modelCard[state="failed"]',
        "QLabel#badge",
        'QLabel#fitBadge[verdict="partial"]',
        "QPushButton#primaryButton",
        "QProgressBar::chunk",
        'QProgressBar[level="warning"]::chunk',
        "QLabel#cardTitle",
        "QFrame#sidePanel",
    ):
        assert selector in sheet
    assert "border-radius: 10px" in sheet
    assert "$" not in sheet  # every placeholder filled
    themed_widgets.grab()  # paints every styled widget under this scheme


def test_dark_and_light_palettes(app):
    theme.apply_theme(app, theme.DARK)
    assert lightness(app, QPalette.ColorRole.Window) < 0.2
    assert lightness(app, QPalette.ColorRole.WindowText) > 0.8
    theme.apply_theme(app, theme.LIGHT)
    assert lightness(app, QPalette.ColorRole.Window) > 0.9
    assert lightness(app, QPalette.ColorRole.WindowText) < 0.2
    accent = QColor(theme.colors("light")["accent"])
    assert app.palette().color(QPalette.ColorRole.Highlight) == accent


def test_high_contrast_is_pure_black_and_white_with_thick_lines(app):
    theme.apply_theme(app, theme.HIGH_CONTRAST)
    palette = app.palette()
    assert palette.color(QPalette.ColorRole.Window) == QColor("#000000")
    assert palette.color(QPalette.ColorRole.WindowText) == QColor("#ffffff")
    assert palette.color(QPalette.ColorRole.Base) == QColor("#000000")
    sheet = app.styleSheet()
    assert "border: 2px solid #ffffff" in sheet
    assert " 1px solid" not in sheet

    theme.apply_theme(app, theme.HIGH_CONTRAST_LIGHT)
    assert app.palette().color(QPalette.ColorRole.Window) == QColor("#ffffff")
    assert app.palette().color(QPalette.ColorRole.WindowText) == QColor("#000000")


@pytest.mark.parametrize("scheme", theme.SCHEMES)
def test_colours_are_opaque_and_readable(scheme):
    colours = theme.colors(scheme)
    assert set(colours) >= REQUIRED_COLOURS
    for name, value in colours.items():
        assert re.fullmatch(r"#[0-9a-f]{6}", value), (name, value)  # no translucency anywhere
    sheet = theme.stylesheet(scheme)
    assert "rgba" not in sheet and "transparent" not in sheet
    # Text against the backgrounds it sits on: WCAG AA for body text, AAA in high contrast.
    needed = 7.0 if theme.is_high_contrast_scheme(scheme) else 4.5
    pairs = [
        ("text", "window"),
        ("text", "surface"),
        ("muted", "surface"),
        ("bar_text", "track"),
        ("bar_text", "chunk"),
        ("bar_text", "chunk_warning"),
        ("on_accent", "accent"),
        ("tooltip_text", "tooltip"),
        ("success", "success_bg"),
        ("error", "error_bg"),
        ("text", "warning_bg"),
    ]
    for fg, bg in pairs:
        ratio = theme.contrast_ratio(colours[fg], colours[bg])
        if (fg, bg) == ("on_accent", "accent") and not theme.is_high_contrast_scheme(scheme):
            assert ratio >= 3.0, (fg, bg, ratio)  # bold button text: large-text threshold
        else:
            assert ratio >= needed, (fg, bg, ratio)


def test_every_scheme_has_the_same_names():
    names = {scheme: set(theme.colors(scheme)) for scheme in theme.SCHEMES}
    assert all(keys == names["light"] for keys in names.values())
    assert set(theme.PALETTES) == set(theme.SCHEMES)


def test_colors_is_a_copy():
    theme.colors("dark")["accent"] = "#000000"
    assert theme.colors("dark")["accent"] != "#000000"


def test_unknown_scheme_is_refused(app):
    with pytest.raises(ValueError, match="unknown scheme"):
        theme.apply_theme(app, "sepia")
    with pytest.raises(ValueError):
        theme.colors("sepia")


def test_current_scheme_follows_the_system(app):
    # The offscreen platform does not say (Unknown): its light palette decides.
    assert QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Unknown
    assert theme.current_scheme() == "light"
    assert theme.preferred_scheme(Qt.ColorScheme.Dark) == "dark"
    assert theme.preferred_scheme(Qt.ColorScheme.Light) == "light"


def test_high_contrast_from_the_environment(app, monkeypatch):
    monkeypatch.setenv(theme.HIGH_CONTRAST_ENV, "1")
    assert theme.is_high_contrast()
    assert theme.apply_theme(app) == theme.HIGH_CONTRAST_LIGHT  # the system is light
    assert theme.preferred_scheme(Qt.ColorScheme.Dark) == theme.HIGH_CONTRAST
    monkeypatch.setenv(theme.HIGH_CONTRAST_ENV, "0")
    assert not theme.is_high_contrast()
    assert theme.apply_theme(app) == theme.LIGHT


def test_contrast_heuristic_threshold():
    assert theme.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert theme.contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert theme.contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    # Fusion's own light palette is not mistaken for high contrast; pure black on white is.
    assert theme.contrast_ratio("#efefef", "#000000") < theme.HIGH_CONTRAST_RATIO
    assert theme.contrast_ratio("#ffffff", "#000000") >= theme.HIGH_CONTRAST_RATIO
    assert not theme.is_high_contrast()


def test_follow_system_reapplies_on_change(app):
    hints = QGuiApplication.styleHints()
    stop = theme.follow_system(app)
    try:
        assert theme.applied_scheme(app) == "light"
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert theme.applied_scheme(app) == "dark"
        assert lightness(app, QPalette.ColorRole.Window) < 0.2
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert theme.applied_scheme(app) == "light"
    finally:
        stop()
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert theme.applied_scheme(app) == "light"  # no longer following


def chunk_colour(bar: QProgressBar) -> QColor:
    """The colour painted a fifth of the way along the bar: inside the chunk, clear of the
    centred text and of the rounded ends."""
    image = bar.grab().toImage()
    return image.pixelColor(bar.width() // 5, bar.height() // 2)


def test_repolish_picks_up_a_changed_property(app, qtbot):
    theme.apply_theme(app, theme.LIGHT)
    colours = theme.colors(theme.LIGHT)
    bar = QProgressBar()
    qtbot.addWidget(bar)
    bar.resize(200, 24)
    bar.setValue(95)
    assert chunk_colour(bar) == QColor(colours["chunk"])  # polished once, without the level
    bar.setProperty("level", "warning")
    # Qt does not match the stylesheet again when a dynamic property changes: until the
    # repolish, the chunk keeps its old colour.
    assert chunk_colour(bar) == QColor(colours["chunk"])
    theme.repolish(bar)
    assert chunk_colour(bar) == QColor(colours["chunk_warning"])
