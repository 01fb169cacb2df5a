// transport.js: retries with backoff and Retry-After, errors that carry the server's words.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, NetworkError, Transport, backoffDelay, retryAfterMs } from '../../resources/web/static/js/transport.js';
import { FakeTimers, fakeFetch, flush } from './helpers/fakes.mjs';

test('backoff doubles from 0.5 s and stops at 15 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n)), [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
});

test('Retry-After in seconds or as a date', () => {
  assert.equal(retryAfterMs('3'), 3000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(retryAfterMs(null), null);
  assert.equal(retryAfterMs('soon'), null);
});

test('network failures are tried again after 0.5 s, then 1 s', async () => {
  const timers = new FakeTimers();
  const fetch = fakeFetch((_method, _path, _body, call) => {
    if (fetch.calls.length < 3) throw new TypeError('Failed to fetch');
    return { body: { ok: call.at } };
  }, timers);
  const transport = new Transport({ fetch, timers });
  const answer = transport.request('GET', '/api/llm/status');
  await timers.advance(499);
  assert.equal(fetch.calls.length, 1);
  await timers.advance(1);
  assert.equal(fetch.calls.length, 2);
  await timers.advance(999);
  assert.equal(fetch.calls.length, 2);
  await timers.advance(1);
  assert.deepEqual(await answer, { ok: 1500 });
  assert.deepEqual(fetch.calls.map((call) => call.at), [0, 500, 1500]);
});

test('after the last try a network failure is a NetworkError', async () => {
  const timers = new FakeTimers();
  const fetch = fakeFetch(() => {
    throw new TypeError('Failed to fetch');
  }, timers);
  const answer = new Transport({ fetch, timers, retries: 2 }).request('GET', '/x');
  answer.catch(() => {});
  await timers.advance(10_000);
  await assert.rejects(answer, NetworkError);
  assert.equal(fetch.calls.length, 2);
});

test('429 waits for Retry-After, then succeeds', async () => {
  const timers = new FakeTimers();
  const fetch = fakeFetch(() =>
    fetch.calls.length === 1
      ? { status: 429, headers: { 'Retry-After': '2' }, body: { error: { kind: 'rate_limited', message: 'Too many' } } }
      : { body: { fine: true } },
  timers);
  const answer = new Transport({ fetch, timers }).request('POST', '/api/llm/load', { body: { model: 'm' } });
  await timers.advance(1999);
  assert.equal(fetch.calls.length, 1);
  await timers.advance(1);
  assert.deepEqual(await answer, { fine: true });
  assert.equal(fetch.calls[1].at, 2000);
  assert.deepEqual(fetch.calls[1].body, { model: 'm' });
});

test('a refusal is an ApiError with the server kind and message, not tried again', async () => {
  const timers = new FakeTimers();
  const fetch = fakeFetch(() => ({ status: 409, body: { error: { kind: 'model_in_use', message: 'Unload the model before removing it' } } }), timers);
  const error = await new Transport({ fetch, timers }).request('POST', '/api/llm/remove', { body: {} }).catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 409);
  assert.equal(error.kind, 'model_in_use');
  assert.equal(error.message, 'Unload the model before removing it');
  assert.equal(fetch.calls.length, 1);
});

test('a bearer token goes in the header, and in stream URLs only when asked', async () => {
  const fetch = fakeFetch(() => ({ body: {} }));
  const transport = new Transport({ fetch, token: 's3cret' });
  await transport.request('GET', '/api/llm/models');
  assert.equal(fetch.calls[0].headers.Authorization, 'Bearer s3cret');
  assert.equal(transport.url('/api/llm/events', { last_event_id: 4 }), '/api/llm/events?last_event_id=4');
  assert.equal(transport.url('/api/llm/events', {}, { withToken: true }), '/api/llm/events?token=s3cret');
  assert.equal(new Transport({ fetch }).url('/a', { x: null, y: '' }, { withToken: true }), '/a');
});

test('abortAll stops a request waiting for its next try', async () => {
  const timers = new FakeTimers();
  const fetch = fakeFetch(() => {
    throw new TypeError('Failed to fetch');
  }, timers);
  const transport = new Transport({ fetch, timers });
  const answer = transport.request('GET', '/x');
  await flush();
  transport.abortAll();
  await assert.rejects(answer, { name: 'AbortError' });
  await timers.advance(60_000);
  assert.equal(fetch.calls.length, 1);
});
