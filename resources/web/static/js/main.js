/**
 * main.js: the page's one bootstrap. Reads the page data, creates the manager over the
 * server-rendered cards, upgrades the forms, follows every model's events, and exposes the
 * manager as window.llmManager (the Qt panel's tests use it) and the seed's window.loadModel,
 * and upgrades the "Get models" section (window.llmGetModels: its hub panel and uploader).
 */

import { LLMManager, readPageData } from './llm.js';
import { enhancePage } from './page.js';
import { enhanceGetModels } from './getmodels.js';

const pageData = readPageData(document);
const manager = new LLMManager({ document, pageData });
window.llmManager = manager;
window.loadModel = (modelId, options) => manager.loadModelWithSSE(modelId, options);

if (pageData.authorized !== false) {
  enhancePage(manager, document);
  window.llmGetModels = enhanceGetModels(manager, document);
  manager.subscribeToEvents();
  // Leaving the page closes its streams; coming back from the back/forward cache reopens them.
  window.addEventListener('pagehide', () => manager.cleanup());
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) manager.subscribeToEvents();
  });
}
