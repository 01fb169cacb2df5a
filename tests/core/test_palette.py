"""One palette for the desktop and the page: the page's colour variables are made from it."""

from __future__ import annotations

import re
from pathlib import Path

from llm_desktop.core.palette import CSS_VARIABLES, DARK, LIGHT, PALETTES, css, mix

PAGE_CSS = Path(__file__).parents[2] / "resources/web/static/css/llm-progress.css"


def blocks(text: str) -> list[dict[str, str]]:
    return [
        dict(re.findall(r"(--[a-z-]+): (#[0-9a-f]{6});", body))
        for body in re.findall(r"\{([^{}]*)\}", text)
    ]


def test_the_page_gets_the_desktops_light_and_dark_colours():
    light, dark_by_system, dark_by_page = blocks(css())
    assert light == {name: PALETTES[LIGHT][key] for name, key in CSS_VARIABLES.items()}
    assert dark_by_system == dark_by_page
    assert dark_by_page == {name: PALETTES[DARK][key] for name, key in CSS_VARIABLES.items()}


def test_the_page_stylesheet_does_not_define_a_shared_colour_again():
    """Its theme section adds the page's own colours only (its "more contrast" rules further
    down may still strengthen borders)."""
    theme = PAGE_CSS.read_text().split("/* -- page", 1)[0]
    defined = set(re.findall(r"^\s*(--[a-z-]+)\s*:", theme, re.MULTILINE))
    assert not defined & set(CSS_VARIABLES), "a copy of a palette colour drifts"


def test_mixing_is_opaque_and_exact_at_the_ends():
    assert mix("#000000", "#ffffff", 0.5) == "#808080"
    assert mix("#2563eb", "#ffffff", 1.0) == "#2563eb"
    assert mix("#2563eb", "#ffffff", 0.0) == "#ffffff"
