"""The main window: the library of model cards, "Get models", the web panel, "Serving" (the
OpenAI-compatible API), "Engines" (this machine and remote llama.cpp routers), the transfer
tray, the hardware and try-it panels, and toasts.

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
from llm_desktop.core import catalog
from llm_desktop.core.engine_api import EngineApi
from llm_desktop.core.engine_sources import SourceRegistry
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.fit import format_bytes
from llm_desktop.core.generation import ReplyRequest
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.presenter import CardView, Notice
from llm_desktop.core.quantize import QUANT_TYPES
from llm_desktop.core.serving_presenter import reply_failure, reply_summary
from llm_desktop.ui import theme
from llm_desktop.ui.controller import AppController
from llm_desktop.ui.engines_panel import EnginesPanel
from llm_desktop.ui.get_models import GetModelsView
from llm_desktop.ui.hardware_panel import HardwarePanel
from llm_desktop.ui.hub_browser import HubBrowser
from llm_desktop.ui.model_card import ModelCard
from llm_desktop.ui.serving_panel import ServingPanel
from llm_desktop.ui.toast import ToastManager, ToastMessage
from llm_desktop.ui.transfers_panel import TransfersPanel
from llm_desktop.ui.try_panel import TryPanel
from llm_desktop.ui.web_panel import WebPanel
from llm_desktop.workers.hardware_poller import HardwarePoller
from llm_desktop.workers.jobs import Job

log = logging.getLogger(__name__)


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
        self.bar.setFormat(f"%p% · {format_bytes(done)} of {format_bytes(total)}")


class MainWindow(QMainWindow):
    """Lays out the cards, the side panels and the toasts; the controller decides and acts.

    Signals:
        library_loaded(): the cards were (re)built from a catalog scan.
    """

    library_loaded = Signal()

    def __init__(
        self,
        engine: EngineApi | EngineSet,
        *,
        settings: QSettings | None = None,
        models_dir: Path | None = None,
        include_known: bool = True,
        poll_hardware: bool = True,
        demo_if_empty: bool = False,
        remember_removals: bool = False,
        state_dir: Path | None = None,
        sources: SourceRegistry | None = None,
    ):
        """`engine`: an `EngineSet`, or this machine's engine alone (see `AppController`)."""
        super().__init__()
        self.settings = settings or QSettings()
        self.controller = AppController(
            engine,
            settings=self.settings,
            models_dir=models_dir or catalog.default_models_dir(),
            include_known=include_known,
            remember_removals=remember_removals,
            state_dir=state_dir,
            sources=sources,
            parent=self,
        )
        self.hub = HubBrowser(self.controller, self)
        self.cards: dict[str, ModelCard] = {}
        self._demo_if_empty = demo_if_empty
        self._toast_notices: dict[str, Notice] = {}
        self.setWindowTitle("llm-desktop")
        self.setAcceptDrops(True)
        self.setMinimumSize(760, 520)

        self._build_central()
        self._build_menus()
        self.toasts = ToastManager(self.side_panel)
        self.toasts.action_triggered.connect(self._toast_action)
        self._wire_controller()
        self.poller: HardwarePoller | None = None
        if poll_hardware:
            self.poller = HardwarePoller(process_pids=self._loaded_pids)
            self.poller.snapshot_ready.connect(self.hardware_panel.update_report)
            self.poller.errored.connect(self._hardware_failed)
            self.poller.start()
        self._loaded_pid_map: dict[str, int] = {}
        self._restore_window_state()
        self.controller.refresh_library()
        self.controller.start_transfers()
        self.controller.restore_api_server()  # if it was serving when the app last closed

    # The controller's parts, named as the rest of the app and the tests know them.
    @property
    def engine(self) -> EngineApi:
        return self.controller.engine

    @property
    def bridge(self):
        return self.controller.bridge

    @property
    def jobs(self):
        return self.controller.jobs

    @property
    def library(self):
        return self.controller.library

    @property
    def models_dir(self) -> Path:
        return self.controller.models_dir

    @property
    def server(self):
        return self.controller.server

    def _wire_controller(self) -> None:
        controller = self.controller
        controller.library_changed.connect(self._show_library)
        controller.view_changed.connect(self._show_view)
        controller.options_changed.connect(self._show_options)
        controller.notice.connect(self.show_notice)
        controller.loaded_changed.connect(self._loaded_models_changed)
        controller.details_requested.connect(self._show_details)
        controller.try_requested.connect(self.try_panel.select)
        controller.import_started.connect(self._import_started)
        controller.status_message.connect(self.statusBar().showMessage)
        controller.transfer_changed.connect(self.transfers_panel.show_view)
        controller.transfer_removed.connect(self.transfers_panel.remove)
        controller.transfer_removed.connect(self._transfer_removed)
        controller.reveal_model.connect(self.reveal_model)
        controller.sources_changed.connect(self._sources_changed)
        self.transfers_panel.action_requested.connect(controller.transfer_act)

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
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
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
        self.get_models = GetModelsView(self.hub)
        library = QTabWidget()
        library.setDocumentMode(True)
        library.setAccessibleName("Views")
        library.addTab(library_page, "Library")
        library.addTab(self.get_models, "Get models")
        library.addTab(self.web_panel, "Web panel")
        self.serving_panel = ServingPanel(self.controller)
        library.addTab(self.serving_panel, "Serving")
        self.engines_panel = EnginesPanel(self.controller)
        library.addTab(self.engines_panel, self.engines_panel.title)
        library.currentChanged.connect(self._tab_changed)
        self.tabs = library
        # Downloads and quantize jobs, seen from every tab; hidden while there are none.
        self.transfers_panel = TransfersPanel()
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.setSpacing(0)
        main_layout.addWidget(library, 1)
        main_layout.addWidget(self.transfers_panel)

        self.hardware_panel = HardwarePanel()
        self.try_panel = TryPanel()
        self.try_panel.reply_requested.connect(self.start_reply)
        self.try_panel.stop_requested.connect(self.controller.stop_reply)
        side = QWidget()
        self.side_panel = side
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 16, 16, 16)
        side_layout.setSpacing(12)
        side_layout.addWidget(self.hardware_panel)
        side_layout.addWidget(self.try_panel, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(main)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([700, 320])
        # Toasts float over the side column, so they never cover the cards a person is reading;
        # with the side panels hidden, over this container (children of the splitter itself
        # would each become a pane).
        central = QWidget()
        self.central_container = central
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
            "Download a model from Hugging Face, create a small demo model (random weights, "
            "made on this machine, no download) to see a real load, or add the folder where "
            "your GGUF models live."
        )
        text.setWordWrap(True)
        text.setObjectName("muted")
        text.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        text.setMaximumWidth(520)
        self.find_button = QPushButton("Get models…")
        self.find_button.setObjectName("primaryButton")
        self.find_button.setAccessibleName("Search Hugging Face for models")
        self.find_button.clicked.connect(self.show_get_models)
        self.demo_button = QPushButton("Create demo model")
        self.demo_button.setAccessibleName("Create a demo model")
        self.demo_button.clicked.connect(self.create_demo_model)
        add_folder = QPushButton("Add folder…")
        add_folder.clicked.connect(self.add_folder)
        import_file = QPushButton("Import model file…")
        import_file.clicked.connect(self.import_model_dialog)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.find_button, self.demo_button, add_folder, import_file):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(panel)
        layout.addStretch(1)
        layout.addWidget(title, 0, Qt.AlignmentFlag.AlignHCenter)
        # In a row of its own with stretch either side, not placed by an alignment flag: the
        # layout then gives the wrapped text the height its lines need at its width.
        text_row = QHBoxLayout()
        text_row.addStretch(1)
        text_row.addWidget(text, 10)
        text_row.addStretch(1)
        layout.addLayout(text_row)
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
        self._action(view_menu, "&Get models", self.show_get_models, QKeySequence("Ctrl+3"))
        self._action(view_menu, "&Serving", self.show_serving, QKeySequence("Ctrl+4"))
        self._action(view_menu, "&Engines", self.show_engines, QKeySequence("Ctrl+5"))
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

    def refresh_library(self) -> None:
        self.controller.refresh_library()

    def library_folders(self) -> list[Path]:
        return self.controller.library_folders()

    def _show_library(self, views: list[CardView]) -> None:
        seen = set()
        remote_sources = bool(self.controller.connections())
        for index, view in enumerate(views):
            seen.add(view.model)
            card = self.cards.get(view.model)
            if card is None:
                card = ModelCard(view, self.controller.store.options(view.model))
                card.action_requested.connect(self.controller.act)
                card.options_changed.connect(self.controller.set_options)
                card.keep_alive_changed.connect(self.controller.set_keep_alive)
                card.set_keep_alive(self.controller.keep_alive_setting(view.model))
                card.quantize_requested.connect(self.controller.quantize)
                self.cards[view.model] = card
            else:
                card.render(view)
            card.set_menu(self.controller.card_menu(view.model), QUANT_TYPES)
            card.set_remote_sources(remote_sources)
            self.cards_layout.insertWidget(index, card)
        for model_id in list(self.cards):
            if model_id not in seen:
                self.cards.pop(model_id).deleteLater()
        if not self.cards and self._demo_if_empty:
            self._demo_if_empty = False  # once: a person who deletes it is not overruled
            self.create_demo_model()
        self.empty_state.setVisible(not self.cards)
        self.scroll.setVisible(bool(self.cards))
        self.library_loaded.emit()

    def _sources_changed(self, statuses: list) -> None:
        for card in self.cards.values():
            card.set_remote_sources(bool(statuses))

    def _show_view(self, view: CardView) -> None:
        if (card := self.cards.get(view.model)) is not None:
            card.render(view)

    def _show_options(self, model_id: str, options: LoadOptions) -> None:
        if (card := self.cards.get(model_id)) is not None and card.options() != options:
            card.set_options(options)

    def set_model_options(self, model_id: str, options: LoadOptions) -> None:
        """Set a model's load options as a person would in its card's settings."""
        self.controller.set_options(model_id, options)

    # -- models -----------------------------------------------------------------------------------

    def unload_all(self) -> None:
        self.controller.unload_all()

    def show_notice(self, notice: Notice) -> None:
        self._toast_notices[notice.key] = notice
        self.toasts.show(ToastMessage.from_notice(notice))

    def _transfer_removed(self, key: str) -> None:
        """A transfer taken off the list takes its toast (and the toast's Load) with it."""
        for notice_key, notice in list(self._toast_notices.items()):
            if notice.model == key:
                self.toasts.dismiss_key(notice_key)
                del self._toast_notices[notice_key]

    def _toast_action(self, key: str) -> None:
        notice = self._toast_notices.get(key)
        action = AppController.notice_action(notice) if notice is not None else None
        if action is not None:
            self.controller.act(*action)

    def _show_details(self, view: CardView) -> None:
        if view.error is None:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(view.title)
        box.setText(view.error.message)
        box.setDetailedText("\n".join(view.error.detail) or view.error.message)
        box.setAccessibleName(f"Details: {view.title}")
        box.open()

    def _loaded_pids(self) -> dict[str, int]:
        """Called from the poller's thread: only reads a dict the GUI thread replaces whole."""
        return dict(self._loaded_pid_map)

    def _loaded_models_changed(self, _loaded: dict[str, str]) -> None:
        # Try it and the process monitor know this machine's models (a router's are its own).
        loaded = self.controller.loaded_models()
        self._loaded_pid_map = self.controller.loaded_pids()
        self.try_panel.set_models(loaded, self.controller.without_chat_template(loaded))
        self.hardware_panel.set_model_names(loaded)
        if self.poller is not None:
            self.poller.poll_now()

    def start_reply(self, model_id: str, request: ReplyRequest) -> Job:
        """Try it's message (or raw prompt), answered on a job; the panel shows it as it comes."""
        job = self.controller.start_reply(model_id, request)
        job.progress.connect(self.try_panel.append_piece)
        job.succeeded.connect(lambda record: self.try_panel.finish(reply_summary(record)))
        job.errored.connect(lambda exc: self.try_panel.finish(reply_failure(str(exc)), failed=True))
        return job

    # -- adding models ----------------------------------------------------------------------

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of GGUF models")
        if folder:
            self.controller.add_library_folder(Path(folder))

    def import_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a model file", "", "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.import_model(Path(path))

    def import_model(self, source: Path) -> Job:
        return self.controller.import_model(source)

    def _import_started(self, name: str, job: Job) -> None:
        row = ImportRow(name, job)
        job.done.connect(row.deleteLater)
        self.cards_layout.insertWidget(0, row)
        self.empty_state.setVisible(False)
        self.scroll.setVisible(True)

    def create_demo_model(self) -> Job:
        self.demo_button.setEnabled(False)
        job = self.controller.create_demo_model()
        job.done.connect(lambda: self.demo_button.setEnabled(True))
        return job

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

    def ensure_server(self):
        return self.controller.ensure_server()

    def _web_page_url(self) -> str:
        return self.controller.page_url(theme.applied_scheme())

    def show_library(self) -> None:
        self.tabs.setCurrentIndex(0)

    def show_get_models(self) -> None:
        self.tabs.setCurrentWidget(self.get_models)
        self.get_models.search_box.setFocus(Qt.FocusReason.OtherFocusReason)

    def reveal_model(self, model_id: str) -> None:
        """Show a model's card (a new model being loaded from its transfer row)."""
        self.show_library()
        if (card := self.cards.get(model_id)) is not None:
            self.scroll.ensureWidgetVisible(card)
            card.setFocus(Qt.FocusReason.OtherFocusReason)

    def show_web_panel(self) -> None:
        self.tabs.setCurrentWidget(self.web_panel)

    def show_serving(self) -> None:
        self.tabs.setCurrentWidget(self.serving_panel)

    def show_engines(self) -> None:
        self.tabs.setCurrentWidget(self.engines_panel)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.web_panel:
            self.web_panel.open()

    def open_in_browser(self) -> None:
        QDesktopServices.openUrl(QUrl(self.controller.ensure_server().page_url))

    # -- errors, state, shutdown -------------------------------------------------------------

    def _hardware_failed(self, exc: object) -> None:
        log.warning("hardware poll failed: %s", exc)
        self.statusBar().showMessage(f"Could not read hardware: {exc}", 10_000)

    def _toggle_side(self, visible: bool) -> None:
        self.side_panel.setVisible(visible)
        self.toasts.set_host(self.side_panel if visible else self.central_container)

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
        if self.poller is not None:
            self.poller.shutdown()
            self.poller = None
        self.hub.shutdown()
        self.web_panel.shutdown()
        self.controller.shutdown()
