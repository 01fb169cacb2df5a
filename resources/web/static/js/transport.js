/**
 * transport.js: HTTP for the page: JSON requests to the local server, with retries.
 *
 * A request that cannot reach the server, or that the server answers 429/502/503/504, is tried
 * again after a backoff (0.5 s, 1 s, 2 s, ... up to 15 s) or after the server's Retry-After.
 * Every request can be aborted: `abortAll()` stops those in flight and their waits.
 *
 * The page itself authenticates with the server's same-site cookie, so it sends no token; a
 * caller outside the page (a Node test, the dev page opened with ?token=) may give one: it goes
 * in an Authorization header, and in the query of stream URLs (EventSource sends no headers).
 *
 * No words shown to a person are made here: errors carry the server's message, or none.
 */

export const BACKOFF = Object.freeze({ startMs: 500, maxMs: 15000 });
const TRANSIENT = new Set([429, 502, 503, 504]);

/** Timers and clock, injectable so tests can run time by hand. */
export const realTimers = Object.freeze({
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (timer) => globalThis.clearTimeout(timer),
  now: () => Date.now(),
});

/** The wait before try `attempt + 1` (attempt 1 is the first failure): doubling, capped. */
export function backoffDelay(attempt, { startMs = BACKOFF.startMs, maxMs = BACKOFF.maxMs } = {}) {
  return Math.min(maxMs, startMs * 2 ** Math.max(0, attempt - 1));
}

/** Retry-After (delta-seconds or an HTTP date) in ms, or null when absent or unreadable. */
export function retryAfterMs(value, now = Date.now()) {
  if (value === null || value === undefined || value === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : null;
}

/** The server refused: `status`, `kind` and the server's `message` ({"error": {...}}); `body`
 * the whole answer (a refusal may carry a view, as a fit's "unknown" badge). */
export class ApiError extends Error {
  constructor(status, kind, message, waitMs = null, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.kind = kind;
    this.retryAfterMs = waitMs;
    this.body = body;
  }
}

/** The server could not be reached (the page says so with PAGE_TEXT['error.unreachable']). */
export class NetworkError extends Error {
  constructor(cause) {
    super(cause && cause.message ? cause.message : 'network error');
    this.name = 'NetworkError';
    this.kind = 'network';
    this.cause = cause;
  }
}

export function abortError() {
  const error = new Error('aborted');
  error.name = 'AbortError';
  return error;
}

export function isAbort(error) {
  return Boolean(error && error.name === 'AbortError');
}

export class Transport {
  /**
   * @param {object} options
   * @param {Function} options.fetch      the fetch to use (default: the global one)
   * @param {string} [options.baseUrl=''] the server's origin ('' = this page's)
   * @param {string} [options.token='']   a bearer token (the page needs none: it has the cookie)
   * @param {object} [options.timers]     {setTimeout, clearTimeout, now}
   * @param {number} [options.retries=3]  tries per request
   */
  constructor({ fetch, baseUrl = '', token = '', timers = realTimers, retries = 3 } = {}) {
    this.fetch = fetch || ((...args) => globalThis.fetch(...args));
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
    this.token = token ? String(token) : '';
    this.timers = timers;
    this.retries = Math.max(1, retries);
    this.controller = new AbortController();
  }

  /** `path` with `params` (empty values left out); with a token, the token too when asked. */
  url(path, params = {}, { withToken = false } = {}) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') query.append(key, String(value));
    }
    if (withToken && this.token) query.append('token', this.token);
    const text = query.toString();
    return `${this.baseUrl}${path}${text ? `?${text}` : ''}`;
  }

  /** A JSON request; resolves with the answer's JSON ({} when empty), rejects with ApiError,
   * NetworkError or an AbortError. */
  async request(method, path, { body, retries = this.retries } = {}) {
    const signal = this.controller.signal;
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const init = { method, headers, cache: 'no-store', signal };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const url = this.url(path);
    for (let attempt = 1; ; attempt += 1) {
      let response;
      try {
        response = await this.fetch(url, init);
      } catch (error) {
        if (signal.aborted || isAbort(error)) throw abortError();
        if (attempt >= retries) throw new NetworkError(error);
        await this.sleep(backoffDelay(attempt), signal);
        continue;
      }
      const data = await readJson(response, signal);
      if (response.ok) return data === null ? {} : data;
      const info = data && typeof data.error === 'object' && data.error ? data.error : {};
      const wait = retryAfterMs(response.headers.get('Retry-After'), this.timers.now());
      const error = new ApiError(
        response.status,
        info.kind || `http_${response.status}`,
        typeof info.message === 'string' ? info.message : '',
        wait,
        data,
      );
      if (TRANSIENT.has(response.status) && attempt < retries) {
        await this.sleep(Math.min(wait === null ? backoffDelay(attempt) : wait, BACKOFF.maxMs), signal);
        continue;
      }
      throw error;
    }
  }

  /** Waits `ms` (on the injected timers); rejects with an AbortError when aborted. */
  sleep(ms, signal = this.controller.signal) {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(abortError());
        return;
      }
      const onAbort = () => {
        this.timers.clearTimeout(timer);
        reject(abortError());
      };
      const timer = this.timers.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Aborts every request in flight (and its retry waits); later requests run as usual. */
  abortAll() {
    this.controller.abort();
    this.controller = new AbortController();
  }
}

async function readJson(response, signal) {
  try {
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  } catch (error) {
    if (signal.aborted) throw abortError();
    return null;
  }
}
