"""The management page as HTML, rendered from the presenter's views: it works with scripts off.

Every card is a server-rendered `<article>` whose buttons are plain forms (`POST /actions/...`),
so a browser without JavaScript lists the models and loads, cancels, unloads and removes them;
the error details are a `<details>` element. `llm.js` enhances the same markup: it intercepts
the forms, streams progress over SSE and re-binds each card from the view that comes with every
event. New cards, action forms and toasts are cloned from the `<template>`s below, so the markup
is written once, here. The words the page needs that no event carries come from
`presenter.PAGE_TEXT` (with `hub_presenter.PAGE_TEXT`) and `CARD_TEXT`, as JSON
(`#llm-page-data`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from llm_desktop.core import hub_presenter, presenter
from llm_desktop.core.events import TRANSFER_OPS, ModelState
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.presenter import Action, ActionId, CardView, Notice
from llm_desktop.core.quantize import QUANT_TYPES
from llm_desktop.core.remote_engine import ConnectionStatus
from llm_desktop.core.source_sections import SourceSection, source_sections
from llm_desktop.core.transfer_presenter import TransferView
from llm_desktop.core.upload import DEFAULT_UPLOAD_LIMIT
from llm_desktop.server import page_getting
from llm_desktop.server.markup import CARD_TEXT, attrs, fit_badge_html

__all__ = ["CARD_TEXT", "attrs", "card_html", "page_html", "source_group_html"]

# Actions that are forms; "details" is a <details> element, "try" is the desktop's own panel.
FORM_ACTIONS = (ActionId.LOAD, ActionId.RETRY, ActionId.CANCEL, ActionId.UNLOAD, ActionId.REMOVE)

ICON_BRAND = (
    '<svg viewBox="0 0 20 20" width="18" height="18" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" focusable="false">'
    '<rect x="3" y="3" width="14" height="14" rx="3"/><path d="M7 7.5h6M7 10h6M7 12.5h3.5"/></svg>'
)
ICON_CLOSE = (
    '<svg viewBox="0 0 20 20" width="16" height="16" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linecap="round" aria-hidden="true" focusable="false">'
    '<path d="M5.5 5.5l9 9M14.5 5.5l-9 9"/></svg>'
)
ICON_REFRESH = (
    '<svg viewBox="0 0 20 20" width="16" height="16" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" '
    'focusable="false"><path d="M16 10a6 6 0 1 1-1.8-4.3"/><path d="M16.2 3.2v3.3h-3.3"/></svg>'
)


def card_html(view: CardView) -> str:
    """One model card. `llm.js` updates exactly these elements from later views."""
    dom_id = f"model-{view.model}"
    busy = view.busy
    badge = fit_badge_html(view.fit)
    details = ""
    if view.has(ActionId.DETAILS) and view.error is not None:
        lines = "\n".join((view.error.message, *view.error.detail))
        label = view.action(ActionId.DETAILS).label  # type: ignore[union-attr]
        details = (
            f'<details class="error-details"><summary>{escape(label)}</summary>'
            f"<pre>{escape(lines)}</pre></details>"
        )
    else:
        details = '<details class="error-details" hidden><summary></summary><pre></pre></details>'
    return (
        f'<article class="model-card is-{view.state}"'
        f"{attrs(id=dom_id, data_model_id=view.model, data_state=view.state, data_seq=view.seq)}"
        f"{attrs(aria_labelledby=f'{dom_id}-title', aria_busy='true' if busy else 'false')}"
        ' tabindex="-1">'
        '<div class="model-card-info"><header class="model-card-header">'
        f'<h3 class="model-name" id="{escape(dom_id)}-title">{escape(view.title)}</h3>'
        f'<span class="state-chip"{attrs(data_state=view.state)}>{escape(view.state_label)}</span>'
        f"{source_chip_html(view)}{badge}</header>"
        f'<p class="model-facts">{escape(view.facts)}</p>'
        f'<p class="model-path"{attrs(title=view.path or None, hidden=not view.path)}>'
        f"{escape(view.path)}</p>"
        f'<div class="model-spinner" aria-hidden="true"{attrs(hidden=not busy)}>'
        '<div class="spinner-pill"><span class="spinner"></span>'
        f'<span class="spinner-message">{escape(view.busy_message)}</span></div></div>'
        "</div>"
        f'<div class="model-progress"{attrs(hidden=not view.show_progress)}>'
        '<div class="progress-head">'
        f'<span class="progress-stage">{escape(view.stage_label)}</span>'
        f'<span class="progress-pct"{attrs(hidden=view.indeterminate)}>{view.pct}%</span></div>'
        f'<div class="progress-bar{" indeterminate" if view.indeterminate else ""}"'
        f"{attrs(role='progressbar', aria_valuemin=0, aria_valuemax=100)}"
        f"{attrs(aria_valuenow=None if view.indeterminate else view.pct)}"
        f"{attrs(aria_valuetext=view.progress_text, aria_label=_progress_label(view))}>"
        f'<div class="progress-fill" style="width: {view.pct}%"></div></div></div>'
        f'<p class="progress-detail"'
        f"{attrs(data_kind='error' if view.error else None, hidden=not view.detail)}>"
        f"{escape(view.detail)}</p>"
        f"{details}"
        f'<div class="model-actions">{actions_html(view)}</div>'
        f'<p class="sr-only card-announcement">{escape(view.announcement)}</p>'
        "</article>"
    )


def source_chip_html(view: CardView) -> str:
    """Where a remote model runs, and its engine's connection in a word (its line as the
    tooltip); hidden on this machine's cards (their group says so)."""
    return (
        f'<span class="source-chip"{attrs(title=view.source_detail or None)}'
        f"{attrs(hidden=not view.source_state)}>"
        f'<span class="source-name">{escape(view.source)}</span> '
        f'<span class="source-state">{escape(view.source_state)}</span></span>'
    )


def _progress_label(view: CardView) -> str:
    return CARD_TEXT["progress_label"].format(title=view.title)


def actions_html(view: CardView) -> str:
    """Each action a form that works without scripts; llm.js intercepts the submit."""
    forms = []
    for action in view.actions:
        if action.id not in FORM_ACTIONS:
            continue
        fields = [("model", view.model)]
        fields += [(key, _wire(value)) for key, value in (action.options or {}).items()]
        hidden = "".join(
            f'<input type="hidden"{attrs(name=name, value=value)}>' for name, value in fields
        )
        classes = "btn btn-primary" if action.primary else "btn"
        forms.append(
            f'<form method="post" class="action-form"{attrs(action=f"/actions/{action.id}")}>'
            f"{hidden}"
            f'<button type="submit"{attrs(class_=classes, data_action=action.id)}'
            f"{attrs(aria_label=action.accessible_name, title=action.hint)}>"
            f"{escape(action.label)}</button></form>"
        )
    return "".join(forms)


def _wire(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def source_group_html(section: SourceSection, cards: str = "") -> str:
    """One group of the models list: its heading and connection line, then its cards. llm.js
    binds later sections onto the same elements and puts each new card in its source's group."""
    return (
        f'<section class="source-group"{attrs(data_source=section.source)}'
        f"{attrs(data_state=section.state or None, hidden=section.hidden)}>"
        f'<div class="source-head"{attrs(hidden=not section.heading)}>'
        f'<h3 class="source-title">{escape(section.title)}</h3>'
        f'<p class="source-line"{attrs(hidden=not section.line)}>{escape(section.line)}</p>'
        "</div>"
        f'<div class="model-grid source-cards">{cards}</div></section>'
    )


def groups_html(views: Sequence[CardView], sections: Sequence[SourceSection]) -> str:
    """The cards, each in its source's group, in the order given."""
    return "".join(
        source_group_html(
            section, "".join(card_html(view) for view in views if view.source == section.source)
        )
        for section in sections
    )


def notice_html(notice: Notice | None) -> str:
    """The outcome of a form post, for the page without scripts (llm.js shows toasts)."""
    if notice is None:
        return ""
    role = "alert" if notice.kind == "error" else "status"
    title = f'<p class="toast-title">{escape(notice.title)}</p>' if notice.title else ""
    return (
        f'<div class="toast toast-{notice.kind} page-notice"{attrs(role=role)}>'
        f'<div class="toast-body">{title}<p class="toast-message">{escape(notice.text)}</p>'
        "</div></div>"
    )


def _blank_view() -> CardView:
    """A card with every element and no content: llm.js clones it for a model the page did not
    list yet, and its one action form for each action a later view offers."""
    return CardView(
        model="",
        title="",
        facts="",
        path="",
        fit=None,
        state=ModelState.UNLOADED,
        state_label="",
        stage_label="",
        pct=0,
        indeterminate=False,
        progress_text="",
        show_progress=False,
        detail="",
        busy=False,
        busy_message="",
        actions=(Action(ActionId.LOAD, "", ""),),
        error=None,
        announcement="",
        settings_editable=False,
    )


def templates_html() -> str:
    """The markup llm.js clones: a card (with one action form) and a toast."""
    dismiss = presenter.PAGE_TEXT["dismiss"]
    toast = (
        '<div class="toast">'
        '<span class="toast-icon" aria-hidden="true"></span>'
        '<div class="toast-body"><span class="sr-only"><span class="toast-kind"></span>: </span>'
        '<p class="toast-title"></p><p class="toast-message"></p>'
        '<div class="toast-actions"><button type="button" class="btn btn-small"></button></div>'
        "</div>"
        f'<button type="button" class="toast-close"{attrs(aria_label=dismiss, title=dismiss)}>'
        f"{ICON_CLOSE}</button></div>"
    )
    blank_section = SourceSection("", "", "", "", "", heading=True, hidden=False, announcement="")
    return (
        f'<template id="llm-card-template">{card_html(_blank_view())}</template>\n'
        f'  <template id="llm-source-template">{source_group_html(blank_section)}</template>\n'
        f'  <template id="llm-toast-template">{toast}</template>\n'
        f"  {page_getting.templates_html()}"
    )


def page_html(
    views: Iterable[CardView],
    *,
    summary: str,
    notice: Notice | None = None,
    theme: str | None = None,
    authorized: bool = True,
    transfers: Sequence[TransferView] = (),
    getting: dict[str, Any] | None = None,
    quantizable: Iterable[tuple[str, str]] = (),
    upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    connections: Iterable[ConnectionStatus] = (),
) -> str:
    """The whole page. `getting` is what the "Get models" section shows (`?q=`, `?repo=`);
    `quantizable` the (id, title) of the models the quantizer can take; `connections` the
    remote engines' (their models are grouped under each, with its connection line)."""
    views = list(views)
    sections = source_sections(views, connections)
    cards = groups_html(views, sections)
    shown = bool(views) or any(section.heading and not section.hidden for section in sections)
    page_data = {
        "text": {**presenter.PAGE_TEXT, **hub_presenter.PAGE_TEXT},
        "notice_timeouts_ms": {str(k): v for k, v in presenter.NOTICE_TIMEOUT_MS.items()},
        "notice_kind_words": {str(k): v for k, v in presenter.NOTICE_KIND_WORDS.items()},
        "notice_limit": presenter.NOTICE_LIMIT,
        "card_text": CARD_TEXT,
        "form_actions": [str(action) for action in FORM_ACTIONS],
        "transfer_text": page_getting.TRANSFER_TEXT,
        "transfer_ops": sorted(TRANSFER_OPS),
        "authorized": authorized,
    }
    if not authorized:
        body = (
            '<div class="empty-state is-error" role="alert"><h3>This page needs its access '
            "address</h3><p>Open the address that <code>llm-desktop serve</code> printed, or "
            "use View → Open page in browser in the app: it carries the access token.</p></div>"
        )
    else:  # kept when there are models: llm.js shows it if a refresh finds none
        body = (
            f'<div id="empty-state" class="empty-state"{attrs(hidden=bool(views))}>'
            f"<h3>No models yet</h3><p>{escape(presenter.PAGE_TEXT['empty'])}</p></div>"
        )
    limit_text = format_bytes(upload_limit)
    lower = (
        '<div class="lower-grid">'
        f"{page_getting.getting_html(getting or {}, quantizable, QUANT_TYPES, limit_text)}"
        f"{page_getting.transfers_html(list(transfers))}</div>"
        if authorized
        else ""
    )
    return f"""<!doctype html>
<html lang="en"{attrs(data_theme=theme if theme in ("light", "dark") else None)}>
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <meta name="referrer" content="no-referrer">
  <title>llm-desktop · Models</title>
  <link rel="icon" href="/favicon.ico">
  <link rel="stylesheet" href="/static/css/palette.css">
  <link rel="stylesheet" href="/static/css/llm-progress.css">
  <link rel="stylesheet" href="/static/css/get-models.css">
</head>
<body>
  <a class="skip-link" href="#model-grid">Skip to models</a>
  <header class="app-header">
    <div class="brand">
      <span class="brand-mark" aria-hidden="true">{ICON_BRAND}</span>
      <h1>llm-desktop</h1>
      <span class="subtitle">Local models</span>
    </div>
    <div class="header-controls">
      <label class="switch js-only" hidden>
        <input type="checkbox" id="sse-toggle" role="switch" checked>
        <span>Live progress (SSE)</span>
      </label>
      <a class="btn btn-ghost btn-small" id="refresh-button" href="/">{ICON_REFRESH} Refresh</a>
      <div id="connection-status" class="connection-status js-only" data-state="idle"
           role="status" aria-live="polite" hidden>
        <span class="connection-icon" aria-hidden="true"></span>
        <span class="connection-text"></span>
      </div>
    </div>
  </header>
  <main class="page" id="main">
    <section aria-labelledby="models-heading">
      <div class="section-head">
        <h2 id="models-heading">Models</h2>
        <p class="section-meta" id="library-summary">{escape(summary)}</p>
      </div>
      {notice_html(notice)}
      <div id="model-grid" class="model-sources"{attrs(hidden=not shown)}>{cards}</div>
      {body}
    </section>
    {lower}
  </main>
  <div id="toast-container" class="toast-container" role="region" aria-live="polite"
       aria-label="{escape(presenter.PAGE_TEXT["notifications"])}"></div>
  <div id="llm-announcer" class="sr-only" aria-live="polite" aria-atomic="true"></div>
  {templates_html()}
  <script type="application/json" id="llm-page-data">{_script_json(page_data)}</script>
  <script type="module" src="/static/js/main.js"></script>
</body>
</html>
"""


def _script_json(data: object) -> str:
    """JSON safe inside a <script> element (no `</script>` can close it early)."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
