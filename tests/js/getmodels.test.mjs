// The "Get models" section on the server's real page markup (jsdom): hits and a repository's
// models bound from the hub views are what the server renders; search, listing and fit through
// fetch; Download and Quantize; and uploads sent with XMLHttpRequest (progress and Stop).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLMManager } from '../../resources/web/static/js/llm.js';
import { bindHit, bindRemoteModel, enhanceGetModels } from '../../resources/web/static/js/getmodels.js';
import { FakeTimers, canon, fakeEventSource, fakeFetch, flush, golden, pageData, pageWindow } from './helpers/fakes.mjs';

const cases = golden();
const hits = cases.filter((c) => c.hit);
const models = cases.filter((c) => c.remote_model);
const MODEL = Object.fromEntries(models.map((c) => [c.name, c]));

function elementFrom(document, html) {
  const box = document.createElement('ul');
  box.innerHTML = html;
  return box.firstElementChild;
}

async function settle(times = 8) {
  for (let i = 0; i < times; i += 1) await flush();
}

test('golden: hits and models bound onto the page templates are what the server renders', () => {
  const document = pageWindow().document;
  const data = pageData(document);
  assert.ok(hits.length >= 2 && models.length >= 4);
  const hitTemplate = document.getElementById('llm-hit-template').content.firstElementChild;
  const modelTemplate = document.getElementById('llm-remote-model-template').content.firstElementChild;
  for (const c of hits) {
    assert.deepEqual(canon(bindHit(hitTemplate.cloneNode(true), c.hit)), canon(elementFrom(document, c.html)), c.name);
  }
  // One row through every case in turn: a fit arriving, a fit failing, another model.
  const row = modelTemplate.cloneNode(true);
  for (const c of [...models, ...models.slice().reverse()]) {
    bindRemoteModel(document, row, c.remote_model, data.card_text);
    assert.deepEqual(canon(row), canon(elementFrom(document, c.html)), c.name);
  }
});

/** A fake XMLHttpRequest class whose instances the test drives. */
function fakeXhr() {
  class FakeXhr {
    static instances = [];

    constructor() {
      this.upload = { onprogress: null };
      this.headers = {};
      this.status = 0;
      this.responseText = '';
      this.aborted = false;
      FakeXhr.instances.push(this);
    }

    open(method, url) {
      this.method = method;
      this.url = url;
    }

    setRequestHeader(name, value) {
      this.headers[name] = value;
    }

    send(body) {
      this.body = body;
    }

    abort() {
      this.aborted = true;
      if (this.onabort) this.onabort();
    }

    progress(loaded, total) {
      this.upload.onprogress({ lengthComputable: true, loaded, total });
    }

    answer(status, body) {
      this.status = status;
      this.responseText = JSON.stringify(body);
      this.onload();
    }

    fail() {
      this.onerror();
    }
  }
  return FakeXhr;
}

function setup(routes = {}) {
  const window = pageWindow();
  const document = window.document;
  const timers = new FakeTimers();
  const fetch = fakeFetch((method, path, body, call) => {
    const route = routes[`${method} ${path}`];
    if (route) return route(body, call);
    if (path === '/api/transfers') return { body: { transfers: [], seq: 0 } };
    return { status: 404, body: { error: { kind: 'not_found', message: 'Nothing here' } } };
  }, timers);
  const XHR = fakeXhr();
  const manager = new LLMManager({ document, fetch, EventSource: fakeEventSource(), timers });
  const wired = enhanceGetModels(manager, document, { XMLHttpRequest: XHR });
  return { window, document, timers, fetch, XHR, manager, wired };
}

/** Submits `form` as a press of `button` would (jsdom's requestSubmit checks a file input's
 * `required` against files it cannot be given). */
function submit(form, button) {
  const view = form.ownerDocument.defaultView;
  const event = new view.SubmitEvent('submit', { bubbles: true, cancelable: true, submitter: button || null });
  form.dispatchEvent(event);
}

test('a search lists the hits the server sends, in its words; an error is a toast with the server\'s message', async () => {
  const view = { query: 'tiny', summary: '2 repositories', hits: hits.map((c) => c.hit) };
  let fail = false;
  const { document, fetch, manager, window, timers } = setup({
    'GET /api/hub/search': () =>
      fail ? { status: 502, body: { error: { kind: 'network', message: 'Searching the hub: could not reach it' } } } : { body: { hits: [], view } },
  });
  const form = document.getElementById('hub-search');
  form.elements.namedItem('q').value = 'tiny';
  submit(form);
  const results = document.getElementById('hub-results');
  assert.equal(results.hidden, false);
  assert.equal(results.querySelector('.hub-results-summary').textContent, manager.text['hub.searching'].replace('{query}', 'tiny'));
  await settle();
  assert.equal(fetch.calls[0].query.get('q'), 'tiny');
  assert.equal(results.querySelector('.hub-results-summary').textContent, '2 repositories');
  assert.deepEqual(
    Array.from(results.querySelectorAll('.hub-hit')).map((row) => row.dataset.repoId),
    hits.map((c) => c.hit.repo_id),
  );
  assert.equal(window.location.search, '?q=tiny', 'the address says what is shown');
  fail = true;
  submit(form);
  await timers.advance(1600); // the transport's retries of a 502 (0.5 s, 1 s)
  await settle();
  assert.equal(results.querySelector('.hub-error').textContent, 'Searching the hub: could not reach it');
  assert.deepEqual(
    manager.visibleToasts().map((t) => [t.type, t.title, t.message]),
    [['error', manager.text['error.search_failed'], 'Searching the hub: could not reach it']],
  );
});

test('a search with nothing typed says it lists the hub\'s repositories, in the server\'s words', async () => {
  const { document, manager } = setup({ 'GET /api/hub/search': () => new Promise(() => {}) });
  const form = document.getElementById('hub-search');
  form.elements.namedItem('q').value = '  ';
  submit(form);
  const summary = document.querySelector('#hub-results .hub-results-summary');
  assert.equal(summary.textContent, manager.text['hub.searching_all']);
});

test('"Show models" lists the repository, then reads each model\'s fit a few at a time', async () => {
  const checking = MODEL['a model whose fit is being read'].remote_model;
  const other = { ...checking, reference: 'acme/Tiny-GGUF:Other-Q8_0.gguf', file: 'Other-Q8_0.gguf' };
  const split = { ...MODEL['a split model, CPU only'].remote_model, fit: checking.fit, fit_pending: true };
  const listed = [checking, split, other];
  const view = { repo_id: 'acme/Tiny-GGUF', title: 'acme/Tiny-GGUF', summary: '3 GGUF models', gated_hint: '', models: listed };
  const badge = MODEL['a recommended model that fits'].remote_model.fit;
  const unknown = MODEL['a model whose header cannot be read'].remote_model.fit;
  const fits = [];
  const { document } = setup({
    'GET /api/hub/search': () => ({ body: { hits: [], view: { query: '', summary: '1 repository', hits: [hits[0].hit] } } }),
    'GET /api/hub/repo': () => ({ body: { listing: {}, view } }),
    'GET /api/hub/fit': (_body, call) => {
      fits.push(call.query.get('file'));
      if (call.query.get('file').startsWith('Big')) {
        return { status: 401, body: { error: { kind: 'unauthorized', message: unknown.summary }, badge: unknown } };
      }
      if (call.query.get('file').startsWith('Other')) {
        return { status: 401, body: { error: { kind: 'unauthorized', message: 'Access denied: gated' } } };
      }
      return { body: { badge, verdict: {} } };
    },
  });
  submit(document.getElementById('hub-search'));
  await settle();
  const open = document.querySelector('#hub-results .hub-open');
  open.dispatchEvent(new document.defaultView.MouseEvent('click', { bubbles: true, cancelable: true, button: 0 }));
  await settle(20);
  const repo = document.getElementById('hub-repo');
  assert.equal(repo.hidden, false);
  assert.equal(repo.querySelector('#hub-repo-title').textContent, 'acme/Tiny-GGUF');
  assert.equal(repo.querySelector('.hub-repo-summary').textContent, '3 GGUF models');
  assert.deepEqual(fits.sort(), listed.map((m) => m.file).sort());
  const rows = Array.from(repo.querySelectorAll('.remote-model'));
  assert.equal(rows[0].querySelector('.fit-badge').hidden, false);
  assert.equal(rows[0].querySelector('.fit-badge').firstChild.data, badge.text);
  // A refusal carries the server's "Fit unknown" badge, with why in its title.
  assert.equal(rows[1].querySelector('.fit-badge').firstChild.data, unknown.text);
  assert.equal(rows[1].querySelector('.fit-badge').getAttribute('title'), unknown.summary);
  assert.equal(rows[1].querySelector('.fit-note').hidden, true);
  // One without a badge: the page says only what the server said.
  assert.equal(rows[2].querySelector('.fit-badge').hidden, true);
  assert.equal(rows[2].querySelector('.fit-note').textContent, 'Access denied: gated');
  assert.equal(repo.querySelectorAll('.is-checking').length, 0);
});

test('Download posts the model\'s reference; a refusal is a toast', async () => {
  const posted = [];
  const { document, manager } = setup({
    'POST /api/downloads': (body) => {
      posted.push(body);
      return posted.length === 1 ? { status: 202, body: { key: `download:${body.reference}` } } : { status: 400, body: { error: { kind: 'bad_reference', message: 'No such model' } } };
    },
  });
  const list = document.querySelector('#hub-repo .remote-model-list');
  const data = pageData(document);
  const row = bindRemoteModel(document, document.getElementById('llm-remote-model-template').content.firstElementChild.cloneNode(true), MODEL['a recommended model that fits'].remote_model, data.card_text);
  list.append(row);
  const button = row.querySelector('button[data-action="download"]');
  submit(row.querySelector('form'), button);
  assert.equal(button.getAttribute('aria-disabled'), 'true', 'pressed once until the server answers');
  await settle();
  assert.deepEqual(posted, [{ reference: MODEL['a recommended model that fits'].remote_model.reference }]);
  assert.equal(button.hasAttribute('aria-disabled'), false);
  submit(row.querySelector('form'), button);
  await settle();
  assert.deepEqual(manager.visibleToasts().map((t) => [t.title, t.message]), [[manager.text['error.download_failed'], 'No such model']]);
});

function pickFile(document, name = 'my-model.gguf', size = 1000) {
  const input = document.getElementById('upload-file');
  const file = new document.defaultView.File([new Uint8Array(size)], name);
  Object.defineProperty(input, 'files', { value: [file], configurable: true });
  return file;
}

test('an upload names itself first, then sends the file with its bar moving as bytes leave', async () => {
  const started = [];
  const { document, XHR, fetch, manager } = setup({
    'POST /api/uploads/start': (body) => {
      started.push(body);
      return { status: 201, body: { key: 'upload:0123456789ab' } };
    },
  });
  const file = pickFile(document);
  submit(document.getElementById('upload-form'));
  const status = document.querySelector('#upload-form .upload-status');
  assert.equal(status.hidden, false);
  await settle();
  assert.deepEqual(started, [{ name: 'my-model.gguf', size: 1000 }]);
  const xhr = XHR.instances[0];
  assert.equal(xhr.method, 'POST');
  assert.equal(new URL(xhr.url, 'http://x').pathname, `/api/uploads/${encodeURIComponent('upload:0123456789ab')}`);
  assert.equal(xhr.body, file, 'the file itself, never read into the page');
  assert.equal(status.querySelector('.upload-status-text').textContent, manager.text['upload.sending'].replace('{name}', 'my-model.gguf'));
  xhr.progress(250, 1000);
  assert.equal(status.querySelector('.upload-bar').getAttribute('value'), '25');
  xhr.progress(1000, 1000);
  assert.equal(status.querySelector('.upload-bar').getAttribute('value'), '100');
  xhr.answer(201, { key: 'upload:0123456789ab', path: '/models/my-model.gguf' });
  await settle();
  assert.equal(status.hidden, true);
  assert.equal(document.getElementById('upload-file').value, '');
  assert.ok(fetch.calls.some((call) => call.path === '/api/transfers'), 'the list is read once it ended');
  assert.deepEqual(manager.visibleToasts(), [], 'the server\'s events tell the outcome');
});

test('"Stop sending" aborts the request and cancels the upload on the server; no error toast', async () => {
  const cancels = [];
  const { document, XHR, manager } = setup({
    'POST /api/uploads/start': () => ({ status: 201, body: { key: 'upload:feedfacecafe' } }),
    'POST /api/transfers/cancel': (body) => {
      cancels.push(body.key);
      return { body: { ok: true } };
    },
  });
  pickFile(document);
  submit(document.getElementById('upload-form'));
  await settle();
  const xhr = XHR.instances[0];
  xhr.progress(400, 1000);
  document.querySelector('#upload-form .upload-cancel').click();
  await settle();
  assert.equal(xhr.aborted, true);
  assert.deepEqual(cancels, ['upload:feedfacecafe']);
  assert.equal(document.querySelector('#upload-form .upload-status').hidden, true);
  assert.deepEqual(manager.visibleToasts(), []);
});

test('a refused start is a toast with the server\'s reason, and nothing is sent', async () => {
  const { document, XHR, manager } = setup({
    'POST /api/uploads/start': () => ({ status: 413, body: { key: 'upload:1', error: { kind: 'too_large', message: 'big.gguf is 9.0 GB; this server accepts files up to 1.0 GB' } } }),
  });
  pickFile(document, 'big.gguf');
  submit(document.getElementById('upload-form'));
  await settle();
  assert.equal(XHR.instances.length, 0);
  assert.deepEqual(manager.visibleToasts().map((t) => [t.title, t.message]), [[manager.text['error.upload_failed'], 'big.gguf is 9.0 GB; this server accepts files up to 1.0 GB']]);
});

test('a connection lost while sending is a toast; a refusal mid-way is left to the server\'s own event', async () => {
  const { document, XHR, manager } = setup({
    'POST /api/uploads/start': () => ({ status: 201, body: { key: 'upload:abc' } }),
  });
  pickFile(document);
  submit(document.getElementById('upload-form'));
  await settle();
  XHR.instances[0].answer(422, { key: 'upload:abc', error: { kind: 'invalid_model', message: 'not a GGUF' } });
  await settle();
  assert.deepEqual(manager.visibleToasts(), []);
  pickFile(document);
  submit(document.getElementById('upload-form'));
  await settle();
  XHR.instances[1].fail();
  await settle();
  assert.deepEqual(manager.visibleToasts().map((t) => t.title), [manager.text['error.upload_failed']]);
});

test('Quantize posts the chosen model and type', async () => {
  const posted = [];
  const { document } = setup({
    'POST /api/quantize': (body) => {
      posted.push(body);
      return { status: 202, body: { key: 'quantize:/m/x-Q4_K_M.gguf' } };
    },
  });
  const form = document.getElementById('quantize-form');
  assert.ok(form, 'the page offers quantizing for its F32 model');
  const model = form.elements.namedItem('model').value;
  form.elements.namedItem('type').value = 'Q8_0';
  submit(form);
  await settle();
  assert.deepEqual(posted, [{ model, type: 'Q8_0' }]);
});

test('an older search answering late is dropped', async () => {
  const answers = [];
  const { document } = setup({
    'GET /api/hub/search': (_body, call) =>
      new Promise((resolve) => answers.push({ query: call.query.get('q'), resolve })),
  });
  const form = document.getElementById('hub-search');
  const view = (summary) => ({ body: { hits: [], view: { query: '', summary, hits: [] } } });
  form.elements.namedItem('q').value = 'old';
  submit(form);
  form.elements.namedItem('q').value = 'new';
  submit(form);
  await settle();
  answers.find((a) => a.query === 'new').resolve(view('1 repository'));
  await settle();
  answers.find((a) => a.query === 'old').resolve(view('9 repositories'));
  await settle();
  assert.equal(document.querySelector('#hub-results .hub-results-summary').textContent, '1 repository');
  assert.equal(document.getElementById('hub-results').hasAttribute('aria-busy'), false);
});
