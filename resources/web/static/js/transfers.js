/**
 * transfers.js: the Transfers list (downloads, uploads, quantizing). No display rules live here.
 *
 * - TransferBinder sets every element of a server-rendered row (llm_desktop/server/
 *   page_getting.py, transfer_row_html) from a transfer view (core/transfer_presenter.py,
 *   TransferView.to_dict()): the same view gives the same DOM as the server's HTML
 *   (tests/golden/presentation.json checks it). Rows, action forms and the cancel question
 *   (a <details> asking whether to keep the bytes) are clones of <template id=
 *   "llm-transfer-template">.
 * - TransferList keeps the newest view of each transfer by `seq` and its row in #transfer-list,
 *   newest first; the empty-list words show when it has none.
 */

import { fill, setAttr, setText } from './views.js';

/** A checked transfer view (an object with a key, an op and actions), or null. */
export function checkTransferView(view) {
  if (!view || typeof view !== 'object' || Array.isArray(view)) return null;
  if (typeof view.key !== 'string' || !view.key || typeof view.op !== 'string') return null;
  if (!Array.isArray(view.actions)) return null;
  return view;
}

export class TransferBinder {
  /**
   * @param {object} options
   * @param {Document} options.document
   * @param {HTMLTemplateElement} options.template  the page's #llm-transfer-template
   * @param {object} options.transferText           page data `transfer_text`
   */
  constructor({ document, template, transferText }) {
    this.document = document;
    this.template = template;
    this.text = transferText || {};
    const row = template ? template.content.firstElementChild : null;
    const form = row ? row.querySelector('.transfer-actions > .action-form') : null;
    const question = row ? row.querySelector('.transfer-question') : null;
    this.formPrototype = form ? form.cloneNode(true) : null;
    this.questionPrototype = question ? question.cloneNode(true) : null;
  }

  /** A new row for `view`, from the template. */
  create(view) {
    const row = this.template.content.firstElementChild.cloneNode(true);
    return this.bind(row, view);
  }

  /** Sets every element of `row` from `view`. */
  bind(row, view) {
    const q = (selector) => row.querySelector(selector);
    for (const name of Array.from(row.classList)) {
      if (name.startsWith('is-')) row.classList.remove(name);
    }
    row.classList.add('transfer-row', `is-${view.stage}`);
    setAttr(row, 'data-key', view.key);
    setAttr(row, 'data-op', view.op);
    setAttr(row, 'data-stage', view.stage);
    setAttr(row, 'data-active', view.active ? 'true' : 'false');
    setAttr(row, 'data-seq', view.seq);

    const kind = q('.transfer-kind');
    setAttr(kind, 'data-op', view.op);
    setText(kind, view.kind_word);
    const title = q('.transfer-title');
    setText(title, view.title);
    setAttr(title, 'title', view.title);
    const stage = q('.transfer-stage');
    setAttr(stage, 'data-stage', view.stage);
    setText(stage, view.stage_label);

    const bar = q('.transfer-bar');
    setAttr(bar, 'value', view.indeterminate ? null : view.pct);
    setAttr(bar, 'aria-label', fill(this.text.progress_label, { title: view.title, kind: view.kind_word }));
    setAttr(bar, 'aria-valuetext', view.progress_text);
    const pct = q('.transfer-pct');
    setText(pct, `${view.pct}%`);
    pct.hidden = Boolean(view.indeterminate) || !view.active; // the stage's word says it then

    const parts = [
      ['.transfer-amount', view.amount_text],
      ['.transfer-rate', view.rate_text],
      ['.transfer-eta', view.eta_text],
    ];
    for (const [selector, text] of parts) {
      const element = q(selector);
      setText(element, text);
      element.hidden = !text;
    }
    q('.transfer-numbers').hidden = !parts.some(([, text]) => text);

    const detail = q('.transfer-detail');
    setAttr(detail, 'data-kind', view.error ? 'error' : null);
    setText(detail, view.detail);
    setAttr(detail, 'title', view.detail || null);
    detail.hidden = !view.detail;

    this._bindActions(q('.transfer-actions'), view);
    setText(q('.transfer-announcement'), view.announcement);
    return row;
  }

  /** One element per action, in the view's order: a form, or for a Cancel that asks first,
   * the question. An element whose action stays is kept (with its focus, and the question
   * open while its bytes count up). */
  _bindActions(box, view) {
    const slot = (element) =>
      element.matches('.transfer-question') ? 'question' : `form:${element.querySelector('button').dataset.action}`;
    const existing = new Map();
    for (const element of Array.from(box.children)) {
      const id = slot(element);
      if (existing.has(id)) element.remove();
      else existing.set(id, element);
    }
    const elements = view.actions.map((action) => {
      const asks = action.id === 'cancel' && view.cancel_question;
      const id = asks ? 'question' : `form:${action.id}`;
      let element = existing.get(id);
      existing.delete(id);
      if (asks) {
        element = element || this.questionPrototype.cloneNode(true);
        this._bindQuestion(element, view.key, action, view.cancel_question);
      } else {
        element = element || this.formPrototype.cloneNode(true);
        this._bindForm(element, view.key, action);
      }
      return element;
    });
    for (const element of existing.values()) element.remove();
    elements.forEach((element, index) => {
      const at = box.children[index] || null;
      if (at !== element) box.insertBefore(element, at);
    });
  }

  _bindForm(form, key, action) {
    setAttr(form, 'action', `/actions/transfer/${action.id}`);
    const input = form.querySelector('input[type="hidden"]');
    setAttr(input, 'name', 'key');
    input.value = key;
    setAttr(input, 'value', key);
    const button = form.querySelector('button');
    button.className = action.primary ? 'btn btn-primary' : 'btn';
    setAttr(button, 'type', 'submit');
    setAttr(button, 'data-action', action.id);
    setAttr(button, 'aria-label', action.accessible_name);
    setAttr(button, 'title', action.hint || null);
    button.removeAttribute('aria-disabled');
    setText(button, action.label);
  }

  _bindQuestion(details, key, action, question) {
    const summary = details.querySelector('summary');
    setAttr(summary, 'data-action', action.id);
    setAttr(summary, 'aria-label', action.accessible_name);
    setAttr(summary, 'title', action.hint || null);
    setText(summary, action.label);
    setText(details.querySelector('.transfer-question-text'), question.text);
    const [keep, discard] = details.querySelectorAll('.transfer-question-actions > .action-form');
    this._bindForm(keep, key, question.keep);
    this._bindForm(discard, key, question.discard);
  }
}

export class TransferList {
  /**
   * @param {object} options
   * @param {Document} options.document
   * @param {TransferBinder} options.binder
   * @param {Element|null} options.list    #transfer-list
   * @param {Element|null} options.empty   #transfers-empty
   */
  constructor({ document, binder, list, empty }) {
    this.document = document;
    this.binder = binder;
    this.list = list;
    this.empty = empty;
    /** key → the newest view */
    this.views = new Map();
    for (const row of this.rows()) {
      this.views.set(row.dataset.key, { key: row.dataset.key, seq: Number(row.dataset.seq) || 0 });
    }
  }

  has(key) {
    return this.views.has(key) || Boolean(this.row(key));
  }

  view(key) {
    return this.views.get(key) || null;
  }

  rows() {
    return this.list ? Array.from(this.list.querySelectorAll(':scope > .transfer-row')) : [];
  }

  row(key) {
    return this.rows().find((row) => row.dataset.key === key) || null;
  }

  /** A view (from an event, a snapshot or a list); returns {view, previous} when it is newer
   * than the one shown, else null. */
  apply(view) {
    if (!checkTransferView(view)) return null;
    const current = this.views.get(view.key);
    // Older than what is shown, or the same event again (a row the server rendered has only
    // its key and seq until a view with the same seq fills it in).
    if (current && (view.seq < current.seq || (view.seq === current.seq && current.stage))) return null;
    this.views.set(view.key, view);
    this._show(view);
    return { view, previous: current && current.stage ? current : null };
  }

  /** Every transfer the server lists now (a snapshot): rows it lacks go. */
  replace(views) {
    const list = (Array.isArray(views) ? views : []).filter(checkTransferView);
    const keep = new Set(list.map((view) => view.key));
    for (const key of Array.from(this.views.keys())) if (!keep.has(key)) this.remove(key);
    for (const row of this.rows()) if (!keep.has(row.dataset.key)) row.remove();
    for (const view of list) this.apply(view);
    this._sync();
  }

  remove(key) {
    this.views.delete(key);
    const row = this.row(key);
    if (row) row.remove();
    this._sync();
  }

  _show(view) {
    if (!this.list) return;
    let row = this.row(view.key);
    if (!row) {
      if (!this.binder.template) return;
      row = this.binder.create(view);
      this.list.prepend(row); // newest first
    } else {
      const hadFocus = row.contains(this.document.activeElement);
      this.binder.bind(row, view);
      if (hadFocus && !row.contains(this.document.activeElement)) {
        const next = row.querySelector('.transfer-actions button, .transfer-actions summary');
        (next || row).focus({ preventScroll: true });
      }
    }
    this._sync();
  }

  _sync() {
    const some = this.rows().length > 0;
    if (this.list) this.list.hidden = !some;
    if (this.empty) this.empty.hidden = some;
  }
}
