"""The app's colours: one palette per scheme, for the Qt theme and the web page alike.

Qt-free, so the server can give the page the same colours the desktop uses
(`palette.css`, made from these by `css()`), instead of a copy that drifts.
"""

from __future__ import annotations

LIGHT = "light"
DARK = "dark"
HIGH_CONTRAST = "high-contrast"  # white on black
HIGH_CONTRAST_LIGHT = "high-contrast-light"  # black on white
SCHEMES = (LIGHT, DARK, HIGH_CONTRAST, HIGH_CONTRAST_LIGHT)


def _rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def mix(color: str, other: str, amount: float) -> str:
    """`amount` of `color` over `other`, as an opaque colour (no translucency anywhere)."""
    a, b = _rgb(color), _rgb(other)
    channels = (round(x * amount + y * (1 - amount)) for x, y in zip(a, b, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*channels)


def lightness(color: str) -> float:
    """HSL lightness, 0 (black) to 1 (white)."""
    channels = _rgb(color)
    return (max(channels) + min(channels)) / 2 / 255


def _with_tints(base: dict[str, str], strength: float) -> dict[str, str]:
    """Adds the soft backgrounds badges and toasts use: each status colour over the surface."""
    derived = dict(base)
    for name in ("accent", "success", "warning", "error", "info"):
        derived[f"{name}_bg"] = mix(base[name], base["surface"], strength)
    # A soft chunk keeps the bar's text readable over both the chunk and the track.
    light = lightness(base["surface"]) > 0.5
    derived["chunk"] = mix(base["accent"], base["surface"], 0.45 if light else 0.55)
    return derived


_LIGHT = _with_tints(
    {
        "window": "#f3f4f6",
        "surface": "#ffffff",
        "surface_alt": "#eef0f3",
        "surface_hover": "#f1f3f6",
        "border": "#dadde3",
        "border_strong": "#b9bfc8",
        "text": "#1d2127",
        "muted": "#5c6470",
        "disabled": "#a0a6af",
        "accent": "#2563eb",
        "accent_hover": "#1d4ed8",
        "accent_pressed": "#1e40af",
        "on_accent": "#ffffff",
        "focus": "#2563eb",
        "success": "#116329",
        "warning": "#8a5a00",
        "error": "#b42318",
        "info": "#0b5cc1",
        "link": "#1d4ed8",
        "track": "#e5e8ec",
        "chunk_warning": "#f4c04f",
        "bar_text": "#1d2127",
        "tooltip": "#1d2127",
        "tooltip_text": "#f3f4f6",
    },
    0.10,
)

_DARK = _with_tints(
    {
        "window": "#17191c",
        "surface": "#212428",
        "surface_alt": "#2a2e33",
        "surface_hover": "#2c3036",
        "border": "#363b42",
        "border_strong": "#4b525b",
        "text": "#e6e8eb",
        "muted": "#9ba3ae",
        "disabled": "#5f6670",
        "accent": "#2b6fdf",
        "accent_hover": "#3b7ded",
        "accent_pressed": "#2460c6",
        "on_accent": "#ffffff",
        "focus": "#60a5fa",
        "success": "#3fb950",
        "warning": "#d29922",
        "error": "#ff7b72",
        "info": "#58a6ff",
        "link": "#6ea8fe",
        "track": "#2e3238",
        "chunk_warning": "#8a5a0b",
        "bar_text": "#e6e8eb",
        "tooltip": "#e6e8eb",
        "tooltip_text": "#17191c",
    },
    0.15,
)


def _high_contrast(background: str, foreground: str, accents: dict[str, str]) -> dict[str, str]:
    """Pure black and white; status colours only where they pass 7:1 against the background."""
    colours = {
        "window": background,
        "surface": background,
        "surface_alt": background,
        "surface_hover": background,
        "border": foreground,
        "border_strong": foreground,
        "text": foreground,
        "muted": foreground,
        "track": background,
        "bar_text": foreground,
        "tooltip": background,
        "tooltip_text": foreground,
        **accents,
    }
    for name in ("accent", "success", "warning", "error", "info"):
        colours[f"{name}_bg"] = background  # no tints: text on plain black or white
    return colours


_HIGH_CONTRAST = _high_contrast(
    "#000000",
    "#ffffff",
    {
        "disabled": "#3ff23f",  # Windows' "High Contrast Black" uses green for disabled text
        "accent": "#1aebff",
        "accent_hover": "#ffff00",
        "accent_pressed": "#ffff00",
        "on_accent": "#000000",
        "focus": "#ffff00",
        "success": "#3ff23f",
        "warning": "#ffff00",
        "error": "#ff8080",
        "info": "#1aebff",
        "link": "#ffff00",
        "chunk": "#0037da",  # white bar text stays readable over it (8.6:1)
        "chunk_warning": "#7a4000",
    },
)

_HIGH_CONTRAST_LIGHT = _high_contrast(
    "#ffffff",
    "#000000",
    {
        "disabled": "#600000",  # as Windows' "High Contrast White"
        "accent": "#00009f",
        "accent_hover": "#37006e",
        "accent_pressed": "#37006e",
        "on_accent": "#ffffff",
        "focus": "#00009f",
        "success": "#005a00",
        "warning": "#6b4100",
        "error": "#a00000",
        "info": "#00009f",
        "link": "#00009f",
        "chunk": "#9ec5ff",  # black bar text stays readable over it
        "chunk_warning": "#ffd54a",
    },
)

PALETTES: dict[str, dict[str, str]] = {
    LIGHT: _LIGHT,
    DARK: _DARK,
    HIGH_CONTRAST: _HIGH_CONTRAST,
    HIGH_CONTRAST_LIGHT: _HIGH_CONTRAST_LIGHT,
}
"""Named colours per scheme, as ``#rrggbb``: the same keys in every scheme."""


# The page's CSS custom properties and the palette colour each one is.
CSS_VARIABLES: dict[str, str] = {
    "--bg": "window",
    "--surface": "surface",
    "--surface-alt": "surface_alt",
    "--surface-hover": "surface_hover",
    "--border-color": "border",
    "--border-strong": "border_strong",
    "--text": "text",
    "--muted": "muted",
    "--accent-color": "accent",
    "--accent-hover": "accent_hover",
    "--accent-pressed": "accent_pressed",
    "--on-accent": "on_accent",
    "--accent-bg": "accent_bg",
    "--focus": "focus",
    "--success": "success",
    "--success-bg": "success_bg",
    "--warning": "warning",
    "--warning-bg": "warning_bg",
    "--error": "error",
    "--error-bg": "error_bg",
    "--info": "info",
    "--info-bg": "info_bg",
    "--track": "track",
}


def _declarations(scheme: str, indent: str) -> str:
    colours = PALETTES[scheme]
    scheme_word = "dark" if lightness(colours["window"]) < 0.5 else "light"
    lines = [f"{indent}color-scheme: {scheme_word};"]
    lines += [f"{indent}{name}: {colours[key]};" for name, key in CSS_VARIABLES.items()]
    return "\n".join(lines)


def css() -> str:
    """The page's colour variables: light by default, dark when the system or the page's
    `data-theme` asks."""
    return (
        "/* Made from llm_desktop/core/palette.py: the desktop's own colours. */\n"
        f":root {{\n{_declarations(LIGHT, '  ')}\n}}\n"
        "@media (prefers-color-scheme: dark) {\n"
        f"  :root:not([data-theme='light']) {{\n{_declarations(DARK, '    ')}\n  }}\n}}\n"
        f":root[data-theme='dark'] {{\n{_declarations(DARK, '  ')}\n}}\n"
    )
