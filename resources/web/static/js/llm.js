/*
 * llm.js: the LLM management page's client (llm-desktop).
 *
 * LLMManager loads, cancels and unloads local models through the app's local server, streams
 * real load progress over Server-Sent Events, and renders it on model cards, spinner overlays
 * and toasts. It computes no progress of its own: every number on a card comes from an engine
 * event (see llm_desktop/core/events.py, ProgressEvent.to_dict()), and the card rules (labels,
 * indeterminate stages, detail line, buttons) are the desktop's (llm_desktop/core/presenter.py).
 *
 * Plain ES2020, no build step, no dependencies. Defines window.LLMManager only; the page that
 * wants a shared instance creates window.llmManager itself (index.html does, on
 * DOMContentLoaded), so a test page can make its own.
 *
 * DOM contract (what other code and tests can rely on) is documented in README-style comments
 * at createModelCard() and showToast().
 */
(function (root) {
  'use strict';

  // -- the event model, as in llm_desktop/core/events.py and presenter.py --------------------------

  const STAGE_LABELS = Object.freeze({
    connecting: 'Connecting',
    initializing: 'Initializing',
    parsing: 'Reading metadata',
    loading: 'Loading weights',
    quantizing: 'Quantizing',
    optimizing: 'Creating context',
    finalizing: 'Warming up',
    complete: 'Loaded',
    failed: 'Failed',
    cancelled: 'Cancelled',
    unloading: 'Unloading',
    unloaded: 'Not loaded',
  });

  /** Stages whose duration llama.cpp does not measure: the bar says "busy", not a fraction. */
  const INDETERMINATE_STAGES = new Set(['optimizing', 'finalizing', 'unloading']);
  const TERMINAL_STAGES = new Set(['complete', 'failed', 'cancelled', 'unloaded']);
  const LOAD_TERMINAL_STAGES = new Set(['complete', 'failed', 'cancelled']);

  const STATE_LABELS = Object.freeze({
    unloaded: 'Not loaded',
    loading: 'Loading',
    loaded: 'Loaded',
    failed: 'Failed',
    cancelled: 'Cancelled',
    unloading: 'Unloading',
  });

  const FIT_LABELS = Object.freeze({
    gpu: 'Fits on GPU',
    partial: 'Partial offload',
    cpu: 'CPU only',
    no: 'Too large',
  });

  const SOURCE_LABELS = Object.freeze({ lmstudio: 'LM Studio', huggingface: 'Hugging Face' });

  const TOAST_TYPES = new Set(['success', 'error', 'warning', 'info']);
  const TOAST_KIND_WORDS = Object.freeze({
    success: 'Success',
    error: 'Error',
    warning: 'Warning',
    info: 'Information',
  });
  const TOAST_DURATION_MS = 4000;
  const TOAST_ERROR_DURATION_MS = 8000;
  const TOAST_LIMIT = 5;

  const BACKOFF_START_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const FIRST_EVENT_TIMEOUT_MS = 20000;
  const STREAM_ERROR_LIMIT = 5;
  const POLL_INTERVAL_MS = 1000;
  const CANCEL_SETTLE_MS = 30000;
  const UNLOAD_WAIT_MS = 120000;
  const PROGRESS_LOG_LIMIT = 20000;

  const noop = () => {};

  function stateForStage(stage) {
    switch (stage) {
      case 'complete':
        return 'loaded';
      case 'failed':
        return 'failed';
      case 'cancelled':
        return 'cancelled';
      case 'unloading':
        return 'unloading';
      case 'unloaded':
        return 'unloaded';
      default:
        return 'loading';
    }
  }

  function clampPct(value) {
    const n = Number(value);
    if (!Number.isFinite(n)) return 0;
    return Math.min(100, Math.max(0, n));
  }

  /** Python's round(): halves go to the even neighbour, so the page says what the desktop says. */
  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // -- formatting, as the desktop writes numbers (llm_desktop/core/fit.py, presenter.py) -----------

  /** Decimal units for people: "512 B", "1.2 GB", "79.1 GB", "123 GB". */
  function formatBytes(n) {
    if (n === null || n === undefined || !Number.isFinite(Number(n))) return '';
    const sign = n < 0 ? '-' : '';
    let value = Math.abs(Number(n));
    if (value < 1000) return `${sign}${Math.trunc(value)} B`;
    const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
    for (const unit of units) {
      value /= 1000;
      // Choose the unit after rounding, so 999.96 MB is written 1.0 GB and not 1000.0 MB.
      const shown = Math.round(value * 10) / 10 < 100 ? value.toFixed(1) : value.toFixed(0);
      if (parseFloat(shown) < 1000 || unit === 'PB') return `${sign}${shown} ${unit}`;
    }
    return '';
  }

  /** "340 MB/s". */
  function formatRate(bytesPerSecond) {
    const text = formatBytes(bytesPerSecond);
    return text ? `${text}/s` : '';
  }

  /** "under a second", "12 s", "2 min 05 s". */
  function formatEta(seconds) {
    const s = Number(seconds);
    if (!Number.isFinite(s)) return '';
    if (s < 1) return 'under a second';
    if (s < 60) return `${roundHalfEven(s)} s`;
    const whole = Math.trunc(s);
    const minutes = Math.floor(whole / 60);
    const rest = whole % 60;
    return `${minutes} min ${String(rest).padStart(2, '0')} s`;
  }

  function formatCount(n) {
    return Number(n).toLocaleString('en-US');
  }

  /** Bytes, rate and ETA while loading; the outcome's numbers after it (presenter.detail_line). */
  function detailLine(event) {
    const stage = event.stage;
    if (stage === 'loading' && event.bytes_total) {
      const parts = [`${formatBytes(event.bytes_done || 0)} of ${formatBytes(event.bytes_total)}`];
      if (event.rate_bps) parts.push(formatRate(event.rate_bps));
      if (event.eta_s !== null && event.eta_s !== undefined) parts.push(`${formatEta(event.eta_s)} left`);
      return parts.join(' · ');
    }
    if (stage === 'complete') {
      const held = event.memory_bytes ? ` · holds ${formatBytes(event.memory_bytes)}` : '';
      return (event.message || '') + held;
    }
    if (stage === 'failed' && event.error && event.error.message) return event.error.message;
    return event.message || '';
  }

  function stageLabel(stage) {
    if (STAGE_LABELS[stage]) return STAGE_LABELS[stage];
    const text = String(stage || '');
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function announcement(event, name) {
    const label = stageLabel(event.stage);
    if (event.stage === 'loading') return `${name}: ${label.toLowerCase()}, ${Math.trunc(clampPct(event.pct))} percent`;
    if (event.stage === 'failed' && event.error && event.error.message) {
      return `${name}: failed. ${event.error.message}`;
    }
    return `${name}: ${label.toLowerCase()}`;
  }

  /** What a card shows for an event (or null: never loaded): presenter.card_view. */
  function cardView(event, name = 'model') {
    if (!event) {
      return {
        state: 'unloaded',
        stage: 'unloaded',
        stageLabel: STAGE_LABELS.unloaded,
        pct: 0,
        indeterminate: false,
        detail: '',
        busy: false,
        busyMessage: '',
        canLoad: true,
        canCancel: false,
        canUnload: false,
        canRetry: false,
        error: null,
        announcement: `${name}: not loaded`,
        progressText: `${STAGE_LABELS.unloaded} · 0%`,
      };
    }
    const stage = event.stage;
    const state = stateForStage(stage);
    const label = stageLabel(stage);
    const busy = state === 'loading' || state === 'unloading';
    const pct = stage === 'unloaded' ? 0 : Math.trunc(clampPct(event.pct));
    const indeterminate = INDETERMINATE_STAGES.has(stage);
    return {
      state,
      stage,
      stageLabel: label,
      pct,
      indeterminate,
      detail: detailLine(event),
      busy,
      busyMessage: busy ? event.message || `${label}…` : '',
      canLoad: state === 'unloaded' || state === 'cancelled',
      canCancel: state === 'loading',
      canUnload: state === 'loaded',
      canRetry: state === 'failed',
      error: state === 'failed' ? event.error || null : null,
      announcement: announcement(event, name),
      progressText: indeterminate ? label : `${label} · ${pct}%`,
    };
  }

  /** A checked copy of an event from the network, or null when it is not one. */
  function normalizeEvent(data, fallbackModel) {
    if (!data || typeof data !== 'object' || Array.isArray(data)) return null;
    const stage = data.stage;
    if (typeof stage !== 'string' || !Object.prototype.hasOwnProperty.call(STAGE_LABELS, stage)) return null;
    const model = typeof data.model === 'string' && data.model ? data.model : fallbackModel;
    if (typeof model !== 'string' || !model) return null;
    const pct = Number(data.pct);
    if (data.pct === null || data.pct === undefined || !Number.isFinite(pct)) return null;
    const seq = Number(data.seq);
    const ts = Number(data.ts);
    return {
      ...data,
      model,
      stage,
      pct: clampPct(pct),
      seq: Number.isFinite(seq) ? seq : 0,
      ts: Number.isFinite(ts) ? ts : 0,
      message: typeof data.message === 'string' ? data.message : '',
      op: data.op === 'unload' ? 'unload' : data.op || (stage === 'unloading' || stage === 'unloaded' ? 'unload' : 'load'),
      error: data.error && typeof data.error === 'object' ? data.error : null,
      state: stateForStage(stage),
    };
  }

  /**
   * Whether `event` is newer than `last` for the same model. `seq` grows by one per event of a
   * model for the engine's life, so replays and the same event from two streams are dropped; a
   * lower seq with a later timestamp means the engine restarted.
   */
  function isNewer(event, last) {
    if (!last) return true;
    if (!event.seq && !event.ts) return true; // no ordering information: trust the caller
    if (event.seq > last.seq) return true;
    return Boolean(event.ts && last.ts && event.ts > last.ts && event.seq < last.seq);
  }

  function tokenFromLocation(loc) {
    const where = loc || (root.location ? root.location : null);
    if (!where) return '';
    try {
      const fragment = new URLSearchParams(String(where.hash || '').replace(/^#/, ''));
      const fromFragment = fragment.get('token');
      if (fromFragment) return fromFragment;
      return new URLSearchParams(String(where.search || '')).get('token') || '';
    } catch (_err) {
      return '';
    }
  }

  function isAbort(err) {
    return Boolean(err && (err.name === 'AbortError' || err.aborted));
  }

  function abortError(message = 'Stopped by cleanup()') {
    const err = new Error(message);
    err.name = 'AbortError';
    err.aborted = true;
    return err;
  }

  /** A non-2xx answer of the API: `status`, `kind` and `message` from {"error": {...}}. */
  class ApiError extends Error {
    constructor(status, kind, message, retryAfterS = null) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.kind = kind;
      this.retryAfterS = retryAfterS;
    }
  }

  /** A load that ended failed or cancelled: `event` is the engine's final event. */
  class LoadError extends Error {
    constructor(event) {
      const message =
        (event.error && event.error.message) ||
        event.message ||
        (event.stage === 'cancelled' ? 'Loading cancelled' : 'Loading failed');
      super(message);
      this.name = 'LoadError';
      this.event = event;
      this.kind = (event.error && event.error.kind) || (event.stage === 'cancelled' ? 'cancelled' : 'failed');
      this.cancelled = event.stage === 'cancelled';
    }
  }

  function retryAfterMs(response) {
    const header = response.headers.get('Retry-After');
    if (!header) return null;
    const seconds = Number(header);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(header);
    return Number.isFinite(date) ? Math.max(0, date - Date.now()) : null;
  }

  // -- icons (inline SVG: no fonts, no files; the shape, not the colour, says the kind) -------

  const SVG_OPEN =
    '<svg viewBox="0 0 20 20" width="20" height="20" aria-hidden="true" focusable="false" ' +
    'fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">';
  const ICONS = Object.freeze({
    success: `${SVG_OPEN}<circle cx="10" cy="10" r="8"/><path d="M6.2 10.3l2.5 2.5 5-5.3"/></svg>`,
    error: `${SVG_OPEN}<circle cx="10" cy="10" r="8"/><path d="M10 5.8v5"/><circle cx="10" cy="14" r=".6" fill="currentColor"/></svg>`,
    warning: `${SVG_OPEN}<path d="M10 2.8l7.6 13.4H2.4z"/><path d="M10 8v3.8"/><circle cx="10" cy="14.2" r=".6" fill="currentColor"/></svg>`,
    info: `${SVG_OPEN}<circle cx="10" cy="10" r="8"/><path d="M10 9v5"/><circle cx="10" cy="6.3" r=".6" fill="currentColor"/></svg>`,
    close: `${SVG_OPEN}<path d="M5.5 5.5l9 9M14.5 5.5l-9 9"/></svg>`,
    live: `${SVG_OPEN}<circle cx="10" cy="10" r="3.2" fill="currentColor"/><circle cx="10" cy="10" r="7"/></svg>`,
    reconnecting: `${SVG_OPEN}<path d="M16 10a6 6 0 1 1-1.8-4.3"/><path d="M16.2 3.2v3.3h-3.3"/></svg>`,
    offline: `${SVG_OPEN}<circle cx="10" cy="10" r="7"/><path d="M5 15L15 5"/></svg>`,
    disabled: `${SVG_OPEN}<circle cx="10" cy="10" r="7"/><path d="M8.2 7v6M11.8 7v6"/></svg>`,
    idle: `${SVG_OPEN}<circle cx="10" cy="10" r="7" stroke-dasharray="2.5 2.5"/></svg>`,
  });

  const CONNECTION_TEXT = Object.freeze({
    live: 'Live',
    reconnecting: 'Reconnecting…',
    offline: 'Offline',
    disabled: 'SSE off',
    idle: 'Not connected',
  });
  const CONNECTION_DESCRIPTION = Object.freeze({
    live: 'Live updates from the app are on',
    reconnecting: 'The live update stream dropped; reconnecting',
    offline: 'Cannot reach the app; still trying',
    disabled: 'Live updates (SSE) are off; the page asks the app for status instead',
    idle: 'Not subscribed to live updates',
  });

  // -- the manager ---------------------------------------------------------------------------

  let cardCounter = 0;

  class LLMManager {
    /**
     * @param {object} [options]
     * @param {string} [options.baseUrl='']    origin of the API ('' = this page's origin)
     * @param {string} [options.token]         API token (default: #token= or ?token= of the page)
     * @param {Document|Element|string} [options.container=document]  where cards and toasts live
     * @param {Element|string} [options.grid='#model-grid']  where fetchModels() renders cards
     * @param {boolean} [options.sseEnabled=true]  start with SSE on (off: fetch + status polling)
     * @param {number} [options.retries=3]     tries per fetch call on network errors
     * @param {function} [options.onAction]    (action, modelId, manager) => true to handle a card
     *                                         button yourself (the test page's mocks use it)
     */
    constructor(options = {}) {
      const opts = options || {};
      this.baseUrl = String(opts.baseUrl || '').replace(/\/+$/, '');
      this.token = opts.token !== undefined && opts.token !== null ? String(opts.token) : tokenFromLocation();
      this.container = LLMManager._resolve(opts.container) || root.document;
      this.gridSelector = opts.grid || '#model-grid';
      this.sseEnabled = opts.sseEnabled !== undefined ? Boolean(opts.sseEnabled) : true;
      this.retries = Math.max(1, Number(opts.retries) || 3);
      this.onAction = typeof opts.onAction === 'function' ? opts.onAction : null;

      /** Models from the last fetchModels(), by id. */
      this.models = {};
      this.hardware = null;
      /** The last event applied per model id (network events only). */
      this.lastEvent = {};
      /** {model, stage, pct, seq} for every network event applied to the cards, in order. */
      this.progressLog = [];
      this.stats = { events: 0, unparsable: 0, fallbacks: 0, reconnects: 0 };
      /** live | reconnecting | offline | disabled | idle (the /api/llm/events subscription). */
      this.connection = 'idle';
      /** The model of the most recent load still running from this page, or null. */
      this.currentModel = null;

      this._loads = new Map();
      this._waiters = new Set();
      this._pending = new Set();
      this._timers = new Set();
      this._toasts = new Map();
      this._events = null;
      this._eventsTimer = null;
      this._eventsBackoff = BACKOFF_START_MS;
      this._eventsFailures = 0;
      this._eventsLive = false;
      this._eventsSnapshots = 0;
      this._wantEvents = false;
      this._poll = null;
      this._refreshTimer = null;
      this._abort = new AbortController();
      this._announcer = null;
      this._toastContainer = null;

      this._onClick = this._onClick.bind(this);
      this._onKeyDown = this._onKeyDown.bind(this);
      this._onOnline = () => {
        if (this._wantEvents && this.sseEnabled && !this._events) this._connectEvents();
      };
      this._setConnection('idle', true);
      this.container.addEventListener('click', this._onClick);
      this._doc().addEventListener('keydown', this._onKeyDown);
      if (root.addEventListener) root.addEventListener('online', this._onOnline);
    }

    // -- public: loading ---------------------------------------------------------------------

    /**
     * Loads a model and streams its progress onto its card.
     *
     * Opens an EventSource to /api/llm/load_stream; when SSE is off, or the stream fails before
     * its first event, falls back to POST /api/llm/load (stats.fallbacks). Resolves with the
     * final `complete` event; rejects with a LoadError (`.event`, `.kind`, `.cancelled`) when the
     * load failed or was cancelled, or with an ApiError / network Error when the server refused
     * or could not be reached. The toast is already shown in every case. A second call for a
     * model that is loading returns the same promise.
     *
     * Returns a Promise (a plain method, so a caller that ignores the result, e.g. a Qt
     * runJavaScript call, never produces an "unhandled rejection" for an expected failure).
     *
     * @param {string} modelName  the model id (as in /api/llm/models)
     * @param {{n_ctx?: number, gpu_layers?: number, use_mmap?: boolean}} [loadOptions]
     * @returns {Promise<object>} the final event
     */
    loadModelWithSSE(modelName, loadOptions = {}) {
      const id = String(modelName);
      const running = this._loads.get(id);
      if (running) return running.promise;

      const last = this.lastEvent[id];
      const load = {
        id,
        options: LLMManager._cleanOptions(loadOptions),
        baseSeq: last ? last.seq : 0,
        es: null,
        mode: 'sse',
        gotEvent: false,
        errors: 0,
        settled: false,
        timers: new Set(),
      };
      load.promise = new Promise((resolve, reject) => {
        load.resolve = resolve;
        load.reject = reject;
      });
      load.promise.catch(noop); // expected outcomes (failed, cancelled) are not "unhandled"
      this._loads.set(id, load);
      this.currentModel = id;

      if (!last || TERMINAL_STAGES.has(last.stage)) {
        this.updateProgress(id, 'connecting', 0, 'Connecting…');
      }
      if (this.sseEnabled && typeof root.EventSource === 'function') {
        this._openLoadStream(load);
      } else {
        this.stats.fallbacks += 1;
        this._loadWithFetch(load, this.sseEnabled ? 'EventSource is not available' : 'SSE is off');
      }
      return load.promise;
    }

    /**
     * Asks the server to cancel the given model's load, or the current one's. Closes this
     * page's stream for it; the final `cancelled` event still arrives through /api/llm/events (or
     * status polling) and settles loadModelWithSSE's promise.
     * @returns {Promise<{cancelled: boolean}>}
     */
    async cancelLoading(modelId) {
      const id = modelId !== undefined && modelId !== null ? String(modelId) : this._currentLoadingModel();
      if (!id) return { cancelled: false };
      const card = this.getCard(id);
      if (card) card.dataset.cancelling = 'true';
      this._renderFromState(id, 'Cancelling…');
      let answer;
      try {
        answer = await this._request('POST', '/api/llm/cancel', { body: { model: id } });
      } catch (err) {
        this._endCancelling(id);
        if (!isAbort(err)) {
          console.warn('[llm] cancel failed:', err.message);
          this.showToast(`Could not cancel: ${err.message}`, 'error');
        }
        return { cancelled: false, error: err };
      }
      const cancelled = Boolean(answer && answer.cancelled);
      const load = this._loads.get(id);
      if (cancelled && load && !load.settled) {
        this._closeLoadStream(load);
        load.mode = 'detached';
        // The engine stops at its next step; settle even if the final event never reaches us.
        this._loadTimer(load, () => {
          if (load.settled) return;
          const lastKnown = this.lastEvent[id];
          if (lastKnown && LOAD_TERMINAL_STAGES.has(lastKnown.stage) && lastKnown.seq > load.baseSeq) {
            this._finishLoad(load, lastKnown);
          } else {
            this._finishLoad(load, {
              model: id,
              seq: lastKnown ? lastKnown.seq : 0,
              stage: 'cancelled',
              pct: lastKnown ? lastKnown.pct : 0,
              message: 'Loading cancelled',
              op: 'load',
              error: { kind: 'cancelled', message: 'Loading cancelled', detail: [] },
              state: 'cancelled',
            });
          }
        }, CANCEL_SETTLE_MS);
        this._maybePoll();
      } else if (!cancelled) {
        this._endCancelling(id);
        console.info(`[llm] nothing to cancel for ${id}`);
      }
      return { cancelled };
    }

    /** Undoes cancelLoading()'s "Cancelling…" when there was nothing to cancel or it failed. */
    _endCancelling(modelId) {
      const card = this.getCard(modelId);
      if (!card) return;
      delete card.dataset.cancelling;
      if (card.getAttribute('aria-busy') === 'true') {
        const last = this.lastEvent[modelId];
        if (last && stateForStage(last.stage) === 'loading') this.updateProgress(modelId, last.stage, last.pct, last.message, last);
        else {
          const cancel = card.querySelector('.model-actions button[data-action="cancel"]');
          if (cancel) cancel.removeAttribute('aria-disabled');
          card.querySelector('.spinner-message').textContent = 'Connecting…';
        }
      } else {
        this._renderFromState(modelId);
      }
    }

    /**
     * Unloads a model. Resolves with the final `unloaded` event (or the server's answer when it
     * had nothing to unload); rejects with an ApiError / network Error (toast shown).
     */
    async unloadModel(modelId) {
      const id = String(modelId);
      const last = this.lastEvent[id];
      const baseSeq = last ? last.seq : 0;
      this._pending.add(id);
      if (!last || last.stage !== 'unloading') this.updateProgress(id, 'unloading', 0, 'Unloading…', { op: 'unload' });
      const waiter = this._waitFor(id, (event) => event.seq > baseSeq && event.stage === 'unloaded', UNLOAD_WAIT_MS);
      try {
        const answer = await this._request('POST', '/api/llm/unload', { body: { model: id } });
        if (!answer || !answer.unloading) {
          waiter.cancel();
          this._renderFromState(id);
          this.showToast(`${this._name(id)} is not loaded`, 'info');
          return answer || { unloading: false };
        }
        this._maybePoll();
        try {
          return await waiter.promise;
        } catch (err) {
          if (isAbort(err)) throw err;
          console.warn(`[llm] no "unloaded" event for ${id} yet:`, err.message);
          this._renderFromState(id);
          return answer;
        }
      } catch (err) {
        waiter.cancel();
        this._renderFromState(id);
        if (!isAbort(err)) this.showToast(err.message, 'error', { title: `Could not unload ${this._name(id)}` });
        throw err;
      } finally {
        this._pending.delete(id);
      }
    }

    /**
     * GET /api/llm/models: stores the models, renders their cards into the grid (when the page
     * has one: options.grid, default #model-grid) and applies each model's last event.
     * Dispatches `llm:models` on the container. Resolves with the server's answer
     * ({models, hardware}); rejects with an ApiError / network Error.
     */
    async fetchModels() {
      const data = await this._request('GET', '/api/llm/models');
      const models = data && Array.isArray(data.models) ? data.models.filter((m) => m && m.id) : [];
      this.models = {};
      for (const model of models) this.models[model.id] = model;
      this.hardware = (data && data.hardware) || null;
      const grid = this._grid();
      if (grid) this.renderModels(models, grid);
      for (const model of models) {
        const event = model.last_event ? normalizeEvent(model.last_event, model.id) : null;
        if (event) this._applyEvent(event, { source: 'models', live: false });
      }
      this._dispatch('llm:models', { models, hardware: this.hardware });
      this._maybePoll();
      return data;
    }

    /** GET /api/llm/status: applies every model's last event. Resolves with {models: {...}}. */
    async fetchStatus() {
      const data = await this._request('GET', '/api/llm/status', { retries: 1 });
      this._applyStatus(data, true);
      return data;
    }

    // -- public: live updates ----------------------------------------------------------------

    /**
     * Subscribes to /api/llm/events (every model's events, for every viewer): the snapshot and
     * each progress event are applied to the cards. Reconnects with exponential backoff
     * (0.5 s, 1 s, 2 s, … 15 s; reset after a message). With SSE off, the page polls
     * /api/llm/status while something is busy instead. Returns the EventSource or null.
     */
    subscribeToEvents() {
      this._wantEvents = true;
      if (!this.sseEnabled || typeof root.EventSource !== 'function') {
        this._setConnection('disabled');
        this._maybePoll();
        return null;
      }
      if (this._events) return this._events;
      this._connectEvents();
      return this._events;
    }

    /** Turns SSE on or off (off: loads use POST /api/llm/load, the page polls status). */
    setSseEnabled(enabled) {
      const value = Boolean(enabled);
      const changed = value !== this.sseEnabled;
      this.sseEnabled = value;
      if (!value) {
        this._closeEvents();
        if (this._wantEvents) this._setConnection('disabled');
        this._maybePoll();
      } else if (this._wantEvents && !this._events) {
        this._eventsBackoff = BACKOFF_START_MS;
        this._eventsFailures = 0;
        this._connectEvents();
      }
      if (changed) this._dispatch('llm:sse', { enabled: value });
      return value;
    }

    /**
     * Closes every EventSource, stops every timer (reconnects, polling, toasts: visible toasts
     * are removed) and aborts requests in flight; pending loads reject with an AbortError. The
     * manager stays usable: call subscribeToEvents() again to resume.
     */
    cleanup() {
      this._wantEvents = false;
      this._closeEvents();
      for (const load of this._loads.values()) {
        this._closeLoadStream(load);
        if (!load.settled) {
          load.settled = true;
          load.reject(abortError());
        }
      }
      this._loads.clear();
      for (const waiter of this._waiters) waiter.reject(abortError());
      this._waiters.clear();
      for (const timer of this._timers) clearTimeout(timer);
      this._timers.clear();
      for (const record of this._toasts.values()) {
        clearTimeout(record.timer);
        record.el.remove();
      }
      this._toasts.clear();
      this._abort.abort();
      this._abort = new AbortController();
      this._poll = null;
      this._eventsTimer = null;
      this._refreshTimer = null;
      this._pending.clear();
      this.currentModel = null;
      this._setConnection('idle');
    }

    /** cleanup(), and the manager lets go of the page (event listeners removed). */
    destroy() {
      this.cleanup();
      this.container.removeEventListener('click', this._onClick);
      this._doc().removeEventListener('keydown', this._onKeyDown);
      if (root.removeEventListener) root.removeEventListener('online', this._onOnline);
    }

    /**
     * Applies one event (as /api/llm/events sends it) to the page, as if it came from the
     * network: the way for a host (e.g. the Qt app through runJavaScript) to push events in.
     * Returns true when the event was newer than the card's and was applied.
     */
    applyEvent(event) {
      const checked = typeof event === 'string' ? this._parse(event) : normalizeEvent(event);
      if (!checked) {
        if (typeof event !== 'string') this._unparsable(event, 'applyEvent');
        return false;
      }
      this.stats.events += 1;
      return this._applyEvent(checked, { source: 'external', live: true });
    }

    // -- public: rendering -------------------------------------------------------------------

    /**
     * Renders a card's progress: bar width and aria-valuenow, stage label, percentage, detail
     * line (bytes/rate/ETA from `extra`), indeterminate class for stages without a fraction,
     * spinner overlay while busy, and the buttons the state allows. `extra` takes the event's
     * other fields (bytes_done, bytes_total, rate_bps, eta_s, error, memory_bytes, op) and two
     * overrides: `detail` (the detail line's text) and `indeterminate` (boolean).
     * Returns false when the page has no card for the model.
     */
    updateProgress(modelId, stage, pct, message, extra = {}) {
      const card = this.getCard(modelId);
      if (!card) return false;
      const event = { ...(extra || {}), model: String(modelId), stage: String(stage), pct: clampPct(pct), message: message || '' };
      const view = cardView(event, card.dataset.modelName || String(modelId));
      if (extra && extra.indeterminate !== undefined) {
        view.indeterminate = Boolean(extra.indeterminate);
        view.progressText = view.indeterminate ? view.stageLabel : `${view.stageLabel} · ${view.pct}%`;
      }
      if (extra && typeof extra.detail === 'string') view.detail = extra.detail;
      this._render(card, view, event.pct);
      return true;
    }

    /**
     * Builds the card for one model of /api/llm/models (not inserted; renderModels() does that).
     *
     *   <article class="model-card" data-model-id="ID" data-state="unloaded|loading|loaded|
     *            failed|cancelled|unloading" data-stage="STAGE" aria-busy="true|false">
     *     <div class="model-card-info">
     *       <header class="model-card-header">
     *         <h3 class="model-name">NAME</h3>
     *         <span class="state-chip">Loading</span>            (hidden when not loaded)
     *         <span class="fit-badge" data-verdict="gpu|partial|cpu|no" title="SUMMARY">…</span>
     *       </header>
     *       <p class="model-facts">arch · size · quant · ctx · file size</p>
     *       <p class="model-path">PATH</p>
     *       <div class="model-spinner" hidden><div class="spinner-pill"><span class="spinner">
     *            </span><span class="spinner-message">MESSAGE</span></div></div>
     *     </div>
     *     <div class="model-progress">                         (hidden unless busy or loaded)
     *       <div class="progress-head"><span class="progress-stage">Loading weights</span>
     *            <span class="progress-pct">46%</span></div>
     *       <div class="progress-bar [indeterminate]" role="progressbar" aria-valuemin="0"
     *            aria-valuemax="100" aria-valuenow="46" aria-valuetext="…" data-pct="46.3"
     *            aria-label="NAME load progress"><div class="progress-fill"></div></div>
     *     </div>
     *     <p class="progress-detail">203 MB of 418 MB · 1.9 GB/s · 3 s left</p>
     *     <div class="model-actions"><button data-action="load|retry|cancel|unload">…</button></div>
     *   </article>
     */
    createModelCard(model) {
      const doc = this._doc();
      const id = String(model.id);
      const make = (tag, className, attrs = {}) => {
        const node = doc.createElement(tag);
        if (className) node.className = className;
        for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
        return node;
      };
      cardCounter += 1;
      const titleId = `model-card-title-${cardCounter}`;
      const card = make('article', 'model-card', {
        'data-model-id': id,
        'data-state': 'unloaded',
        'data-stage': 'unloaded',
        'aria-labelledby': titleId,
        'aria-busy': 'false',
        tabindex: '-1',
      });

      const info = make('div', 'model-card-info');
      const header = make('header', 'model-card-header');
      const title = make('h3', 'model-name', { id: titleId });
      const chip = make('span', 'state-chip');
      chip.hidden = true;
      const badge = make('span', 'fit-badge');
      badge.hidden = true;
      header.append(title, chip, badge);
      const facts = make('p', 'model-facts');
      const path = make('p', 'model-path');
      const spinner = make('div', 'model-spinner', { 'aria-hidden': 'true' });
      spinner.hidden = true;
      const pill = make('div', 'spinner-pill');
      pill.append(make('span', 'spinner'), make('span', 'spinner-message'));
      spinner.append(pill);
      info.append(header, facts, path, spinner);

      const progress = make('div', 'model-progress');
      progress.hidden = true;
      const head = make('div', 'progress-head');
      head.append(make('span', 'progress-stage'), make('span', 'progress-pct'));
      const bar = make('div', 'progress-bar', {
        role: 'progressbar',
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': '0',
        'data-pct': '0',
      });
      const fill = make('div', 'progress-fill');
      fill.style.width = '0%';
      bar.append(fill);
      progress.append(head, bar);

      const detail = make('p', 'progress-detail');
      detail.hidden = true;

      const actions = make('div', 'model-actions');
      for (const [action, text, primary] of [
        ['load', 'Load', true],
        ['retry', 'Retry', true],
        ['cancel', 'Cancel', false],
        ['unload', 'Unload', false],
      ]) {
        const button = make('button', primary ? 'btn btn-primary' : 'btn', { type: 'button', 'data-action': action });
        button.textContent = text;
        button.hidden = action !== 'load';
        actions.append(button);
      }

      card.append(info, progress, detail, actions);
      this._fillCardInfo(card, model);
      const last = this.lastEvent[id];
      const view = cardView(last || null, card.dataset.modelName);
      this._render(card, view, last ? last.pct : 0, true);
      return card;
    }

    /**
     * Puts a card for each model into `grid` in the given order, reusing the cards already there
     * (so focus and progress survive a refresh) and removing those of models that are gone.
     */
    renderModels(models, grid = this._grid()) {
      if (!grid) return [];
      const wanted = new Set(models.map((m) => String(m.id)));
      for (const card of Array.from(grid.querySelectorAll('.model-card'))) {
        if (!wanted.has(card.dataset.modelId)) card.remove();
      }
      const cards = [];
      models.forEach((model, index) => {
        let card = this.getCard(model.id, grid);
        if (card) this._fillCardInfo(card, model);
        else card = this.createModelCard(model);
        const at = grid.children[index];
        if (at !== card) grid.insertBefore(card, at || null);
        cards.push(card);
      });
      return cards;
    }

    /** The card element of a model, or null. */
    getCard(modelId, scope = this.container) {
      const id = String(modelId);
      for (const card of scope.querySelectorAll('.model-card[data-model-id]')) {
        if (card.dataset.modelId === id) return card;
      }
      return null;
    }

    /** What a card shows now, read from its DOM: {state, stage, pct, indeterminate, busy, label, detail}. */
    getProgress(modelId) {
      const card = this.getCard(modelId);
      if (!card) return null;
      const bar = card.querySelector('.progress-bar');
      return {
        state: card.dataset.state,
        stage: card.dataset.stage,
        pct: Number(bar.dataset.pct),
        indeterminate: bar.classList.contains('indeterminate'),
        busy: card.getAttribute('aria-busy') === 'true',
        label: card.querySelector('.progress-stage').textContent,
        detail: card.querySelector('.progress-detail').textContent,
      };
    }

    // -- public: toasts ----------------------------------------------------------------------

    /**
     * Shows a toast, stacked top-right in `.toast-container` (#toast-container; made when the
     * page has none; role="status", aria-live="polite"). Errors get role="alert". Dismissed
     * after 4 s (errors 8 s), paused while hovered or focused; a click or Esc dismisses it. A
     * toast with the same message as a visible one replaces it instead of adding another.
     *
     *   <div class="toast toast-TYPE" data-type="TYPE" [role="alert"]>
     *     <span class="toast-icon">svg</span>
     *     <div class="toast-body"><span class="sr-only">Error: </span>
     *       [<strong class="toast-title">TITLE</strong>]<span class="toast-message">MESSAGE</span></div>
     *     <button class="toast-close" aria-label="Dismiss notification">svg</button>
     *   </div>
     *
     * A leaving toast has the class `toast-leaving`. Visible toasts:
     * `.toast-container .toast:not(.toast-leaving)`, or manager.visibleToasts().
     *
     * @param {string} message
     * @param {'success'|'error'|'warning'|'info'} [type='info']
     * @param {{title?: string, duration?: number}} [options] duration in ms (0: until dismissed)
     * @returns {HTMLElement} the toast
     */
    showToast(message, type = 'info', options = {}) {
      const kind = TOAST_TYPES.has(type) ? type : 'info';
      const text = String(message === undefined || message === null ? '' : message);
      const title = options && options.title ? String(options.title) : '';
      const duration =
        options && Number.isFinite(options.duration)
          ? options.duration
          : kind === 'error'
            ? TOAST_ERROR_DURATION_MS
            : TOAST_DURATION_MS;
      const container = this._ensureToastContainer();
      const existing = this._toasts.get(text);
      if (existing && !existing.leaving) {
        this._fillToast(existing, kind, text, title);
        existing.duration = duration;
        existing.remaining = duration;
        existing.el.classList.remove('toast-bump');
        void existing.el.offsetWidth; // restart the "updated" animation
        existing.el.classList.add('toast-bump');
        this._startToastTimer(existing);
        return existing.el;
      }

      const doc = this._doc();
      const el = doc.createElement('div');
      const record = { el, message: text, type: kind, duration, remaining: duration, timer: null, started: 0, hover: false, focus: false, leaving: false };
      el.innerHTML =
        '<span class="toast-icon"></span><div class="toast-body"><span class="sr-only toast-kind"></span>' +
        '<strong class="toast-title"></strong><span class="toast-message"></span></div>' +
        `<button type="button" class="toast-close" aria-label="Dismiss notification">${ICONS.close}</button>`;
      this._fillToast(record, kind, text, title);

      el.addEventListener('click', () => this._dismissToast(record));
      el.addEventListener('keydown', (event) => {
        if (event.key === 'Escape') {
          event.stopPropagation();
          this._dismissToast(record);
        }
      });
      el.addEventListener('mouseenter', () => {
        record.hover = true;
        this._pauseToast(record);
      });
      el.addEventListener('mouseleave', () => {
        record.hover = false;
        this._resumeToast(record);
      });
      el.addEventListener('focusin', () => {
        record.focus = true;
        this._pauseToast(record);
      });
      el.addEventListener('focusout', (event) => {
        if (el.contains(event.relatedTarget)) return;
        record.focus = false;
        this._resumeToast(record);
      });

      this._toasts.set(text, record);
      container.append(el);
      const visible = Array.from(this._toasts.values()).filter((r) => !r.leaving);
      for (const old of visible.slice(0, Math.max(0, visible.length - TOAST_LIMIT))) this._dismissToast(old, true);
      this._startToastTimer(record);
      return el;
    }

    /** The toasts on screen now, oldest first: [{type, message, title, element}]. */
    visibleToasts() {
      return Array.from(this._toasts.values())
        .filter((r) => !r.leaving)
        .map((r) => ({ type: r.type, message: r.message, title: r.el.querySelector('.toast-title').textContent, element: r.el }));
    }

    /** Dismisses every visible toast. */
    dismissToasts() {
      for (const record of Array.from(this._toasts.values())) this._dismissToast(record);
    }

    // -- internals: load stream and fallback ------------------------------------------------

    _openLoadStream(load) {
      const url = this._url('/api/llm/load_stream', { model: load.id, ...load.options, token: this.token });
      let es;
      try {
        es = new root.EventSource(url);
      } catch (err) {
        this._fallback(load, `cannot open the stream (${err.message})`);
        return;
      }
      load.es = es;
      load.mode = 'sse';
      const onMessage = (message) => this._onLoadMessage(load, es, message);
      es.addEventListener('progress', onMessage);
      es.onmessage = onMessage; // a server that sends unnamed events
      es.onopen = () => {
        if (load.es === es) load.errors = 0;
      };
      es.onerror = () => this._onLoadError(load, es);
      this._loadTimer(load, () => {
        if (!load.settled && !load.gotEvent && load.es === es) this._fallback(load, 'no event within 20 s');
      }, FIRST_EVENT_TIMEOUT_MS);
    }

    _onLoadMessage(load, es, message) {
      if (load.settled || load.es !== es) return;
      const event = this._parse(message.data, load.id);
      if (!event || event.model !== load.id) return;
      this.stats.events += 1;
      load.gotEvent = true;
      load.errors = 0;
      this._applyEvent(event, { source: 'load_stream', live: true });
      if (LOAD_TERMINAL_STAGES.has(event.stage)) this._finishLoad(load, event);
    }

    _onLoadError(load, es) {
      if (load.settled || load.es !== es) return;
      if (!load.gotEvent) {
        this._fallback(load, 'the stream failed before its first event');
      } else if (es.readyState === 2 /* CLOSED */) {
        this._fallback(load, 'the stream closed before the load ended');
      } else {
        // The browser reconnects by itself and sends Last-Event-ID; the server replays.
        load.errors += 1;
        this.stats.reconnects += 1;
        if (load.errors > STREAM_ERROR_LIMIT) {
          this._fallback(load, `the stream failed ${load.errors} times in a row`);
        } else {
          console.info(`[llm] load stream for ${load.id} interrupted; the browser is reconnecting`);
        }
      }
    }

    _fallback(load, reason) {
      this._closeLoadStream(load);
      this.stats.fallbacks += 1;
      this._loadWithFetch(load, reason);
    }

    async _loadWithFetch(load, reason) {
      const id = load.id;
      load.mode = 'fetch';
      console.info(`[llm] ${reason}; loading ${id} with POST /api/llm/load`);
      this._pending.add(id);
      this._maybePoll();
      const last = this.lastEvent[id];
      if (!last || TERMINAL_STAGES.has(last.stage)) {
        this.updateProgress(id, 'connecting', 0, 'Loading…');
      }
      try {
        const answer = await this._request('POST', '/api/llm/load', { body: { model: id, ...load.options } });
        if (load.settled) return;
        const event = normalizeEvent(answer, id);
        if (!event) {
          this._unparsable(answer, 'POST /api/llm/load');
          throw new Error('The app answered the load with something that is not an event');
        }
        this.stats.events += 1;
        this._applyEvent(event, { source: 'load', live: true });
        this._finishLoad(load, event);
      } catch (err) {
        if (load.settled) return;
        this._failLoad(load, err);
      } finally {
        this._pending.delete(id);
      }
    }

    _finishLoad(load, event) {
      if (load.settled) return;
      load.settled = true;
      this._closeLoadStream(load);
      for (const timer of load.timers) this._clearTimer(timer);
      load.timers.clear();
      if (this._loads.get(load.id) === load) this._loads.delete(load.id);
      const card = this.getCard(load.id);
      if (card) delete card.dataset.cancelling;
      // The card may still show this page's own "Connecting…" when the final event was a replay
      // of one it had already applied: show the newest event it knows.
      this._renderFromState(load.id);
      if (this.currentModel === load.id) this.currentModel = this._currentLoadingModel();
      if (event.stage === 'complete') load.resolve(event);
      else load.reject(new LoadError(event));
    }

    _failLoad(load, err) {
      if (load.settled) return;
      load.settled = true;
      this._closeLoadStream(load);
      for (const timer of load.timers) this._clearTimer(timer);
      load.timers.clear();
      if (this._loads.get(load.id) === load) this._loads.delete(load.id);
      if (this.currentModel === load.id) this.currentModel = this._currentLoadingModel();
      const card = this.getCard(load.id);
      if (card) delete card.dataset.cancelling;
      this._renderFromState(load.id);
      if (!isAbort(err)) {
        console.warn(`[llm] loading ${load.id} failed:`, err.message);
        this.showToast(err.message, 'error', { title: `${this._name(load.id)} could not be loaded` });
      }
      err.event = err.event || null;
      load.reject(err);
    }

    _closeLoadStream(load) {
      if (load.es) {
        load.es.onerror = null;
        load.es.onmessage = null;
        load.es.onopen = null;
        load.es.close();
        load.es = null;
      }
    }

    _loadTimer(load, fn, ms) {
      const timer = this._setTimer(() => {
        load.timers.delete(timer);
        fn();
      }, ms);
      load.timers.add(timer);
    }

    _currentLoadingModel() {
      const ids = Array.from(this._loads.keys());
      if (ids.length) return ids[ids.length - 1];
      for (const [id, event] of Object.entries(this.lastEvent)) {
        if (event.state === 'loading') return id;
      }
      for (const card of this.container.querySelectorAll('.model-card[data-state="loading"]')) {
        return card.dataset.modelId;
      }
      return null;
    }

    // -- internals: /api/llm/events ----------------------------------------------------------

    _connectEvents() {
      if (this._eventsTimer) {
        this._clearTimer(this._eventsTimer);
        this._eventsTimer = null;
      }
      this._closeEvents();
      let es;
      try {
        es = new root.EventSource(this._url('/api/llm/events', { token: this.token }));
      } catch (err) {
        console.warn('[llm] cannot open the event stream:', err.message);
        this._eventsLost(null);
        return;
      }
      this._events = es;
      this._eventsLive = false;
      this._setConnection('reconnecting');
      es.onopen = () => {
        if (this._events !== es) return;
        this._eventsLive = true;
        this._setConnection('live');
      };
      es.addEventListener('snapshot', (message) => {
        if (this._events !== es) return;
        this._eventsOk();
        let data;
        try {
          data = JSON.parse(message.data);
        } catch (_err) {
          this._unparsable(message.data, 'snapshot');
          return;
        }
        if (!data || typeof data.models !== 'object' || data.models === null) {
          this._unparsable(message.data, 'snapshot');
          return;
        }
        this._applySnapshot(data);
      });
      const onProgress = (message) => {
        if (this._events !== es) return;
        this._eventsOk();
        const event = this._parse(message.data);
        if (!event) return;
        this.stats.events += 1;
        this._applyEvent(event, { source: 'events', live: true });
      };
      es.addEventListener('progress', onProgress);
      es.onmessage = onProgress;
      es.onerror = () => {
        if (this._events !== es) return;
        this._eventsLost(es);
      };
    }

    _eventsOk() {
      this._eventsBackoff = BACKOFF_START_MS;
      this._eventsFailures = 0;
      this._eventsLive = true;
      if (this.connection !== 'live') this._setConnection('live');
    }

    _eventsLost(es) {
      if (es) es.close();
      this._events = null;
      this._eventsLive = false;
      if (!this._wantEvents || !this.sseEnabled) return;
      const delay = this._eventsBackoff;
      this._eventsBackoff = Math.min(this._eventsBackoff * 2, BACKOFF_MAX_MS);
      this._eventsFailures += 1;
      this.stats.reconnects += 1;
      const offline = this._eventsFailures >= 3 || (root.navigator && root.navigator.onLine === false);
      this._setConnection(offline ? 'offline' : 'reconnecting');
      console.info(`[llm] event stream lost; reconnecting in ${delay / 1000} s`);
      this._eventsTimer = this._setTimer(() => {
        this._eventsTimer = null;
        if (this._wantEvents && this.sseEnabled) this._connectEvents();
      }, delay);
      this._maybePoll();
    }

    _closeEvents() {
      if (this._eventsTimer) {
        this._clearTimer(this._eventsTimer);
        this._eventsTimer = null;
      }
      if (this._events) {
        const es = this._events;
        this._events = null;
        es.onerror = null;
        es.onopen = null;
        es.onmessage = null;
        es.close();
      }
      this._eventsLive = false;
    }

    /**
     * The first message of /api/llm/events: every model's last event. A model the page knows but
     * the snapshot lacks has no history in this engine (the app restarted): it is not loaded.
     */
    _applySnapshot(data) {
      const reconnect = this._eventsSnapshots > 0;
      this._eventsSnapshots += 1;
      this._applyStatus(data, false);
      for (const id of Object.keys(this.lastEvent)) {
        if (Object.prototype.hasOwnProperty.call(data.models, id)) continue;
        delete this.lastEvent[id];
        const card = this.getCard(id);
        if (card) this._render(card, cardView(null, card.dataset.modelName), 0);
      }
      if (reconnect && this._grid() && Object.keys(this.models).length) this._scheduleRefresh();
    }

    _applyStatus(data, live) {
      const models = data && data.models && typeof data.models === 'object' ? data.models : {};
      for (const [id, raw] of Object.entries(models)) {
        const event = normalizeEvent(raw, id);
        if (!event) {
          this._unparsable(raw, 'status');
          continue;
        }
        this._applyEvent(event, { source: live ? 'status' : 'snapshot', live });
      }
    }

    // -- internals: polling when no live stream carries a model's events --------------------

    _needsPoll() {
      if (this._eventsLive) return false;
      if (this._pending.size) return true;
      for (const load of this._loads.values()) if (!load.es) return true;
      for (const event of Object.values(this.lastEvent)) {
        if (!TERMINAL_STAGES.has(event.stage)) {
          const load = this._loads.get(event.model);
          if (!load || !load.es) return true;
        }
      }
      return false;
    }

    _maybePoll() {
      if (this._poll || !this._needsPoll()) return;
      const poll = { failures: 0 };
      this._poll = poll;
      const tick = async () => {
        if (this._poll !== poll) return;
        if (!this._needsPoll()) {
          this._poll = null;
          return;
        }
        try {
          const data = await this._request('GET', '/api/llm/status', { retries: 1 });
          if (this._poll !== poll) return;
          poll.failures = 0;
          this._applyStatus(data, true);
        } catch (err) {
          if (isAbort(err) || this._poll !== poll) return;
          poll.failures += 1;
          if (poll.failures === 1) console.warn('[llm] status poll failed:', err.message);
        }
        if (this._poll !== poll) return;
        const delay = poll.failures ? Math.min(POLL_INTERVAL_MS * 2 ** poll.failures, BACKOFF_MAX_MS) : POLL_INTERVAL_MS;
        this._setTimer(tick, delay);
      };
      this._setTimer(tick, 300);
    }

    // -- internals: applying events ----------------------------------------------------------

    /** Parses one SSE data line; counts and ignores what is not an event. */
    _parse(text, fallbackModel) {
      let data;
      try {
        data = JSON.parse(text);
      } catch (_err) {
        this._unparsable(text, 'SSE data');
        return null;
      }
      const event = normalizeEvent(data, fallbackModel);
      if (!event) this._unparsable(text, 'SSE data');
      return event;
    }

    _unparsable(data, where) {
      this.stats.unparsable += 1;
      let sample;
      try {
        sample = typeof data === 'string' ? data : JSON.stringify(data);
      } catch (_err) {
        sample = String(data);
      }
      console.warn(`[llm] ignored ${where} that is not a progress event:`, String(sample).slice(0, 200));
    }

    _applyEvent(event, { source, live }) {
      const previous = this.lastEvent[event.model];
      const applied = isNewer(event, previous);
      if (applied) {
        this.lastEvent[event.model] = event;
        this.updateProgress(event.model, event.stage, event.pct, event.message, event);
        this.progressLog.push({ model: event.model, stage: event.stage, pct: event.pct, seq: event.seq });
        if (this.progressLog.length > PROGRESS_LOG_LIMIT) this.progressLog.splice(0, this.progressLog.length - PROGRESS_LOG_LIMIT);
        const transition = previous && !TERMINAL_STAGES.has(previous.stage);
        if (TERMINAL_STAGES.has(event.stage) && (live || transition)) this._announceOutcome(event);
        if (this._grid() && Object.keys(this.models).length && !this.models[event.model]) this._scheduleRefresh();
      }
      // Whoever brings a load's last event first (its stream, /api/llm/events, a status poll or
      // the POST answer) settles loadModelWithSSE's promise; the other copies are then ignored.
      const load = this._loads.get(event.model);
      if (load && !load.settled && LOAD_TERMINAL_STAGES.has(event.stage) && (event.seq > load.baseSeq || (!event.seq && !event.ts))) {
        this._finishLoad(load, event);
      }
      for (const waiter of Array.from(this._waiters)) {
        if (waiter.model === event.model && waiter.test(event)) waiter.resolve(event);
      }
      this._dispatch('llm:event', { event, applied, source });
      if (applied && TERMINAL_STAGES.has(event.stage)) this._maybePoll();
      return applied;
    }

    _announceOutcome(event) {
      const name = this._name(event.model);
      switch (event.stage) {
        case 'complete':
          this.showToast(`${name} is ready`, 'success');
          break;
        case 'failed':
          this.showToast((event.error && event.error.message) || event.message || 'Loading failed', 'error', {
            title: event.op === 'unload' ? name : `${name} failed to load`,
          });
          break;
        case 'cancelled':
          this.showToast(`Loading ${name} cancelled`, 'info');
          break;
        case 'unloaded':
          this.showToast(`${name}: ${event.message || 'unloaded'}`, 'info');
          break;
        default:
          break;
      }
    }

    _waitFor(model, test, timeoutMs) {
      const waiter = { model, test };
      waiter.promise = new Promise((resolve, reject) => {
        waiter.resolve = (value) => {
          this._waiters.delete(waiter);
          this._clearTimer(waiter.timer);
          resolve(value);
        };
        waiter.reject = (err) => {
          this._waiters.delete(waiter);
          this._clearTimer(waiter.timer);
          reject(err);
        };
      });
      waiter.promise.catch(noop);
      waiter.cancel = () => waiter.reject(abortError('cancelled'));
      waiter.timer = this._setTimer(() => waiter.reject(new Error(`no final event within ${timeoutMs / 1000} s`)), timeoutMs);
      this._waiters.add(waiter);
      return waiter;
    }

    /**
     * Re-renders a card from its last network event (after a local, optimistic change). With
     * `busyMessage`, a busy card keeps its progress and only its spinner message changes.
     */
    _renderFromState(modelId, busyMessage) {
      const card = this.getCard(modelId);
      if (!card) return;
      if (busyMessage && card.getAttribute('aria-busy') === 'true') {
        card.querySelector('.spinner-message').textContent = busyMessage;
        const cancel = card.querySelector('.model-actions button[data-action="cancel"]');
        if (cancel) cancel.setAttribute('aria-disabled', String(card.dataset.cancelling === 'true'));
        return;
      }
      const last = this.lastEvent[modelId];
      if (last) this.updateProgress(modelId, last.stage, last.pct, last.message, last);
      else this._render(card, cardView(null, card.dataset.modelName), 0);
    }

    // -- internals: DOM ----------------------------------------------------------------------

    _fillCardInfo(card, model) {
      const name = model.display_name || model.id;
      card.dataset.modelName = name;
      card.querySelector('.model-name').textContent = name;
      const facts = card.querySelector('.model-facts');
      if (model.error) {
        facts.textContent = `Unreadable: ${model.error}`;
        facts.classList.add('has-error');
      } else {
        facts.textContent = LLMManager.factsText(model);
        facts.classList.remove('has-error');
      }
      const path = card.querySelector('.model-path');
      path.textContent = model.path || '';
      path.title = model.path || '';
      path.hidden = !model.path;
      const badge = card.querySelector('.fit-badge');
      const fit = model.fit;
      if (fit && fit.verdict) {
        let text = FIT_LABELS[fit.verdict] || String(fit.verdict);
        if (fit.verdict === 'partial' && fit.total_layers) text = `Partial offload: ${fit.gpu_layers}/${fit.total_layers} layers`;
        badge.textContent = text;
        badge.dataset.verdict = fit.verdict;
        badge.title = fit.summary || '';
        badge.setAttribute('aria-label', `Memory fit: ${text}${fit.summary ? `. ${fit.summary}` : ''}`);
        badge.hidden = false;
      } else {
        badge.hidden = true;
      }
      const bar = card.querySelector('.progress-bar');
      bar.setAttribute('aria-label', `${name} load progress`);
      const labels = { load: 'Load', retry: 'Retry loading', cancel: 'Cancel loading', unload: 'Unload' };
      for (const button of card.querySelectorAll('.model-actions button[data-action]')) {
        const label = labels[button.dataset.action];
        if (label) button.setAttribute('aria-label', `${label} ${name}`);
      }
    }

    _render(card, view, rawPct, initial = false) {
      const doc = this._doc();
      const hadFocus = card.contains(doc.activeElement);
      const previousState = card.dataset.state;
      const cancelling = card.dataset.cancelling === 'true' && view.state === 'loading';

      card.dataset.state = view.state;
      card.dataset.stage = view.stage;
      for (const state of Object.keys(STATE_LABELS)) card.classList.toggle(`is-${state}`, state === view.state);
      card.classList.toggle('is-busy', view.busy);
      card.setAttribute('aria-busy', String(view.busy));

      const chip = card.querySelector('.state-chip');
      chip.hidden = view.state === 'unloaded';
      chip.textContent = STATE_LABELS[view.state] || view.state;
      chip.dataset.state = view.state;

      const progress = card.querySelector('.model-progress');
      progress.hidden = !(view.busy || view.state === 'loaded');
      const bar = card.querySelector('.progress-bar');
      const fill = bar.querySelector('.progress-fill');
      fill.style.width = `${view.pct}%`;
      bar.classList.toggle('indeterminate', view.indeterminate);
      bar.setAttribute('aria-valuenow', String(view.pct));
      bar.setAttribute('aria-valuetext', view.indeterminate ? `${view.stageLabel}, ${view.pct} percent` : view.progressText);
      bar.dataset.pct = String(Math.round(clampPct(rawPct) * 100) / 100);
      card.querySelector('.progress-stage').textContent = view.stageLabel;
      const pctText = card.querySelector('.progress-pct');
      pctText.textContent = view.indeterminate ? '' : `${view.pct}%`;
      pctText.hidden = view.indeterminate;

      const detail = card.querySelector('.progress-detail');
      detail.textContent = view.detail;
      detail.hidden = !view.detail;
      detail.dataset.kind = view.state === 'failed' ? 'error' : view.state === 'cancelled' ? 'warning' : '';

      const spinner = card.querySelector('.model-spinner');
      spinner.hidden = !view.busy;
      spinner.querySelector('.spinner-message').textContent = cancelling ? 'Cancelling…' : view.busyMessage || view.stageLabel;

      const buttons = {};
      for (const button of card.querySelectorAll('.model-actions button[data-action]')) buttons[button.dataset.action] = button;
      const show = { load: view.canLoad, retry: view.canRetry, cancel: view.canCancel, unload: view.canUnload };
      for (const [action, visible] of Object.entries(show)) {
        const button = buttons[action];
        if (!button) continue;
        button.hidden = !visible;
        // aria-disabled, not disabled: a focused Cancel keeps the focus while the cancel runs.
        if (action === 'cancel' && cancelling) button.setAttribute('aria-disabled', 'true');
        else button.removeAttribute('aria-disabled');
      }
      if (view.state !== 'loading') delete card.dataset.cancelling;

      if (!initial && previousState !== view.state) this._announce(view.announcement);
      // A button that disappears takes the focus with it: give it to the card's next action.
      const active = doc.activeElement;
      if (hadFocus && (!card.contains(active) || (active === card && !view.busy))) {
        const next = card.querySelector('.model-actions button:not([hidden]):not([aria-disabled="true"])');
        (next || card).focus({ preventScroll: true });
      }
    }

    _announce(text) {
      if (!text) return;
      const doc = this._doc();
      if (!this._announcer || !this._announcer.isConnected) {
        this._announcer = doc.getElementById('llm-announcer');
        if (!this._announcer) {
          this._announcer = doc.createElement('div');
          this._announcer.id = 'llm-announcer';
          this._announcer.className = 'sr-only';
          this._announcer.setAttribute('aria-live', 'polite');
          this._announcer.setAttribute('aria-atomic', 'true');
          (doc.body || doc.documentElement).append(this._announcer);
        }
      }
      this._announcer.textContent = text;
    }

    _setConnection(state, initial = false) {
      const changed = !initial && state !== this.connection;
      this.connection = state;
      const doc = this._doc();
      for (const el of doc.querySelectorAll('[data-llm-connection], #connection-status')) {
        el.dataset.state = state;
        el.title = CONNECTION_DESCRIPTION[state] || '';
        const icon = el.querySelector('.connection-icon');
        if (icon) icon.innerHTML = ICONS[state] || ICONS.idle;
        const text = el.querySelector('.connection-text');
        if (text) text.textContent = CONNECTION_TEXT[state] || state;
      }
      if (changed) this._dispatch('llm:connection', { state });
    }

    _onClick(event) {
      const target = event.target;
      const button = target && target.closest ? target.closest('button[data-action]') : null;
      if (!button || button.disabled || button.getAttribute('aria-disabled') === 'true') return;
      const card = button.closest('.model-card');
      if (!card || !this.container.contains(card)) return;
      const id = card.dataset.modelId;
      const action = button.dataset.action;
      if (this.onAction && this.onAction(action, id, this) === true) return;
      this.runAction(action, id);
    }

    /** What a card's button does: load | retry | cancel | unload. Never rejects. */
    runAction(action, modelId) {
      switch (action) {
        case 'load':
        case 'retry':
          return this.loadModelWithSSE(modelId).catch(noop); // the toast has said it
        case 'cancel':
          return this.cancelLoading(modelId).catch(noop);
        case 'unload':
          return this.unloadModel(modelId).catch(noop);
        default:
          return Promise.resolve();
      }
    }

    _onKeyDown(event) {
      if (event.key !== 'Escape' || event.defaultPrevented) return;
      const visible = Array.from(this._toasts.values()).filter((r) => !r.leaving);
      if (!visible.length) return;
      this._dismissToast(visible[visible.length - 1]);
    }

    _ensureToastContainer() {
      if (this._toastContainer && this._toastContainer.isConnected) return this._toastContainer;
      const doc = this._doc();
      let box = doc.getElementById('toast-container') || doc.querySelector('.toast-container');
      if (!box) {
        box = doc.createElement('div');
        box.id = 'toast-container';
        (doc.body || doc.documentElement).append(box);
      }
      box.classList.add('toast-container');
      box.setAttribute('role', 'status');
      box.setAttribute('aria-live', 'polite');
      box.setAttribute('aria-relevant', 'additions text');
      this._toastContainer = box;
      return box;
    }

    _fillToast(record, kind, text, title) {
      const el = record.el;
      record.type = kind;
      el.className = `toast toast-${kind}`;
      el.dataset.type = kind;
      if (kind === 'error') el.setAttribute('role', 'alert');
      else el.removeAttribute('role');
      el.setAttribute('aria-atomic', 'true');
      el.querySelector('.toast-icon').innerHTML = ICONS[kind];
      el.querySelector('.toast-kind').textContent = `${TOAST_KIND_WORDS[kind]}: `;
      const titleEl = el.querySelector('.toast-title');
      titleEl.textContent = title;
      titleEl.hidden = !title;
      el.querySelector('.toast-message').textContent = text;
    }

    _startToastTimer(record) {
      clearTimeout(record.timer);
      this._timers.delete(record.timer);
      record.timer = null;
      if (!record.duration || record.hover || record.focus) return;
      record.started = Date.now();
      record.timer = this._setTimer(() => this._dismissToast(record), record.remaining);
    }

    _pauseToast(record) {
      if (!record.timer) return;
      this._clearTimer(record.timer);
      record.timer = null;
      record.remaining = Math.max(1000, record.remaining - (Date.now() - record.started));
    }

    _resumeToast(record) {
      if (record.leaving || record.hover || record.focus || record.timer) return;
      this._startToastTimer(record);
    }

    _dismissToast(record, immediate = false) {
      if (record.leaving) return;
      record.leaving = true;
      this._clearTimer(record.timer);
      record.timer = null;
      if (this._toasts.get(record.message) === record) this._toasts.delete(record.message);
      const el = record.el;
      const hadFocus = el.contains(this._doc().activeElement);
      el.classList.add('toast-leaving');
      el.setAttribute('aria-hidden', 'true');
      const reduce = root.matchMedia && root.matchMedia('(prefers-reduced-motion: reduce)').matches;
      if (immediate || reduce) el.remove();
      else this._setTimer(() => el.remove(), 200);
      if (hadFocus) {
        const next = this.visibleToasts().pop();
        if (next) next.element.querySelector('.toast-close').focus();
      }
    }

    // -- internals: plumbing -----------------------------------------------------------------

    async _request(method, path, { body, retries = this.retries } = {}) {
      const headers = { Accept: 'application/json' };
      if (this.token) headers.Authorization = `Bearer ${this.token}`;
      const init = { method, headers, cache: 'no-store', signal: this._abort.signal };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      const url = this._url(path);
      for (let attempt = 1; ; attempt += 1) {
        let response;
        try {
          response = await root.fetch(url, init);
        } catch (err) {
          if (isAbort(err)) throw abortError();
          if (attempt >= retries) {
            const failure = new Error('Cannot reach the llm-desktop app');
            failure.name = 'NetworkError';
            failure.kind = 'network';
            failure.cause = err;
            throw failure;
          }
          const wait = BACKOFF_START_MS * 2 ** (attempt - 1);
          console.warn(`[llm] ${method} ${path} failed (${err.message}); try ${attempt + 1} of ${retries} in ${wait / 1000} s`);
          await this._sleep(wait);
          continue;
        }
        let data = null;
        try {
          const text = await response.text();
          data = text ? JSON.parse(text) : null;
        } catch (err) {
          if (isAbort(err)) throw abortError();
          data = null;
        }
        if (response.ok) return data === null ? {} : data;
        const info = data && data.error && typeof data.error === 'object' ? data.error : {};
        let message = info.message || `The app answered ${response.status} ${response.statusText || ''}`.trim();
        if (response.status === 401 || response.status === 403) {
          message += ': open this page from llm-desktop (its link carries the token)';
        }
        const wait = retryAfterMs(response);
        const error = new ApiError(response.status, info.kind || `http_${response.status}`, message, wait === null ? null : wait / 1000);
        const transient = response.status === 429 || response.status === 502 || response.status === 503 || response.status === 504;
        if (transient && attempt < retries) {
          const delay = Math.min(wait === null ? BACKOFF_START_MS * 2 ** (attempt - 1) : wait, BACKOFF_MAX_MS);
          console.warn(`[llm] ${method} ${path}: ${response.status} ${message}; try ${attempt + 1} of ${retries} in ${delay / 1000} s`);
          await this._sleep(delay);
          continue;
        }
        throw error;
      }
    }

    _sleep(ms) {
      const signal = this._abort.signal;
      return new Promise((resolve, reject) => {
        if (signal.aborted) {
          reject(abortError());
          return;
        }
        const timer = this._setTimer(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, ms);
        const onAbort = () => {
          this._clearTimer(timer);
          reject(abortError());
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }

    _url(path, params = {}) {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(params)) {
        if (value !== undefined && value !== null && value !== '') query.append(key, String(value));
      }
      const text = query.toString();
      return `${this.baseUrl}${path}${text ? `?${text}` : ''}`;
    }

    _setTimer(fn, ms) {
      const timer = setTimeout(() => {
        this._timers.delete(timer);
        fn();
      }, ms);
      this._timers.add(timer);
      return timer;
    }

    _clearTimer(timer) {
      if (timer === null || timer === undefined) return;
      clearTimeout(timer);
      this._timers.delete(timer);
    }

    _scheduleRefresh() {
      if (this._refreshTimer) return;
      this._refreshTimer = this._setTimer(() => {
        this._refreshTimer = null;
        this.fetchModels().catch((err) => {
          if (!isAbort(err)) console.warn('[llm] refreshing the model list failed:', err.message);
        });
      }, 1500);
    }

    _dispatch(type, detail) {
      try {
        this.container.dispatchEvent(new CustomEvent(type, { detail }));
      } catch (err) {
        console.warn(`[llm] a ${type} listener failed:`, err);
      }
    }

    _doc() {
      return this.container.nodeType === 9 ? this.container : this.container.ownerDocument;
    }

    _grid() {
      if (this.gridSelector && typeof this.gridSelector === 'object') return this.gridSelector;
      return this.container.querySelector(this.gridSelector);
    }

    _name(modelId) {
      const model = this.models[modelId];
      if (model && model.display_name) return model.display_name;
      const card = this.getCard(modelId);
      return (card && card.dataset.modelName) || String(modelId);
    }

    static _resolve(target) {
      if (!target) return null;
      if (typeof target === 'string') return root.document.querySelector(target);
      return target;
    }

    static _cleanOptions(options) {
      const clean = {};
      if (!options || typeof options !== 'object') return clean;
      if (Number.isFinite(options.n_ctx)) clean.n_ctx = Math.trunc(options.n_ctx);
      if (Number.isFinite(options.gpu_layers)) clean.gpu_layers = Math.trunc(options.gpu_layers);
      if (typeof options.use_mmap === 'boolean') clean.use_mmap = options.use_mmap;
      return clean;
    }

    /** "llama · 7B · Q4_K_M · 4,096 ctx · 4.1 GB" (as the desktop card's facts line). */
    static factsText(model) {
      const facts = [
        model.architecture,
        model.size_label || null,
        model.quantization,
        model.context_length ? `${formatCount(model.context_length)} ctx` : null,
        Number.isFinite(model.file_size) ? formatBytes(model.file_size) : null,
      ];
      if (Array.isArray(model.parts) && model.parts.length > 1) facts.push(`${model.parts.length} parts`);
      if (model.source && model.source !== 'folder') {
        facts.push(SOURCE_LABELS[model.source] || model.source.charAt(0).toUpperCase() + model.source.slice(1));
      }
      return facts.filter(Boolean).join(' · ');
    }

    /** The token in the page's address: #token=… (preferred) or ?token=…; '' when none. */
    static tokenFromLocation(loc) {
      return tokenFromLocation(loc);
    }
  }

  LLMManager.STAGE_LABELS = STAGE_LABELS;
  LLMManager.INDETERMINATE_STAGES = INDETERMINATE_STAGES;
  LLMManager.TERMINAL_STAGES = TERMINAL_STAGES;
  LLMManager.ApiError = ApiError;
  LLMManager.LoadError = LoadError;
  LLMManager.cardView = cardView;
  LLMManager.stateForStage = stateForStage;
  LLMManager.format = Object.freeze({ bytes: formatBytes, rate: formatRate, eta: formatEta, detail: detailLine });

  root.LLMManager = LLMManager;
  if (typeof module === 'object' && module && module.exports) module.exports = LLMManager;
})(typeof window !== 'undefined' ? window : globalThis);
