/**
 * sources.js: the groups of the models list, one per source (this machine, each remote engine).
 *
 * The server decides every group (llm_desktop/core/source_sections.py, SourceSection.to_dict()):
 * its heading, its connection line (how an engine is reached, or why not and when it is tried
 * again), whether the heading shows and whether the group shows at all. It renders them
 * (llm_desktop/server/page.py, source_group_html) and sends them again with every listing,
 * snapshot, status and `sources` message; SourceGroups binds them onto the same elements, in
 * the server's order, and gives each card the group of its view's `source`. New groups are
 * clones of <template id="llm-source-template">. No words are written here.
 */

import { setAttr, setText } from './views.js';

/** A checked section, or null. */
export function checkSection(section) {
  if (!section || typeof section !== 'object' || Array.isArray(section)) return null;
  if (typeof section.source !== 'string' || !section.source) return null;
  return section;
}

/** Sets every element of a group from `section`. */
export function bindGroup(group, section) {
  setAttr(group, 'data-source', section.source);
  setAttr(group, 'data-state', section.state || null);
  group.hidden = Boolean(section.hidden);
  group.querySelector('.source-head').hidden = !section.heading;
  setText(group.querySelector('.source-title'), section.title);
  const line = group.querySelector('.source-line');
  line.hidden = !section.line;
  setText(line, section.line);
  return group;
}

export class SourceGroups {
  /**
   * @param {object} options
   * @param {Element} options.root                  #model-grid
   * @param {HTMLTemplateElement} options.template  #llm-source-template
   */
  constructor({ root, template }) {
    this.root = root;
    this.template = template;
    /** source → the state a person last heard (or saw rendered) */
    this.heard = new Map();
  }

  groups() {
    return this.root ? Array.from(this.root.querySelectorAll(':scope > .source-group')) : [];
  }

  group(source) {
    return this.groups().find((group) => group.dataset.source === source) || null;
  }

  /**
   * Binds the server's sections, in their order (a group for each; new ones from the template).
   * A group no section names goes once it holds no card. Returns what to announce: the
   * announcement of each engine whose state differs from the one a person last heard (the
   * server leaves it empty while an engine is connecting).
   */
  bind(sections) {
    if (!this.root || !this.template || !Array.isArray(sections)) return [];
    const checked = sections.filter(checkSection);
    const announce = [];
    checked.forEach((section, index) => {
      const found = this.group(section.source);
      if (found && !this.heard.has(section.source)) this.heard.set(section.source, found.dataset.state || '');
      const group = bindGroup(found || this._create(), section);
      const at = this.root.children[index] || null;
      if (at !== group) this.root.insertBefore(group, at);
      if (section.announcement && this.heard.get(section.source) !== section.state) {
        if (found) announce.push(section.announcement);
        this.heard.set(section.source, section.state);
      }
    });
    const named = new Set(checked.map((section) => section.source));
    for (const group of this.groups()) {
      if (named.has(group.dataset.source) || group.querySelector('.model-card')) continue;
      this.heard.delete(group.dataset.source);
      group.remove();
    }
    return announce;
  }

  /** Where a card of `source` goes: its group's cards (a group is made for a source that no
   * section named yet, headed by the source as the view says it, until the next sections). */
  cards(source) {
    let group = typeof source === 'string' && source ? this.group(source) : this.groups()[0];
    if (!group) {
      if (!this.root || !this.template) return this.root;
      group = bindGroup(this._create(), { source, title: source, heading: true });
      this.root.append(group);
    }
    return group.querySelector('.source-cards');
  }

  /** Whether a group shows something besides cards: a heading (a remote engine's line). */
  headed() {
    return this.groups().some((group) => !group.hidden && !group.querySelector('.source-head').hidden);
  }

  _create() {
    return this.template.content.firstElementChild.cloneNode(true);
  }
}
