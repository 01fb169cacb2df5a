"""GUI responsiveness during a real load: heartbeat gaps, click to feedback, click to real work.

A 5 ms QTimer heartbeat runs in the GUI thread while a card loads a model; the longest gap
between beats is the longest the GUI was unable to react (16 ms is one frame at 60 Hz). The time
from the Load click to the first paint of the card's progress bar in the loading state is the
feedback a person sees; the time to the first `loading` event with bytes done reaching the GUI
thread (and the bar's next paint) is when the load is seen doing real work.
"""

from __future__ import annotations

import collections
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ModelState, Stage
from llm_desktop.core.options import LoadOptions
from llm_desktop.ui.app import create_application, prepare_environment
from llm_desktop.ui.main_window import MainWindow


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
        window.set_model_options(card.model_id, LoadOptions(use_mmap=False))
        feedback = PaintWatch(clock)  # the bar painted in the loading state
        bytes_paint = PaintWatch(clock)  # the bar painted after the first weight bytes arrived
        card.progress.installEventFilter(feedback)
        card.progress.installEventFilter(bytes_paint)
        beats: list[int] = []
        heartbeat = QTimer()
        heartbeat.setInterval(5)
        heartbeat.timeout.connect(lambda: beats.append(clock.nsecsElapsed()))

        first_bytes_ms, first_paint_ms, bytes_paint_ms = [], [], []
        max_gaps_ms, all_gaps_ms = [], []
        worst_gap_stages: collections.Counter[str] = collections.Counter()
        for _ in range(rounds):
            _spin(app, lambda: not engine._pool._ready or not engine._pool._ready[0].inbox.empty())
            first_bytes: list[int] = []

            stages_seen: list[tuple[int, str]] = []

            def note(event, first_bytes=first_bytes, stages_seen=stages_seen):
                stages_seen.append((clock.nsecsElapsed(), str(event.stage)))
                # The first event of real work: llama.cpp has reported weight bytes read. The
                # `connecting` event before it is sent before any work is done.
                if (
                    not first_bytes
                    and event.model == card.model_id
                    and event.stage is Stage.LOADING
                    and event.bytes_done
                ):
                    first_bytes.append(clock.nsecsElapsed())

            window.bridge.event_received.connect(note)
            beats.clear()
            heartbeat.start()
            feedback.arm(lambda: card.view.state is ModelState.LOADING)
            bytes_paint.arm(lambda first_bytes=first_bytes: bool(first_bytes))
            clicked = clock.nsecsElapsed()
            card.load_button.click()
            _spin(app, lambda: card.view.state is ModelState.LOADED)
            heartbeat.stop()
            window.bridge.event_received.disconnect(note)
            gaps = [(b - a) / 1e6 for a, b in itertools.pairwise(beats)]
            max_gaps_ms.append(max(gaps))
            # Which step of the load the longest gap fell in: the last event before it ended.
            worst_end = beats[gaps.index(max(gaps)) + 1]
            before = [stage for at, stage in stages_seen if at <= worst_end]
            worst_gap_stages[before[-1] if before else "before any event"] += 1
            all_gaps_ms.extend(gaps)
            first_bytes_ms.append((first_bytes[0] - clicked) / 1e6)
            if feedback.painted_ns is not None:
                first_paint_ms.append((feedback.painted_ns - clicked) / 1e6)
            if bytes_paint.painted_ns is not None:
                bytes_paint_ms.append((bytes_paint.painted_ns - clicked) / 1e6)
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
        "heartbeat_worst_gap_stage": dict(worst_gap_stages.most_common()),
        "click_to_first_bytes_ms_median": round(statistics.median(first_bytes_ms), 2),
        "click_to_first_paint_ms_median": _median_or_none(first_paint_ms),
        "click_to_first_bytes_paint_ms_median": _median_or_none(bytes_paint_ms),
        "paints_seen": {"feedback": len(first_paint_ms), "first_bytes": len(bytes_paint_ms)},
    }


def _median_or_none(values: list[float]) -> float | None:
    """None where no paint was seen: reported as not measured, never filled in."""
    return round(statistics.median(values), 2) if values else None
