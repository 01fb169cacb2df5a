/**
 * store.js: what the page knows about each model, reduced from what the server sends.
 *
 * Three sources bring the same facts: SSE payloads (an event with its `view` and `notice`, from
 * /api/llm/load_stream and /api/llm/events), snapshots (/api/llm/events' first message), and
 * lists (/api/llm/status, /api/llm/models). The store keeps, per model, the newest event and the
 * newest view by `seq` (the server numbers every event once), so a duplicate (the same event on
 * two streams) or a late one changes nothing, and each notice is handed on once.
 *
 * Listeners get one change per update: {model, view?, previous?, event?, notice?, removed?}.
 */

import { checkTransferView } from './transfers.js';

export const PROGRESS_LOG_LIMIT = 20000;

/** A checked SSE payload or event (an object with a model, a stage and a numeric seq), or null.
 * Its view is a card's, or for a transfer ("download:…", "upload:…") a transfer row's. */
export function checkEvent(data) {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return null;
  if (typeof data.model !== 'string' || !data.model) return null;
  if (typeof data.stage !== 'string' || !data.stage) return null;
  if (!Number.isFinite(data.seq)) return null;
  if (data.view !== undefined && data.view !== null && !checkView(data.view) && !checkTransferView(data.view)) {
    return null;
  }
  return data;
}

/** A checked card view, or null. */
export function checkView(view) {
  if (!view || typeof view !== 'object' || Array.isArray(view)) return null;
  if (typeof view.model !== 'string' || !view.model) return null;
  if (typeof view.state !== 'string' || !Array.isArray(view.actions)) return null;
  return view;
}

/** JSON text to a value, or undefined when it is not JSON. */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class ModelStore {
  constructor() {
    /** model id → the newest view */
    this.views = new Map();
    /** model id → the newest event (its fields without view and notice) */
    this.events = new Map();
    /** model id → seq of the last notice handed on */
    this.noticeSeqs = new Map();
    /** The highest seq seen: where a resumed stream starts. */
    this.lastSeq = 0;
    /** {model, stage, pct, seq} of every event applied, in order. */
    this.progressLog = [];
    this.listeners = new Set();
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  view(model) {
    return this.views.get(model) || null;
  }

  event(model) {
    return this.events.get(model) || null;
  }

  /** Seq of the newest event of `model` (0: none). */
  seqOf(model) {
    const event = this.events.get(model);
    return event ? event.seq : 0;
  }

  /**
   * One payload of a stream or of POST /api/llm/load. Returns the change it made ({} when it
   * was old news).
   */
  applyPayload(payload) {
    const { view = null, notice = null, ...event } = payload;
    const change = { model: event.model };
    this._seen(event.seq);
    if (this._takeEvent(event)) change.event = event;
    if (view && this._takeView(view, change)) change.view = view;
    if (notice && event.seq > (this.noticeSeqs.get(event.model) || 0)) {
      this.noticeSeqs.set(event.model, event.seq);
      change.notice = notice;
    }
    return this._emit(change);
  }

  /**
   * The first message of /api/llm/events: the state of every model now. It replaces what the
   * store knew (the server may have restarted); models it lacks are removed.
   */
  applySnapshot(snapshot) {
    const views = (Array.isArray(snapshot.views) ? snapshot.views : []).filter(checkView);
    const events = snapshot.models && typeof snapshot.models === 'object' ? snapshot.models : {};
    const keep = new Set(views.map((view) => view.model));
    const changes = [];
    for (const model of Array.from(this.views.keys())) {
      if (!keep.has(model)) {
        this.views.delete(model);
        this.events.delete(model);
        changes.push(this._emit({ model, removed: true }));
      }
    }
    for (const [model, event] of Object.entries(events)) {
      if (checkEvent(event)) this.events.set(model, event);
    }
    for (const view of views) {
      const change = { model: view.model, previous: this.views.get(view.model) || null, view };
      this.views.set(view.model, view);
      changes.push(this._emit(change));
    }
    this.lastSeq = Number.isFinite(snapshot.seq) ? snapshot.seq : this.lastSeq;
    return changes;
  }

  /** GET /api/llm/status: {models: {id: event}, views: {id: view}}. */
  applyStatus(status) {
    const events = status && typeof status.models === 'object' && status.models ? status.models : {};
    const views = status && typeof status.views === 'object' && status.views ? status.views : {};
    const changes = [];
    for (const event of Object.values(events)) {
      if (!checkEvent(event)) continue;
      this._seen(event.seq);
      const change = { model: event.model };
      if (this._takeEvent(event)) change.event = event;
      changes.push(change);
    }
    for (const view of Object.values(views)) {
      if (!checkView(view)) continue;
      const change = { model: view.model };
      if (this._takeView(view, change)) change.view = view;
      changes.push(change);
    }
    return changes.map((change) => this._emit(change));
  }

  /** Views of a listing (GET /api/llm/models): newer or as new as what the store has. */
  applyViews(views) {
    const changes = [];
    for (const view of views) {
      if (!checkView(view)) continue;
      const change = { model: view.model };
      if (this._takeView(view, change, { sameSeq: true })) change.view = view;
      changes.push(this._emit(change));
    }
    return changes;
  }

  /** Forgets a model (removed from the library). */
  remove(model) {
    this.views.delete(model);
    this.events.delete(model);
    return this._emit({ model, removed: true });
  }

  /** An event the store does not keep (a transfer's) still moves the resume point. */
  seen(seq) {
    this._seen(seq);
  }

  _seen(seq) {
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  _takeEvent(event) {
    if (event.seq <= this.seqOf(event.model)) return false;
    this.events.set(event.model, event);
    this.progressLog.push({ model: event.model, stage: event.stage, pct: event.pct, seq: event.seq });
    if (this.progressLog.length > PROGRESS_LOG_LIMIT) {
      this.progressLog.splice(0, this.progressLog.length - PROGRESS_LOG_LIMIT);
    }
    return true;
  }

  _takeView(view, change, { sameSeq = false } = {}) {
    const current = this.views.get(view.model);
    if (current && (sameSeq ? view.seq < current.seq : view.seq <= current.seq)) return false;
    change.previous = current || null;
    this.views.set(view.model, view);
    return true;
  }

  _emit(change) {
    for (const listener of Array.from(this.listeners)) listener(change);
    return change;
  }
}
