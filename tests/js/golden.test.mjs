// The golden table from the page's side: binding a case's view onto a card gives the DOM the
// server renders for it (tests/golden/presentation.json, written by the Python presenter).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CardBinder } from '../../resources/web/static/js/views.js';
import { canon, golden, pageData, pageWindow } from './helpers/fakes.mjs';

const window = pageWindow();
const document = window.document;
const data = pageData(document);
const cases = golden();
const cardCases = cases.filter((c) => c.view);

function binder() {
  return new CardBinder({
    document,
    template: document.getElementById('llm-card-template'),
    cardText: data.card_text,
    formActions: data.form_actions,
  });
}

function cardFrom(html) {
  const box = document.createElement('div');
  box.innerHTML = html;
  return box.firstElementChild;
}

test('the golden table has card cases and a titles case', () => {
  assert.ok(cardCases.length >= 15, `only ${cardCases.length} card cases`);
  assert.ok(cases.some((c) => c.titles));
});

for (const c of cardCases) {
  test(`golden: a card bound with "${c.name}" is what the server renders`, () => {
    const card = cardFrom(cardCases[0].html);
    binder().bind(card, c.view);
    assert.deepEqual(canon(card), canon(cardFrom(c.html)));
  });
}

test('golden: one card bound with every case in turn matches each (live updates)', () => {
  const bind = binder();
  const card = cardFrom(cardCases[0].html);
  for (const c of [...cardCases, ...cardCases.slice().reverse()]) {
    bind.bind(card, c.view);
    assert.deepEqual(canon(card), canon(cardFrom(c.html)), c.name);
  }
});

test('golden: a card cloned from the page template and bound is what the server renders', () => {
  const bind = binder();
  for (const c of cardCases) {
    assert.deepEqual(canon(bind.create(c.view)), canon(cardFrom(c.html)), c.name);
  }
});

test('golden: the binder keeps a form whose action stays (and its focus)', () => {
  const bind = binder();
  const loading = cardCases.find((c) => c.name === 'loading weights');
  const next = cardCases.find((c) => c.name === 'creating context');
  const card = cardFrom(loading.html);
  document.body.append(card);
  const cancel = card.querySelector('button[data-action="cancel"]');
  cancel.focus();
  bind.bind(card, next.view);
  assert.equal(card.querySelector('button[data-action="cancel"]'), cancel);
  assert.equal(document.activeElement, cancel);
  card.remove();
});

test('golden: titles that disambiguate two models are shown as given', () => {
  const { titles } = cases.find((c) => c.titles);
  const base = cardCases[0].view;
  const bind = binder();
  const shown = Object.entries(titles).map(([model, title]) => {
    const card = bind.create({ ...base, model, title });
    assert.equal(card.querySelector('.model-name').textContent, title);
    assert.equal(card.querySelector('.progress-bar').getAttribute('aria-label').startsWith(title), true);
    assert.equal(card.getAttribute('aria-labelledby'), `model-${model}-title`);
    return card.querySelector('.model-name').textContent;
  });
  assert.equal(new Set(shown).size, shown.length, 'two cards must not show one title');
});
