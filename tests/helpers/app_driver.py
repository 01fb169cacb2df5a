"""The desktop app as a process a test can kill: the real window, engine and controller (what
`llm-desktop` starts), plus one line of JSON on stdout per transfer event and per library scan.

    python -m tests.helpers.app_driver [--download REF] [--until-complete]

`--download` starts a download from the app (as the Get models button does) once the window is
up; `--until-complete` closes the app when a download completes. Run it under
QT_QPA_PLATFORM=offscreen with HF_ENDPOINT, HF_HUB_CACHE, XDG_DATA_HOME (the restart list) and
LLM_DESKTOP_MODELS_DIR pointing at a test's folders.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--download")
    parser.add_argument("--until-complete", action="store_true")
    parser.add_argument(
        "--give-up-after", type=float, default=90.0, help="close the app after this long"
    )
    args = parser.parse_args()

    from PySide6.QtCore import QTimer

    from llm_desktop.core.engine import Engine
    from llm_desktop.core.events import TRANSFER_OPS, Stage
    from llm_desktop.ui.app import create_application, prepare_environment
    from llm_desktop.ui.main_window import MainWindow

    prepare_environment()
    app = create_application()
    engine = Engine(warm_hosts=0)
    try:
        window = MainWindow(engine)
        controller = window.controller

        def report(event) -> None:
            if event.op not in TRANSFER_OPS:
                return
            print(json.dumps(event.to_dict()), flush=True)
            if args.until_complete and event.stage is Stage.COMPLETE:
                QTimer.singleShot(1000, window.close)  # after the scan lists the new file

        def listed() -> None:
            paths = [view.path for view in controller.store.views()]
            print(json.dumps({"library": paths}), flush=True)

        controller.bridge.event_received.connect(report)
        controller.library_changed.connect(listed)
        window.show()
        QTimer.singleShot(int(args.give_up_after * 1000), window.close)
        if args.download:
            QTimer.singleShot(0, lambda: controller.download(args.download))
        return app.exec()
    finally:
        engine.shutdown()


if __name__ == "__main__":
    sys.exit(main())
