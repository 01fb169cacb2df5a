"""GUI responsiveness during a real load: heartbeat gaps and click-to-first-paint.

A 5 ms QTimer heartbeat runs in the GUI thread while a card loads a model; the longest gap
between beats is the longest the GUI was unable to react (16 ms is one frame at 60 Hz). The time
from the Load click to the first paint of the card's progress bar showing the load is the
feedback a person sees.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import itertools

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ModelState, Stage
from llm_desktop.ui.app import create_application, prepare_environment
from llm_desktop.ui.main_window import MainWindow
from llm_desktop.ui.model_card import LoadSettings


class PaintWatch(QObject):
    """Records when a widget is first painted after `arm()`."""

    def __init__(self, clock: QElapsedTimer):
        super().__init__()
        self.clock = clock
        self.armed_ns: int | None = None
        self.painted_ns: int | None = None
        self.condition = lambda: True

    def arm(self, condition) -> None:
        self.armed_ns = self.clock.nsecsElapsed()
        self.painted_ns = None
        self.condition = condition

    def eventFilter(self, watched, event) -> bool:
        if (
            event.type() == QEvent.Type.Paint
            and self.armed_ns is not None
            and self.painted_ns is None
            and self.condition()
        ):
            self.painted_ns = self.clock.nsecsElapsed()
        return False


def _spin(app: QApplication, condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("GUI bench: state not reached")
        app.processEvents()
        time.sleep(0.001)


def bench_gui(model: Path, rounds: int = 5) -> dict:
    prepare_environment()
    app = create_application()
    clock = QElapsedTimer()
    clock.start()
    with tempfile.TemporaryDirectory(prefix="llm-gui-bench-") as temp:
        folder = Path(temp) / "models"
        folder.mkdir()
        os.symlink(model, folder / model.name)
        settings = QSettings(str(Path(temp) / "s.ini"), QSettings.Format.IniFormat)
        engine = Engine(warm_hosts=1)
        window = MainWindow(engine, settings=settings, models_dir=folder, include_known=False)
        window.show()
        _spin(app, lambda: len(window.cards) == 1)
        (card,) = window.cards.values()
        card.set_settings(LoadSettings(use_mmap=False))
        watch = PaintWatch(clock)
        card.progress.installEventFilter(watch)
        beats: list[int] = []
        heartbeat = QTimer()
        heartbeat.setInterval(5)
        heartbeat.timeout.connect(lambda: beats.append(clock.nsecsElapsed()))

        first_event_ms, first_paint_ms, max_gaps_ms, all_gaps_ms = [], [], [], []
        for _ in range(rounds):
            _spin(app, lambda: not engine._pool._ready or not engine._pool._ready[0].inbox.empty())
            first_event: list[int] = []

            def note(event, first_event=first_event):
                if not first_event and event.model == card.model_id:
                    first_event.append(clock.nsecsElapsed())

            window.bridge.event_received.connect(note)
            beats.clear()
            heartbeat.start()
            watch.arm(lambda: card.view.state is ModelState.LOADING)
            clicked = clock.nsecsElapsed()
            card.load_button.click()
            _spin(app, lambda: card.view.state is ModelState.LOADED)
            heartbeat.stop()
            window.bridge.event_received.disconnect(note)
            gaps = [(b - a) / 1e6 for a, b in itertools.pairwise(beats)]
            max_gaps_ms.append(max(gaps))
            all_gaps_ms.extend(gaps)
            first_event_ms.append((first_event[0] - clicked) / 1e6)
            if watch.painted_ns is not None:
                first_paint_ms.append((watch.painted_ns - clicked) / 1e6)
            engine.unload(card.model_id)
            _spin(app, lambda: card.view.state is ModelState.UNLOADED)
        window.close()
    return {
        "rounds": rounds,
        "model_mb": round(model.stat().st_size / 1e6, 1),
        "heartbeat_max_gap_ms_median": round(statistics.median(max_gaps_ms), 2),
        "heartbeat_max_gap_ms_worst": round(max(max_gaps_ms), 2),
        "heartbeat_gap_ms_p99_all_rounds": round(
            statistics.quantiles(all_gaps_ms, n=100, method="inclusive")[98], 2
        ),
        "heartbeat_beats": len(all_gaps_ms),
        "click_to_first_event_ms_median": round(statistics.median(first_event_ms), 2),
        "click_to_first_paint_ms_median": round(statistics.median(first_paint_ms), 2)
        if first_paint_ms
        else None,
        "stage_seen_first": str(Stage.CONNECTING),
    }
