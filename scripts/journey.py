"""A new user's first model, screenshot by screenshot, into docs/screenshots/get-models-*.png.

Run under a real X server: `xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python
scripts/journey.py` (`scripts/screenshots.py`, and so `make screenshots`, runs it too). It starts
the loopback hub (`python -m tests.helpers.fake_hub --demo`, throttled so that a download takes
long enough to watch), points the app at it and at empty temporary folders (HF_ENDPOINT,
HF_HUB_CACHE, LLM_DESKTOP_MODELS_DIR), and then does what a person does: opens "Get models",
searches "demo", reads the fit verdicts, downloads the recommended file, pauses, resumes, waits
for the checksum, presses Load, and quantizes the new model from its card's menu. Everything is
real: the hub client, the download, the model host that loads it, the quantizer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
THROTTLE_BYTES_PER_S = 1_500_000  # the 12.6 MB demo file takes about 8 s
REPO = "llm-desktop/Tiny-Demo-GGUF"


def wait_until(app: QApplication, condition, timeout_s: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"state not reached: {what}")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, ms: int = 400) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def grab_now(window: QWidget):
    """The window as it is this instant (from inside a slot): pending layouts done first."""
    for _ in range(4):  # a row that grew resizes the tray, which relays out the window
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        for widget in [window, *window.findChildren(QWidget)]:
            if widget.layout() is not None:
                widget.layout().activate()
    return window.grab()


def click(widget: QWidget) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def start_hub(root: Path) -> tuple[subprocess.Popen, str]:
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.helpers.fake_hub",
            "--root",
            str(root / "hub"),
            "--demo",
            "--throttle",
            str(THROTTLE_BYTES_PER_S),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    first = hub.stdout.readline().split()
    if first[:1] != ["ENDPOINT"]:
        hub.kill()
        raise RuntimeError(f"the hub did not start: {first}")
    return hub, first[1]


def take_journey(app: QApplication, out: Path = OUT) -> list[Path]:
    """Drive the journey in `app` (its theme as set); returns the screenshots written."""
    from llm_desktop.core.engine import Engine
    from llm_desktop.core.events import ModelState, Stage
    from llm_desktop.core.presenter import ActionId
    from llm_desktop.ui.main_window import MainWindow

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def shot(name: str, widget: QWidget | None = None, pixmap=None) -> None:
        path = out / f"get-models-{name}.png"
        (pixmap or (widget or window).grab()).save(str(path))
        written.append(path)

    with tempfile.TemporaryDirectory(prefix="llm-journey-") as temp:
        root = Path(temp)
        hub, endpoint = start_hub(root)
        names = ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_TOKEN", "LLM_DESKTOP_MODELS_DIR")
        saved = {name: os.environ.get(name) for name in names}
        os.environ.update(
            HF_ENDPOINT=endpoint,
            HF_HUB_CACHE=str(root / "hf-cache"),
            LLM_DESKTOP_MODELS_DIR=str(root / "models"),
        )
        os.environ.pop("HF_TOKEN", None)
        engine = Engine(warm_hosts=1)
        try:
            settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
            window = MainWindow(engine, settings=settings, state_dir=root / "state")
            window.resize(1280, 800)
            window.show()
            wait_until(app, lambda: window.empty_state.isVisible(), what="empty library")
            settle(app, 1500)  # the hardware panel's first poll

            # 1. Get models: search "demo", open the first repository, read the fit verdicts.
            click(window.find_button)
            page = window.get_models
            QTest.keyClicks(page.search_box, "demo")
            QTest.keyClick(page.search_box, Qt.Key.Key_Return)
            wait_until(app, lambda: REPO in page.repo_ids(), what="search results")
            page.select_repo(REPO)

            def fits_read() -> bool:
                rows = page.rows.values()
                return bool(rows) and all(row.view.fit.verdict != "pending" for row in rows)

            wait_until(app, fits_read, what="fit verdicts")
            settle(app)
            shot("search")

            # 2. Download the recommended file: bar, amount, rate, time left.
            (row,) = [r for r in page.rows.values() if r.view.recommended]
            key = row.view.key
            click(row.button)
            wait_until(app, lambda: key in window.transfers_panel.rows, what="transfer row")
            transfer = window.transfers_panel.rows[key]

            def downloading(min_pct: int):
                return lambda: (
                    transfer.view.stage is Stage.DOWNLOADING
                    and transfer.view.pct >= min_pct
                    and bool(transfer.view.eta_text)
                )

            wait_until(app, downloading(25), what="downloading")
            settle(app, 200)
            shot("downloading")

            # 3. Pause: the bytes stay, Resume is offered.
            click(transfer.buttons[ActionId.PAUSE])
            wait_until(app, lambda: transfer.view.stage is Stage.PAUSED, what="paused")
            paused_at = transfer.view.pct
            settle(app)
            shot("paused")

            # 4. Resume: it carries on from the bytes kept.
            click(transfer.buttons[ActionId.RESUME])
            wait_until(app, downloading(paused_at + 15), what="resumed")
            shot("resumed")

            # 5. The checksum is verified before the file takes its name: caught as it shows.
            verifying = {}

            def catch(view) -> None:
                if view.key == key and view.stage is Stage.VERIFYING and "shot" not in verifying:
                    verifying["shot"] = grab_now(window)

            window.controller.transfer_changed.connect(catch)
            wait_until(app, lambda: transfer.view.stage is Stage.COMPLETE, what="downloaded")
            window.controller.transfer_changed.disconnect(catch)
            if "shot" in verifying:
                shot("verifying", pixmap=verifying["shot"])
            settle(app, 600)  # the success toast slides in
            shot("downloaded")

            # 6. Load: the library lists the new model and loads it.
            click(transfer.buttons[ActionId.LOAD])

            def loaded() -> bool:
                return any(card.view.state is ModelState.LOADED for card in window.cards.values())

            wait_until(app, loaded, what="loaded")
            settle(app, 800)
            shot("loaded")

            # 7. Quantize the new model from its card's menu ("More" → "Quantize to…").
            (card,) = window.cards.values()
            quantizing = {}

            def catch_quantize(view) -> None:
                if view.op == "quantize" and view.stage is Stage.QUANTIZING and view.pct >= 40:
                    quantizing.setdefault("shot", grab_now(window))

            window.controller.transfer_changed.connect(catch_quantize)
            (q8,) = [a for a in card.quantize_menu.actions() if a.text() == "Q8_0"]
            q8.trigger()
            wait_until(app, lambda: len(window.cards) == 2, what="quantized model listed")
            window.controller.transfer_changed.disconnect(catch_quantize)
            if "shot" in quantizing:
                shot("quantizing", pixmap=quantizing["shot"])
            settle(app, 600)
            shot("quantized")
            window.close()
        finally:
            engine.shutdown()
            hub.terminate()
            hub.wait(10)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return written


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from llm_desktop.ui import theme
    from llm_desktop.ui.app import create_application, prepare_environment

    prepare_environment()
    app = create_application()
    theme.apply_theme(app, "light")
    for path in take_journey(app):
        print(path)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.exit(main())
