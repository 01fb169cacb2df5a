"""The main window: the library of model cards, the hardware and try-it panels, and toasts.

It wires views to the engine and to background jobs; the decisions a card shows come from the
presenter, and every failure, from the engine or a job, becomes a toast.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from llm_desktop import __version__
from llm_desktop.core import catalog, fit
from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import ModelState, ProgressEvent, Stage
from llm_desktop.core.library import LibraryModel, ModelLibrary
from llm_desktop.core.presenter import RETRY_FEWER_GPU_LAYERS, RETRY_SMALLER_CONTEXT, retry_advice
from llm_desktop.server.runner import ServerThread
from llm_desktop.ui import theme
from llm_desktop.ui.hardware_panel import HardwarePanel
from llm_desktop.ui.model_card import LoadSettings, ModelCard
from llm_desktop.ui.toast import ToastKind, ToastManager, ToastMessage
from llm_desktop.ui.try_panel import TryPanel
from llm_desktop.ui.web_panel import WebPanel
from llm_desktop.workers.engine_bridge import EngineBridge
from llm_desktop.workers.hardware_poller import HardwarePoller
from llm_desktop.workers.jobs import (
    Job,
    JobContext,
    JobRunner,
    copy_with_progress,
    unique_destination,
)

log = logging.getLogger(__name__)

DEMO_MODEL_MB = 64
DEMO_MODEL_NAME = "llm-desktop-demo.gguf"


class ImportRow(QFrame):
    """The progress of one model file being copied into the models folder."""

    def __init__(self, name: str, job: Job, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modelCard")
        self.setProperty("state", "loading")
        label = QLabel(f"Importing {name}")
        label.setObjectName("cardTitle")
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setAccessibleName(f"Import of {name}")
        cancel = QPushButton("Cancel")
        cancel.setAccessibleName(f"Cancel import of {name}")
        cancel.clicked.connect(job.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 10)
        layout.addWidget(label)
        layout.addWidget(self.bar, 1)
        layout.addWidget(cancel)
        job.progress.connect(self.show_progress)

    def show_progress(self, progress: tuple[int, int]) -> None:
        done, total = progress
        self.bar.setValue(int(done * 100 / total) if total else 100)
        self.bar.setFormat(f"%p% · {fit.format_bytes(done)} of {fit.format_bytes(total)}")


class MainWindow(QMainWindow):
    """Signals:
    library_loaded(): the cards were (re)built from a catalog scan.
    """

    library_loaded = Signal()

    def __init__(
        self,
        engine: Engine,
        *,
        settings: QSettings | None = None,
        models_dir: Path | None = None,
        include_known: bool = True,
        poll_hardware: bool = True,
        demo_if_empty: bool = False,
    ):
        super().__init__()
        self.engine = engine
        self.settings = settings or QSettings()
        self.models_dir = models_dir or catalog.default_models_dir()
        self.include_known = include_known
        self.cards: dict[str, ModelCard] = {}
        self._demo_if_empty = demo_if_empty
        self._host_pids: dict[str, int] = {}
        self.server: ServerThread | None = None
        # One library for the cards and the in-app server: the same ids, the same scan.
        self.library = ModelLibrary(
            None, include_known=include_known, cache=catalog.MetadataCache()
        )
        self._generation: Job | None = None
        self.setWindowTitle("llm-desktop")
        self.setAcceptDrops(True)
        self.setMinimumSize(760, 520)

        self.jobs = JobRunner(self)
        self.jobs.job_failed.connect(self._job_failed)
        self.bridge = EngineBridge(engine, self)
        self.bridge.event_received.connect(self.on_event)

        self._build_central()
        self._build_menus()
        self.toasts = ToastManager(self.centralWidget())
        self.toasts.action_triggered.connect(self._toast_action)
        self.poller: HardwarePoller | None = None
        if poll_hardware:
            self.poller = HardwarePoller(process_pids=self._loaded_pids)
            self.poller.snapshot_ready.connect(self.hardware_panel.update_report)
            self.poller.errored.connect(self._hardware_failed)
            self.poller.start()
        self._restore_window_state()
        self.refresh_library()

    # -- layout -------------------------------------------------------------------------------

    def _build_central(self) -> None:
        self.cards_container = QWidget()
        self.cards_container.setObjectName("cardList")
        self.cards_layout = QVBoxLayout(self.cards_container)
        self.cards_layout.setContentsMargins(16, 16, 16, 16)
        self.cards_layout.setSpacing(12)
        self.cards_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.cards_container)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setAccessibleName("Model library")

        self.empty_state = self._build_empty_state()
        library_page = QWidget()
        library_layout = QVBoxLayout(library_page)
        library_layout.setContentsMargins(0, 0, 0, 0)
        library_layout.addWidget(self.empty_state)
        library_layout.addWidget(self.scroll)
        self.web_panel = WebPanel(self._web_page_url)
        library = QTabWidget()
        library.setDocumentMode(True)
        library.setAccessibleName("Views")
        library.addTab(library_page, "Library")
        library.addTab(self.web_panel, "Web panel")
        library.currentChanged.connect(self._tab_changed)
        self.tabs = library

        self.hardware_panel = HardwarePanel()
        self.try_panel = TryPanel()
        self.try_panel.prompt_submitted.connect(self.start_generation)
        self.try_panel.stop_requested.connect(self.engine.stop_generation)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 16, 16, 16)
        side_layout.setSpacing(12)
        side_layout.addWidget(self.hardware_panel)
        side_layout.addWidget(self.try_panel, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(library)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([700, 320])
        # Toasts float over this container; they must not be children of the splitter, which
        # would make each one a pane.
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(self.splitter)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Reading the model library…")

    def _build_empty_state(self) -> QWidget:
        panel = QFrame()
        panel.setObjectName("emptyState")
        title = QLabel("No models yet")
        title.setObjectName("emptyTitle")
        text = QLabel(
            "Create a small demo model (random weights, made on this machine, no download) to "
            "see a real load, or add the folder where your GGUF models live."
        )
        text.setWordWrap(True)
        text.setObjectName("muted")
        text.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        text.setMaximumWidth(520)
        self.demo_button = QPushButton("Create demo model")
        self.demo_button.setObjectName("primaryButton")
        self.demo_button.setAccessibleName("Create a demo model")
        self.demo_button.clicked.connect(self.create_demo_model)
        add_folder = QPushButton("Add folder…")
        add_folder.clicked.connect(self.add_folder)
        import_file = QPushButton("Import model file…")
        import_file.clicked.connect(self.import_model_dialog)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.demo_button, add_folder, import_file):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(panel)
        layout.addStretch(1)
        layout.addWidget(title, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(text, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(8)
        layout.addLayout(buttons)
        layout.addStretch(2)
        panel.setVisible(False)
        return panel

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Add folder…", self.add_folder, QKeySequence("Ctrl+O"))
        self._action(
            file_menu, "&Import model file…", self.import_model_dialog, QKeySequence("Ctrl+I")
        )
        self._action(file_menu, "Create &demo model", self.create_demo_model)
        self._action(file_menu, "&Refresh library", self.refresh_library, QKeySequence("F5"))
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        model_menu = self.menuBar().addMenu("&Model")
        self._action(model_menu, "&Unload all", self.unload_all, QKeySequence("Ctrl+U"))
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "&Web panel", self.show_web_panel, QKeySequence("Ctrl+2"))
        self._action(
            view_menu, "&Library", lambda: self.tabs.setCurrentIndex(0), QKeySequence("Ctrl+1")
        )
        self._action(view_menu, "Open page in &browser", self.open_in_browser)
        self.side_action = self._action(view_menu, "&Side panels", self._toggle_side)
        self.side_action.setCheckable(True)
        self.side_action.setChecked(True)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About llm-desktop", self._about)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # -- library ------------------------------------------------------------------------------

    def library_folders(self) -> list[Path]:
        extra = self.settings.value("library/folders", []) or []
        if isinstance(extra, str):
            extra = [extra]
        return [self.models_dir, *(Path(folder) for folder in extra)]

    def refresh_library(self) -> None:
        self.library.folders = self.library_folders()
        library = self.library
        job = Job("scan", lambda _context: library.refresh())
        job.succeeded.connect(self._show_library)
        self.jobs.start(job)

    def _show_library(self, models: list[LibraryModel]) -> None:
        seen = set()
        for index, (entry, verdict) in enumerate((m.entry, m.verdict) for m in models):
            seen.add(entry.id)
            card = self.cards.get(entry.id)
            if card is None:
                card = self._add_card(entry, verdict)
            else:
                card.set_fit(verdict)
            self.cards_layout.insertWidget(index, card)
        for model_id in list(self.cards):
            card = self.cards[model_id]
            if model_id not in seen and card.view.state in (
                ModelState.UNLOADED,
                ModelState.FAILED,
                ModelState.CANCELLED,
            ):
                self.cards.pop(model_id).deleteLater()
        if not self.cards and self._demo_if_empty:
            self._demo_if_empty = False  # once: a person who deletes it is not overruled
            self.create_demo_model()
        self.empty_state.setVisible(not self.cards)
        self.scroll.setVisible(bool(self.cards))
        count = len(self.cards)
        self.statusBar().showMessage(f"{count} model{'s' if count != 1 else ''} in the library")
        self.library_loaded.emit()

    def _add_card(self, entry, verdict) -> ModelCard:
        card = ModelCard(entry, verdict, self._load_settings(entry.id))
        card.load_requested.connect(self.load_model)
        card.cancel_requested.connect(self.engine.cancel)
        card.unload_requested.connect(self.engine.unload)
        card.try_requested.connect(self._try_model)
        card.settings_changed.connect(self._save_settings)
        last = self.engine.state(entry.id)
        if last is not None:
            card.apply_event(last)
        self.cards[entry.id] = card
        return card

    def _load_settings(self, model_id: str) -> LoadSettings:
        key = f"models/{model_id}"
        return LoadSettings(
            n_ctx=int(self.settings.value(f"{key}/n_ctx", 0)),
            gpu_layers=int(self.settings.value(f"{key}/gpu_layers", -1)),
            use_mmap=str(self.settings.value(f"{key}/use_mmap", "true")).lower() == "true",
        )

    def _save_settings(self, model_id: str, settings: LoadSettings) -> None:
        key = f"models/{model_id}"
        self.settings.setValue(f"{key}/n_ctx", settings.n_ctx)
        self.settings.setValue(f"{key}/gpu_layers", settings.gpu_layers)
        self.settings.setValue(f"{key}/use_mmap", "true" if settings.use_mmap else "false")

    # -- engine ---------------------------------------------------------------------------------

    def load_model(self, model_id: str, options: LoadOptions) -> None:
        card = self.cards.get(model_id)
        if card is not None:
            self.engine.load(card.entry.path, options, model=model_id)

    def unload_all(self) -> None:
        for model_id, card in self.cards.items():
            if card.view.state is ModelState.LOADED:
                self.engine.unload(model_id)

    def on_event(self, event: ProgressEvent) -> None:
        card = self.cards.get(event.model)
        if card is not None:
            card.apply_event(event)
        name = card.entry.display_name if card else event.model
        key = f"load:{event.model}"
        if event.stage is Stage.COMPLETE:
            self.toasts.show(ToastMessage(ToastKind.SUCCESS, f"{name} is ready", key=key))
        elif event.stage is Stage.FAILED and event.error is not None:
            self.toasts.show(
                ToastMessage(
                    ToastKind.ERROR,
                    event.error.message,
                    key=key,
                    title=f"{name} failed to load" if event.op == "load" else name,
                    action_text=retry_advice(event.error),
                )
            )
        elif event.stage is Stage.CANCELLED:
            self.toasts.show(ToastMessage(ToastKind.INFO, f"Loading {name} cancelled", key=key))
        elif event.stage is Stage.UNLOADED:
            self.toasts.show(ToastMessage(ToastKind.INFO, f"{name}: {event.message}", key=key))
        if event.is_terminal or event.stage is Stage.UNLOADING:
            self._loaded_models_changed()

    def _toast_action(self, key: str) -> None:
        if not key.startswith("load:"):
            return
        model_id = key.removeprefix("load:")
        card = self.cards.get(model_id)
        last = self.engine.state(model_id)
        if card is None or last is None or last.stage is not Stage.FAILED:
            return
        settings = card.settings()
        advice = retry_advice(last.error)
        if advice == RETRY_FEWER_GPU_LAYERS:
            layers = card.verdict.gpu_layers if card.verdict else settings.gpu_layers
            settings = LoadSettings(settings.n_ctx, max(0, layers // 2), settings.use_mmap)
        elif advice == RETRY_SMALLER_CONTEXT:
            n_ctx = settings.n_ctx or fit.default_context(card.entry.context_length)
            settings = LoadSettings(max(256, n_ctx // 2), settings.gpu_layers, settings.use_mmap)
        card.set_settings(settings)
        self._save_settings(model_id, settings)
        self.load_model(model_id, settings.to_options())

    def _loaded_models(self) -> dict[str, str]:
        return {
            model_id: card.entry.display_name
            for model_id, card in self.cards.items()
            if card.view.state is ModelState.LOADED
        }

    def _loaded_pids(self) -> dict[str, int]:
        """Called from the poller's thread: only reads a dict the GUI thread replaces whole."""
        return dict(self._host_pids)

    def _loaded_models_changed(self) -> None:
        loaded = self._loaded_models()
        pids = {model_id: self.engine.host_pid(model_id) for model_id in loaded}
        self._host_pids = {model_id: pid for model_id, pid in pids.items() if pid is not None}
        self.try_panel.set_models(loaded)
        self.hardware_panel.set_model_names(loaded)
        if self.poller is not None:
            self.poller.poll_now()

    def _try_model(self, model_id: str) -> None:
        self.try_panel.select(model_id)

    def start_generation(self, model_id: str, prompt: str, max_tokens: int) -> None:
        engine = self.engine

        def generate(context: JobContext) -> int:
            count = 0
            for piece in engine.generate(model_id, prompt, max_tokens):
                context.report(piece)
                count += 1
            return count

        job = Job("generate", generate, on_cancel=lambda: engine.stop_generation(model_id))
        job.progress.connect(self.try_panel.append_piece)
        job.succeeded.connect(lambda _count: self.try_panel.finish())
        job.errored.connect(lambda exc: self.try_panel.finish(f"error: {exc}"))
        self._generation = job
        self.jobs.start(job)

    # -- adding models ----------------------------------------------------------------------

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of GGUF models")
        if folder:
            self.add_library_folder(Path(folder))

    def add_library_folder(self, folder: Path) -> None:
        folders = [str(path) for path in self.library_folders()[1:]]
        if str(folder) not in folders:
            folders.append(str(folder))
            self.settings.setValue("library/folders", folders)
        self.refresh_library()

    def import_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a model file", "", "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.import_model(Path(path))

    def import_model(self, source: Path) -> Job:
        destination = unique_destination(self.models_dir, source.name)
        job = Job("import", lambda context: copy_with_progress(source, destination, context))
        row = ImportRow(source.name, job)
        self.cards_layout.insertWidget(0, row)
        self.empty_state.setVisible(False)
        self.scroll.setVisible(True)
        job.succeeded.connect(lambda path: self._import_done(row, f"Imported {path.name}"))
        job.cancelled.connect(lambda: self._import_done(row, f"Import of {source.name} cancelled"))
        job.errored.connect(lambda _exc: self._import_done(row, None))
        return self.jobs.start(job)

    def _import_done(self, row: ImportRow, message: str | None) -> None:
        row.deleteLater()
        if message:
            self.toasts.show(ToastMessage(ToastKind.INFO, message, key=f"import:{message}"))
        self.refresh_library()

    def create_demo_model(self) -> Job:
        path = self.models_dir / DEMO_MODEL_NAME
        self.demo_button.setEnabled(False)
        self.statusBar().showMessage("Writing the demo model…")
        job = Job("demo", lambda _context: write_demo_model(path, spec_for_size(DEMO_MODEL_MB)))
        job.succeeded.connect(self._demo_created)
        job.done.connect(lambda: self.demo_button.setEnabled(True))
        return self.jobs.start(job)

    def _demo_created(self, path: Path) -> None:
        self.toasts.show(
            ToastMessage(
                ToastKind.SUCCESS,
                f"Demo model written to {path}. Press Load to watch it load.",
                key="demo",
            )
        )
        self.refresh_library()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.toLocalFile().lower().endswith(".gguf") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() == ".gguf" and path.is_file():
                self.import_model(path)
        event.acceptProposedAction()

    # -- web panel and server --------------------------------------------------------------

    def ensure_server(self) -> ServerThread:
        """The in-app server, started on first need (binding is instant; it serves at once)."""
        if self.server is None:
            self.library.folders = self.library_folders()
            self.server = ServerThread(self.engine, self.library).start(wait=False)
        return self.server

    def _web_page_url(self) -> str:
        """The page in the app's own light or dark look (the page's `#theme=` override), so
        the panel matches the window rather than whatever Chromium guesses."""
        scheme = theme.applied_scheme()
        url = self.ensure_server().page_url
        if scheme is None:
            return url
        return f"{url}&theme={'dark' if scheme in ('dark', 'high-contrast') else 'light'}"

    def show_library(self) -> None:
        self.tabs.setCurrentIndex(0)

    def show_web_panel(self) -> None:
        self.tabs.setCurrentWidget(self.web_panel)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.web_panel:
            self.web_panel.open()

    def open_in_browser(self) -> None:
        QDesktopServices.openUrl(QUrl(self.ensure_server().page_url))

    # -- errors, state, shutdown -------------------------------------------------------------

    def _job_failed(self, name: str, exc: object) -> None:
        titles = {
            "scan": "Could not read the model library",
            "import": "Import failed",
            "demo": "Could not write the demo model",
            "generate": "The reply failed",
        }
        self.toasts.show(
            ToastMessage(ToastKind.ERROR, str(exc), key=f"job:{name}", title=titles.get(name))
        )

    def _hardware_failed(self, exc: object) -> None:
        log.warning("hardware poll failed: %s", exc)
        self.statusBar().showMessage(f"Could not read hardware: {exc}", 10_000)

    def _toggle_side(self, visible: bool) -> None:
        self.splitter.widget(1).setVisible(visible)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About llm-desktop",
            f"llm-desktop {__version__}\nLocal GGUF models with real load progress.",
        )

    def _restore_window_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1120, 720)
        splitter = self.settings.value("window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Cancel loads, end every host and stop every thread; safe to call twice."""
        self.bridge.close()
        if self.poller is not None:
            self.poller.shutdown()
            self.poller = None
        for job in self.jobs.running:
            job.cancel()
        self.web_panel.shutdown()
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.engine.shutdown()
        self.jobs.shutdown()
