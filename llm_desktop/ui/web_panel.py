"""The web panel: the llm.js page, served by the in-app server, inside a QWebEngineView.

Both this page and the Qt cards render the same engine events (the page through SSE), so a load
started from either moves both. The first request carries the token (`?token=`); the server
trades it for a strict same-site cookie and redirects to the bare address, in a view that has
no address bar anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QUrl, Signal
from PySide6.QtWebEngineCore import QWebEnginePage
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QVBoxLayout, QWidget

log = logging.getLogger(__name__)
js_log = logging.getLogger("llm_desktop.web.console")

_LEVELS = {
    QWebEnginePage.JavaScriptConsoleMessageLevel.InfoMessageLevel: logging.INFO,
    QWebEnginePage.JavaScriptConsoleMessageLevel.WarningMessageLevel: logging.WARNING,
    QWebEnginePage.JavaScriptConsoleMessageLevel.ErrorMessageLevel: logging.ERROR,
}


class ConsoleLoggingPage(QWebEnginePage):
    """A page whose JavaScript console goes to the app log.

    Signals:
        console_message(int, str, str): Python logging level, message, "source:line".
    """

    console_message = Signal(int, str, str)

    def javaScriptConsoleMessage(self, level, message: str, line: int, source: str) -> None:
        python_level = _LEVELS.get(level, logging.INFO)
        where = f"{source}:{line}"
        js_log.log(python_level, "%s (%s)", message, where)
        self.console_message.emit(python_level, message, where)


class WebPanel(QWidget):
    """Hosts the management page; starts the server only when first shown.

    Signals:
        page_ready(bool): the page finished loading (True) or failed to (False).
    """

    page_ready = Signal(bool)

    def __init__(self, page_url: Callable[[], str], parent: QWidget | None = None):
        super().__init__(parent)
        self._page_url = page_url
        self.setAccessibleName("Web panel")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        # Chromium (and its processes) start only when the panel is first opened: a window
        # that never shows the panel pays nothing for it.
        self.view: QWebEngineView | None = None
        self.page: ConsoleLoggingPage | None = None

    @property
    def opened(self) -> bool:
        return self.view is not None

    def open(self) -> None:
        if self.view is not None:
            return
        self.view = QWebEngineView()
        self.page = ConsoleLoggingPage(self.view)
        self.view.setPage(self.page)
        self.view.setAccessibleName("Web panel: the llm.js management page")
        self.view.loadFinished.connect(self.page_ready)
        self._layout.addWidget(self.view)
        self.view.setUrl(QUrl(self._page_url()))

    def shutdown(self) -> None:
        """Delete the page before its view and profile: Chromium warns (and may crash at exit)
        when a profile is released while a page still uses it."""
        if self.page is not None:
            self.page.deleteLater()
            self.page = None
        if self.view is not None:
            self.view.deleteLater()
            self.view = None
