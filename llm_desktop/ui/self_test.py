"""`llm-desktop --self-test`: the real app, end to end, offscreen, in a few seconds.

It makes a demo model in a temporary folder, loads it through a model host from the window,
checks the progress events, opens the web panel and reads the page's state for the same model,
unloads, and exits 0; or exits 1 naming the step that failed. It runs the same from source, from
the PyInstaller bundle and from the installed package.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


class StepFailed(Exception):
    pass


def run_self_test() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.monotonic()
    step_name = "start"

    def step(name: str) -> None:
        nonlocal step_name
        step_name = name
        print(f"self-test: {name}…", flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="llm-desktop-self-test-") as temp:
            _run(Path(temp), step)
    except Exception as exc:
        print(f"self-test FAILED at step '{step_name}': {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"self-test passed in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def _run(root: Path, step: Callable[[str], None]) -> None:
    step("starting Qt")
    from PySide6.QtCore import QSettings

    from llm_desktop.ui.app import create_application, prepare_environment

    prepare_environment()
    app = create_application()

    def wait(condition: Callable[[], object], timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while True:
            app.processEvents()
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out waiting for {what}")
            time.sleep(0.01)

    step("writing a demo model")
    from llm_desktop.core.demo import spec_for_size, write_demo_model

    models = root / "models"
    write_demo_model(models / "self-test.gguf", spec_for_size(8))

    step("opening the window")
    from llm_desktop.core.engine import Engine
    from llm_desktop.core.events import ModelState, Stage
    from llm_desktop.ui.main_window import MainWindow

    settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
    engine = Engine(warm_hosts=1)
    window = MainWindow(
        engine, settings=settings, models_dir=models, include_known=False, poll_hardware=False
    )
    try:
        window.show()
        wait(lambda: len(window.cards) == 1, 30, "the library to list the demo model")
        (card,) = window.cards.values()

        step("loading through a model host")
        stages: list[Stage] = []
        window.bridge.event_received.connect(
            lambda event: event.model == card.model_id and stages.append(event.stage)
        )
        card.load_button.click()
        wait(
            lambda: card.view.state in (ModelState.LOADED, ModelState.FAILED),
            120,
            "the load to end",
        )
        if card.view.state is not ModelState.LOADED:
            raise StepFailed(f"the load failed: {card.view.detail}")
        for needed in (Stage.CONNECTING, Stage.LOADING, Stage.COMPLETE):
            if needed not in stages:
                raise StepFailed(f"no '{needed}' event was seen (saw {stages})")

        step("opening the web panel")
        window.show_web_panel()
        page = wait(lambda: window.web_panel.page, 30, "the web panel")
        answers: list = []
        pending: list = []
        script = (
            "JSON.stringify(window.llmManager ? "
            f"llmManager.getProgress({json.dumps(card.model_id)}) : null)"
        )

        def read_page() -> bool:
            if not pending:
                pending.append(True)
                page.runJavaScript(
                    script, 0, lambda value: (answers.append(value), pending.clear())
                )
            if not answers:
                return False
            value = answers.pop()
            progress = json.loads(value) if value else None
            return bool(progress) and progress["state"] == "loaded" and progress["pct"] == 100

        wait(read_page, 60, "the page to show the model loaded at 100%")

        step("unloading")
        card.unload_button.click()
        wait(lambda: card.view.state is ModelState.UNLOADED, 60, "the unload")
    finally:
        step("closing")
        window.close()
        engine.shutdown()
