"""The management page as the server renders it, for the JavaScript tests (tests/js).

Prints the page HTML for three models of the golden table (never loaded, unreadable, a split
model from LM Studio; the first offered for quantizing), so the Node tests run llm.js on the real
markup, templates and page data of llm_desktop/server/page.py rather than on a copy that could
drift. With `--remote`, a router's model (of the golden table's remote engine, connected) is
listed too, in its engine's group.
"""

from __future__ import annotations

import sys

from llm_desktop.core import presenter
from llm_desktop.server.page import page_html
from tests.golden import generate


def main() -> None:
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    remote = "--remote" in sys.argv[1:]
    entries = [generate.ENTRY, generate.UNREADABLE_ENTRY, generate.SPLIT_ENTRY]
    verdicts = [generate.verdict("cpu"), None, generate.verdict("cpu")]
    titles = presenter.titles(entries)
    views = [
        presenter.card_view(entry, verdict=verdict, title=titles[entry.id])
        for entry, verdict in zip(entries, verdicts, strict=True)
    ]
    connections = []
    if remote:
        connections = [generate.CONNECTED]
        entry = generate.remote_entry("tiny")
        views.append(presenter.card_view(entry, connection=generate.CONNECTED))
    theme = args[0] if args else None
    page = page_html(
        views,
        summary=presenter.library_summary(views),
        theme=theme,
        quantizable=[(views[0].model, views[0].title)],
        connections=connections,
    )
    sys.stdout.write(page)


if __name__ == "__main__":
    main()
