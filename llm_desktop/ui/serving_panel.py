"""The Serving tab: serve the library to other programs through the OpenAI-compatible API.

Start and stop the API server (127.0.0.1, a port of your choice), copy its base URL and key,
choose how long models loaded on request stay loaded and how many (or how much memory) may be
loaded at once, watch the recent requests come in, and copy a first request in Python or curl.

The controller acts (its jobs bind the port and run the server, off the GUI thread) and says
what changed; every word shown here comes from the serving presenter.
"""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.core.events import ModelState
from llm_desktop.core.presenter import serving_policy_line
from llm_desktop.core.serving import RequestRecord, ServingPolicy
from llm_desktop.core.serving_presenter import (
    EXAMPLE_MODEL_PLACEHOLDER,
    NO_BUDGET,
    NO_LIMIT,
    NO_REQUESTS,
    OUTCOME_COLUMN,
    REQUEST_COLUMNS,
    SERVER_STOPPED,
    api_server_view,
    client_examples,
    keep_alive_choices,
    request_cells,
    request_group,
    request_line,
)
from llm_desktop.ui import theme
from llm_desktop.ui.controller import AppController
from llm_desktop.ui.panels import fill_with_scrolling, muted_label, panel_card

GB = 10**9  # sizes are decimal everywhere in the app
MAX_LOADED_LIMIT = 64
COPIED_MS = 1500
EXAMPLE_TABS = ("Python", "curl")  # in the order client_examples gives them


class CopyButton(QPushButton):
    """Copies what `text()` of its source gives; says "Copied" for a moment."""

    def __init__(self, accessible_name: str, source, parent: QWidget | None = None):
        super().__init__("Copy", parent)
        self.setAccessibleName(accessible_name)
        self._source = source
        self.clicked.connect(self.copy)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self._source())
        self.setText("Copied")
        QTimer.singleShot(COPIED_MS, self, lambda: self.setText("Copy"))


class ServingPanel(QWidget):
    """The API server, the serving policy, the recent requests and code to copy."""

    def __init__(self, controller: AppController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setAccessibleName("Serving")
        content = QWidget()
        content.setObjectName("cardList")
        layout = QVBoxLayout(content)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.setSpacing(12)
        top = QHBoxLayout()
        top.setSpacing(12)
        top.addWidget(self._build_server(), 3)
        top.addWidget(self._build_policy(), 2)
        layout.addLayout(top)
        layout.addWidget(self._build_activity(), 1)
        fill_with_scrolling(self, content)

        controller.api_server_changed.connect(self.show_state)
        controller.api_server_failed.connect(self.show_failure)
        controller.request_logged.connect(self.add_request)
        controller.library_changed.connect(lambda _views: self.show_examples())
        controller.loaded_changed.connect(lambda _loaded: self.show_examples())
        self.show_state(controller.api_state)
        self.show_requests()

    # -- layout -------------------------------------------------------------------------------

    def _build_server(self) -> QFrame:
        card, layout = panel_card("OpenAI-compatible API")
        self.state_chip = QLabel()
        self.state_chip.setObjectName("badge")
        self.state_chip.setAccessibleName("API server state")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(self.controller.api_port())
        self.port.setAccessibleName("API server port")
        self.port.setToolTip("The server listens on 127.0.0.1 (this computer only) at this port")
        self.start_button = QPushButton()
        self.start_button.setObjectName("primaryButton")
        self.start_button.clicked.connect(self._start_or_stop)
        header = layout.itemAt(0).widget()
        layout.removeWidget(header)
        row = QHBoxLayout()
        row.addWidget(header)
        row.addWidget(self.state_chip, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addStretch(1)
        row.addWidget(self.start_button)
        layout.insertLayout(0, row)
        self.state_line = muted_label()
        self.error_label = QLabel()
        self.error_label.setObjectName("inlineError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        self.url_field = QLineEdit()
        self.url_field.setReadOnly(True)
        self.url_field.setAccessibleName("Base URL")
        self.token_field = QLineEdit(self.controller.api_token())
        self.token_field.setReadOnly(True)
        self.token_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_field.setCursorPosition(0)  # from its start, not a dot cut at the edge
        self.token_field.setAccessibleName("API key")
        self.show_token = QPushButton("Show")
        self.show_token.setCheckable(True)
        self.show_token.setAccessibleName("Show the API key")
        self.show_token.toggled.connect(self._toggle_token)
        self.copy_url = CopyButton("Copy the base URL", self.url_field.text)
        self.copy_token = CopyButton("Copy the API key", self.controller.api_token)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        grid.addWidget(QLabel("Port"), 0, 0)
        grid.addWidget(self.port, 0, 1, Qt.AlignmentFlag.AlignLeft)
        grid.addWidget(QLabel("Base URL"), 1, 0)
        grid.addWidget(self.url_field, 1, 1, 1, 2)
        grid.addWidget(self.copy_url, 1, 3)
        grid.addWidget(QLabel("API key"), 2, 0)
        grid.addWidget(self.token_field, 2, 1)
        grid.addWidget(self.show_token, 2, 2)
        grid.addWidget(self.copy_token, 2, 3)
        grid.setColumnStretch(1, 1)
        layout.addWidget(self.state_line)
        layout.addWidget(self.error_label)
        layout.addLayout(grid)
        layout.addStretch(1)
        return card

    def _build_policy(self) -> QFrame:
        card, layout = panel_card("Models on request")
        policy = self.controller.serving.policy
        self.keep_alive = QComboBox()
        self.keep_alive.setAccessibleName("Unload models loaded on request after this idle time")
        for seconds, label, meaning in keep_alive_choices(policy.keep_alive_s):
            self.keep_alive.addItem(label, seconds)
            self.keep_alive.setItemData(
                self.keep_alive.count() - 1, meaning, Qt.ItemDataRole.ToolTipRole
            )
        self.keep_alive.setCurrentIndex(self.keep_alive.findData(policy.keep_alive_s))
        self.max_loaded = QSpinBox()
        self.max_loaded.setRange(0, MAX_LOADED_LIMIT)
        self.max_loaded.setSpecialValueText(NO_LIMIT)
        self.max_loaded.setValue(policy.max_loaded or 0)
        self.max_loaded.setAccessibleName("Most models loaded at once")
        self.memory_budget = QDoubleSpinBox()
        self.memory_budget.setRange(0, 4096)
        self.memory_budget.setDecimals(1)
        self.memory_budget.setSingleStep(1.0)
        self.memory_budget.setSuffix(" GB")
        self.memory_budget.setSpecialValueText(NO_BUDGET)
        self.memory_budget.setValue((policy.memory_budget or 0) / GB)
        self.memory_budget.setAccessibleName("Memory all loaded models may hold, in GB")
        # Labels above their fields: the card stays narrow beside the server's.
        for text, field in (
            ("Unload when idle for", self.keep_alive),
            ("Loaded at once", self.max_loaded),
            ("Memory budget", self.memory_budget),
        ):
            label = QLabel(text)
            label.setBuddy(field)
            layout.addWidget(label)
            layout.addWidget(field)
        self.policy_line = muted_label()
        layout.addWidget(self.policy_line)
        layout.addStretch(1)
        self.keep_alive.currentIndexChanged.connect(self._apply_policy)
        self.max_loaded.valueChanged.connect(self._apply_policy)
        self.memory_budget.valueChanged.connect(self._apply_policy)
        self._show_policy(policy)
        return card

    def _build_activity(self) -> QFrame:
        """The recent requests, and beside them (a tab away) a first request to copy: all of
        it fits the window without scrolling."""
        card = QFrame()
        card.setObjectName("sidePanel")
        layout = QVBoxLayout(card)
        layout.setContentsMargins(12, 8, 12, 12)
        self.activity = QTabWidget()
        self.activity.setDocumentMode(True)
        self.activity.setAccessibleName("Requests and code examples")
        self.activity.addTab(self._build_requests(), "Recent requests")
        self.example_views: list[QPlainTextEdit] = []
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for name in EXAMPLE_TABS:
            view = QPlainTextEdit()
            view.setReadOnly(True)
            view.setFont(mono)
            view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            view.setAccessibleName(f"{name} example")
            self.example_views.append(view)
            self.activity.addTab(view, f"{name} example")
        self.copy_example = CopyButton("Copy the example", self._current_example)
        self.activity.setCornerWidget(self.copy_example, Qt.Corner.TopRightCorner)
        self.activity.currentChanged.connect(self._activity_tab_changed)
        self._activity_tab_changed(0)
        layout.addWidget(self.activity)
        return card

    def _build_requests(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 8, 0, 0)
        self.requests_empty = muted_label(NO_REQUESTS)
        self.requests_empty.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.request_tree = QTreeWidget()
        self.request_tree.setAccessibleName("Recent requests, by model")
        self.request_tree.setColumnCount(len(REQUEST_COLUMNS))
        self.request_tree.setHeaderLabels(REQUEST_COLUMNS)
        self.request_tree.setRootIsDecorated(False)
        self.request_tree.setIndentation(14)
        self.request_tree.setUniformRowHeights(True)
        self.request_tree.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        self.request_tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.request_tree.header()
        header.setStretchLastSection(True)
        for column in range(len(REQUEST_COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.requests_empty)
        layout.addWidget(self.request_tree, 1)
        return page

    def _current_example(self) -> str:
        index = self.activity.currentIndex() - 1
        return self.example_views[index].toPlainText() if index >= 0 else ""

    def _activity_tab_changed(self, index: int) -> None:
        self.copy_example.setVisible(index > 0)  # a code tab: its Copy

    # -- the server ---------------------------------------------------------------------------

    def show_state(self, state: str) -> None:
        view = api_server_view(state)
        self.state_chip.setText(view.chip)
        if self.state_chip.property("tone") != view.tone:
            self.state_chip.setProperty("tone", view.tone)
            theme.repolish(self.state_chip)
        self.state_line.setText(view.line)
        self.start_button.setText(view.action)
        self.start_button.setAccessibleName(view.action)
        self.start_button.setEnabled(view.action_enabled)
        self.port.setEnabled(view.settings_enabled)
        self.url_field.setText(self.controller.api_url)
        self.url_field.setCursorPosition(0)
        self.show_examples()

    def show_failure(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    def _start_or_stop(self) -> None:
        if self.controller.api_state == SERVER_STOPPED:
            self.error_label.hide()
            self.controller.start_api_server(self.port.value())
        else:
            self.controller.stop_api_server()

    def _toggle_token(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.token_field.setEchoMode(mode)
        self.show_token.setText("Hide" if shown else "Show")
        self.show_token.setAccessibleName("Hide the API key" if shown else "Show the API key")

    # -- the policy ---------------------------------------------------------------------------

    def _apply_policy(self) -> None:
        budget = round(self.memory_budget.value() * GB)
        policy = ServingPolicy(
            keep_alive_s=self.keep_alive.currentData(),
            max_loaded=self.max_loaded.value() or None,
            memory_budget=budget or None,
        )
        self.controller.set_serving_policy(policy)
        self._show_policy(policy)

    def _show_policy(self, policy: ServingPolicy) -> None:
        line = serving_policy_line(policy.keep_alive_s, policy.max_loaded, policy.memory_budget)
        self.policy_line.setText(line)

    # -- requests -----------------------------------------------------------------------------

    def add_request(self, _record: RequestRecord) -> None:
        """A request ended: the list is drawn again from the log (at most 20 per model)."""
        self.show_requests()

    def show_requests(self) -> None:
        records = self.controller.serving.requests()  # newest first
        groups: dict[str, list[RequestRecord]] = defaultdict(list)
        for record in records:
            groups[record.model].append(record)  # the model asked last comes first
        colors = theme.colors()
        tree = self.request_tree
        tree.clear()
        bold = QFont(tree.font())
        bold.setWeight(QFont.Weight.DemiBold)
        for model, model_records in groups.items():
            heading = QTreeWidgetItem(
                [request_group(self.controller.model_title(model), model_records)]
            )
            heading.setFont(0, bold)
            tree.addTopLevelItem(heading)
            heading.setFirstColumnSpanned(True)
            for record in model_records:
                line = request_line(record)
                cells = request_cells(record)
                row = QTreeWidgetItem(list(cells))
                for column, cell in enumerate(cells):
                    row.setToolTip(column, cell if column == OUTCOME_COLUMN else line.text)
                if line.failed:
                    row.setForeground(OUTCOME_COLUMN, QColor(colors["error"]))
                heading.addChild(row)
            heading.setExpanded(True)
        self.requests_empty.setVisible(not groups)
        self.request_tree.setVisible(bool(groups))

    # -- code to copy ------------------------------------------------------------------------

    def show_examples(self) -> None:
        loaded = list(self.controller.loaded_models())
        views = self.controller.store.views()
        listed = [
            view.model
            for view in views
            if view.state is not ModelState.UNREADABLE and self.controller.runs_here(view.model)
        ]  # the API serves this machine's models: a remote engine's router serves its own
        model = next(iter(loaded + listed), EXAMPLE_MODEL_PLACEHOLDER)
        examples = client_examples(self.controller.api_url, self.controller.api_token(), model)
        for view, example in zip(self.example_views, examples, strict=True):
            if view.toPlainText() != example.code:
                view.setPlainText(example.code)
