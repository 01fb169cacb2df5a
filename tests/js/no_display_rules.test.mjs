// The page's scripts write no words and no timings of their own: every label, facts line, badge,
// toast text and timeout, stage label and announcement comes from the server. This checks the
// sources for the server's words (from the golden table and the page data).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { JS_DIR, golden, pageData, pageWindow } from './helpers/fakes.mjs';

const sources = readdirSync(JS_DIR)
  .filter((name) => name.endsWith('.js'))
  .map((name) => ({ name, text: readFileSync(join(JS_DIR, name), 'utf8') }));
const table = golden();
const cases = table.filter((c) => c.view);
const data = pageData(pageWindow().document);

/** Every string literal of a source ('…', "…", `…` without their quotes). */
function literals(text) {
  return Array.from(text.matchAll(/'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`/g), (m) => m[1] ?? m[2] ?? m[3]);
}

test('the scripts are the modules, and the old 1,850-line file is gone', () => {
  const names = sources.map((s) => s.name).sort();
  assert.deepEqual(names, [
    'getmodels.js',
    'llm.js',
    'main.js',
    'page.js',
    'sources.js',
    'sse.js',
    'store.js',
    'transfers.js',
    'transport.js',
    'views.js',
  ]);
  for (const { name, text } of sources) assert.ok(text.split('\n').length < 700, `${name} is too long`);
});

test('no stage, state, action or source label of the server is written in a script', () => {
  const words = new Set();
  for (const c of cases) {
    words.add(c.view.stage_label);
    words.add(c.view.state_label);
    for (const action of c.view.actions) words.add(action.label);
    if (c.view.fit) words.add(c.view.fit.text);
    if (c.view.source_state) words.add(c.view.source_state); // "Connected", "Unreachable"
  }
  for (const c of table.filter((t) => t.section)) {
    if (c.section.state_label) words.add(c.section.state_label);
    words.add(c.section.title); // "This machine"
  }
  for (const { name, text } of sources) {
    for (const literal of literals(text)) {
      for (const word of words) {
        const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const alone = new RegExp(`(^|[^A-Za-z-])${escaped}($|[^A-Za-z-])`); // not Retry-After
        assert.ok(!alone.test(literal), `${name} writes "${word}" in ${JSON.stringify(literal)}`);
      }
    }
    for (const label of ['Loading weights', 'Creating context', 'Warming up', 'Reading metadata']) {
      assert.ok(!text.includes(label), `${name} mentions the stage label "${label}"`);
    }
  }
});

test('no transfer or hub words of the server are written in a script', () => {
  const words = new Set();
  for (const c of table) {
    if (c.transfer) {
      words.add(c.transfer.stage_label);
      words.add(c.transfer.kind_word);
      for (const action of c.transfer.actions) words.add(action.label);
      if (c.transfer.cancel_question) {
        words.add(c.transfer.cancel_question.keep.label);
        words.add(c.transfer.cancel_question.discard.label);
      }
    }
    if (c.hit) words.add(c.hit.open.label);
    if (c.hit && c.hit.gated_label) words.add(c.hit.gated_label);
    if (c.remote_model) words.add(c.remote_model.button.label);
    if (c.remote_model && c.remote_model.recommended_label) words.add(c.remote_model.recommended_label);
    if (c.remote_model && c.remote_model.fit) words.add(c.remote_model.fit.text);
  }
  assert.ok(words.has('Downloading') && words.has('Pause') && words.has('Download'));
  for (const { name, text } of sources) {
    for (const literal of literals(text)) {
      for (const word of words) {
        const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const alone = new RegExp(`(^|[^A-Za-z-])${escaped}($|[^A-Za-z-])`);
        assert.ok(!alone.test(literal), `${name} writes "${word}" in ${JSON.stringify(literal)}`);
      }
    }
    const numbers = /\b(left|stalled|likes)\b| downloads\b/; // "about 21 s left", "42 likes"
    assert.ok(!numbers.test(literals(text).join('\n')), `${name} writes a transfer's or a hit's numbers`);
  }
});

test('no facts line, progress text or announcement is built in a script', () => {
  for (const { name, text } of sources) {
    assert.ok(!text.includes(' · '), `${name} joins a facts line with " · "`);
    assert.ok(!/\bctx\b/.test(text), `${name} writes a context length`);
    assert.ok(!/percent/.test(literals(text).join('\n')), `${name} writes an announcement`);
    assert.ok(!/\b(GB|MB|kB)\b/.test(literals(text).join('\n')), `${name} formats bytes`);
  }
});

test('no toast timeout and no PAGE_TEXT words in a script', () => {
  const timeouts = Object.values(data.notice_timeouts_ms).map(String);
  for (const { name, text } of sources) {
    for (const ms of timeouts) assert.ok(!new RegExp(`\\b${ms}\\b`).test(text), `${name} has the toast timeout ${ms}`);
    for (const literal of literals(text)) {
      for (const words of Object.values(data.text)) {
        assert.ok(!literal.includes(words), `${name} writes "${words}"`);
      }
      for (const words of Object.values(data.notice_kind_words)) {
        assert.notEqual(literal, words, `${name} writes the kind word "${words}"`);
      }
    }
  }
});
