// store.js: the newest event and view per model by seq; each notice handed on once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelStore } from '../../resources/web/static/js/store.js';
import { golden } from './helpers/fakes.mjs';

const CASES = Object.fromEntries(golden().filter((c) => c.view).map((c) => [c.name, c]));
const DEMO = CASES['never loaded'].view.model;

function ev(name, seq, model = DEMO) {
  const c = CASES[name];
  return { ...c.event, model, seq, view: { ...c.view, model, seq }, notice: c.notice ? { ...c.notice, model } : null };
}

test('a payload seen twice (two streams) changes nothing the second time; its notice goes once', () => {
  const store = new ModelStore();
  const changes = [];
  store.subscribe((change) => changes.push(change));
  store.applyPayload(ev('loaded', 9));
  store.applyPayload(ev('loaded', 9));
  assert.equal(changes.length, 2);
  assert.ok(changes[0].view && changes[0].notice && changes[0].event);
  assert.deepEqual(Object.keys(changes[1]), ['model']);
  assert.deepEqual(store.progressLog.map((e) => e.seq), [9]);
});

test('an older event after a newer one is ignored; lastSeq is the highest seen', () => {
  const store = new ModelStore();
  store.applyPayload(ev('loading weights', 5));
  store.applyPayload(ev('connecting', 1));
  assert.equal(store.view(DEMO).seq, 5);
  assert.equal(store.event(DEMO).stage, 'loading');
  assert.equal(store.lastSeq, 5);
});

test('a notice seen first without it (status polling) is still handed on by the payload', () => {
  const store = new ModelStore();
  const failed = ev('out of RAM', 10);
  store.applyStatus({ models: { [DEMO]: { ...failed, view: undefined, notice: undefined } }, views: { [DEMO]: failed.view } });
  const change = store.applyPayload(failed);
  assert.equal(change.notice.kind, 'error');
  assert.equal(change.view, undefined, 'the view was already there');
  assert.equal(store.applyPayload(failed).notice, undefined);
});

test('a snapshot replaces what the store knew and removes the models it lacks', () => {
  const store = new ModelStore();
  store.applyPayload(ev('loaded', 9));
  store.applyPayload(ev('loaded', 9, 'other-0000000001'));
  const changes = store.applySnapshot({ seq: 3, views: [{ ...CASES['never loaded'].view, seq: 0 }], models: {} });
  assert.deepEqual(changes.map((c) => [c.model, Boolean(c.removed)]), [['other-0000000001', true], [DEMO, false]]);
  assert.equal(store.view(DEMO).state, 'unloaded');
  assert.equal(store.lastSeq, 3);
});

test('a listing rebinds a view of the same seq (new titles), never an older one', () => {
  const store = new ModelStore();
  store.applyPayload(ev('loaded', 9));
  const renamed = { ...store.view(DEMO), title: 'Renamed' };
  assert.ok(store.applyViews([renamed])[0].view);
  assert.equal(store.applyViews([{ ...renamed, seq: 2, title: 'Old' }])[0].view, undefined);
  assert.equal(store.view(DEMO).title, 'Renamed');
});
