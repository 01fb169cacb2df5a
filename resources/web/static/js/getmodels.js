/**
 * getmodels.js: the Get models section, upgraded (its forms and links work without it).
 *
 * - HubPanel: the search form and the link that opens a repository, through fetch
 *   (/api/hub/search, /api/hub/repo), then each listed model's fit badge (/api/hub/fit, read
 *   from the remote file's header). Hits and models are clones of the server's templates,
 *   bound from the hub views the server sends (llm_desktop/core/hub_presenter.py).
 * - Uploader: a .gguf file sent with XMLHttpRequest, so its bar moves while the bytes leave
 *   (upload.onprogress); POST /api/uploads/start names the upload first, so stopping it can
 *   both abort the request and cancel the upload on the server. The server's events then show
 *   the file checked and added in the Transfers list.
 * - enhanceGetModels wires them, Download, Quantize and the transfer rows' forms to the page.
 *
 * No words are made here: the server's views, its templates, and PAGE_TEXT for the page's own
 * few states (searching, sending, a request that failed).
 */

import { isAbort } from './transport.js';
import { bindFit, fill, setAttr, setText } from './views.js';

const FIT_CONCURRENCY = 3;
const noop = () => {};

/** A search hit (hub_presenter.HitView) onto a row cloned from #llm-hit-template. */
export function bindHit(row, hit) {
  setAttr(row, 'data-repo-id', hit.repo_id);
  setText(row.querySelector('.hub-hit-title'), hit.title);
  setText(row.querySelector('.hub-hit-facts'), hit.facts);
  const gated = row.querySelector('.hub-gated');
  setText(gated, hit.gated_label);
  setAttr(gated, 'title', hit.gated_hint || null);
  gated.hidden = !hit.gated;
  const open = row.querySelector('.hub-open');
  setAttr(open, 'href', hit.href);
  setAttr(open, 'data-repo-id', hit.repo_id);
  setAttr(open, 'aria-label', hit.open.accessible_name);
  setAttr(open, 'title', hit.open.hint || null);
  setText(open, hit.open.label);
  return row;
}

/** A repository's model (hub_presenter.RemoteModelView) onto a row cloned from
 * #llm-remote-model-template. */
export function bindRemoteModel(document, row, model, cardText) {
  setAttr(row, 'data-reference', model.reference);
  const title = row.querySelector('.remote-model-title');
  setText(title, model.title);
  setAttr(title, 'title', model.file);
  setText(row.querySelector('.quant-chip'), model.quantization);
  const recommended = row.querySelector('.hub-recommended');
  setText(recommended, model.recommended_label);
  recommended.hidden = !model.recommended;
  setText(row.querySelector('.remote-model-size'), model.facts);
  bindFitResult(document, row, model.fit, '', cardText);
  const input = row.querySelector('input[name="reference"]');
  input.value = model.reference;
  setAttr(input, 'value', model.reference);
  const button = row.querySelector('button[data-action="download"]');
  button.classList.toggle('btn-primary', Boolean(model.button.primary));
  setAttr(button, 'aria-label', model.button.accessible_name);
  setAttr(button, 'title', model.button.hint || null);
  button.removeAttribute('aria-disabled');
  setText(button, model.button.label);
  return row;
}

/** A model row's fit: the badge (presenter.FitBadge: checking, unknown or the verdict), or
 * why the page could not ask the server. */
export function bindFitResult(document, row, badge, failure, cardText) {
  bindFit(document, row.querySelector('.fit-badge'), badge, cardText);
  const note = row.querySelector('.fit-note');
  setText(note, failure);
  setAttr(note, 'title', failure || null);
  note.hidden = !failure;
}

export class HubPanel {
  /**
   * @param {object} o
   * @param {Document} o.document
   * @param {Transport} o.transport
   * @param {object} o.text        PAGE_TEXT
   * @param {object} o.cardText    page data `card_text` (the fit badge's words)
   * @param {Function} o.onError   (titleKey, error) for a request that failed
   */
  constructor({ document, transport, text, cardText, onError }) {
    this.document = document;
    this.transport = transport;
    this.text = text || {};
    this.cardText = cardText || {};
    this.onError = onError || noop;
    this.results = document.getElementById('hub-results');
    this.repo = document.getElementById('hub-repo');
    this.hitTemplate = document.getElementById('llm-hit-template');
    this.modelTemplate = document.getElementById('llm-remote-model-template');
    this.listing = 0; // which listing is current: fits of an older one are dropped
    this.searching = 0; // which search is current: an older answer arriving late is dropped
  }

  /** GET /api/hub/search and the hits; resolves the answer (null when it failed). */
  async search(query) {
    const search = (this.searching += 1);
    const box = this.results;
    box.hidden = false;
    box.setAttribute('aria-busy', 'true');
    const summary = box.querySelector('.hub-results-summary');
    const typed = String(query || '').trim();
    setText(summary, typed ? fill(this.text['hub.searching'], { query: typed }) : this.text['hub.searching_all']);
    summary.hidden = false;
    box.querySelector('.hub-error').hidden = true;
    try {
      const answer = await this.transport.request('GET', `/api/hub/search?${new URLSearchParams({ q: query })}`);
      if (search !== this.searching) return answer;
      const view = answer.view || { summary: '', hits: [] };
      setText(summary, view.summary);
      const rows = view.hits.map((hit) => bindHit(this.hitTemplate.content.firstElementChild.cloneNode(true), hit));
      box.querySelector('.hub-hit-list').replaceChildren(...rows);
      return answer;
    } catch (error) {
      if (!isAbort(error) && search === this.searching) this._error(box, 'error.search_failed', error);
      return null;
    } finally {
      if (search === this.searching) box.removeAttribute('aria-busy');
    }
  }

  /** GET /api/hub/repo, the models, then each model's fit. Resolves the answer (or null). */
  async openRepo(repoId) {
    const box = this.repo;
    const listing = (this.listing += 1);
    box.hidden = false;
    box.setAttribute('aria-busy', 'true');
    setAttr(box, 'data-repo-id', repoId);
    setText(box.querySelector('#hub-repo-title'), repoId);
    setText(box.querySelector('.hub-repo-summary'), fill(this.text['hub.listing'], { repo: repoId }));
    box.querySelector('.hub-error').hidden = true;
    box.querySelector('.hub-gated-note').hidden = true;
    box.querySelector('.remote-model-list').replaceChildren();
    try {
      const answer = await this.transport.request('GET', `/api/hub/repo?${new URLSearchParams({ id: repoId })}`);
      if (listing !== this.listing) return answer;
      const view = answer.view;
      setText(box.querySelector('#hub-repo-title'), view.title);
      setText(box.querySelector('.hub-repo-summary'), view.summary);
      const gated = box.querySelector('.hub-gated-note');
      setText(gated, view.gated_hint);
      gated.hidden = !view.gated_hint;
      const rows = view.models.map((model) =>
        bindRemoteModel(this.document, this.modelTemplate.content.firstElementChild.cloneNode(true), model, this.cardText),
      );
      box.querySelector('.remote-model-list').replaceChildren(...rows);
      box.removeAttribute('aria-busy');
      await this.fits(view.models, listing);
      return answer;
    } catch (error) {
      if (!isAbort(error) && listing === this.listing) this._error(box, 'error.repo_failed', error);
      return null;
    } finally {
      if (listing === this.listing) box.removeAttribute('aria-busy');
    }
  }

  /** Each model's fit badge ({reference, repo_id, file} each), a few at a time: each reads a
   * remote header. Models whose fit is known already are left as they are. */
  async fits(models, listing = this.listing) {
    const queue = models.filter((model) => !model.fit || model.fit_pending);
    const worker = async () => {
      while (queue.length && listing === this.listing) {
        const model = queue.shift();
        await this.fit(model, listing);
      }
    };
    await Promise.all(Array.from({ length: Math.min(FIT_CONCURRENCY, queue.length) }, worker));
  }

  async fit(model, listing = this.listing) {
    const row = this._modelRow(model.reference);
    const box = row ? row.querySelector('.remote-model-fit') : null;
    if (box) {
      box.classList.add('is-checking');
      box.setAttribute('aria-busy', 'true');
    }
    let badge = null;
    let failure = '';
    try {
      const query = new URLSearchParams({ repo: model.repo_id, file: model.file });
      badge = (await this.transport.request('GET', `/api/hub/fit?${query}`, { retries: 1 })).badge;
    } catch (error) {
      if (isAbort(error)) return;
      // A refusal carries the badge that says why; with none, the note says what went wrong.
      badge = (error.body && error.body.badge) || null;
      if (!badge) failure = (error.status && error.message) || this.text['error.unreachable'] || '';
    }
    const current = this._modelRow(model.reference);
    if (listing !== this.listing || !current) return;
    bindFitResult(this.document, current, badge, failure, this.cardText);
    const fitBox = current.querySelector('.remote-model-fit');
    fitBox.classList.remove('is-checking');
    fitBox.removeAttribute('aria-busy');
  }

  _modelRow(reference) {
    const rows = this.repo ? Array.from(this.repo.querySelectorAll('.remote-model')) : [];
    return rows.find((row) => row.dataset.reference === reference) || null;
  }

  _error(box, titleKey, error) {
    const line = box.querySelector('.hub-error');
    setText(line, error.message || this.text['error.unreachable']);
    line.hidden = false;
    for (const element of box.querySelectorAll('.hub-results-summary, .hub-repo-summary')) setText(element, '');
    this.onError(titleKey, error);
  }
}

export class Uploader {
  /**
   * @param {object} o
   * @param {HTMLFormElement} o.form           #upload-form
   * @param {Transport} o.transport
   * @param {Function} o.XMLHttpRequest
   * @param {object} o.text                    PAGE_TEXT
   * @param {Function} o.onError               (titleKey, error)
   * @param {Function} [o.onSettled]           (outcome) once an upload has ended here
   */
  constructor({ form, transport, XMLHttpRequest, text, onError, onSettled }) {
    this.form = form;
    this.transport = transport;
    this.XHR = XMLHttpRequest;
    this.text = text || {};
    this.onError = onError || noop;
    this.onSettled = onSettled || noop;
    this.status = form.querySelector('.upload-status');
    this.bar = form.querySelector('.upload-bar');
    this.xhr = null;
    this.key = null;
    this.stopped = false;
  }

  get busy() {
    return this.xhr !== null || this.key === '';
  }

  /** Sends `file`; resolves {key, status, answer} when the request has ended (or null when
   * the server refused to start it). */
  async send(file) {
    if (this.busy) return null;
    this.stopped = false;
    this.key = ''; // starting
    this._show(file.name, 0);
    let start;
    try {
      start = await this.transport.request('POST', '/api/uploads/start', { body: { name: file.name, size: file.size } });
    } catch (error) {
      this._done();
      if (!isAbort(error)) this.onError('error.upload_failed', error);
      return null;
    }
    if (this.stopped) {
      this.key = start.key;
      this._cancelOnServer();
      this._done();
      return null;
    }
    this.key = start.key;
    const outcome = await new Promise((resolve) => {
      const xhr = new this.XHR();
      this.xhr = xhr;
      xhr.open('POST', this.transport.url(`/api/uploads/${encodeURIComponent(start.key)}`));
      if (this.transport.token) xhr.setRequestHeader('Authorization', `Bearer ${this.transport.token}`);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable && event.total) this._bar(Math.floor((event.loaded / event.total) * 100));
      };
      xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
      xhr.onerror = () => resolve({ status: 0, text: '' });
      xhr.onabort = () => resolve({ status: 0, text: '', aborted: true });
      xhr.send(file);
    });
    const key = this.key;
    this._done();
    let answer = null;
    try {
      answer = outcome.text ? JSON.parse(outcome.text) : null;
    } catch {
      answer = null;
    }
    const result = { key, status: outcome.status, answer, stopped: this.stopped };
    // A refusal (4xx) is the server's event too: its row and toast say why. Only a request
    // that could not reach the server, and that nobody stopped, needs a word here.
    if (outcome.status === 0 && !this.stopped) this.onError('error.upload_failed', new Error(''));
    this.onSettled(result);
    return result;
  }

  /** Stops sending: aborts the request and cancels the upload on the server. */
  stop() {
    this.stopped = true;
    if (this.xhr) this.xhr.abort();
    if (this.key) this._cancelOnServer();
  }

  _cancelOnServer() {
    const key = this.key;
    this.transport.request('POST', '/api/transfers/cancel', { body: { key } }).catch(noop);
  }

  _show(name, pct) {
    this.status.hidden = false;
    setText(this.status.querySelector('.upload-status-text'), fill(this.text['upload.sending'], { name }));
    this.form.setAttribute('aria-busy', 'true');
    const submit = this.form.querySelector('button[type="submit"]');
    if (submit) submit.setAttribute('aria-disabled', 'true');
    this._bar(pct);
  }

  _bar(pct) {
    this.bar.value = pct;
    this.bar.setAttribute('value', String(pct));
  }

  _done() {
    this.xhr = null;
    this.key = null;
    this.status.hidden = true;
    this.form.removeAttribute('aria-busy');
    const submit = this.form.querySelector('button[type="submit"]');
    if (submit) submit.removeAttribute('aria-disabled');
    this._bar(0);
  }
}

/**
 * Wires the Get models section and the transfer rows to `manager` (an LLMManager). Returns
 * {hub, uploader, unwire}.
 */
export function enhanceGetModels(manager, document, { XMLHttpRequest = globalThis.XMLHttpRequest } = {}) {
  const window = document.defaultView;
  const onError = (titleKey, error) => manager.reportFailure(titleKey, error);
  const hub = new HubPanel({
    document,
    transport: manager.transport,
    text: manager.text,
    cardText: manager.pageData.card_text,
    onError,
  });
  const uploadForm = document.getElementById('upload-form');
  const uploader =
    uploadForm && XMLHttpRequest
      ? new Uploader({ form: uploadForm, transport: manager.transport, XMLHttpRequest, text: manager.text, onError })
      : null;

  const keepAddress = (href) => {
    if (window && window.history && window.history.replaceState) window.history.replaceState(null, '', href);
  };

  const pending = async (button, work) => {
    if (button && button.getAttribute('aria-disabled') === 'true') return;
    if (button) button.setAttribute('aria-disabled', 'true');
    try {
      await work();
    } finally {
      if (button && button.isConnected) button.removeAttribute('aria-disabled');
    }
  };

  const post = (path, body, titleKey) =>
    manager.transport.request('POST', path, { body }).catch((error) => {
      if (!isAbort(error)) onError(titleKey, error);
      return null;
    });

  const onSubmit = (event) => {
    const form = event.target;
    if (!form || form.tagName !== 'FORM' || event.defaultPrevented) return;
    const button = event.submitter || form.querySelector('button[type="submit"]');
    const field = (name) => {
      const input = form.elements.namedItem(name);
      return input ? input.value : '';
    };
    if (form.id === 'hub-search') {
      event.preventDefault();
      const query = field('q');
      keepAddress(`?${new URLSearchParams({ q: query })}#get-models`);
      hub.search(query);
    } else if (form.matches('.remote-model .action-form')) {
      event.preventDefault();
      pending(button, () => post('/api/downloads', { reference: field('reference') }, 'error.download_failed'));
    } else if (form.matches('.transfer-row .action-form')) {
      event.preventDefault();
      if (!button || button.getAttribute('aria-disabled') === 'true') return;
      const details = form.closest('.transfer-question');
      if (details) details.open = false;
      manager.runTransferAction(button.dataset.action, field('key'));
    } else if (form.id === 'quantize-form') {
      event.preventDefault();
      pending(button, () => post('/api/quantize', { model: field('model'), type: field('type') }, 'error.quantize_failed'));
    } else if (form.id === 'upload-form' && uploader) {
      event.preventDefault();
      const input = form.querySelector('input[type="file"]');
      const file = input && input.files ? input.files[0] : null;
      if (!file) return;
      uploader.send(file).then((result) => {
        if (result && result.status >= 200 && result.status < 300) input.value = '';
        if (result) manager.syncTransfers();
      });
    }
  };

  const onClick = (event) => {
    const target = event.target && event.target.closest ? event.target : null;
    if (!target || event.defaultPrevented) return;
    const open = target.closest('a.hub-open');
    if (open && event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey) {
      event.preventDefault();
      keepAddress(open.getAttribute('href'));
      hub.openRepo(open.dataset.repoId).then(() => {
        if (hub.repo.scrollIntoView) hub.repo.scrollIntoView({ block: 'nearest' });
      });
      return;
    }
    if (target.closest('.upload-cancel') && uploader) {
      event.preventDefault();
      uploader.stop();
    }
    // A click elsewhere closes an open keep-or-delete question, as a menu would.
    for (const details of document.querySelectorAll('.transfer-question[open]')) {
      if (!details.contains(target)) details.open = false;
    }
  };

  const onKeyDown = (event) => {
    if (event.key !== 'Escape' || event.defaultPrevented) return;
    const details = event.target && event.target.closest ? event.target.closest('.transfer-question[open]') : null;
    if (!details) return;
    event.preventDefault();
    details.open = false;
    details.querySelector('summary').focus();
  };

  document.addEventListener('submit', onSubmit);
  document.addEventListener('click', onClick);
  document.addEventListener('keydown', onKeyDown);
  // A repository listed by the server (the page opened with ?repo=) still needs its fits.
  if (hub.repo && !hub.repo.hidden) {
    const rows = Array.from(hub.repo.querySelectorAll('.remote-model'));
    const unknown = rows.filter((row) => row.querySelector('.fit-badge').hidden && row.querySelector('.fit-note').hidden);
    if (unknown.length) {
      hub.fits(
        unknown.map((row) => {
          const reference = row.dataset.reference;
          const at = reference.indexOf(':');
          return { reference, repo_id: reference.slice(0, at), file: reference.slice(at + 1) };
        }),
      );
    }
  }
  return {
    hub,
    uploader,
    unwire() {
      document.removeEventListener('submit', onSubmit);
      document.removeEventListener('click', onClick);
      document.removeEventListener('keydown', onKeyDown);
    },
  };
}
