// Toasts: lifetimes from the notice (or the page data), pause while hovered or focused, one toast
// per key, a limit on how many show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LLMManager } from '../../resources/web/static/js/llm.js';
import { FakeTimers, fakeEventSource, fakeFetch, golden, pageData, pageWindow } from './helpers/fakes.mjs';

const NOTICE = golden().find((c) => c.name === 'loaded').notice;

function setup(changeData) {
  const window = pageWindow();
  const document = window.document;
  const data = pageData(document);
  if (changeData) changeData(data);
  const timers = new FakeTimers();
  const manager = new LLMManager({
    document,
    pageData: data,
    timers,
    fetch: fakeFetch(() => ({ body: {} }), timers),
    EventSource: fakeEventSource(),
  });
  return { window, document, data, timers, manager };
}

const shown = (manager) => manager.visibleToasts().map((t) => t.message);

test("a notice stays for its own timeout_ms, then goes (and leaves the page)", async () => {
  const { document, manager, timers } = setup();
  const notice = { ...NOTICE, timeout_ms: 1234 };
  const element = manager.showNotice(notice);
  assert.equal(element.querySelector('.toast-message').textContent, NOTICE.text);
  assert.equal(element.querySelector('.toast-kind').textContent, NOTICE.kind_word);
  assert.equal(element.classList.contains('toast-success'), true);
  await timers.advance(1233);
  assert.deepEqual(shown(manager), [NOTICE.text]);
  await timers.advance(1);
  assert.deepEqual(shown(manager), []);
  await timers.advance(1000);
  assert.equal(document.querySelectorAll('#toast-container .toast').length, 0);
});

test('showToast takes its timeout from the page data for its type', async () => {
  const { manager, timers, data } = setup((d) => {
    d.notice_timeouts_ms = { ...d.notice_timeouts_ms, warning: 777, error: 4321 };
  });
  manager.showToast('careful', 'warning');
  manager.showToast('broken', 'error', { title: 'It broke' });
  assert.deepEqual(manager.visibleToasts().map((t) => t.timeout_ms), [777, 4321]);
  const error = manager.visibleToasts()[1].element;
  assert.equal(error.getAttribute('role'), 'alert');
  assert.equal(error.querySelector('.toast-kind').textContent, data.notice_kind_words.error);
  assert.equal(error.querySelector('.toast-title').textContent, 'It broke');
  await timers.advance(777);
  assert.deepEqual(shown(manager), ['broken']);
  await timers.advance(4321 - 777);
  assert.deepEqual(shown(manager), []);
  manager.showToast('odd', 'no-such-type');
  assert.equal(manager.visibleToasts()[0].type, 'info');
});

test('hovering pauses the timer; leaving resumes it with the time that was left', async () => {
  const { window, manager, timers } = setup();
  const element = manager.showNotice({ ...NOTICE, timeout_ms: 5000 });
  await timers.advance(3000);
  element.dispatchEvent(new window.MouseEvent('mouseenter'));
  await timers.advance(60_000);
  assert.deepEqual(shown(manager), [NOTICE.text]);
  element.dispatchEvent(new window.MouseEvent('mouseleave'));
  await timers.advance(1999);
  assert.deepEqual(shown(manager), [NOTICE.text]);
  await timers.advance(1);
  assert.deepEqual(shown(manager), []);
});

test('focus inside a toast pauses it too (a keyboard user reaching its button)', async () => {
  const { window, document, manager, timers } = setup();
  const element = manager.showNotice({ ...NOTICE, timeout_ms: 5000 });
  await timers.advance(4000);
  element.querySelector('.toast-close').focus();
  await timers.advance(30_000);
  assert.deepEqual(shown(manager), [NOTICE.text]);
  document.body.focus();
  element.dispatchEvent(new window.FocusEvent('focusout', { relatedTarget: document.body }));
  await timers.advance(1000);
  assert.deepEqual(shown(manager), []);
});

test('a notice with the key of one shown replaces it and starts its time again', async () => {
  const { document, manager, timers } = setup();
  manager.showNotice({ ...NOTICE, kind: 'info', text: 'first', timeout_ms: 5000 });
  await timers.advance(4000);
  manager.showNotice({ ...NOTICE, text: 'second', timeout_ms: 5000 });
  assert.deepEqual(shown(manager), ['second']);
  assert.equal(document.querySelectorAll('#toast-container .toast').length, 1);
  assert.equal(document.querySelector('#toast-container .toast').dataset.kind, NOTICE.kind);
  await timers.advance(4999);
  assert.deepEqual(shown(manager), ['second']);
  await timers.advance(1);
  assert.deepEqual(shown(manager), []);
});

test('at most notice_limit toasts show: the oldest gives way', () => {
  const { manager, data } = setup();
  const count = data.notice_limit + 2;
  for (let n = 0; n < count; n += 1) manager.showNotice({ ...NOTICE, key: `k${n}`, text: `t${n}` });
  const expected = Array.from({ length: data.notice_limit }, (_, i) => `t${i + 2}`);
  assert.deepEqual(shown(manager), expected);
});

test('the close button and Escape dismiss a toast', () => {
  const { window, manager } = setup();
  const first = manager.showNotice({ ...NOTICE, key: 'a', text: 'a' });
  const second = manager.showNotice({ ...NOTICE, key: 'b', text: 'b' });
  first.querySelector('.toast-close').click();
  assert.deepEqual(shown(manager), ['b']);
  second.dispatchEvent(new window.KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
  assert.deepEqual(shown(manager), []);
});
