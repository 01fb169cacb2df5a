/**
 * page.js: upgrades the server-rendered page (its forms and links still work without it).
 *
 * - A card's action form (load, retry, cancel, unload, remove) runs through the manager: a load
 *   with the options the form carries (the action's, decided by the server), streamed live.
 * - The Refresh link re-reads the model list instead of reloading the page.
 * - The SSE switch (shown only with scripts) turns live updates on and off.
 * - Escape in a card whose load is running presses its Cancel (its hint says so).
 */

/** Wires `manager` to the page in `document`. Returns a function that unwires it. */
export function enhancePage(manager, document) {
  const onSubmit = (event) => {
    const form = event.target;
    if (!form || form.tagName !== 'FORM' || !form.matches('.model-card .action-form')) return;
    const button = event.submitter || form.querySelector('button[data-action]');
    if (!button || !button.dataset.action) return;
    event.preventDefault();
    if (button.getAttribute('aria-disabled') === 'true') return;
    const FormDataOfPage = form.ownerDocument.defaultView.FormData;
    const { model, ...options } = Object.fromEntries(new FormDataOfPage(form).entries());
    manager.runAction(button.dataset.action, model, options);
  };

  const onClick = (event) => {
    const link = event.target && event.target.closest ? event.target.closest('#refresh-button') : null;
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
    event.preventDefault();
    manager.refresh();
  };

  const onKeyDown = (event) => {
    if (event.key !== 'Escape' || event.defaultPrevented) return;
    const card = event.target && event.target.closest ? event.target.closest('.model-card') : null;
    const cancel = card ? card.querySelector('.model-actions button[data-action="cancel"]') : null;
    if (!cancel || cancel.getAttribute('aria-disabled') === 'true') return;
    event.preventDefault();
    cancel.form.requestSubmit(cancel);
  };

  const toggle = document.getElementById('sse-toggle');
  const onToggle = () => manager.setSseEnabled(toggle.checked);

  for (const element of document.querySelectorAll('.js-only')) element.hidden = false;
  if (toggle) {
    toggle.checked = manager.sseEnabled;
    toggle.addEventListener('change', onToggle);
  }
  document.addEventListener('submit', onSubmit);
  document.addEventListener('click', onClick);
  document.addEventListener('keydown', onKeyDown);
  return () => {
    document.removeEventListener('submit', onSubmit);
    document.removeEventListener('click', onClick);
    document.removeEventListener('keydown', onKeyDown);
    if (toggle) toggle.removeEventListener('change', onToggle);
  };
}
