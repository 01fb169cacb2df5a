"""The page's "Get models" section and its "Transfers" list, as HTML from the views.

Like the model cards (`page.py`), every element here is rendered on the server from a view and
works without scripts: the search is a GET form, a repository's models are listed with their
size, quantization and fit badge and a Download form, a transfer row is a real `<progress>` with
its numbers and its actions as forms, and Cancel of a download with bytes to keep is a
`<details>` that asks whether to keep them. `llm.js` binds later views onto the same markup,
cloned from the `<template>`s below; the words it composes come from `TRANSFER_TEXT` (page data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from llm_desktop.core.events import OP_DOWNLOAD, Stage
from llm_desktop.core.hub_presenter import (
    Button,
    HitView,
    RemoteModelView,
    RepoView,
    SearchView,
)
from llm_desktop.core.presenter import Action, ActionId
from llm_desktop.core.transfer_presenter import CancelQuestion, TransferView
from llm_desktop.server.markup import attrs, fit_badge_html

# Words a row composes from a view's fields (llm.js fills the {fields} the same way).
TRANSFER_TEXT = {
    "progress_label": "{title}: {kind} progress",
}
QUANTIZABLE = ("F32", "F16", "BF16")
ICON_SEARCH = (
    '<svg viewBox="0 0 20 20" width="16" height="16" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linecap="round" aria-hidden="true" focusable="false">'
    '<circle cx="9" cy="9" r="5.5"/><path d="M13.2 13.2L17 17"/></svg>'
)


# -- transfers --------------------------------------------------------------------------------


def transfer_row_html(view: TransferView) -> str:
    """One transfer. `llm.js` updates exactly these elements from later views."""
    numbers = (view.amount_text, view.rate_text, view.eta_text)
    label = TRANSFER_TEXT["progress_label"].format(title=view.title, kind=view.kind_word)
    return (
        f'<li class="transfer-row is-{view.stage}"'
        f"{attrs(data_key=view.key, data_op=view.op, data_stage=view.stage)}"
        f"{attrs(data_active='true' if view.active else 'false', data_seq=view.seq)}>"
        '<div class="transfer-main"><div class="transfer-head">'
        f'<span class="transfer-kind"{attrs(data_op=view.op)}>{escape(view.kind_word)}</span>'
        f'<h3 class="transfer-title"{attrs(title=view.title)}>{escape(view.title)}</h3>'
        f'<span class="transfer-stage"{attrs(data_stage=view.stage)}>'
        f"{escape(view.stage_label)}</span></div>"
        '<div class="transfer-progress">'
        f'<progress class="transfer-bar"{attrs(max=100)}'
        f"{attrs(value=None if view.indeterminate else view.pct)}"
        f"{attrs(aria_label=label, aria_valuetext=view.progress_text)}></progress>"
        f'<span class="transfer-pct"{attrs(hidden=view.indeterminate or not view.active)}>'
        f"{view.pct}%</span></div>"
        f'<p class="transfer-numbers"{attrs(hidden=not any(numbers))}>'
        f'<span class="transfer-amount"{attrs(hidden=not view.amount_text)}>'
        f"{escape(view.amount_text)}</span>"
        f'<span class="transfer-rate"{attrs(hidden=not view.rate_text)}>'
        f"{escape(view.rate_text)}</span>"
        f'<span class="transfer-eta"{attrs(hidden=not view.eta_text)}>'
        f"{escape(view.eta_text)}</span></p>"
        f'<p class="transfer-detail"'
        f"{attrs(data_kind='error' if view.error else None, hidden=not view.detail)}"
        f"{attrs(title=view.detail or None)}>"
        f"{escape(view.detail)}</p></div>"
        f'<div class="transfer-actions">{transfer_actions_html(view)}</div>'
        f'<p class="sr-only transfer-announcement">{escape(view.announcement)}</p>'
        "</li>"
    )


def transfer_actions_html(view: TransferView) -> str:
    """Each action a form; Cancel with something to keep is a question (a <details>)."""
    out = []
    for action in view.actions:
        if action.id is ActionId.CANCEL and view.cancel_question is not None:
            out.append(question_html(view.key, action, view.cancel_question))
        else:
            out.append(transfer_form_html(view.key, action))
    return "".join(out)


def transfer_form_html(key: str, action: Action) -> str:
    classes = "btn btn-primary" if action.primary else "btn"
    return (
        f'<form method="post" class="action-form"'
        f"{attrs(action=f'/actions/transfer/{action.id}')}>"
        f'<input type="hidden" name="key"{attrs(value=key)}>'
        f'<button type="submit"{attrs(class_=classes, data_action=action.id)}'
        f"{attrs(aria_label=action.accessible_name, title=action.hint or None)}>"
        f"{escape(action.label)}</button></form>"
    )


def question_html(key: str, action: Action, question: CancelQuestion) -> str:
    return (
        '<details class="transfer-question">'
        f'<summary class="btn"{attrs(data_action=action.id, aria_label=action.accessible_name)}'
        f"{attrs(title=action.hint or None)}>{escape(action.label)}</summary>"
        '<div class="transfer-question-panel">'
        f'<p class="transfer-question-text">{escape(question.text)}</p>'
        '<div class="transfer-question-actions">'
        f"{transfer_form_html(key, question.keep)}{transfer_form_html(key, question.discard)}"
        "</div></div></details>"
    )


def transfers_html(views: Sequence[TransferView]) -> str:
    rows = "".join(transfer_row_html(view) for view in reversed(views))  # newest first
    return (
        '<section id="transfers" class="transfers" aria-labelledby="transfers-heading">'
        '<div class="section-head"><h2 id="transfers-heading">Transfers</h2></div>'
        f'<p id="transfers-empty" class="transfers-empty"{attrs(hidden=bool(views))}>'
        "Nothing is downloading, uploading or quantizing. What you start shows here, newest "
        "first.</p>"
        f'<ul id="transfer-list" class="transfer-list"{attrs(hidden=not views)}>{rows}</ul>'
        "</section>"
    )


def _blank_transfer() -> TransferView:
    """A row with every element and no content, for llm.js to clone: one action form and one
    question, whose forms are the prototypes of any action a later view offers."""
    blank = Action(ActionId.PAUSE, "", "")
    return TransferView(
        key="",
        op=OP_DOWNLOAD,
        title="",
        kind_word="",
        stage=Stage.CONNECTING,
        stage_label="",
        active=True,
        pct=0,
        indeterminate=False,
        amount_text="",
        rate_text="",
        eta_text="",
        detail="",
        progress_text="",
        actions=(blank, Action(ActionId.CANCEL, "", "")),
        cancel_question=CancelQuestion("", Action(ActionId.CANCEL, "", ""), blank),
        error=None,
        result_path=None,
        announcement="",
        seq=0,
    )


# -- the hub ----------------------------------------------------------------------------------


def _buttonattrs(button: Button) -> str:
    return attrs(aria_label=button.accessible_name, title=button.hint or None)


def _classes(button: Button) -> str:
    return "btn btn-primary" if button.primary else "btn"


def hit_html(hit: HitView) -> str:
    return (
        f'<li class="hub-hit"{attrs(data_repo_id=hit.repo_id)}>'
        '<div class="hub-hit-info">'
        f'<h3 class="hub-hit-title">{escape(hit.title)}</h3>'
        f'<p class="hub-hit-facts">{escape(hit.facts)}</p></div>'
        f'<span class="hub-gated"{attrs(hidden=not hit.gated, title=hit.gated_hint or None)}>'
        f"{escape(hit.gated_label)}</span>"
        f'<a class="btn btn-small hub-open"{attrs(href=hit.href, data_repo_id=hit.repo_id)}'
        f"{_buttonattrs(hit.open)}>{escape(hit.open.label)}</a></li>"
    )


def remote_model_html(model: RemoteModelView) -> str:
    """A repository's model. The page's rows are given no transfer (its Transfers list follows
    the download), so the button is always Download; the fit note says only why the page could
    not ask the server (llm.js fills it)."""
    return (
        f'<li class="remote-model"{attrs(data_reference=model.reference)}>'
        '<div class="remote-model-info">'
        f'<h4 class="remote-model-title"{attrs(title=model.file)}>{escape(model.title)}</h4>'
        '<p class="remote-model-facts">'
        f'<span class="quant-chip">{escape(model.quantization)}</span>'
        f'<span class="hub-recommended"{attrs(hidden=not model.recommended)}>'
        f"{escape(model.recommended_label)}</span>"
        f'<span class="remote-model-size">{escape(model.facts)}</span></p></div>'
        '<div class="remote-model-fit">'
        f"{fit_badge_html(model.fit)}"
        '<span class="fit-note" hidden></span></div>'
        '<form method="post" action="/actions/download" class="action-form">'
        f'<input type="hidden" name="reference"{attrs(value=model.reference)}>'
        f'<button type="submit"{attrs(class_=_classes(model.button))} data-action="download"'
        f"{_buttonattrs(model.button)}>{escape(model.button.label)}</button></form></li>"
    )


def results_html(search: SearchView | None, error: str = "") -> str:
    hits = "".join(hit_html(hit) for hit in search.hits) if search else ""
    summary = search.summary if search else ""
    return (
        f'<div id="hub-results" class="hub-results"{attrs(hidden=search is None and not error)}>'
        f'<p class="hub-error" role="alert"{attrs(hidden=not error)}>{escape(error)}</p>'
        f'<p class="section-meta hub-results-summary"{attrs(hidden=not summary)}>'
        f"{escape(summary)}</p>"
        f'<ul class="hub-hit-list" aria-label="Repositories">{hits}</ul></div>'
    )


def repo_html(repo: RepoView | None, error: str = "") -> str:
    models = "".join(remote_model_html(model) for model in repo.models) if repo else ""
    return (
        f'<div id="hub-repo" class="hub-repo" aria-labelledby="hub-repo-title"'
        f"{attrs(hidden=repo is None and not error, data_repo_id=repo.repo_id if repo else None)}>"
        '<div class="hub-repo-head">'
        f'<h3 id="hub-repo-title">{escape(repo.title if repo else "")}</h3>'
        f'<p class="section-meta hub-repo-summary">{escape(repo.summary if repo else "")}</p>'
        "</div>"
        f'<p class="hub-error" role="alert"{attrs(hidden=not error)}>{escape(error)}</p>'
        f'<p class="hub-gated-note"{attrs(hidden=not (repo and repo.gated_hint))}>'
        f"{escape(repo.gated_hint if repo else '')}</p>"
        f'<ul class="remote-model-list">{models}</ul></div>'
    )


def _blank_hit() -> HitView:
    return HitView("", "", "", "", "", False, "", "", "", "", Button("", "", ""))


def _blank_remote_model() -> RemoteModelView:
    blank = Button("", "", "")
    return RemoteModelView("", "", "", "", "", "", "", "", False, "", None, blank, "")


# -- the section ------------------------------------------------------------------------------


def getting_html(
    state: dict[str, Any],
    quantizable: Iterable[tuple[str, str]],
    quant_types: Sequence[str],
    upload_limit_text: str,
) -> str:
    """The search, upload and quantize forms, the search results and a repository's models."""
    query = state.get("query", "")
    options = "".join(
        f"<option{attrs(value=model_id)}>{escape(title)}</option>"
        for model_id, title in quantizable
    )
    types = "".join(
        f"<option{attrs(value=name, selected=name == 'Q4_K_M')}>{escape(name)}</option>"
        for name in quant_types
    )
    quantize = (
        '<form id="quantize-form" class="tool-panel quantize-form" method="post"'
        ' action="/actions/quantize">'
        '<label class="tool-label" for="quantize-model">Quantize a model</label>'
        '<p class="tool-hint">A smaller copy of an F32, F16 or BF16 model, made here</p>'
        '<div class="tool-row">'
        f'<select id="quantize-model" name="model" required>{options}</select>'
        f'<select name="type" aria-label="Quantization type">{types}</select>'
        '<button type="submit" class="btn">Quantize</button></div></form>'
        if options
        else ""
    )
    return (
        '<section id="get-models" class="get-models" aria-labelledby="get-heading">'
        '<div class="section-head"><h2 id="get-heading">Get models</h2>'
        '<p class="section-meta">From Hugging Face, from this computer, or quantized here</p>'
        "</div>"
        '<div class="get-tools">'
        '<form id="hub-search" class="tool-panel hub-search" method="get"'
        ' action="/#get-models" role="search">'
        '<label class="tool-label" for="hub-q">Search Hugging Face</label>'
        '<p class="tool-hint">GGUF repositories, most downloaded first</p>'
        '<div class="tool-row">'
        f'<input id="hub-q" type="search" name="q" autocomplete="off" spellcheck="false"'
        f' placeholder="Model name, e.g. Qwen2.5 0.5B"{attrs(value=query)}>'
        f'<button type="submit" class="btn btn-primary">{ICON_SEARCH} Search</button></div>'
        "</form>"
        '<form id="upload-form" class="tool-panel upload-form" method="post"'
        ' action="/actions/upload" enctype="multipart/form-data">'
        '<label class="tool-label" for="upload-file">Upload a model file</label>'
        f'<p class="tool-hint">A .gguf file up to {escape(upload_limit_text)}; it is checked'
        " before it joins the library</p>"
        '<div class="tool-row">'
        '<input id="upload-file" type="file" name="file" accept=".gguf" required>'
        '<button type="submit" class="btn">Upload</button></div>'
        '<div class="upload-status" role="status" hidden>'
        '<progress class="upload-bar" max="100" value="0" aria-label="Sending the file">'
        "</progress>"
        '<span class="upload-status-text"></span>'
        '<button type="button" class="btn btn-small upload-cancel">Stop sending</button></div>'
        "</form>"
        f"{quantize}</div>"
        f"{results_html(state.get('search'), state.get('search_error', ''))}"
        f"{repo_html(state.get('repo'), state.get('repo_error', ''))}"
        "</section>"
    )


def templates_html() -> str:
    """What llm.js clones: a transfer row, a search hit and a repository's model."""
    return (
        f'<template id="llm-transfer-template">{transfer_row_html(_blank_transfer())}</template>\n'
        f'  <template id="llm-hit-template">{hit_html(_blank_hit())}</template>\n'
        f'  <template id="llm-remote-model-template">'
        f"{remote_model_html(_blank_remote_model())}</template>"
    )


def quantizable_models(models: Iterable[Any], titles: dict[str, str]) -> list[tuple[str, str]]:
    """(id, title) of the library's models the quantizer can take (F32, F16, BF16 weights;
    this machine's files, not a remote engine's)."""
    out = []
    for model in models:
        quant = (model.entry.quantization or "").upper()
        local = model.entry.error is None and model.entry.engine is None
        if local and quant.split(" ")[0] in QUANTIZABLE:
            out.append((model.entry.id, titles.get(model.entry.id, model.entry.display_name)))
    return out
