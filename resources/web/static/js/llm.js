/**
 * llm.js: LLMManager, the page's public face over its modules (llm-desktop).
 *
 * The seed's API is kept: loadModelWithSSE(id, options), updateProgress(modelId, stage, pct,
 * message), showToast(message, type, options), setSseEnabled(enabled), cancelLoading(modelId),
 * cleanup(). Underneath: transport.js (HTTP, retries), sse.js (streams, fallback, polling),
 * store.js (events reduced to the newest view per model), views.js (cards, toasts and the
 * connection state, bound from what the server sent), sources.js (the cards' groups: this
 * machine, each remote engine with its connection line) and transfers.js (the Transfers list:
 * downloads, uploads and quantizing, whose events come on the same stream).
 *
 * Everything a person reads comes from the server: card views and notices with every event,
 * PAGE_TEXT and the notice timeouts in the page data (#llm-page-data). This file writes none.
 */

import { ApiError, Transport, abortError, isAbort, realTimers } from './transport.js';
import { ModelStore, checkEvent, checkView } from './store.js';
import { CardBinder, Toaster, bindConnection } from './views.js';
import { EventsFeed, LoadRun, StatusPoller } from './sse.js';
import { TransferBinder, TransferList } from './transfers.js';
import { SourceGroups } from './sources.js';

const noop = () => {};
const REFRESH_DELAY_MS = 300;

/** A load that ended failed or cancelled: `event` is its last event (with view and notice). */
export class LoadError extends Error {
  constructor(payload) {
    super((payload.error && payload.error.message) || payload.message || payload.stage);
    this.name = 'LoadError';
    this.event = payload;
    this.kind = (payload.error && payload.error.kind) || payload.stage;
    this.cancelled = payload.stage === 'cancelled';
  }
}

/** The page data the server renders into <script type="application/json" id="llm-page-data">. */
export function readPageData(document) {
  const element = document.getElementById('llm-page-data');
  if (!element) return {};
  try {
    return JSON.parse(element.textContent) || {};
  } catch {
    return {};
  }
}

/** Load options as given (a form's strings or numbers and booleans), without the model. */
function loadOptions(options) {
  const clean = {};
  if (!options || typeof options !== 'object') return clean;
  for (const [key, value] of Object.entries(options)) {
    if (key !== 'model' && ['string', 'number', 'boolean'].includes(typeof value)) clean[key] = value;
  }
  return clean;
}

export class LLMManager {
  /**
   * @param {object} [options]
   * @param {Document} [options.document]      the page (default: the global document)
   * @param {object} [options.pageData]        default: read from #llm-page-data
   * @param {Function} [options.fetch]         default: the global fetch
   * @param {Function|null} [options.EventSource]  default: the global one; null: none
   * @param {object} [options.timers]          {setTimeout, clearTimeout, now}
   * @param {string} [options.baseUrl='']      the server's origin ('' = the page's)
   * @param {string} [options.token='']        a bearer token (the page has its cookie)
   * @param {boolean} [options.sseEnabled=true]
   * @param {Element|string} [options.grid='#model-grid']  the cards' groups, one per source
   */
  constructor(options = {}) {
    const document = options.document || globalThis.document;
    this.document = document;
    this.pageData = options.pageData || readPageData(document);
    this.text = this.pageData.text || {};
    this.timers = options.timers || realTimers;
    this.EventSource =
      options.EventSource !== undefined ? options.EventSource : globalThis.EventSource || null;
    this.transport = new Transport({
      fetch: options.fetch,
      baseUrl: options.baseUrl,
      token: options.token,
      timers: this.timers,
    });
    this.store = new ModelStore();
    this.grid =
      typeof options.grid === 'object' && options.grid
        ? options.grid
        : document.querySelector(options.grid || '#model-grid');
    this.groups = new SourceGroups({ root: this.grid, template: document.getElementById('llm-source-template') });
    this.binder = new CardBinder({
      document,
      template: document.getElementById('llm-card-template'),
      cardText: this.pageData.card_text,
      formActions: this.pageData.form_actions,
    });
    this.toaster = new Toaster({
      document,
      container: this._toastContainer(),
      template: document.getElementById('llm-toast-template'),
      limit: this.pageData.notice_limit,
      timers: this.timers,
      onAction: (action, notice) => this.runAction(action.id, notice.model, action.options),
    });
    this.transferOps = new Set(this.pageData.transfer_ops || []);
    this.transfers = new TransferList({
      document,
      binder: new TransferBinder({
        document,
        template: document.getElementById('llm-transfer-template'),
        transferText: this.pageData.transfer_text,
      }),
      list: document.getElementById('transfer-list'),
      empty: document.getElementById('transfers-empty'),
    });
    this.sseEnabled = options.sseEnabled !== undefined ? Boolean(options.sseEnabled) : true;
    /** Counters the tests and the dev page read. */
    this.stats = { events: 0, unparsable: 0, fallbacks: 0, reconnects: 0, streamErrors: 0 };
    /** idle | connecting | live | reconnecting | offline | polling */
    this.connection = 'idle';
    /** The model of the newest load started here that is still running, or null. */
    this.currentModel = null;

    this._runs = new Map();
    this._pending = new Map();
    this._subscribed = false;
    this._refreshTimer = null;
    this._feed = new EventsFeed({
      transport: this.transport,
      EventSource: this.EventSource,
      timers: this.timers,
      lastSeq: () => this.store.lastSeq,
      onSnapshot: (snapshot) => {
        this.bindSources(snapshot.sources);
        this.store.applySnapshot(snapshot);
        if (Array.isArray(snapshot.transfers)) this.transfers.replace(snapshot.transfers);
        this._syncEmpty();
      },
      onPayload: (payload) => this._payload(payload),
      onSources: (listing) => this._applyListing(listing),
      onState: () => this._connectionChanged(),
      onUnparsable: (data) => this._unparsable(data),
      onReconnect: () => {
        this.stats.reconnects += 1;
      },
    });
    this._poller = new StatusPoller({
      transport: this.transport,
      timers: this.timers,
      intervalMs: this.pageData.poll_interval_ms,
      onStatus: (status) => {
        this.bindSources(status && status.sources);
        this.store.applyStatus(status);
        if (status && Array.isArray(status.transfers)) this.transfers.replace(status.transfers);
      },
    });
    this.store.subscribe((change) => this._onChange(change));
  }

  /** {model, stage, pct, seq} of every event the page applied, in order. */
  get progressLog() {
    return this.store.progressLog;
  }

  // -- the seed's API ---------------------------------------------------------------------------

  /**
   * Loads a model, streaming its progress onto its card (SSE, or POST /api/llm/load with status
   * polling when SSE is off or fails). Resolves with the last event (with its view and notice)
   * when the model is loaded; rejects with a LoadError when the load failed or was cancelled,
   * or with the transport's error. The toast has been shown in every case. A second call for a
   * model that is loading returns the same promise.
   */
  loadModelWithSSE(modelId, options = {}) {
    const id = String(modelId);
    const running = this._runs.get(id);
    if (running) return running.outcome;
    const run = new LoadRun({
      model: id,
      options: loadOptions(options),
      baseSeq: this.store.seqOf(id),
      transport: this.transport,
      EventSource: this.EventSource,
      timers: this.timers,
      onPayload: (payload) => this._payload(payload),
      onUnparsable: (data) => this._unparsable(data),
      onFallback: (reason) => {
        this.stats.fallbacks += 1;
        console.info(`[llm] ${reason}: loading ${id} with POST /api/llm/load`);
      },
      onStreamError: () => {
        this.stats.streamErrors += 1;
      },
      onModeChange: () => this._updatePolling(),
    });
    this._runs.set(id, run);
    this.currentModel = id;
    this._setPending(id, 'load', true);
    const useFetch = !this.sseEnabled || !this.EventSource;
    run.outcome = run
      .start(useFetch ? 'SSE is off' : null)
      .then(
        (payload) => {
          if (payload.stage === 'complete') return payload;
          throw new LoadError(payload);
        },
        (error) => {
          if (!isAbort(error)) this._failed('error.load_failed', error);
          throw error;
        },
      )
      .finally(() => {
        if (this._runs.get(id) === run) this._runs.delete(id);
        if (this.currentModel === id) this.currentModel = this._loadingModel();
        this._setPending(id, 'load', false);
        this._updatePolling();
      });
    run.outcome.catch(noop); // an expected ending is not an "unhandled rejection"
    return run.outcome;
  }

  /**
   * Binds what it is given, and only that, onto a model's card: `stage` (data-stage), `pct`
   * (the bar and its number) and `message` (the stage line). Returns false without a card.
   */
  updateProgress(modelId, stage, pct, message) {
    const card = this.getCard(modelId);
    if (!card) return false;
    if (stage !== undefined && stage !== null && stage !== '') card.dataset.stage = String(stage);
    const bar = card.querySelector('.progress-bar');
    const value = Number(pct);
    if (pct !== undefined && pct !== null && Number.isFinite(value)) {
      const shown = Math.trunc(Math.min(100, Math.max(0, value)));
      card.querySelector('.model-progress').hidden = false;
      bar.setAttribute('aria-valuenow', String(shown));
      bar.removeAttribute('aria-valuetext');
      bar.querySelector('.progress-fill').style.width = `${shown}%`;
      card.querySelector('.progress-pct').textContent = `${shown}%`;
    }
    if (message !== undefined && message !== null && message !== '') {
      card.querySelector('.progress-stage').textContent = String(message);
      bar.setAttribute('aria-valuetext', String(message));
    }
    return true;
  }

  /**
   * Shows a toast. `type`: success | error | warning | info. Options: title, key (a toast with
   * the same key is replaced), actions, model, timeout_ms (default: the page data's for the
   * type). Returns the toast element.
   */
  showToast(message, type = 'info', options = {}) {
    const timeouts = this.pageData.notice_timeouts_ms || {};
    const kind = Object.hasOwn(timeouts, type) ? type : 'info';
    const opts = options || {};
    return this.showNotice({
      kind,
      text: message === undefined || message === null ? '' : String(message),
      key: opts.key || '',
      title: opts.title || '',
      model: opts.model || '',
      actions: Array.isArray(opts.actions) ? opts.actions : [],
      timeout_ms: Number.isFinite(opts.timeout_ms) ? opts.timeout_ms : timeouts[kind],
      kind_word: (this.pageData.notice_kind_words || {})[kind] || '',
    });
  }

  /** Shows a notice as the server sent it (presenter.Notice.to_dict()). */
  showNotice(notice) {
    return this.toaster.show(notice);
  }

  /** SSE on or off (off: loads POST /api/llm/load and the page polls /api/llm/status). */
  setSseEnabled(enabled) {
    this.sseEnabled = Boolean(enabled);
    const toggle = this.document.getElementById('sse-toggle');
    if (toggle) toggle.checked = this.sseEnabled;
    if (!this.sseEnabled) this._feed.stop();
    else if (this._subscribed && this.EventSource) this._feed.start();
    this._connectionChanged();
    return this.sseEnabled;
  }

  /**
   * Asks the server to cancel a model's load (default: the newest one started here, or any
   * loading). The `cancelled` event then ends the load's promise. Resolves {cancelled}.
   */
  async cancelLoading(modelId) {
    const id = modelId !== undefined && modelId !== null ? String(modelId) : this._loadingModel();
    if (!id) return { cancelled: false };
    this._setPending(id, 'cancel', true);
    try {
      const answer = await this.transport.request('POST', '/api/llm/cancel', { body: { model: id } });
      if (!answer.cancelled) this._syncOnce();
      return { cancelled: Boolean(answer.cancelled) };
    } catch (error) {
      if (!isAbort(error)) this._failed('error.cancel_failed', error);
      return { cancelled: false, error };
    } finally {
      this._setPending(id, 'cancel', false);
    }
  }

  /** Closes every stream, stops every timer, aborts requests in flight and removes the toasts;
   * running loads reject with an AbortError. subscribeToEvents() starts again. */
  cleanup() {
    this._subscribed = false;
    this._feed.stop();
    this._poller.stop();
    for (const run of Array.from(this._runs.values())) run.close(abortError());
    this._runs.clear();
    this.transport.abortAll();
    this.toaster.clear();
    if (this._refreshTimer !== null) this.timers.clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    this._pending.clear();
    this.currentModel = null;
    this.connection = 'idle';
  }

  // -- more of the page --------------------------------------------------------------------------

  /** Follows /api/llm/events (every model's events; SSE off: status polling). */
  subscribeToEvents() {
    this._subscribed = true;
    if (this.sseEnabled && this.EventSource) this._feed.start();
    this._connectionChanged();
  }

  /** Unloads a model; its events then move the card. Resolves the server's answer. */
  async unloadModel(modelId) {
    const id = String(modelId);
    this._setPending(id, 'unload', true);
    try {
      const answer = await this.transport.request('POST', '/api/llm/unload', { body: { model: id } });
      if (!answer.unloading) this._syncOnce();
      return answer;
    } catch (error) {
      if (!isAbort(error)) this._failed('error.unload_failed', error);
      return { unloading: false, error };
    } finally {
      this._setPending(id, 'unload', false);
    }
  }

  /** Removes a model from the library (not its file) and its card from the page. */
  async removeModel(modelId) {
    const id = String(modelId);
    this._setPending(id, 'remove', true);
    try {
      const answer = await this.transport.request('POST', '/api/llm/remove', { body: { model: id } });
      this.store.remove(id);
      this._scheduleRefresh();
      return answer;
    } catch (error) {
      if (!isAbort(error)) this._failed('error.remove_failed', error);
      return { removed: false, error };
    } finally {
      this._setPending(id, 'remove', false);
    }
  }

  /** GET /api/llm/models: every card from its view (new ones added, gone ones removed, in the
   * server's order, each in its source's group) and the summary line. */
  async refresh() {
    let data;
    try {
      data = await this.transport.request('GET', '/api/llm/models');
    } catch (error) {
      if (!isAbort(error)) this._failed('error.unreachable', error);
      return null;
    }
    const models = Array.isArray(data.models) ? data.models : [];
    const events = {};
    for (const model of models) if (checkEvent(model.last_event)) events[model.id] = model.last_event;
    this.store.applyStatus({ models: events });
    this._applyListing({ views: models.map((model) => model.view), summary: data.summary, sources: data.sources });
    return data;
  }

  /** The models list's groups as the server decided them; a connection change is announced. */
  bindSources(sections) {
    for (const text of this.groups.bind(sections)) this._announce(text);
    this._syncEmpty();
  }

  /** Every card of a listing (GET /api/llm/models, or a `sources` message the server sends when
   * a remote engine connects, drops or lists other models): {views, summary, sources}. */
  _applyListing({ views: listed, summary: text, sources }) {
    const views = (Array.isArray(listed) ? listed : []).filter((view) => checkView(view));
    const wanted = new Set(views.map((view) => view.model));
    for (const model of Array.from(this.store.views.keys())) if (!wanted.has(model)) this.store.remove(model);
    for (const card of this._cards()) if (!wanted.has(card.dataset.modelId)) card.remove();
    this.bindSources(sources); // after the gone cards: a group of a source no longer followed goes
    this.store.applyViews(views);
    const placed = new Map();
    for (const view of views) {
      const card = this.getCard(view.model);
      const box = card ? this.groups.cards(view.source) : null;
      if (!box) continue;
      placed.set(box, (placed.get(box) || 0) + 1);
      const at = box.children[placed.get(box) - 1] || null;
      if (at !== card && !card.contains(this.document.activeElement)) box.insertBefore(card, at);
    }
    const summary = this.document.getElementById('library-summary');
    if (summary && typeof text === 'string') summary.textContent = text;
  }

  /** What a card button (or a toast's) does. Never rejects. */
  runAction(actionId, modelId, options = {}) {
    if (this.transfers.has(String(modelId))) return this.runTransferAction(actionId, String(modelId));
    switch (actionId) {
      case 'load':
      case 'retry':
        return this.loadModelWithSSE(modelId, options).catch(noop);
      case 'cancel':
        return this.cancelLoading(modelId);
      case 'unload':
        return this.unloadModel(modelId);
      case 'remove':
        return this.removeModel(modelId);
      case 'details':
        return Promise.resolve(this.showDetails(modelId));
      default:
        return Promise.resolve(null);
    }
  }

  /**
   * What a transfer row's button (or its toast's) does: pause, resume, cancel (keeping the
   * bytes), discard, dismiss, or load the model it made. Never rejects; resolves the answer.
   */
  async runTransferAction(actionId, key) {
    const row = this.transfers.row(key);
    const buttons = row ? Array.from(row.querySelectorAll(`button[data-action="${actionId}"]`)) : [];
    for (const button of buttons) button.setAttribute('aria-disabled', 'true');
    try {
      const answer = await this.transport.request('POST', `/api/transfers/${actionId}`, { body: { key } });
      if (actionId === 'dismiss') this.transfers.remove(key);
      if (actionId === 'load' && answer.model) {
        this._scheduleRefresh();
        await this.refresh();
        const card = this.getCard(answer.model);
        if (card) {
          if (card.scrollIntoView) card.scrollIntoView({ block: 'nearest' });
          card.focus({ preventScroll: true });
        }
        this.loadModelWithSSE(answer.model).catch(noop);
      }
      return answer;
    } catch (error) {
      if (!isAbort(error)) this._failed('error.transfer_failed', error);
      return { error };
    } finally {
      for (const button of buttons) if (button.isConnected) button.removeAttribute('aria-disabled');
    }
  }

  /** GET /api/transfers: every row from its view (after a request the stream may not show). */
  async syncTransfers() {
    try {
      const answer = await this.transport.request('GET', '/api/transfers', { retries: 1 });
      this.transfers.replace(answer.transfers);
      return answer;
    } catch {
      return null;
    }
  }

  /** A toast for a request of the page that failed (titleKey: a PAGE_TEXT key). */
  reportFailure(titleKey, error) {
    this._failed(titleKey, error);
  }

  /** Opens a card's error details and moves the focus there. */
  showDetails(modelId) {
    const card = this.getCard(modelId);
    const details = card ? card.querySelector('.error-details') : null;
    if (!details || details.hidden) return false;
    details.open = true;
    const summary = details.querySelector('summary');
    if (summary.scrollIntoView) summary.scrollIntoView({ block: 'nearest' });
    summary.focus();
    return true;
  }

  /** What a card shows now: {state, pct, stage, label, busy, indeterminate, seq}, or null. */
  getProgress(modelId) {
    const view = this.store.view(String(modelId));
    if (!view) return null;
    const event = this.store.event(String(modelId));
    return {
      state: view.state,
      pct: view.pct,
      stage: event ? event.stage : null,
      label: view.stage_label,
      busy: view.busy,
      indeterminate: view.indeterminate,
      seq: view.seq,
    };
  }

  /** The toasts on screen, oldest first: [{type, message, title, key, timeout_ms, element}]. */
  visibleToasts() {
    return this.toaster.visible();
  }

  getCard(modelId) {
    const id = String(modelId);
    return this._cards().find((card) => card.dataset.modelId === id) || null;
  }

  // -- internals ---------------------------------------------------------------------------------

  _cards() {
    return Array.from(this.document.querySelectorAll('.model-card[data-model-id]'));
  }

  _payload(payload) {
    this.stats.events += 1;
    if (this.transferOps.has(payload.op)) this._transferPayload(payload);
    else this.store.applyPayload(payload);
  }

  /** A transfer's event: its row, its toast, and once it made a model, the model's card. */
  _transferPayload(payload) {
    this.store.seen(payload.seq);
    const change = this.transfers.apply(payload.view);
    if (!change) return;
    const { view, previous } = change;
    if (payload.notice) this.showNotice(payload.notice);
    if (previous && previous.stage !== view.stage) this._announce(view.announcement);
    if (view.stage === 'complete' && view.result_path) this._scheduleRefresh();
  }

  _onChange(change) {
    if (change.removed) {
      const card = this.getCard(change.model);
      if (card) card.remove();
      this._syncEmpty();
      return;
    }
    if (change.view) this._show(change.view, change.previous);
    if (change.notice) this.showNotice(change.notice);
    if (change.event) {
      const run = this._runs.get(change.model);
      if (run) run.offer(change.event);
    }
  }

  _show(view, previous) {
    let card = this.getCard(view.model);
    if (!card) {
      if (!this.grid || !this.binder.template) return;
      card = this.binder.create(view);
      this.groups.cards(view.source).append(card);
      this._syncEmpty();
      this._scheduleRefresh(); // its place in the list and the summary line
    } else if (previous && previous.state !== view.state) {
      this._scheduleRefresh(); // a model loaded or unloaded: the summary line counts them
    }
    const active = this.document.activeElement;
    const hadFocus = card.contains(active);
    this.binder.bind(card, view);
    this._markPending(view.model);
    if (hadFocus && !card.contains(this.document.activeElement)) {
      // The focused button went away (Load became Cancel): the card's next action takes it.
      const next = card.querySelector('.model-actions button:not([aria-disabled="true"])');
      (next || card).focus({ preventScroll: true });
    }
    if (previous && previous.state !== view.state) this._announce(view.announcement);
  }

  _announce(text) {
    const region = this.document.getElementById('llm-announcer');
    if (!region || !text) return;
    region.textContent = '';
    region.textContent = text;
  }

  _setPending(model, action, on) {
    const actions = this._pending.get(model) || new Set();
    const ids = action === 'load' ? ['load', 'retry'] : [action];
    for (const id of ids) {
      if (on) actions.add(id);
      else actions.delete(id);
    }
    if (actions.size) this._pending.set(model, actions);
    else this._pending.delete(model);
    const card = this.getCard(model);
    if (!card) return;
    for (const id of ids) {
      const button = card.querySelector(`.model-actions button[data-action="${id}"]`);
      if (button && on) button.setAttribute('aria-disabled', 'true');
      else if (button) button.removeAttribute('aria-disabled');
    }
  }

  _markPending(model) {
    const card = this.getCard(model);
    if (!card) return;
    for (const id of this._pending.get(model) || []) {
      const button = card.querySelector(`.model-actions button[data-action="${id}"]`);
      if (button) button.setAttribute('aria-disabled', 'true');
    }
  }

  _loadingModel() {
    const ids = Array.from(this._runs.keys());
    if (ids.length) return ids[ids.length - 1];
    for (const view of this.store.views.values()) if (view.state === 'loading') return view.model;
    const card = this.document.querySelector('.model-card[data-state="loading"]');
    return card ? card.dataset.modelId : null;
  }

  /** A toast for a request that failed: PAGE_TEXT's title, the server's words (or "could not
   * reach the local server"). */
  _failed(titleKey, error) {
    const reached = error instanceof ApiError;
    const unreachable = titleKey === 'error.unreachable' ? '' : this.text['error.unreachable'];
    console.warn(`[llm] ${titleKey}:`, error && error.message);
    this.showToast(reached ? error.message : unreachable, 'error', {
      title: this.text[titleKey] || '',
      key: `client:${titleKey}`,
    });
  }

  _unparsable(data) {
    this.stats.unparsable += 1;
    let sample;
    try {
      sample = typeof data === 'string' ? data : JSON.stringify(data);
    } catch {
      sample = String(data);
    }
    console.warn('[llm] ignored data that is not an event:', String(sample).slice(0, 200));
  }

  _connectionChanged() {
    let state;
    if (!this._subscribed) state = 'idle';
    else if (!this.sseEnabled || !this.EventSource) state = 'polling';
    else state = this._feed.state === 'idle' ? 'connecting' : this._feed.state;
    if (state !== this.connection) {
      this.connection = state;
      if (state !== 'idle') bindConnection(this.document.getElementById('connection-status'), state, this.text);
    }
    this._updatePolling();
  }

  /** Polls /api/llm/status while no live stream carries the events: SSE off, the event stream
   * down, or a load waiting on POST /api/llm/load. */
  _updatePolling() {
    const fetching = Array.from(this._runs.values()).some((run) => run.mode === 'fetch');
    const feedDown = ['polling', 'reconnecting', 'offline'].includes(this.connection);
    if (fetching || (this._subscribed && feedDown)) this._poller.start();
    else this._poller.stop();
  }

  /** One status request now (after an answer that changed nothing, when nothing streams). */
  _syncOnce() {
    if (this._feed.live) return;
    this.transport
      .request('GET', '/api/llm/status', { retries: 1 })
      .then((status) => this.store.applyStatus(status))
      .catch(noop);
  }

  _scheduleRefresh() {
    if (this._refreshTimer !== null) return;
    this._refreshTimer = this.timers.setTimeout(() => {
      this._refreshTimer = null;
      this.refresh();
    }, REFRESH_DELAY_MS);
  }

  _syncEmpty() {
    const empty = this.document.getElementById('empty-state');
    const some = this._cards().length > 0;
    if (this.grid) this.grid.hidden = !some && !this.groups.headed();
    if (empty) empty.hidden = some;
  }

  _toastContainer() {
    let box = this.document.getElementById('toast-container');
    if (!box) {
      box = this.document.createElement('div');
      box.id = 'toast-container';
      box.className = 'toast-container';
      box.setAttribute('aria-live', 'polite');
      this.document.body.append(box);
    }
    return box;
  }
}
