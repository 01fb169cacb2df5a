"""The management page as the server renders it, for the JavaScript tests (tests/js).

Prints the page HTML for three models of the golden table (never loaded, unreadable, a split
model from LM Studio; the first offered for quantizing), so the Node tests run llm.js on the real
markup, templates and page data of llm_desktop/server/page.py rather than on a copy that could
drift.
"""

from __future__ import annotations

import sys

from llm_desktop.core import presenter
from llm_desktop.server.page import page_html
from tests.golden import generate


def main() -> None:
    entries = [generate.ENTRY, generate.UNREADABLE_ENTRY, generate.SPLIT_ENTRY]
    verdicts = [generate.verdict("cpu"), None, generate.verdict("cpu")]
    titles = presenter.titles(entries)
    views = [
        presenter.card_view(entry, verdict=verdict, title=titles[entry.id])
        for entry, verdict in zip(entries, verdicts, strict=True)
    ]
    theme = sys.argv[1] if len(sys.argv) > 1 else None
    page = page_html(
        views,
        summary=presenter.library_summary(views),
        theme=theme,
        quantizable=[(views[0].model, views[0].title)],
    )
    sys.stdout.write(page)


if __name__ == "__main__":
    main()
