// Test doubles for the page's modules: time run by hand, EventSource, fetch, and the real page.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const JS_DIR = join(ROOT, 'resources', 'web', 'static', 'js');

/** Lets every pending promise callback run (one macrotask turn). */
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** setTimeout/clearTimeout/now on a clock that moves only when told to. */
export class FakeTimers {
  constructor() {
    this.time = 0;
    this.queue = [];
    this.ids = 0;
    this.setTimeout = (fn, ms = 0) => {
      this.ids += 1;
      this.queue.push({ id: this.ids, at: this.time + Math.max(0, Number(ms) || 0), fn });
      return this.ids;
    };
    this.clearTimeout = (id) => {
      this.queue = this.queue.filter((entry) => entry.id !== id);
    };
    this.now = () => this.time;
  }

  /** Moves the clock `ms` forward, running each timer due on the way (and the promise
   * callbacks that follow it) in order. */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      await flush();
      const due = this.queue.filter((entry) => entry.at <= end).sort((a, b) => a.at - b.at || a.id - b.id);
      if (!due.length) break;
      const next = due[0];
      this.queue = this.queue.filter((entry) => entry !== next);
      this.time = next.at;
      next.fn();
    }
    this.time = end;
    await flush();
  }
}

/** An EventSource class whose instances the test drives: open(), emit(), fail(). */
export function fakeEventSource() {
  class FakeEventSource {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 2;
    static instances = [];

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.listeners = {};
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.closed = false;
      FakeEventSource.instances.push(this);
    }

    get params() {
      return new URL(this.url, 'http://page.test').searchParams;
    }

    addEventListener(type, listener) {
      (this.listeners[type] ||= []).push(listener);
    }

    open() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    }

    /** A message of `type` (data: an object as JSON, or a string as is). */
    emit(type, data, id) {
      const message = { data: typeof data === 'string' ? data : JSON.stringify(data), lastEventId: id };
      for (const listener of this.listeners[type] || []) listener(message);
      if (type === 'message' && this.onmessage) this.onmessage(message);
    }

    /** An error; the browser then reconnects (CONNECTING) or has given up (CLOSED). */
    fail(readyState = 0) {
      this.readyState = readyState;
      if (this.onerror) this.onerror({});
    }

    close() {
      this.readyState = 2;
      this.closed = true;
    }

    static last() {
      return FakeEventSource.instances[FakeEventSource.instances.length - 1];
    }

    static open_() {
      return FakeEventSource.instances.filter((es) => !es.closed);
    }
  }
  return FakeEventSource;
}

/**
 * A fetch that answers from `handler(method, path, body, call)`; the handler returns
 * {status, body, headers} (or a promise of it), or throws for a network error. Calls are
 * recorded with the fake clock's time.
 */
export function fakeFetch(handler, timers) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const parsed = new URL(url, 'http://page.test');
    const body = init.body ? JSON.parse(init.body) : undefined;
    const call = { method: init.method || 'GET', path: parsed.pathname, query: parsed.searchParams, body, headers: init.headers || {}, at: timers ? timers.now() : 0 };
    calls.push(call);
    if (init.signal && init.signal.aborted) throw abortErrorLike();
    const answer = await handler(call.method, call.path, body, call);
    if (init.signal && init.signal.aborted) throw abortErrorLike();
    const status = answer.status || 200;
    const headers = new Map(Object.entries(answer.headers || {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    return {
      ok: status >= 200 && status < 300,
      status,
      headers: { get: (name) => (headers.has(name.toLowerCase()) ? headers.get(name.toLowerCase()) : null) },
      text: async () => text,
    };
  };
  fetch.calls = calls;
  return fetch;
}

function abortErrorLike() {
  const error = new Error('aborted');
  error.name = 'AbortError';
  return error;
}

/** The golden table: tests/golden/presentation.json (written by the Python presenter). */
export function golden() {
  return JSON.parse(readFileSync(join(ROOT, 'tests', 'golden', 'presentation.json'), 'utf8')).cases;
}

function python() {
  if (process.env.LLM_DESKTOP_PYTHON) return process.env.LLM_DESKTOP_PYTHON;
  const venv = join(ROOT, process.env.VENV || '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

let pageHtml = null;

/** The page as llm_desktop/server/page.py renders it (three models of the golden table). */
export function serverPage() {
  if (pageHtml === null) {
    const result = spawnSync(python(), ['-m', 'tests.js.render_page'], { cwd: ROOT, encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`rendering the page with ${python()} failed (run make setup):\n${result.stderr}`);
    }
    pageHtml = result.stdout;
  }
  return pageHtml;
}

/** A jsdom window holding `html` (default: the server's page); its scripts do not run. */
export function pageWindow(html = serverPage()) {
  return new JSDOM(html, { url: 'http://127.0.0.1:8765/', pretendToBeVisual: true }).window;
}

export function pageData(document) {
  return JSON.parse(document.getElementById('llm-page-data').textContent);
}

/**
 * An SSE payload for `view` (a golden view, with `model` set): the event fields the store
 * reads, the view and the notice.
 */
export function payload(model, seq, stage, view, notice = null, extra = {}) {
  return { model, seq, stage, pct: view ? view.pct : 0, state: view ? view.state : 'loading', message: '', ...extra, view: view ? { ...view, model, seq } : null, notice };
}

/** An element as [tag, attributes, children]: classes sorted, style parsed, text merged. */
export function canon(node) {
  const attributes = {};
  for (const attribute of Array.from(node.attributes).sort((a, b) => a.name.localeCompare(b.name))) {
    if (attribute.name === 'class') attributes.class = Array.from(node.classList).sort().join(' ');
    else if (attribute.name === 'style') attributes.style = node.style.cssText;
    else attributes[attribute.name] = attribute.value;
  }
  if (node.tagName === 'INPUT') attributes['.value'] = node.value;
  const children = [];
  for (const child of node.childNodes) {
    if (child.nodeType === 3) {
      if (typeof children[children.length - 1] === 'string') children[children.length - 1] += child.data;
      else if (child.data) children.push(child.data);
    } else if (child.nodeType === 1) {
      children.push(canon(child));
    }
  }
  return [node.tagName.toLowerCase(), attributes, children];
}
