"""Start the desktop app: Qt application, theme, engine, main window."""

from __future__ import annotations

import argparse
import os
import sys

from llm_desktop import __version__


def prepare_environment() -> None:
    """Settings Qt reads before it starts."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Chromium refuses to run as root with its sandbox on; the web panel needs this.
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    if "--disable-gpu" not in flags:
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --disable-gpu").strip()


def create_application(argv: list[str] | None = None):
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from llm_desktop.resources import resource_path
    from llm_desktop.ui import theme

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setOrganizationName("llm-desktop")
    app.setApplicationName("llm-desktop")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("llm-desktop")
    app.setWindowIcon(QIcon(str(resource_path("icons", "llm-desktop.png"))))
    theme.apply_theme(app)
    theme.follow_system(app)
    return app


def run(args: argparse.Namespace | None = None) -> int:
    prepare_environment()
    app = create_application()

    from llm_desktop.engine import Engine
    from llm_desktop.ui.main_window import MainWindow

    engine = Engine(warm_hosts=1)
    try:
        window = MainWindow(engine, demo_if_empty=bool(getattr(args, "demo", False)))
        window.show()
        return app.exec()
    finally:
        engine.shutdown()
