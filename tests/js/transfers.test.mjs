// The Transfers list on the server's real page markup (jsdom): every golden transfer view bound
// onto a row is the row the server renders; the cancel question; the list's order; and the
// manager routing transfer events, their toasts and their buttons.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLMManager } from '../../resources/web/static/js/llm.js';
import { TransferBinder, TransferList } from '../../resources/web/static/js/transfers.js';
import { enhanceGetModels } from '../../resources/web/static/js/getmodels.js';
import { FakeTimers, canon, fakeEventSource, fakeFetch, flush, golden, pageData, pageWindow } from './helpers/fakes.mjs';

const window = pageWindow();
const document = window.document;
const data = pageData(document);
const cases = golden().filter((c) => c.transfer);
const CASES = Object.fromEntries(cases.map((c) => [c.name, c]));

function binder(doc = document) {
  return new TransferBinder({
    document: doc,
    template: doc.getElementById('llm-transfer-template'),
    transferText: data.transfer_text,
  });
}

function rowFrom(html, doc = document) {
  const box = doc.createElement('ul');
  box.innerHTML = html;
  return box.firstElementChild;
}

test('the golden table has transfer cases of every op and a cancel question', () => {
  assert.ok(cases.length >= 12, `only ${cases.length} transfer cases`);
  assert.deepEqual(new Set(cases.map((c) => c.transfer.op)), new Set(['download', 'upload', 'quantize']));
  assert.ok(cases.some((c) => c.transfer.cancel_question));
  assert.ok(cases.some((c) => c.transfer.indeterminate));
});

for (const c of cases) {
  test(`golden: a row bound with "${c.name}" is what the server renders`, () => {
    const row = rowFrom(cases[0].html);
    binder().bind(row, c.transfer);
    assert.deepEqual(canon(row), canon(rowFrom(c.html)));
  });
}

test('golden: one row bound with every case in turn matches each (live updates)', () => {
  const bind = binder();
  const row = rowFrom(cases[0].html);
  for (const c of [...cases, ...cases.slice().reverse()]) {
    bind.bind(row, c.transfer);
    assert.deepEqual(canon(row), canon(rowFrom(c.html)), c.name);
  }
});

test('golden: a row cloned from the page template and bound is what the server renders', () => {
  const bind = binder();
  for (const c of cases) assert.deepEqual(canon(bind.create(c.transfer)), canon(rowFrom(c.html)), c.name);
});

test('the bar is a real <progress>: a value while measured, none while busy', () => {
  const bind = binder();
  const busy = bind.create(CASES['download connecting'].transfer);
  const bar = busy.querySelector('progress.transfer-bar');
  assert.equal(bar.hasAttribute('value'), false);
  assert.equal(busy.querySelector('.transfer-pct').hidden, true);
  bind.bind(busy, CASES.downloading.transfer);
  assert.equal(bar.getAttribute('value'), '33');
  assert.equal(bar.getAttribute('aria-valuetext'), CASES.downloading.transfer.progress_text);
  assert.equal(busy.querySelector('.transfer-rate').textContent, CASES.downloading.transfer.rate_text);
  assert.equal(busy.querySelector('.transfer-eta').textContent, CASES.downloading.transfer.eta_text);
});

test('cancel asks the view\'s question with its two actions; the open question stays open as bytes count', () => {
  const bind = binder();
  const row = bind.create(CASES.downloading.transfer);
  const question = row.querySelector('.transfer-question');
  const view = CASES.downloading.transfer;
  assert.equal(question.querySelector('summary').textContent, view.actions[1].label);
  assert.equal(question.querySelector('.transfer-question-text').textContent, view.cancel_question.text);
  const choices = Array.from(question.querySelectorAll('.transfer-question-actions button'));
  assert.deepEqual(
    choices.map((b) => [b.dataset.action, b.textContent]),
    [
      ['cancel', view.cancel_question.keep.label],
      ['discard', view.cancel_question.discard.label],
    ],
  );
  assert.deepEqual(
    Array.from(question.querySelectorAll('form')).map((f) => f.getAttribute('action')),
    ['/actions/transfer/cancel', '/actions/transfer/discard'],
  );
  question.open = true;
  bind.bind(row, { ...CASES['downloading, stalled'].transfer, seq: 99 });
  assert.equal(row.querySelector('.transfer-question'), question, 'the same element');
  assert.equal(question.open, true);
  // An upload has nothing to keep: its Cancel is a plain form, no question.
  bind.bind(row, CASES.uploading.transfer);
  assert.equal(row.querySelector('.transfer-question'), null);
  assert.deepEqual(
    Array.from(row.querySelectorAll('.transfer-actions button')).map((b) => b.dataset.action),
    ['cancel'],
  );
});

test('the list shows the newest transfer first, ignores older views and says when it is empty', () => {
  const doc = pageWindow().document;
  const list = new TransferList({
    document: doc,
    binder: binder(doc),
    list: doc.getElementById('transfer-list'),
    empty: doc.getElementById('transfers-empty'),
  });
  assert.equal(doc.getElementById('transfers-empty').hidden, false);
  list.apply(CASES.downloading.transfer);
  list.apply(CASES.uploading.transfer);
  const keys = () => list.rows().map((row) => row.dataset.key);
  assert.deepEqual(keys(), [CASES.uploading.transfer.key, CASES.downloading.transfer.key]);
  assert.equal(doc.getElementById('transfers-empty').hidden, true);
  assert.equal(list.apply({ ...CASES.paused.transfer, seq: 1 }), null, 'older than what is shown');
  assert.equal(list.row(CASES.downloading.transfer.key).dataset.stage, 'downloading');
  list.replace([CASES.uploading.transfer]);
  assert.deepEqual(keys(), [CASES.uploading.transfer.key]);
  list.remove(CASES.uploading.transfer.key);
  assert.deepEqual(keys(), []);
  assert.equal(doc.getElementById('transfers-empty').hidden, false);
  assert.equal(doc.getElementById('transfer-list').hidden, true);
});

// -- the manager ---------------------------------------------------------------------------

function payload(name, seq) {
  const c = CASES[name];
  return { ...c.event, seq, view: { ...structuredClone(c.transfer), seq }, notice: c.notice ? structuredClone(c.notice) : null };
}

function setup(routes = {}) {
  const win = pageWindow();
  const doc = win.document;
  const timers = new FakeTimers();
  const ES = fakeEventSource();
  const fetch = fakeFetch((method, path, body, call) => {
    const route = routes[`${method} ${path}`];
    if (route) return route(body, call);
    if (path === '/api/llm/models') return { body: { models: [], summary: '' } };
    return { status: 404, body: { error: { kind: 'not_found', message: 'Nothing here' } } };
  }, timers);
  const manager = new LLMManager({ document: doc, fetch, EventSource: ES, timers });
  const wired = enhanceGetModels(manager, doc, { XMLHttpRequest: null });
  manager.subscribeToEvents();
  const es = ES.last();
  es.open();
  return { win, doc, timers, ES, es, fetch, manager, wired };
}

const rowOf = (doc, key) => Array.from(doc.querySelectorAll('#transfer-list > .transfer-row')).find((r) => r.dataset.key === key);

test('transfer events on the events stream move their row, not a card, and resume from their seq', async () => {
  const { doc, es, manager } = setup();
  es.emit('snapshot', { seq: 10, views: [], models: {}, transfers: [] });
  es.emit('progress', payload('download connecting', 11));
  es.emit('progress', payload('downloading', 12));
  const row = rowOf(doc, CASES.downloading.transfer.key);
  assert.equal(row.dataset.stage, 'downloading');
  assert.equal(row.querySelector('.transfer-stage').textContent, CASES.downloading.transfer.stage_label);
  assert.equal(manager.stats.unparsable, 0);
  assert.equal(manager.store.lastSeq, 12, 'a reconnect resumes after the transfer events');
  assert.equal(manager.store.views.has(CASES.downloading.transfer.key), false, 'no card for a transfer');
  assert.equal(doc.querySelectorAll('#model-grid .model-card').length, 3);
});

test('a snapshot lists the transfers running before the page opened', () => {
  const { doc, es } = setup();
  es.emit('snapshot', { seq: 20, views: [], models: {}, transfers: [CASES.paused.transfer, CASES.quantizing.transfer] });
  assert.deepEqual(
    Array.from(doc.querySelectorAll('#transfer-list > .transfer-row')).map((r) => r.dataset.stage),
    ['quantizing', 'paused'],
  );
});

test('a finished download toasts once, and its Load asks the server which model it made, then loads it', async () => {
  const key = CASES.downloaded.transfer.key;
  const model = 'tiny-q4-k-m-0123456789';
  const { doc, es, manager, fetch, ES } = setup({
    'POST /api/transfers/load': (body) => ({ body: { model: body.key === key ? model : null } }),
  });
  const shown = [];
  const show = manager.showNotice.bind(manager);
  manager.showNotice = (notice) => {
    shown.push(notice.text);
    return show(notice);
  };
  es.emit('snapshot', { seq: 1, views: [], models: {}, transfers: [] });
  es.emit('progress', payload('downloaded', 7));
  es.emit('progress', payload('downloaded', 7)); // the same event again (a replay)
  assert.deepEqual(shown, [CASES.downloaded.notice.text]);
  assert.deepEqual(manager.visibleToasts().map((t) => t.message), [CASES.downloaded.notice.text]);
  const toastLoad = manager.visibleToasts()[0].element.querySelector('.toast-actions button');
  assert.equal(toastLoad.textContent, CASES.downloaded.transfer.actions[0].label);
  const row = rowOf(doc, key);
  row.querySelector('button[data-action="load"]').form.requestSubmit(row.querySelector('button[data-action="load"]'));
  for (let i = 0; i < 5; i += 1) await flush();
  const load = fetch.calls.find((call) => call.path === '/api/transfers/load');
  assert.deepEqual(load.body, { key });
  const stream = ES.instances.find((instance) => instance.url.includes('/api/llm/load_stream'));
  assert.ok(stream, 'the new model loads');
  assert.equal(stream.params.get('model'), model);
  manager.cleanup();
});

test('Pause, Resume, Delete and Dismiss post the transfer action with its key', async () => {
  const calls = [];
  const answer = (body, call) => {
    calls.push([call.path, body.key]);
    return { body: { ok: true, dismissed: true } };
  };
  const { doc, es } = setup({
    'POST /api/transfers/pause': answer,
    'POST /api/transfers/discard': answer,
    'POST /api/transfers/dismiss': answer,
  });
  es.emit('snapshot', { seq: 1, views: [], models: {}, transfers: [] });
  es.emit('progress', payload('downloading', 2));
  const key = CASES.downloading.transfer.key;
  const press = async (selector) => {
    const button = rowOf(doc, key).querySelector(selector);
    button.form.requestSubmit(button);
    for (let i = 0; i < 3; i += 1) await flush();
  };
  await press('button[data-action="pause"]');
  const question = rowOf(doc, key).querySelector('.transfer-question');
  question.open = true;
  await press('.transfer-question button[data-action="discard"]');
  assert.equal(question.open, false, 'the question closes once answered');
  es.emit('progress', payload('download failed, gated', 9));
  await press('button[data-action="dismiss"]');
  assert.deepEqual(calls, [
    ['/api/transfers/pause', key],
    ['/api/transfers/discard', key],
    ['/api/transfers/dismiss', key],
  ]);
  assert.equal(rowOf(doc, key), undefined, 'a dismissed transfer leaves the list');
});

test('the keep-or-delete question closes with Escape (focus back on Cancel) or a click elsewhere', () => {
  const { doc, es, win } = setup();
  es.emit('snapshot', { seq: 1, views: [], models: {}, transfers: [] });
  es.emit('progress', payload('downloading', 2));
  const question = rowOf(doc, CASES.downloading.transfer.key).querySelector('.transfer-question');
  question.open = true;
  const keep = question.querySelector('button[data-action="cancel"]');
  keep.focus();
  keep.dispatchEvent(new win.KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }));
  assert.equal(question.open, false);
  assert.equal(doc.activeElement, question.querySelector('summary'));
  question.open = true;
  question.querySelector('.transfer-question-text').click();
  assert.equal(question.open, true, 'a click inside keeps it open');
  doc.getElementById('get-models').click();
  assert.equal(question.open, false);
});
