// LLMManager on the server's real page markup (jsdom), with a fake EventSource, fetch and clock:
// streaming, fallback, resume, dedupe, forms, and what it binds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLMManager, LoadError } from '../../resources/web/static/js/llm.js';
import { enhancePage } from '../../resources/web/static/js/page.js';
import { FakeTimers, fakeEventSource, fakeFetch, flush, golden, pageData, pageWindow } from './helpers/fakes.mjs';

const CASES = Object.fromEntries(golden().filter((c) => c.view).map((c) => [c.name, c]));
const DEMO = CASES['never loaded'].view.model;
const BROKEN = CASES['unreadable file'].view.model;

/** The SSE payload of golden case `name` as event number `seq` of `model`. */
function ev(name, seq, model = DEMO) {
  const c = CASES[name];
  return {
    ...c.event,
    model,
    seq,
    view: { ...structuredClone(c.view), model, seq },
    notice: c.notice ? { ...c.notice, model } : null,
  };
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function setup({ routes = {} } = {}) {
  const window = pageWindow();
  const document = window.document;
  const timers = new FakeTimers();
  const ES = fakeEventSource();
  const server = { load: deferred(), status: { models: {}, views: {}, seq: 0 } };
  const fetch = fakeFetch((method, path, body, call) => {
    const route = routes[`${method} ${path}`];
    if (route) return route(body, call);
    if (path === '/api/llm/load') return server.load.promise.then((answer) => ({ body: answer }));
    if (path === '/api/llm/status') return { body: server.status };
    if (path === '/api/llm/cancel') return { body: { cancelled: true } };
    if (path === '/api/llm/unload') return { body: { unloading: true } };
    return { status: 404, body: { error: { kind: 'not_found', message: 'Nothing here' } } };
  }, timers);
  const manager = new LLMManager({ document, fetch, EventSource: ES, timers });
  return { window, document, timers, ES, fetch, server, manager, data: pageData(document) };
}

const card = (document, model = DEMO) => document.querySelector(`.model-card[data-model-id="${model}"]`);
const actions = (element) => Array.from(element.querySelectorAll('.model-actions button')).map((b) => b.dataset.action);

test('a load streams over SSE onto the card and ends with one success toast', async () => {
  const { document, ES, manager, fetch } = setup();
  const done = manager.loadModelWithSSE(DEMO);
  const es = ES.last();
  assert.equal(es.params.get('model'), DEMO);
  assert.equal(new URL(es.url, 'http://x').pathname, '/api/llm/load_stream');
  es.open();
  es.emit('progress', ev('connecting', 11));
  es.emit('progress', ev('loading weights', 12));
  assert.equal(card(document).dataset.state, 'loading');
  assert.equal(card(document).querySelector('.progress-stage').textContent, CASES['loading weights'].view.stage_label);
  assert.deepEqual(actions(card(document)), ['cancel']);
  es.emit('progress', ev('loaded', 13));
  const last = await done;
  assert.equal(last.stage, 'complete');
  assert.equal(card(document).dataset.state, 'loaded');
  assert.deepEqual(actions(card(document)), ['unload']);
  assert.deepEqual(manager.visibleToasts().map((t) => [t.type, t.message]), [['success', CASES.loaded.notice.text]]);
  assert.deepEqual(manager.progressLog.map((e) => e.seq), [11, 12, 13]);
  assert.deepEqual(manager.getProgress(DEMO), { state: 'loaded', pct: 100, stage: 'complete', label: 'Loaded', busy: false, indeterminate: false, seq: 13 });
  assert.equal(manager.stats.fallbacks, 0);
  assert.ok(es.closed);
  assert.equal(fetch.calls.length, 0);
});

test('the same events from the load stream and the events stream apply once, one toast', async () => {
  const { ES, manager } = setup();
  manager.subscribeToEvents();
  const feed = ES.last();
  feed.open();
  feed.emit('snapshot', { seq: 10, views: [{ ...CASES['never loaded'].view, seq: 0 }], models: {} });
  const done = manager.loadModelWithSSE(DEMO);
  const stream = ES.last();
  for (const [name, seq] of [['connecting', 11], ['loading weights', 12], ['loaded', 13]]) {
    feed.emit('progress', ev(name, seq));
    stream.emit('progress', ev(name, seq));
  }
  await done;
  assert.deepEqual(manager.progressLog.map((e) => e.seq), [11, 12, 13]);
  assert.equal(manager.visibleToasts().length, 1);
});

test('a stream that fails before its first event falls back to POST /api/llm/load', async () => {
  const { document, ES, manager, fetch, server, timers } = setup();
  const done = manager.loadModelWithSSE(DEMO, { n_ctx: 2048 });
  ES.last().fail(2);
  await flush();
  assert.equal(manager.stats.fallbacks, 1);
  assert.deepEqual(fetch.calls[0].body, { model: DEMO, n_ctx: 2048 });
  // While the POST waits for the load's end, status polling keeps the card moving.
  server.status = { models: { [DEMO]: ev('loading weights', 12) }, views: { [DEMO]: ev('loading weights', 12).view }, seq: 12 };
  await timers.advance(10);
  assert.ok(fetch.calls.some((call) => call.path === '/api/llm/status'));
  assert.equal(card(document).dataset.state, 'loading');
  server.load.resolve(ev('loaded', 13));
  await done;
  assert.equal(card(document).dataset.state, 'loaded');
  const polls = fetch.calls.filter((call) => call.path === '/api/llm/status').length;
  await timers.advance(5000);
  assert.equal(fetch.calls.filter((call) => call.path === '/api/llm/status').length, polls, 'polling stops');
});

test('with SSE off a load never opens a stream: POST, status polling, the polling words', async () => {
  const { document, ES, manager, fetch, server, data } = setup();
  manager.subscribeToEvents();
  assert.equal(ES.instances.length, 1);
  manager.setSseEnabled(false);
  assert.ok(ES.instances[0].closed);
  const status = document.getElementById('connection-status');
  assert.equal(status.querySelector('.connection-text').textContent, data.text['connection.polling']);
  assert.equal(status.title, data.text['connection.description.polling']);
  const done = manager.loadModelWithSSE(DEMO);
  await flush();
  assert.equal(ES.instances.length, 1, 'no stream opened');
  assert.equal(manager.stats.fallbacks, 1);
  assert.ok(fetch.calls.some((call) => call.path === '/api/llm/load'));
  server.load.resolve(ev('loaded', 13));
  await done;
  assert.equal(manager.getProgress(DEMO).state, 'loaded');
});

test('data that is not an event is ignored and counted; the load goes on', async () => {
  const { document, ES, manager } = setup();
  const done = manager.loadModelWithSSE(DEMO);
  const es = ES.last();
  es.emit('progress', ev('connecting', 11));
  es.emit('progress', 'not json {');
  es.emit('progress', { hello: 'world' });
  es.emit('progress', { ...ev('loading weights', 12), seq: 'twelve' });
  assert.equal(manager.stats.unparsable, 3);
  assert.equal(card(document).dataset.seq, '11');
  es.emit('progress', ev('loaded', 13));
  await done;
  assert.equal(manager.stats.fallbacks, 0);
});

test('after the stream-error limit a load falls back to POST (which attaches to it)', async () => {
  const { ES, manager, fetch, server } = setup();
  const done = manager.loadModelWithSSE(DEMO);
  const es = ES.last();
  es.emit('progress', ev('connecting', 11));
  for (let n = 0; n < 4; n += 1) es.fail(0); // the browser reconnects by itself
  await flush();
  assert.equal(manager.stats.fallbacks, 0);
  es.fail(0);
  await flush();
  assert.equal(manager.stats.fallbacks, 1);
  assert.equal(manager.stats.streamErrors, 5);
  assert.ok(es.closed);
  assert.ok(fetch.calls.some((call) => call.path === '/api/llm/load'));
  server.load.resolve(ev('loaded', 13));
  await done;
});

test('a stream the browser gave up is reopened with last_event_id: no second load', async () => {
  const { ES, manager, fetch, timers } = setup();
  const done = manager.loadModelWithSSE(DEMO, { gpu_layers: 0 });
  const first = ES.last();
  first.emit('progress', ev('connecting', 11));
  first.emit('progress', ev('loading weights', 12));
  first.fail(2);
  assert.ok(first.closed);
  await timers.advance(499);
  assert.equal(ES.instances.length, 1);
  await timers.advance(1);
  const second = ES.last();
  assert.notEqual(second, first);
  assert.equal(second.params.get('last_event_id'), '12');
  assert.equal(second.params.get('model'), DEMO);
  second.emit('progress', ev('loaded', 13));
  await done;
  assert.equal(fetch.calls.length, 0);
  assert.equal(manager.stats.fallbacks, 0);
});

test('no first event in 20 s: fall back to POST', async () => {
  const { ES, manager, timers, server } = setup();
  const done = manager.loadModelWithSSE(DEMO);
  await timers.advance(19_999);
  assert.equal(manager.stats.fallbacks, 0);
  await timers.advance(1);
  assert.equal(manager.stats.fallbacks, 1);
  assert.ok(ES.last().closed);
  server.load.resolve(ev('loaded', 13));
  await done;
});

test('the events stream reconnects with backoff, resumes with last_event_id, and says so', async () => {
  const { document, ES, manager, timers, data } = setup();
  const words = () => document.querySelector('#connection-status .connection-text').textContent;
  manager.subscribeToEvents();
  assert.equal(words(), data.text['connection.connecting']);
  const first = ES.last();
  assert.equal(first.params.get('last_event_id'), null);
  first.open();
  assert.equal(words(), data.text['connection.live']);
  first.emit('snapshot', { seq: 20, views: [CASES['never loaded'].view], models: {} });
  first.emit('progress', ev('connecting', 21));
  first.fail(0);
  assert.ok(first.closed);
  assert.equal(words(), data.text['connection.reconnecting']);
  const opened = [];
  for (const wait of [500, 1000, 2000]) {
    await timers.advance(wait - 1);
    assert.equal(ES.instances.length, opened.length + 1, `not before ${wait} ms`);
    await timers.advance(1);
    const es = ES.last();
    opened.push(es.params.get('last_event_id'));
    es.fail(0);
  }
  assert.deepEqual(opened, ['21', '21', '21']);
  assert.equal(words(), data.text['connection.offline']);
  assert.equal(manager.stats.reconnects, 4);
  await timers.advance(8000);
  const back = ES.last();
  back.open();
  back.emit('progress', ev('loading weights', 22));
  assert.equal(words(), data.text['connection.live']);
  assert.equal(card(document).dataset.seq, '22');
});

test('a failed load rejects with a LoadError, shows one error notice and the card offers what helps', async () => {
  const { document, ES, manager } = setup();
  manager.subscribeToEvents();
  const feed = ES.last();
  const done = manager.loadModelWithSSE(DEMO);
  const stream = ES.last();
  stream.emit('progress', ev('connecting', 11));
  const failed = ev('not a model', 12);
  stream.emit('progress', failed);
  feed.emit('progress', failed);
  const error = await done.catch((e) => e);
  assert.ok(error instanceof LoadError);
  assert.equal(error.kind, 'invalid_model');
  const toasts = manager.visibleToasts();
  assert.equal(toasts.length, 1);
  assert.deepEqual([toasts[0].type, toasts[0].title, toasts[0].message], ['error', failed.notice.title, failed.notice.text]);
  assert.equal(toasts[0].element.getAttribute('role'), 'alert');
  const element = card(document);
  assert.deepEqual(actions(element), ['remove']);
  const details = element.querySelector('.error-details');
  assert.equal(details.hidden, false);
  assert.equal(details.querySelector('summary').textContent, failed.view.actions[0].label);
  // The toast's one action (Show details) opens the card's details.
  toasts[0].element.querySelector('.toast-actions button').click();
  assert.equal(details.open, true);
  assert.equal(manager.visibleToasts().length, 0);
});

test("a card's retry form loads with the options the server put in it", async () => {
  const { document, ES, manager } = setup();
  enhancePage(manager, document);
  manager.store.applyPayload(ev('out of RAM', 10));
  const button = card(document).querySelector('button[data-action="retry"]');
  button.form.requestSubmit(button);
  const es = ES.last();
  assert.equal(es.params.get('model'), DEMO);
  assert.equal(es.params.get('n_ctx'), '1024');
  assert.equal(es.params.get('gpu_layers'), '-1');
  assert.equal(es.params.get('use_mmap'), 'true');
  assert.equal(button.getAttribute('aria-disabled'), 'true', 'pending until the load moves');
  es.emit('progress', ev('loaded', 13));
  await flush();
  assert.equal(card(document).dataset.state, 'loaded');
});

test('cancel, unload and remove forms post their model; a refusal shows the server words', async () => {
  const answered = [];
  const { document, ES, manager, fetch, data } = setup({
    routes: {
      'POST /api/llm/remove': (body) => {
        answered.push(body);
        return { status: 409, body: { error: { kind: 'model_in_use', message: 'Unload the model before removing it' } } };
      },
    },
  });
  enhancePage(manager, document);
  manager.loadModelWithSSE(DEMO);
  ES.last().emit('progress', ev('loading weights', 12));
  const cancel = card(document).querySelector('button[data-action="cancel"]');
  cancel.form.requestSubmit(cancel);
  assert.equal(cancel.getAttribute('aria-disabled'), 'true');
  await flush();
  assert.deepEqual(fetch.calls.at(-1).body, { model: DEMO });
  assert.equal(fetch.calls.at(-1).path, '/api/llm/cancel');
  assert.equal(cancel.getAttribute('aria-disabled'), null);
  manager.store.applyPayload(ev('unreadable file', 1, BROKEN));
  const remove = card(document, BROKEN).querySelector('button[data-action="remove"]');
  remove.form.requestSubmit(remove);
  await flush();
  assert.deepEqual(answered, [{ model: BROKEN }]);
  const toast = manager.visibleToasts().at(-1);
  assert.deepEqual([toast.type, toast.title, toast.message], ['error', data.text['error.remove_failed'], 'Unload the model before removing it']);
  assert.ok(card(document, BROKEN), 'the card stays');
});

test('a request that cannot reach the server says so in PAGE_TEXT words', async () => {
  const { document, manager, timers, data } = setup({
    routes: {
      'POST /api/llm/unload': () => {
        throw new TypeError('Failed to fetch');
      },
    },
  });
  const answer = manager.unloadModel(DEMO);
  await timers.advance(5000);
  await answer;
  const toast = manager.visibleToasts().at(-1);
  assert.deepEqual([toast.title, toast.message], [data.text['error.unload_failed'], data.text['error.unreachable']]);
  assert.ok(document.querySelector('.toast-container .toast'));
});

test('refresh: new cards from the template, gone ones removed, order and summary from the server', async () => {
  const newcomer = { ...structuredClone(CASES['never loaded'].view), model: 'new-0000000009', title: 'Newcomer' };
  const { document, manager } = setup({
    routes: {
      'GET /api/llm/models': () => ({
        body: {
          models: [{ id: newcomer.model, view: newcomer, last_event: null }, { id: DEMO, view: CASES['never loaded'].view, last_event: null }],
          summary: '2 models',
        },
      }),
    },
  });
  await manager.refresh();
  const ids = Array.from(document.querySelectorAll('#model-grid .model-card')).map((c) => c.dataset.modelId);
  assert.deepEqual(ids, [newcomer.model, DEMO]);
  assert.equal(card(document, newcomer.model).querySelector('.model-name').textContent, 'Newcomer');
  assert.equal(document.getElementById('library-summary').textContent, '2 models');
  assert.equal(document.getElementById('empty-state').hidden, true);
});

test('updateProgress binds what it is given and nothing else', () => {
  const { document, manager } = setup();
  const element = card(document);
  const before = element.innerHTML;
  const title = element.querySelector('.model-name').textContent;
  assert.equal(manager.updateProgress(DEMO, 'quantizing', 70.4, 'Applying quantization...'), true);
  assert.equal(element.dataset.stage, 'quantizing');
  assert.equal(element.querySelector('.progress-fill').style.width, '70%');
  assert.equal(element.querySelector('.progress-bar').getAttribute('aria-valuenow'), '70');
  assert.equal(element.querySelector('.progress-pct').textContent, '70%');
  assert.equal(element.querySelector('.progress-stage').textContent, 'Applying quantization...');
  assert.equal(element.querySelector('.model-name').textContent, title);
  assert.equal(element.dataset.state, 'unloaded');
  assert.deepEqual(actions(element), ['load']);
  manager.updateProgress(DEMO, null, 80);
  assert.equal(element.querySelector('.progress-stage').textContent, 'Applying quantization...');
  assert.equal(element.dataset.stage, 'quantizing');
  assert.notEqual(element.innerHTML, before);
  assert.equal(manager.updateProgress('no-such-model', 'loading', 5), false);
});

test('cleanup closes the streams, rejects running loads, removes toasts and stops every timer', async () => {
  const { ES, manager, timers } = setup();
  manager.subscribeToEvents();
  const done = manager.loadModelWithSSE(DEMO);
  manager.showToast('hello', 'info');
  ES.instances[0].fail(0); // a reconnect timer
  manager.cleanup();
  await assert.rejects(done, { name: 'AbortError' });
  assert.ok(ES.instances.every((es) => es.closed));
  assert.equal(manager.visibleToasts().length, 0);
  await flush();
  assert.deepEqual(timers.queue, []);
});

test('window.loadModel-style use: a second call for a loading model shares the promise', () => {
  const { ES, manager } = setup();
  const first = manager.loadModelWithSSE(DEMO);
  assert.equal(manager.loadModelWithSSE(DEMO), first);
  assert.equal(ES.instances.length, 1);
  manager.cleanup();
});

test('a model that loads or unloads brings the summary line up to date from the server', async () => {
  const evicted = CASES['evicted for the limit of loaded models'];
  const { document, ES, manager, timers } = setup({
    routes: {
      'GET /api/llm/models': () => ({
        body: { models: [{ id: DEMO, view: evicted.view, last_event: evicted.event }], summary: '1 model' },
      }),
    },
  });
  const done = manager.loadModelWithSSE(DEMO);
  const es = ES.last();
  es.open();
  es.emit('progress', ev('connecting', 11));
  es.emit('progress', ev('loaded', 12));
  await done;
  await timers.advance(5000);
  assert.equal(document.getElementById('library-summary').textContent, '1 model');
  // The evicted card says why, in the presenter's words.
  assert.match(card(document).textContent, /to make room for Other 3B: at most 1 model loaded at once/);
});
