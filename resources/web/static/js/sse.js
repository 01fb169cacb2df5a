/**
 * sse.js: the page's live connections to the local server.
 *
 * - LoadRun: one load, streamed from /api/llm/load_stream. Falls back to POST /api/llm/load
 *   (which answers when the load ends; the page polls status meanwhile) when SSE is off or
 *   missing, when the stream fails before its first event, when no event comes in time, or
 *   after `errorLimit` stream errors in a row. When the browser gives a stream up after events
 *   came, the page opens it again itself with `last_event_id`: the server replays what was
 *   missed and starts no second load.
 * - EventsFeed: /api/llm/events, every model's events for every viewer: a snapshot, then each
 *   event. On an error it reconnects after a backoff, resuming with `last_event_id` (the store's
 *   newest seq) once it has had a snapshot, so nothing is missed or doubled. A `sources` message
 *   (every card's view and the groups, when a remote engine connects, drops or lists other
 *   models, and first on a resumed stream) is handed on as it is.
 * - StatusPoller: GET /api/llm/status every second while no live stream carries the events.
 *
 * Data that is not JSON, or not an event, is ignored (and counted through `onUnparsable`).
 */

import { backoffDelay, isAbort, realTimers } from './transport.js';
import { checkEvent, parseJson } from './store.js';

export const STREAM_ERROR_LIMIT = 5;
export const FIRST_EVENT_TIMEOUT_MS = 20000;
export const POLL_INTERVAL_MS = 1000;
export const OFFLINE_AFTER_FAILURES = 3;
export const LOAD_TERMINAL = new Set(['complete', 'failed', 'cancelled']);
const CLOSED = 2;
const noop = () => {};

/** An SSE message's data as a checked event payload, or null. */
export function readPayload(text) {
  return checkEvent(parseJson(text));
}

export class LoadRun {
  /**
   * @param {object} o
   * @param {string} o.model
   * @param {object} o.options        load options (n_ctx, gpu_layers, use_mmap), as given
   * @param {number} o.baseSeq        the model's newest seq before this load: older endings
   *                                  are not this load's
   * @param {Transport} o.transport
   * @param {Function|null} o.EventSource  null: SSE off (POST at once)
   * @param {Function} o.onPayload    (payload) for every event this run receives
   * @param {Function} [o.onUnparsable], [o.onFallback(reason)], [o.onStreamError]
   */
  constructor(o) {
    this.model = o.model;
    this.options = o.options || {};
    this.baseSeq = o.baseSeq || 0;
    this.transport = o.transport;
    this.EventSource = o.EventSource || null;
    this.timers = o.timers || realTimers;
    this.onPayload = o.onPayload;
    this.onUnparsable = o.onUnparsable || noop;
    this.onFallback = o.onFallback || noop;
    this.onStreamError = o.onStreamError || noop;
    this.onModeChange = o.onModeChange || noop;
    this.errorLimit = o.errorLimit || STREAM_ERROR_LIMIT;
    this.firstEventTimeoutMs = o.firstEventTimeoutMs || FIRST_EVENT_TIMEOUT_MS;
    this.mode = 'idle'; // sse | fetch | done
    this.es = null;
    this.lastId = null;
    this.errors = 0;
    this.timer = null;
    this.settled = false;
    this.promise = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
    this.promise.catch(noop);
  }

  start(reasonForFetch = null) {
    if (reasonForFetch || !this.EventSource) this.fallback(reasonForFetch || 'no EventSource');
    else this._open();
    return this.promise;
  }

  /** A payload the page applied from any source: the run ends at its load's last event. */
  offer(payload) {
    if (this.settled || payload.model !== this.model) return;
    if (LOAD_TERMINAL.has(payload.stage) && payload.seq > this.baseSeq) this._settle(payload);
  }

  /** Stops the run; its promise rejects with `error`. */
  close(error) {
    if (this.settled) return;
    this._end();
    this._reject(error);
  }

  _setMode(mode) {
    this.mode = mode;
    this.onModeChange(this);
  }

  _open() {
    const params = { model: this.model, ...this.options, last_event_id: this.lastId };
    const url = this.transport.url('/api/llm/load_stream', params, { withToken: true });
    let es;
    try {
      es = new this.EventSource(url);
    } catch (error) {
      this.fallback(`the stream could not be opened (${error.message})`);
      return;
    }
    this.es = es;
    this._setMode('sse');
    const onMessage = (message) => this._message(es, message);
    es.addEventListener('progress', onMessage);
    es.onmessage = onMessage;
    es.onerror = () => this._error(es);
    if (this.lastId === null) {
      this._later(() => {
        if (this.es === es && this.lastId === null) this.fallback('no event in time');
      }, this.firstEventTimeoutMs);
    }
  }

  _message(es, message) {
    if (this.settled || this.es !== es) return;
    const payload = readPayload(message.data);
    if (!payload || payload.model !== this.model) {
      this.onUnparsable(message.data);
      return;
    }
    this.errors = 0;
    this.lastId = payload.seq;
    this.onPayload(payload);
    this.offer(payload);
  }

  _error(es) {
    if (this.settled || this.es !== es) return;
    this.errors += 1;
    this.onStreamError(this.errors);
    if (this.lastId === null) {
      this.fallback('the stream failed before its first event');
    } else if (this.errors >= this.errorLimit) {
      this.fallback(`the stream failed ${this.errors} times in a row`);
    } else if (es.readyState === CLOSED) {
      // The browser gave up: open it again ourselves, from the last event we have.
      this._closeStream();
      this._later(() => this._open(), backoffDelay(this.errors));
    }
    // Otherwise the browser reconnects by itself, sending Last-Event-ID.
  }

  /** POST /api/llm/load: answers when the load ends (attaching to it if it is running). */
  async fallback(reason) {
    if (this.settled || this.mode === 'fetch') return;
    this._closeStream();
    this._clearTimer();
    this._setMode('fetch');
    this.onFallback(reason);
    try {
      const answer = await this.transport.request('POST', '/api/llm/load', {
        body: { model: this.model, ...this.options },
      });
      if (this.settled) return;
      const payload = checkEvent(answer);
      if (!payload) {
        this.onUnparsable(answer);
        throw new Error('the load answer is not an event');
      }
      this.onPayload(payload);
      this._settle(payload);
    } catch (error) {
      if (!this.settled) this.close(error); // settled: another source brought the ending
    }
  }

  _settle(payload) {
    if (this.settled) return;
    this._end();
    this._resolve(payload);
  }

  _end() {
    this.settled = true;
    this._closeStream();
    this._clearTimer();
    this._setMode('done');
  }

  _closeStream() {
    if (!this.es) return;
    this.es.onerror = null;
    this.es.onmessage = null;
    this.es.close();
    this.es = null;
  }

  _later(fn, ms) {
    this._clearTimer();
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (!this.settled) fn();
    }, ms);
  }

  _clearTimer() {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}

export class EventsFeed {
  /**
   * @param {object} o
   * @param {Transport} o.transport
   * @param {Function} o.EventSource
   * @param {Function} o.lastSeq        () => the newest seq the page has (where to resume)
   * @param {Function} o.onSnapshot     (snapshot)
   * @param {Function} o.onPayload      (payload)
   * @param {Function} [o.onSources]    ({views, summary, sources}): a `sources` message
   * @param {Function} o.onState        (state): connecting | live | reconnecting | offline
   * @param {Function} [o.onUnparsable], [o.onReconnect]
   */
  constructor(o) {
    this.transport = o.transport;
    this.EventSource = o.EventSource;
    this.timers = o.timers || realTimers;
    this.lastSeq = o.lastSeq;
    this.onSnapshot = o.onSnapshot;
    this.onPayload = o.onPayload;
    this.onSources = o.onSources || noop;
    this.onState = o.onState || noop;
    this.onUnparsable = o.onUnparsable || noop;
    this.onReconnect = o.onReconnect || noop;
    this.es = null;
    this.timer = null;
    this.failures = 0;
    this.synced = false; // a snapshot came: later connections resume from lastSeq()
    this.state = 'idle';
    this.running = false;
  }

  get live() {
    return this.state === 'live';
  }

  start() {
    if (this.running) return;
    this.running = true;
    this._open();
  }

  stop() {
    this.running = false;
    this._close();
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this._state('idle');
  }

  _state(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  _open() {
    this.timer = null;
    const params = this.synced ? { last_event_id: this.lastSeq() } : {};
    const url = this.transport.url('/api/llm/events', params, { withToken: true });
    let es;
    try {
      es = new this.EventSource(url);
    } catch {
      this._lost(null);
      return;
    }
    this.es = es;
    if (this.state === 'idle') this._state('connecting');
    es.onopen = () => {
      if (this.es === es) this._ok();
    };
    es.addEventListener('snapshot', (message) => {
      if (this.es !== es) return;
      const snapshot = parseJson(message.data);
      if (!snapshot || typeof snapshot !== 'object' || !Array.isArray(snapshot.views)) {
        this.onUnparsable(message.data);
        return;
      }
      this._ok();
      this.synced = true;
      this.onSnapshot(snapshot);
    });
    es.addEventListener('sources', (message) => {
      if (this.es !== es) return;
      const listing = parseJson(message.data);
      if (!listing || typeof listing !== 'object' || !Array.isArray(listing.views)) {
        this.onUnparsable(message.data);
        return;
      }
      this._ok();
      this.onSources(listing);
    });
    const onProgress = (message) => {
      if (this.es !== es) return;
      const payload = readPayload(message.data);
      if (!payload) {
        this.onUnparsable(message.data);
        return;
      }
      this._ok();
      this.onPayload(payload);
    };
    es.addEventListener('progress', onProgress);
    es.onmessage = onProgress;
    es.onerror = () => {
      if (this.es === es) this._lost(es);
    };
  }

  _ok() {
    this.failures = 0;
    this._state('live');
  }

  _lost(es) {
    if (es) this._close();
    if (!this.running) return;
    this.failures += 1;
    this.onReconnect(this.failures);
    this._state(this.failures >= OFFLINE_AFTER_FAILURES ? 'offline' : 'reconnecting');
    this.timer = this.timers.setTimeout(() => {
      if (this.running) this._open();
    }, backoffDelay(this.failures));
  }

  _close() {
    if (!this.es) return;
    const es = this.es;
    this.es = null;
    es.onopen = null;
    es.onerror = null;
    es.onmessage = null;
    es.close();
  }
}

export class StatusPoller {
  /**
   * @param {object} o
   * @param {Transport} o.transport
   * @param {Function} o.onStatus   (status) for each answer
   * @param {number} [o.intervalMs=POLL_INTERVAL_MS]
   */
  constructor(o) {
    this.transport = o.transport;
    this.timers = o.timers || realTimers;
    this.onStatus = o.onStatus;
    this.intervalMs = o.intervalMs || POLL_INTERVAL_MS;
    this.timer = null;
    this.running = false;
    this.failures = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this._schedule(0);
  }

  stop() {
    this.running = false;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  _schedule(ms) {
    this.timer = this.timers.setTimeout(() => this._tick(), ms);
  }

  async _tick() {
    this.timer = null;
    if (!this.running) return;
    try {
      const status = await this.transport.request('GET', '/api/llm/status', { retries: 1 });
      this.failures = 0;
      if (this.running) this.onStatus(status);
    } catch (error) {
      if (isAbort(error)) return;
      this.failures += 1;
    }
    if (this.running && this.timer === null) {
      this._schedule(this.failures ? backoffDelay(this.failures + 1) : this.intervalMs);
    }
  }
}
