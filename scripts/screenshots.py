"""Take screenshots of the app's main states into docs/screenshots/.

Run under a real X server (Xvfb): `xvfb-run -a .venv/bin/python scripts/screenshots.py`
(`make screenshots` does that). It builds a throwaway library of generated models, drives real
loads through the engine, and grabs the window at each state; the Serving tab with requests
the official `openai` client made (one loads its model on request) and a chat in Try it; remote
engines (two real llama.cpp routers on loopback, added in the Engines tab, a card loading on one
of them); then `journey.py` takes a new user's first download from a hub on loopback (the
get-models-*.png).

`--only remote` takes the remote-engine shots alone (remote-engines.png, engines-panel.png).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

from journey import take_journey  # scripts/ itself: the folder of the script being run
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from llm_desktop.core.demo import DemoSpec, spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.events import ModelState, Stage
from llm_desktop.core.options import LoadOptions
from llm_desktop.ui import theme
from llm_desktop.ui.app import create_application, prepare_environment
from llm_desktop.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"


def wait_until(app: QApplication, condition, timeout_s: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("state not reached")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, ms: int = 400) -> None:
    import time

    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving_shots(app: QApplication, window: MainWindow, cards: dict) -> None:
    """The Serving tab with the API running and requests from another program (the wide
    vocabulary demo loaded for one), then a conversation with that model in Try it."""
    import openai

    loaded, on_request = cards["big-context"], cards["wide-vocab"]
    window.show_serving()
    panel = window.serving_panel
    panel.port.setValue(free_port())
    panel.start_button.click()
    wait_until(app, lambda: window.controller.api_state == "running")
    client = openai.OpenAI(
        base_url=window.controller.api_url, api_key=window.controller.api_token()
    )
    hello = [{"role": "user", "content": "Say hello in five words."}]

    def another_program() -> None:
        client.chat.completions.create(model=loaded.model_id, messages=hello, max_tokens=12)
        client.chat.completions.create(model=on_request.model_id, messages=hello, max_tokens=24)
        stream = client.chat.completions.create(
            model=on_request.model_id, messages=hello, max_tokens=32, stream=True
        )
        for _chunk in stream:
            pass
        client.completions.create(model=loaded.model_id, prompt="Once upon a time", max_tokens=16)

    requests = threading.Thread(target=another_program)
    requests.start()
    wait_until(app, lambda: not requests.is_alive(), 120)
    settle(app, 800)
    window.grab().save(str(OUT / "serving-panel.png"))

    window.toasts.dismiss_all()
    window.show_library()
    window.resize(1180, 900)  # room for a few turns in the side column
    try_panel = window.try_panel
    try_panel.select(on_request.model_id)
    try_panel.system_prompt.setText("You are a concise assistant.")
    for message in ("Hello! What can you do?", "Write a haiku about GPUs."):
        try_panel.prompt.setPlainText(message)
        try_panel.max_tokens.setValue(20)
        try_panel.send_button.click()
        wait_until(app, lambda: not try_panel.generating)
    try_panel.prompt.setPlainText("And one about memory?")
    settle(app, 1500)
    window.grab().save(str(OUT / "try-chat.png"))
    window.resize(1180, 760)
    try_panel.prompt.clear()

    # A limit of two loaded models, and another program asks for a third: the least recently
    # used one is unloaded first, and the page says why.
    window.serving_panel.max_loaded.setValue(2)
    third = cards["llm-desktop-demo"]
    asking = threading.Thread(
        target=lambda: client.chat.completions.create(
            model=third.model_id, messages=hello, max_tokens=8
        )
    )
    asking.start()
    wait_until(app, lambda: not asking.is_alive(), 120)
    window.show_web_panel()
    settle(app, 3000)
    window.grab().save(str(OUT / "page-evicted.png"))
    window.serving_panel.max_loaded.setValue(0)


def drop_page_cache() -> bool:
    """Forget every file's cached pages (root only), so that a router's next load reads its
    file from the disk: a 1.5 GB model then takes seconds to load, long enough to be seen."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        print(f"could not drop the page cache ({exc}): the remote load may be quick", flush=True)
        return False
    return True


def remote_shots(app: QApplication, root: Path) -> None:
    """Two real llama.cpp routers on loopback ("lab-gpu", "closet-box", the second with an API
    key), added in the Engines tab as a person would; then the library with this machine's
    model and theirs, one of them loading on lab-gpu. The shot is taken on a real LOADING event
    of that load (the page cache is dropped first, so the router reads 1.5 GB from the disk)."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # the routers the tests run, reused here
    from tests.helpers.routers import RouterProcess

    lab_models, closet_models = root / "lab-gpu", root / "closet-box"
    write_demo_model(lab_models / "demo-1.5gb.gguf", spec_for_size(1500, seed=21))
    write_demo_model(lab_models / "demo-tiny.gguf", DemoSpec(seed=22, name="Tiny demo"))
    write_demo_model(closet_models / "demo-wide-vocab.gguf", DemoSpec(seed=23, vocab=32000))
    local_models = root / "remote-local"
    write_demo_model(local_models / "llm-desktop-demo.gguf", spec_for_size(64))
    lab = RouterProcess(lab_models).start()
    closet = RouterProcess(closet_models, api_key="closet-key").start()
    engine = EngineSet(Engine(warm_hosts=0))  # sources added below, for this run only
    settings = QSettings(str(root / "remote-settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        engine,
        settings=settings,
        models_dir=local_models,
        include_known=False,
        state_dir=root / "remote-state",
    )
    try:
        window.resize(1180, 900)
        window.show()
        wait_until(app, lambda: len(window.cards) == 1)
        (local,) = window.cards.values()
        local.load_button.click()
        wait_until(app, lambda: local.view.state is ModelState.LOADED)

        window.show_engines()
        panel = window.engines_panel
        for name, router, key in (("lab-gpu", lab, ""), ("closet-box", closet, "closet-key")):
            panel.name_field.setText(name)
            panel.url_field.setText(router.url)
            panel.key_field.setText(key)
            panel.add_button.click()
            wait_until(app, lambda name=name: name in panel.rows and panel.add_button.isEnabled())
        wait_until(
            app,
            lambda: all(row.chip.text() == "Connected" for row in list(panel.rows.values())[1:]),
        )
        window.toasts.dismiss_all()
        settle(app, 600)
        window.grab().save(str(OUT / "engines-panel.png"))

        window.show_library()
        wait_until(app, lambda: len(window.cards) == 4)
        cards = {card.view.path: card for card in window.cards.values()}
        for router_id in ("demo-tiny", "demo-wide-vocab"):
            cards[router_id].load_button.click()
            wait_until(app, lambda r=router_id: cards[r].view.state is ModelState.LOADED)
        big = cards["demo-1.5gb"]
        shots = {}

        def capture(event) -> None:
            # A tick of the router's load (it reports nothing between its start and its end):
            # the card says so, with the time so far. The first one after a second is taken.
            if event.model == big.model_id and event.stage is Stage.LOADING:
                shots.setdefault("first", window.grab())
                if (event.elapsed_s or 0) >= 1.0:
                    shots.setdefault("loading", window.grab())

        window.toasts.dismiss_all()
        settle(app, 300)
        drop_page_cache()
        window.bridge.event_received.connect(capture)
        big.load_button.click()
        wait_until(app, lambda: big.view.state is not ModelState.LOADING and "first" in shots, 120)
        (shots.get("loading") or shots["first"]).save(str(OUT / "remote-engines.png"))
    finally:
        window.close()
        engine.shutdown()
        lab.stop()
        closet.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("remote",), help="take only these shots")
    args = parser.parse_args()
    prepare_environment()
    OUT.mkdir(parents=True, exist_ok=True)
    app = create_application()
    theme.apply_theme(app, "light")
    if args.only == "remote":
        with tempfile.TemporaryDirectory(prefix="llm-shots-") as temp:
            remote_shots(app, Path(temp))
        return 0
    with tempfile.TemporaryDirectory(prefix="llm-shots-") as temp:
        root = Path(temp)
        models = root / "models"
        write_demo_model(models / "llm-desktop-demo.gguf", spec_for_size(64))
        write_demo_model(
            models / "big-context.gguf", spec_for_size(400, seed=4, name="Demo 400 MB")
        )
        write_demo_model(
            models / "wide-vocab.gguf", DemoSpec(vocab=32000, name="Wide vocabulary demo")
        )
        # A download cut short: the catalog finds its weights end early and lists it unreadable.
        whole = write_demo_model(root / "whole.gguf", DemoSpec(seed=9, name="Damaged download"))
        (models / "damaged.gguf").write_bytes(whole.read_bytes()[:-4096])
        # A model for an architecture this llama.cpp does not know: listed, and the load fails.
        write_demo_model(
            models / "newer-arch.gguf",
            DemoSpec(seed=10, name="Newer architecture", architecture="qwen9"),
        )
        settings = QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat)
        engine = Engine(warm_hosts=1)
        state = root / "state"  # never the user's list of unfinished downloads
        first_run = MainWindow(
            engine,
            settings=settings,
            models_dir=root / "empty",
            include_known=False,
            state_dir=state,
        )
        first_run.resize(1180, 760)
        first_run.show()
        wait_until(app, lambda: first_run.empty_state.isVisible())
        settle(app, 2500)
        first_run.grab().save(str(OUT / "first-run.png"))
        first_run.bridge.close()
        first_run.poller.shutdown()
        first_run.poller = None
        first_run.controller.commands.shutdown()  # its thread; the engine stays for the next
        first_run.controller.serving.close()  # its keep-alive thread
        first_run.hide()
        window = MainWindow(
            engine, settings=settings, models_dir=models, include_known=False, state_dir=state
        )
        window.resize(1180, 760)
        window.show()
        wait_until(app, lambda: len(window.cards) == 5)
        settle(app, 2500)  # the hardware panel's first poll
        window.grab().save(str(OUT / "library.png"))

        cards = {Path(card.view.path).stem: card for card in window.cards.values()}
        big = cards["big-context"]
        window.set_model_options(big.model_id, LoadOptions(use_mmap=False))
        shots = {}

        def capture(event):
            if (
                event.model == big.model_id
                and event.stage is Stage.LOADING
                and event.pct >= 35
                and "loading" not in shots
            ):
                shots["loading"] = window.grab()

        window.bridge.event_received.connect(capture)
        big.load_button.click()
        wait_until(app, lambda: big.view.state is ModelState.LOADED)
        settle(app, 300)
        if "loading" in shots:
            shots["loading"].save(str(OUT / "loading.png"))
        window.grab().save(str(OUT / "loaded.png"))

        newer = cards["newer-arch"]
        newer.load_button.click()
        wait_until(app, lambda: newer.view.state is ModelState.FAILED)
        settle(app, 600)
        window.grab().save(str(OUT / "error-toast.png"))

        window.show_web_panel()
        wait_until(app, lambda: window.web_panel.page is not None)
        settle(app, 3000)  # the page fetches the library and joins the event stream
        window.grab().save(str(OUT / "web-panel.png"))
        window.show_library()

        theme.apply_theme(app, "dark")
        settle(app, 300)
        window.grab().save(str(OUT / "dark.png"))
        theme.apply_theme(app, "light")
        serving_shots(app, window, cards)
        QTimer.singleShot(0, window.close)
        window.close()
        engine.shutdown()
        theme.apply_theme(app, "light")
        remote_shots(app, root)
    take_journey(app, OUT)
    print("\n".join(str(path) for path in sorted(OUT.glob("*.png"))))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.exit(main())
