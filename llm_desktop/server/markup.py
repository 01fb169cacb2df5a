"""Small pieces of HTML the page's renderers share: attributes, and the fit badge (a model card
and a hub model wear the same one)."""

from __future__ import annotations

from html import escape

from llm_desktop.core.presenter import FitBadge

# The words a card composes from a view's fields: used here and, through the page data, by
# llm.js when it binds a later view (it fills the {fields}; it writes no words of its own).
CARD_TEXT = {
    "progress_label": "{title} load progress",
    "fit_summary": ": {summary}",
}


def attrs(**values: str | int | bool | None) -> str:
    """` name="value"` pairs; True is a bare attribute, False and None are left out."""
    out = []
    for name, value in values.items():
        name = name.rstrip("_").replace("_", "-")
        if value is None or value is False:
            continue
        out.append(f" {name}" if value is True else f' {name}="{escape(str(value))}"')
    return "".join(out)


def fit_badge_html(fit: FitBadge | None) -> str:
    if fit is None:
        return '<span class="fit-badge" hidden></span>'
    return (
        f'<span class="fit-badge"{attrs(data_verdict=fit.verdict, title=fit.summary)}>'
        f'{escape(fit.text)}<span class="sr-only">'
        f"{escape(CARD_TEXT['fit_summary'].format(summary=fit.summary))}</span></span>"
    )
