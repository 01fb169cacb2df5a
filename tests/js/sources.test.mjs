// The models list's groups (this machine, each remote engine) and the cards' source chip, on the
// server's real page with a router's model (render_page.py --remote): the page binds a group and a
// chip as the server renders them (the golden table's `section` and remote card cases), puts each
// card in its source's group, and follows a remote engine's connection from the server's
// `sources` messages, snapshots and status answers, in the server's words.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LLMManager } from '../../resources/web/static/js/llm.js';
import { SourceGroups, bindGroup } from '../../resources/web/static/js/sources.js';
import { CardBinder } from '../../resources/web/static/js/views.js';
import { FakeTimers, ROOT, canon, fakeEventSource, fakeFetch, golden, pageData, pageWindow } from './helpers/fakes.mjs';

const cases = golden();
const SECTIONS = cases.filter((c) => c.section);
const CARDS = Object.fromEntries(cases.filter((c) => c.view).map((c) => [c.name, c]));
const LOCAL = CARDS['never loaded'].view;
const REMOTE = CARDS['remote: not loaded, its router connected'].view;
const UNREACHABLE = CARDS['remote: loaded, its router unreachable'].view;

function remotePage() {
  const venv = join(ROOT, process.env.VENV || '.venv', 'bin', 'python');
  const python = process.env.LLM_DESKTOP_PYTHON || (existsSync(venv) ? venv : 'python3');
  const result = spawnSync(python, ['-m', 'tests.js.render_page', '--remote'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`rendering the page failed:\n${result.stderr}`);
  return result.stdout;
}

const PAGE = remotePage();

function element(document, html) {
  const box = document.createElement('div');
  box.innerHTML = html;
  return box.firstElementChild;
}

/** The sections of golden table `name` ("this machine and a router", …), in order. */
function sections(name) {
  const found = SECTIONS.filter((c) => c.name.startsWith(`sources: ${name}: `)).map((c) => c.section);
  assert.ok(found.length, name);
  return found;
}

function setup() {
  const window = pageWindow(PAGE);
  const document = window.document;
  const timers = new FakeTimers();
  const ES = fakeEventSource();
  const server = { status: { models: {}, views: {}, seq: 0 } };
  const fetch = fakeFetch((method, path) => {
    if (path === '/api/llm/status') return { body: server.status };
    return { status: 404, body: { error: { kind: 'not_found', message: 'Nothing here' } } };
  }, timers);
  const manager = new LLMManager({ document, fetch, EventSource: ES, timers });
  return { document, timers, ES, server, manager };
}

const group = (document, source) =>
  Array.from(document.querySelectorAll('#model-grid > .source-group')).find((g) => g.dataset.source === source) || null;
const cardsOf = (document, source) =>
  Array.from(group(document, source).querySelectorAll('.model-card')).map((card) => card.dataset.modelId);
const chip = (document, model) => document.querySelector(`.model-card[data-model-id="${model}"] .source-chip`);

test('the golden table has remote cards and the groups of every kind', () => {
  const remote = Object.values(CARDS).filter((c) => c.view.source !== LOCAL.source);
  assert.ok(remote.length >= 8, `only ${remote.length} remote cards`);
  assert.ok(remote.some((c) => c.view.source_state === UNREACHABLE.source_state && UNREACHABLE.source_state));
  assert.ok(SECTIONS.some((c) => !c.section.heading) && SECTIONS.some((c) => c.section.hidden));
});

for (const c of SECTIONS) {
  test(`golden: a group bound with "${c.name}" is what the server renders`, () => {
    const { document } = pageWindow(PAGE);
    const template = document.getElementById('llm-source-template');
    const fresh = bindGroup(template.content.firstElementChild.cloneNode(true), c.section);
    assert.deepEqual(canon(fresh), canon(element(document, c.html)));
  });
}

test('golden: one group bound with every section in turn matches each', () => {
  const { document } = pageWindow(PAGE);
  const shown = element(document, SECTIONS[0].html);
  for (const c of [...SECTIONS, ...SECTIONS.slice().reverse()]) {
    bindGroup(shown, c.section);
    assert.deepEqual(canon(shown), canon(element(document, c.html)), c.name);
  }
});

test('the source chip: a remote card says where it runs and how its engine is reached', () => {
  const { document } = pageWindow(PAGE);
  const data = pageData(document);
  const binder = new CardBinder({
    document,
    template: document.getElementById('llm-card-template'),
    cardText: data.card_text,
    formActions: data.form_actions,
  });
  const card = binder.create(REMOTE);
  const source = card.querySelector('.source-chip');
  assert.equal(source.hidden, false);
  assert.equal(source.querySelector('.source-name').textContent, REMOTE.source);
  assert.equal(source.querySelector('.source-state').textContent, REMOTE.source_state);
  assert.equal(source.getAttribute('title'), REMOTE.source_detail);
  binder.bind(card, { ...UNREACHABLE, model: REMOTE.model });
  assert.equal(source.querySelector('.source-state').textContent, UNREACHABLE.source_state);
  assert.equal(source.getAttribute('title'), UNREACHABLE.source_detail);
  binder.bind(card, { ...LOCAL, model: REMOTE.model });
  assert.equal(source.hidden, true, "this machine's cards say so by their group");
  assert.equal(source.hasAttribute('title'), false);
});

test('the server page: each card in its source group, the engine line above its cards', () => {
  const { document } = setup();
  assert.deepEqual(
    Array.from(document.querySelectorAll('#model-grid > .source-group')).map((g) => g.dataset.source),
    [LOCAL.source, REMOTE.source],
  );
  assert.deepEqual(cardsOf(document, REMOTE.source), [REMOTE.model]);
  assert.equal(cardsOf(document, LOCAL.source).length, 3);
  const line = group(document, REMOTE.source).querySelector('.source-line');
  assert.equal(line.textContent, REMOTE.source_detail);
  assert.equal(line.hidden, false);
});

test('a sources message: an engine that dropped, its cards and line in the server words, announced', async () => {
  const { document, ES, manager } = setup();
  manager.subscribeToEvents();
  const es = ES.last();
  es.open();
  const dropped = sections('this machine and an unreachable router');
  const views = [LOCAL, { ...UNREACHABLE, model: REMOTE.model, title: REMOTE.title }];
  es.emit('sources', { views, summary: '2 models', sources: dropped });
  const remote = dropped.find((s) => s.source === REMOTE.source);
  const shown = group(document, REMOTE.source);
  assert.equal(shown.dataset.state, 'disconnected');
  assert.equal(shown.querySelector('.source-line').textContent, remote.line);
  assert.equal(chip(document, REMOTE.model).querySelector('.source-state').textContent, UNREACHABLE.source_state);
  assert.equal(document.getElementById('llm-announcer').textContent, remote.announcement);
  assert.equal(document.getElementById('library-summary').textContent, '2 models');
  assert.deepEqual(cardsOf(document, LOCAL.source), [LOCAL.model], 'the listing is every card: others go');
  assert.equal(manager.stats.unparsable, 0);

  // Each attempt to reach it again (connecting, then unreachable again) is not heard again.
  const announcer = document.getElementById('llm-announcer');
  announcer.textContent = '';
  const connecting = sections('a router connecting, an unreachable one').filter((s) => s.source !== 'attic');
  assert.equal(connecting.find((s) => s.source === REMOTE.source).state, 'connecting');
  es.emit('sources', { views, summary: '2 models', sources: connecting });
  assert.equal(group(document, REMOTE.source).dataset.state, 'connecting');
  es.emit('sources', { views, summary: '2 models', sources: dropped });
  assert.equal(announcer.textContent, '');
  const back = sections('this machine and a router');
  es.emit('sources', { views, summary: '2 models', sources: back });
  assert.equal(announcer.textContent, back.find((s) => s.source === REMOTE.source).announcement);
});

test('a sources message with a new remote model puts its card in its group; a gone engine takes its group', async () => {
  const { document, ES, manager } = setup();
  manager.subscribeToEvents();
  const es = ES.last();
  es.open();
  const both = sections('this machine and a router');
  const newcomer = { ...REMOTE, model: 'lab-gpu-small-0123456789', title: 'small' };
  es.emit('sources', { views: [LOCAL, REMOTE, newcomer], summary: '', sources: both });
  assert.deepEqual(cardsOf(document, REMOTE.source), [REMOTE.model, newcomer.model]);
  es.emit('sources', { views: [LOCAL], summary: '', sources: sections('this machine alone') });
  assert.equal(group(document, REMOTE.source), null);
  assert.equal(group(document, LOCAL.source).querySelector('.source-head').hidden, true);
  assert.deepEqual(cardsOf(document, LOCAL.source), [LOCAL.model]);
});

test('a snapshot and a status answer bring the groups too; a card before its group gets one', async () => {
  const { document, ES, timers, server, manager } = setup();
  manager.subscribeToEvents();
  const es = ES.last();
  es.open();
  const connecting = sections('a router connecting, an unreachable one');
  es.emit('snapshot', { seq: 5, views: [LOCAL, REMOTE], models: {}, transfers: [], sources: connecting });
  assert.deepEqual(
    Array.from(document.querySelectorAll('#model-grid > .source-group')).map((g) => g.dataset.source),
    connecting.map((s) => s.source),
  );
  assert.equal(group(document, 'attic').querySelector('.source-line').textContent, connecting.find((s) => s.source === 'attic').line);

  manager.setSseEnabled(false); // the page polls /api/llm/status
  const elsewhere = { ...REMOTE, model: 'elsewhere-tiny-0123456789', source: 'elsewhere' };
  server.status = { models: {}, views: { [elsewhere.model]: elsewhere }, sources: connecting, seq: 5 };
  await timers.advance(0);
  const made = group(document, 'elsewhere');
  assert.ok(made, 'a group for a source no section named yet');
  assert.equal(made.querySelector('.source-title').textContent, 'elsewhere');
  assert.deepEqual(cardsOf(document, 'elsewhere'), [elsewhere.model]);
  manager.cleanup();
});

test('an engine with no model listed still shows its line; the empty state says no models', () => {
  const { document } = pageWindow(PAGE);
  const root = document.getElementById('model-grid');
  for (const card of Array.from(root.querySelectorAll('.model-card'))) card.remove();
  const groups = new SourceGroups({ root, template: document.getElementById('llm-source-template') });
  groups.bind(sections('a router connecting, an unreachable one'));
  assert.equal(groups.headed(), true);
  groups.bind(sections('this machine alone'));
  assert.equal(groups.headed(), false);
});

test('with an engine and no card, the page shows the engine group and the empty state', async () => {
  const { document, ES, manager } = setup();
  manager.subscribeToEvents();
  const es = ES.last();
  es.open();
  const unreachable = sections('a router connecting, an unreachable one').filter((s) => s.source !== 'lab-gpu');
  es.emit('sources', { views: [], summary: '0 models', sources: unreachable });
  assert.equal(document.querySelectorAll('.model-card').length, 0);
  assert.equal(document.getElementById('model-grid').hidden, false);
  assert.equal(document.getElementById('empty-state').hidden, false);
  es.emit('sources', { views: [], summary: '0 models', sources: sections('this machine alone') });
  assert.equal(document.getElementById('model-grid').hidden, true);
});
