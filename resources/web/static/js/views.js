/**
 * views.js: puts what the server decided onto the page. No display rules live here.
 *
 * - CardBinder sets every element of a server-rendered card (llm_desktop/server/page.py,
 *   card_html) from a card view (presenter.CardView.to_dict()): the same view gives the same
 *   DOM as the server's HTML (tests/golden/presentation.json checks it). New cards and action
 *   forms are clones of the page's <template id="llm-card-template">.
 * - Toaster shows notices (presenter.Notice.to_dict()): their words, kind and timeout as sent;
 *   a notice with the key of one shown replaces it; the timer waits while the toast is hovered
 *   or focused; at most `limit` at once (the oldest gives way). Toasts are clones of
 *   <template id="llm-toast-template">.
 * - bindConnection shows the live-update state in the words of PAGE_TEXT.
 *
 * The few words a card composes from a view's fields ("{title} load progress") come from the
 * page data's `card_text`, filled by `fill`.
 */

import { realTimers } from './transport.js';

const LEAVE_MS = 200;

/** `template` with each {name} replaced by `values[name]`. */
export function fill(template, values) {
  return String(template || '').replace(/\{(\w+)\}/g, (_match, name) =>
    values[name] === undefined || values[name] === null ? '' : String(values[name]),
  );
}

export function setText(element, text) {
  const value = text === undefined || text === null ? '' : String(text);
  if (element.textContent !== value) element.textContent = value;
}

export function setAttr(element, name, value) {
  if (value === null || value === undefined || value === false) element.removeAttribute(name);
  else if (element.getAttribute(name) !== String(value)) element.setAttribute(name, String(value));
}

export class CardBinder {
  /**
   * @param {object} options
   * @param {Document} options.document
   * @param {HTMLTemplateElement} options.template  the page's #llm-card-template
   * @param {object} options.cardText               page data `card_text`
   * @param {string[]} options.formActions          page data `form_actions`
   */
  constructor({ document, template, cardText, formActions }) {
    this.document = document;
    this.template = template;
    this.cardText = cardText || {};
    this.formActions = new Set(formActions || []);
    const form = template ? template.content.querySelector('.action-form') : null;
    this.formPrototype = form ? form.cloneNode(true) : null;
  }

  /** A new card for `view`, from the template. */
  create(view) {
    const card = this.template.content.firstElementChild.cloneNode(true);
    this.bind(card, view);
    return card;
  }

  /** Sets every element of `card` from `view`. */
  bind(card, view) {
    const domId = `model-${view.model}`;
    const q = (selector) => card.querySelector(selector);
    card.id = domId;
    for (const name of Array.from(card.classList)) {
      if (name.startsWith('is-')) card.classList.remove(name);
    }
    card.classList.add('model-card', `is-${view.state}`);
    setAttr(card, 'data-model-id', view.model);
    setAttr(card, 'data-state', view.state);
    setAttr(card, 'data-seq', view.seq);
    setAttr(card, 'aria-labelledby', `${domId}-title`);
    setAttr(card, 'aria-busy', view.busy ? 'true' : 'false');

    const title = q('.model-name');
    title.id = `${domId}-title`;
    setText(title, view.title);
    const chip = q('.state-chip');
    setAttr(chip, 'data-state', view.state);
    setText(chip, view.state_label);
    const source = q('.source-chip');
    source.hidden = !view.source_state;
    setAttr(source, 'title', view.source_detail || null);
    setText(source.querySelector('.source-name'), view.source);
    setText(source.querySelector('.source-state'), view.source_state);
    this._bindFit(q('.fit-badge'), view.fit);
    setText(q('.model-facts'), view.facts);
    const path = q('.model-path');
    setText(path, view.path);
    setAttr(path, 'title', view.path || null);
    path.hidden = !view.path;

    const spinner = q('.model-spinner');
    spinner.hidden = !view.busy;
    setText(spinner.querySelector('.spinner-message'), view.busy_message);

    const progress = q('.model-progress');
    progress.hidden = !view.show_progress;
    setText(q('.progress-stage'), view.stage_label);
    const pct = q('.progress-pct');
    setText(pct, `${view.pct}%`);
    pct.hidden = Boolean(view.indeterminate);
    const bar = q('.progress-bar');
    bar.classList.toggle('indeterminate', Boolean(view.indeterminate));
    setAttr(bar, 'aria-valuenow', view.indeterminate ? null : view.pct);
    setAttr(bar, 'aria-valuetext', view.progress_text);
    setAttr(bar, 'aria-label', fill(this.cardText.progress_label, { title: view.title }));
    bar.querySelector('.progress-fill').style.width = `${view.pct}%`;

    const detail = q('.progress-detail');
    setAttr(detail, 'data-kind', view.error ? 'error' : null);
    detail.hidden = !view.detail;
    setText(detail, view.detail);

    this._bindDetails(q('.error-details'), view);
    this._bindActions(q('.model-actions'), view);
    setText(q('.card-announcement'), view.announcement);
    return card;
  }

  _bindFit(badge, fit) {
    bindFit(this.document, badge, fit, this.cardText);
  }

  _bindDetails(details, view) {
    const action = view.actions.find((candidate) => candidate.id === 'details');
    const show = Boolean(action && view.error);
    details.hidden = !show;
    if (!show) details.open = false;
    setText(details.querySelector('summary'), show ? action.label : '');
    const lines = show ? [view.error.message, ...(view.error.detail || [])] : [];
    setText(details.querySelector('pre'), lines.join('\n'));
  }

  /** One form per action the page can post, in the view's order; a form whose action stays
   * is kept (with its focus). */
  _bindActions(box, view) {
    const existing = new Map();
    for (const form of Array.from(box.querySelectorAll(':scope > .action-form'))) {
      const button = form.querySelector('button[data-action]');
      const id = button ? button.dataset.action : '';
      if (existing.has(id)) form.remove();
      else existing.set(id, form);
    }
    const forms = view.actions
      .filter((action) => this.formActions.has(action.id))
      .map((action) => {
        const form = existing.get(action.id) || this.formPrototype.cloneNode(true);
        existing.delete(action.id);
        this._bindForm(form, action, view.model);
        return form;
      });
    for (const form of existing.values()) form.remove();
    forms.forEach((form, index) => {
      const at = box.children[index] || null;
      if (at !== form) box.insertBefore(form, at);
    });
  }

  _bindForm(form, action, model) {
    setAttr(form, 'action', `/actions/${action.id}`);
    const fields = [['model', model], ...Object.entries(action.options || {})];
    const button = form.querySelector('button');
    const inputs = Array.from(form.querySelectorAll('input[type="hidden"]'));
    while (inputs.length < fields.length) {
      const input = inputs[0].cloneNode(false);
      form.insertBefore(input, button);
      inputs.push(input);
    }
    inputs.slice(fields.length).forEach((input) => input.remove());
    fields.forEach(([name, value], index) => {
      setAttr(inputs[index], 'name', name);
      inputs[index].value = String(value);
      setAttr(inputs[index], 'value', String(value));
    });
    button.className = action.primary ? 'btn btn-primary' : 'btn';
    setAttr(button, 'type', 'submit');
    setAttr(button, 'data-action', action.id);
    setAttr(button, 'aria-label', action.accessible_name);
    setAttr(button, 'title', action.hint);
    button.removeAttribute('aria-disabled');
    setText(button, action.label);
  }
}

/** A fit badge (a card's, or a hub model's) from the presenter's FitBadge, or hidden. */
export function bindFit(document, badge, fit, cardText = {}) {
  badge.hidden = !fit;
  setAttr(badge, 'data-verdict', fit ? fit.verdict : null);
  setAttr(badge, 'title', fit ? fit.summary : null);
  if (!fit) {
    if (badge.firstChild) badge.replaceChildren();
    return;
  }
  let summary = badge.querySelector('.sr-only');
  if (!summary) {
    summary = document.createElement('span');
    summary.className = 'sr-only';
  }
  setText(summary, fill(cardText.fit_summary, { summary: fit.summary }));
  const text = badge.firstChild && badge.firstChild.nodeType === 3 ? badge.firstChild : null;
  if (text && text.data === fit.text && text.nextSibling === summary && !summary.nextSibling) return;
  badge.replaceChildren(document.createTextNode(fit.text), summary);
}

/** Shows the live-update state: its words and description from PAGE_TEXT. */
export function bindConnection(element, state, text) {
  if (!element) return;
  element.hidden = false;
  element.dataset.state = state;
  setText(element.querySelector('.connection-text'), text[`connection.${state}`] || '');
  setAttr(element, 'title', text[`connection.description.${state}`] || null);
}

export class Toaster {
  /**
   * @param {object} options
   * @param {Document} options.document
   * @param {Element} options.container      #toast-container
   * @param {HTMLTemplateElement} options.template  #llm-toast-template
   * @param {number} options.limit           toasts shown at once (page data notice_limit)
   * @param {object} [options.timers]
   * @param {Function} [options.onAction]    (action, notice) => void, for a toast's buttons
   */
  constructor({ document, container, template, limit = 5, timers = realTimers, onAction }) {
    this.document = document;
    this.container = container;
    this.template = template;
    this.limit = Math.max(1, limit);
    this.timers = timers;
    this.onAction = onAction || (() => {});
    this.records = new Map();
    const button = template.content.querySelector('.toast-actions button');
    this.buttonPrototype = button ? button.cloneNode(true) : null;
  }

  /** Shows `notice` (or refreshes the toast with its key) and returns the toast element. */
  show(notice) {
    const key = notice.key || `${notice.kind}:${notice.title}:${notice.text}`;
    const current = this.records.get(key);
    if (current) {
      this._fill(current, notice);
      this._restart(current);
      return current.element;
    }
    const element = this.template.content.firstElementChild.cloneNode(true);
    const record = { key, element, notice, timer: null, remaining: 0, started: 0, hover: false, focus: false, leaving: false };
    this._fill(record, notice);
    element.querySelector('.toast-close').addEventListener('click', () => this.dismiss(record));
    element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.dismiss(record);
      }
    });
    element.addEventListener('mouseenter', () => this._hold(record, 'hover', true));
    element.addEventListener('mouseleave', () => this._hold(record, 'hover', false));
    element.addEventListener('focusin', () => this._hold(record, 'focus', true));
    element.addEventListener('focusout', (event) => {
      if (!element.contains(event.relatedTarget)) this._hold(record, 'focus', false);
    });
    this.records.set(key, record);
    this.container.append(element);
    const shown = this.visibleRecords();
    for (const old of shown.slice(0, Math.max(0, shown.length - this.limit))) this.dismiss(old, true);
    this._restart(record);
    this._reserve();
    return element;
  }

  /** Room below the page's content for the stack (the CSS reads --toast-space), so a person
   * can always scroll what they read out from under the toasts. */
  _reserve() {
    const height = this.container.offsetHeight || 0;
    this.document.documentElement.style.setProperty('--toast-space', `${height}px`);
  }

  visibleRecords() {
    return Array.from(this.records.values()).filter((record) => !record.leaving);
  }

  /** The toasts on screen, oldest first: {type, message, title, key, element}. */
  visible() {
    return this.visibleRecords().map((record) => ({
      type: record.notice.kind,
      message: record.notice.text,
      title: record.notice.title || '',
      key: record.key,
      timeout_ms: record.notice.timeout_ms,
      element: record.element,
    }));
  }

  dismiss(record, immediate = false) {
    if (!record || record.leaving) return;
    record.leaving = true;
    this.timers.clearTimeout(record.timer);
    record.timer = null;
    if (this.records.get(record.key) === record) this.records.delete(record.key);
    const element = record.element;
    const hadFocus = element.contains(this.document.activeElement);
    element.classList.add('toast-leaving');
    element.setAttribute('aria-hidden', 'true');
    const view = this.document.defaultView;
    const still = view && view.matchMedia && view.matchMedia('(prefers-reduced-motion: reduce)').matches;
    const gone = () => {
      element.remove();
      this._reserve();
    };
    if (immediate || still) gone();
    else this.timers.setTimeout(gone, LEAVE_MS);
    if (hadFocus) {
      const next = this.visibleRecords().pop();
      if (next) next.element.querySelector('.toast-close').focus();
    }
  }

  clear() {
    for (const record of Array.from(this.records.values())) this.dismiss(record, true);
  }

  _fill(record, notice) {
    record.notice = notice;
    const element = record.element;
    element.className = `toast toast-${notice.kind}`;
    element.dataset.kind = notice.kind;
    setAttr(element, 'role', notice.kind === 'error' ? 'alert' : null);
    setText(element.querySelector('.toast-kind'), notice.kind_word);
    const title = element.querySelector('.toast-title');
    setText(title, notice.title);
    title.hidden = !notice.title;
    const message = element.querySelector('.toast-message');
    setText(message, notice.text);
    message.hidden = !notice.text;
    const box = element.querySelector('.toast-actions');
    const buttons = (notice.actions || []).map((action) => {
      const button = this.buttonPrototype.cloneNode(true);
      button.className = action.primary ? 'btn btn-small btn-primary' : 'btn btn-small';
      button.dataset.action = action.id;
      setText(button, action.label);
      setAttr(button, 'aria-label', action.accessible_name || null);
      setAttr(button, 'title', action.hint || null);
      button.addEventListener('click', () => {
        this.onAction(action, record.notice);
        this.dismiss(record);
      });
      return button;
    });
    box.replaceChildren(...buttons);
    box.hidden = buttons.length === 0;
  }

  _restart(record) {
    this.timers.clearTimeout(record.timer);
    record.timer = null;
    record.remaining = Number(record.notice.timeout_ms) || 0;
    record.element.classList.remove('toast-bump');
    if (record.element.isConnected) {
      void record.element.offsetWidth; // restart the "updated" animation
      record.element.classList.add('toast-bump');
    }
    this._run(record);
  }

  _run(record) {
    if (record.leaving || record.hover || record.focus || record.timer || record.remaining <= 0) return;
    record.started = this.timers.now();
    record.timer = this.timers.setTimeout(() => this.dismiss(record), record.remaining);
  }

  _hold(record, reason, on) {
    record[reason] = on;
    if (on && record.timer) {
      this.timers.clearTimeout(record.timer);
      record.timer = null;
      record.remaining = Math.max(1, record.remaining - (this.timers.now() - record.started));
    } else if (!on) {
      this._run(record);
    }
  }
}
