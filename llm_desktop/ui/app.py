"""Start the desktop app: Qt application, theme, engines (this machine's and the remote ones
a person added), main window."""

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

    from llm_desktop.core.resources import resource_path
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

    from llm_desktop.core.engine import Engine
    from llm_desktop.core.engine_sources import SourceRegistry
    from llm_desktop.core.engines import EngineSet
    from llm_desktop.core.timings import StageTimes
    from llm_desktop.ui.main_window import MainWindow

    # This machine's engine and the remote engines a person added (engines-v1.json), as one.
    engine = EngineSet(
        Engine(warm_hosts=1, stage_times=StageTimes.default()),
        registry=SourceRegistry.default(),
    )
    try:
        window = MainWindow(
            engine, demo_if_empty=bool(getattr(args, "demo", False)), remember_removals=True
        )
        probe = os.environ.get("LLM_DESKTOP_STARTUP_PROBE")
        if probe:
            _install_startup_probe(app, window, probe)
        window.show()
        return app.exec()
    finally:
        engine.shutdown()


def _install_startup_probe(app, window, what: str) -> None:
    """For the cold-start benchmark: print seconds from process start to the first painted
    window (`window`) or to the web panel's page loaded (`web`), then quit."""
    import json
    import time

    import psutil
    from PySide6.QtCore import QEvent, QObject, QTimer

    created = psutil.Process().create_time()

    def report(key: str) -> None:
        print(json.dumps({key: round(time.time() - created, 3)}), flush=True)
        QTimer.singleShot(0, window.close)

    class FirstPaint(QObject):
        def eventFilter(self, watched, event) -> bool:
            if event.type() == QEvent.Type.Paint and not getattr(self, "seen", False):
                self.seen = True
                if what == "web":
                    window.web_panel.page_ready.connect(lambda ok: report("web_page_loaded_s"))
                    QTimer.singleShot(0, window.show_web_panel)
                else:
                    QTimer.singleShot(0, lambda: report("first_paint_s"))
            return False

    window._startup_probe = FirstPaint(window)
    window.installEventFilter(window._startup_probe)
