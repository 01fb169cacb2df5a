"""The "Get models" page: search the Hugging Face hub, pick a repository, download a model.

A search box (Enter searches), the repositories found (downloads, likes, a gated marker), and
for the one selected its GGUF models: quantization, size, a fit badge that fills in as each
remote header is read, and a Download button that follows the model's download. Errors (gated,
not found, offline, rate limited) are shown in place, in the core's words. All of it is bound
from `HubBrowser`'s views; nothing here decides what a person reads.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.core.hub_presenter import HitView, RemoteModelView, RepoView
from llm_desktop.core.presenter import FitBadge
from llm_desktop.ui.elided_label import ElidedLabel
from llm_desktop.ui.hub_browser import HubBrowser
from llm_desktop.ui.theme import repolish

REPO_ROLE = Qt.ItemDataRole.UserRole
BUTTON_WIDTH = 132  # "Downloading 100%" fits: the button does not jump as the number grows


def _label(object_name: str, *, wrap: bool = False) -> QLabel:
    label = QLabel()
    label.setObjectName(object_name)
    label.setWordWrap(wrap)
    return label


def bind_fit(label: QLabel, fit: FitBadge | None) -> None:
    label.setVisible(fit is not None)
    if fit is None:
        return
    if label.text() != fit.text or label.property("verdict") != fit.verdict:
        label.setText(fit.text)
        label.setProperty("verdict", fit.verdict)
        repolish(label)
    label.setToolTip(fit.summary)
    label.setAccessibleName(fit.accessible_name)
    label.setAccessibleDescription(fit.summary)


class RepoRow(QWidget):
    """A search result in the list: name, owner, numbers, the gated marker."""

    def __init__(self, view: HitView, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = view
        name = _label("repoName")
        name.setText(view.name)
        owner = _label("muted")
        owner.setText(view.owner)
        meta = _label("repoMeta")
        meta.setText(view.facts)
        meta.setToolTip(view.facts)  # a narrow list cuts the line; the whole of it on hover
        self.gated = _label("badge")
        self.gated.setText(view.gated_label)
        self.gated.setProperty("tone", "warning")
        self.gated.setToolTip(view.gated_hint)
        self.gated.setVisible(view.gated)
        top = QHBoxLayout()
        top.setSpacing(6)
        top.addWidget(name, 1)
        top.addWidget(self.gated, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 7, 10, 7)
        layout.setSpacing(1)
        layout.addLayout(top)
        layout.addWidget(owner)
        layout.addWidget(meta)
        for widget in (name, owner, meta, self.gated):
            widget.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)


class RemoteModelRow(QFrame):
    """One model of the open repository. Signals:
    requested(str, str): the model's download key and the button's action ("download", "load").
    """

    requested = Signal(str, str)

    def __init__(self, view: RemoteModelView, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("remoteModel")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.view = view
        self.quantization = _label("quantName")
        self.recommended = _label("badge")
        self.recommended.setProperty("tone", "accent")
        self.size = _label("cardFacts")
        self.files = ElidedLabel()
        self.files.setObjectName("cardPath")
        self.fit = _label("fitBadge")
        self.button = QPushButton()
        self.button.setMinimumWidth(BUTTON_WIDTH)
        self.button.clicked.connect(self._clicked)
        name_line = QHBoxLayout()
        name_line.setSpacing(8)
        name_line.addWidget(self.quantization)
        name_line.addWidget(self.recommended)
        name_line.addStretch(1)
        file_line = QHBoxLayout()
        file_line.setSpacing(8)
        file_line.addWidget(self.size)
        file_line.addWidget(self.files, 1)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addLayout(name_line)
        text.addLayout(file_line)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 9, 14, 9)
        layout.setSpacing(10)
        layout.addLayout(text, 1)
        layout.addWidget(self.fit, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.render(view)

    def render(self, view: RemoteModelView) -> None:
        self.view = view
        self.setAccessibleName(view.accessible_name)
        self.quantization.setText(view.quantization)
        self.recommended.setText(view.recommended_label)
        self.recommended.setVisible(view.recommended)
        self.size.setText(view.facts)
        self.files.setText(view.title)
        self.files.setToolTip(view.file)
        bind_fit(self.fit, view.fit)
        button = view.button
        self.button.setText(button.label)
        self.button.setEnabled(button.enabled)
        self.button.setAccessibleName(button.accessible_name)
        self.button.setAccessibleDescription(button.hint)
        self.button.setToolTip(button.hint)
        name = "primaryButton" if button.primary else ""
        if self.button.objectName() != name:
            self.button.setObjectName(name)
            repolish(self.button)

    def _clicked(self) -> None:
        if self.view.button.enabled and self.view.button.action:
            self.requested.emit(self.view.key, self.view.button.action)


class GetModelsView(QWidget):
    """The page."""

    def __init__(self, browser: HubBrowser, parent: QWidget | None = None):
        super().__init__(parent)
        self.browser = browser
        self.rows: dict[str, RemoteModelRow] = {}

        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search Hugging Face for GGUF models, e.g. “qwen”")
        self.search_box.setAccessibleName("Search the hub")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.returnPressed.connect(self.search)
        self.search_button = QPushButton("Search")
        self.search_button.setObjectName("primaryButton")
        self.search_button.setAccessibleName("Search the hub")
        self.search_button.clicked.connect(self.search)
        self.search_status = _label("muted", wrap=True)
        self.search_error = _label("inlineError", wrap=True)
        self.search_error.setVisible(False)
        self.search_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.results = QListWidget()
        self.results.setObjectName("repoList")
        self.results.setAccessibleName("Repositories found")
        self.results.setSpacing(2)
        self.results.setUniformItemSizes(False)
        self.results.currentItemChanged.connect(self._repo_chosen)

        self.repo_title = _label("panelTitle", wrap=True)
        self.repo_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.repo_gated = _label("badge")
        self.repo_gated.setProperty("tone", "warning")
        self.repo_gated.setVisible(False)
        self.repo_status = _label("muted", wrap=True)
        self.repo_error = _label("inlineError", wrap=True)
        self.repo_error.setVisible(False)
        self.repo_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.models_widget = QWidget()
        self.models_widget.setObjectName("modelRows")
        self.models_layout = QVBoxLayout(self.models_widget)
        self.models_layout.setContentsMargins(0, 4, 4, 4)
        self.models_layout.setSpacing(8)
        self.models_layout.addStretch(1)
        self.models_scroll = QScrollArea()
        self.models_scroll.setWidgetResizable(True)
        self.models_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.models_scroll.setWidget(self.models_widget)
        self.models_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.models_scroll.setAccessibleName("Models in the repository")
        self.repo_placeholder = _label("muted", wrap=True)
        self.repo_placeholder.setText(
            "Search, then choose a repository to see its GGUF models, how each fits this "
            "machine, and download one."
        )
        self.repo_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self._layout()
        self._wire()
        self._show_repo_placeholder(True)

    def _layout(self) -> None:
        bar = QHBoxLayout()
        bar.setSpacing(8)
        bar.addWidget(self.search_box, 1)
        bar.addWidget(self.search_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(6)
        left_layout.addWidget(self.search_status)
        left_layout.addWidget(self.search_error)
        left_layout.addWidget(self.results, 1)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(12, 0, 0, 0)
        right_layout.setSpacing(6)
        title_line = QHBoxLayout()
        title_line.addWidget(self.repo_title, 1)
        title_line.addWidget(self.repo_gated, 0, Qt.AlignmentFlag.AlignTop)
        right_layout.addLayout(title_line)
        right_layout.addWidget(self.repo_status)
        right_layout.addWidget(self.repo_error)
        right_layout.addWidget(self.models_scroll, 1)
        right_layout.addWidget(self.repo_placeholder, 1)
        # Takes the room only when neither of the two above is shown (an error in place):
        # the error then sits under the title instead of stretching to the bottom.
        right_layout.addStretch(0)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([260, 520])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 12)
        layout.setSpacing(10)
        layout.addLayout(bar)
        layout.addWidget(self.splitter, 1)

    def _wire(self) -> None:
        browser = self.browser
        browser.searching.connect(self._searching)
        browser.results_ready.connect(self._show_results)
        browser.search_failed.connect(self._search_failed)
        browser.listing_started.connect(self._listing_started)
        browser.listing_ready.connect(self._show_listing)
        browser.listing_failed.connect(self._listing_failed)
        browser.model_changed.connect(self._model_changed)

    # -- searching ------------------------------------------------------------------------------

    def search(self) -> None:
        self.browser.search(self.search_box.text())

    def _searching(self, line: str) -> None:
        self.search_status.setText(line)
        self.search_status.setVisible(True)
        self.search_error.setVisible(False)

    def _show_results(self, views: list[HitView], line: str) -> None:
        self.search_status.setText(line)
        self.results.blockSignals(True)
        self.results.clear()
        for view in views:
            item = QListWidgetItem()
            item.setData(REPO_ROLE, view.repo_id)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, view.accessible_name)
            item.setToolTip(view.gated_hint or view.repo_id)
            row = RepoRow(view)
            item.setSizeHint(QSize(0, row.sizeHint().height()))
            self.results.addItem(item)
            self.results.setItemWidget(item, row)
        self.results.blockSignals(False)

    def _search_failed(self, message: str) -> None:
        self.search_status.setVisible(False)
        self.search_error.setText(message)
        self.search_error.setVisible(True)

    def repo_ids(self) -> list[str]:
        return [self.results.item(i).data(REPO_ROLE) for i in range(self.results.count())]

    def select_repo(self, repo_id: str) -> None:
        for index in range(self.results.count()):
            if self.results.item(index).data(REPO_ROLE) == repo_id:
                self.results.setCurrentRow(index)
                return

    # -- the repository open --------------------------------------------------------------------

    def _repo_chosen(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is not None:
            self.browser.open_repo(item.data(REPO_ROLE))

    def _show_repo_placeholder(self, shown: bool) -> None:
        self.repo_placeholder.setVisible(shown)
        self.models_scroll.setVisible(not shown)
        self.repo_title.setVisible(not shown)

    def _listing_started(self, line: str) -> None:
        self._show_repo_placeholder(False)
        self._clear_models()
        item = self.results.currentItem()
        self.repo_title.setText(item.data(REPO_ROLE) if item is not None else "")
        self.repo_gated.setVisible(False)
        self.repo_status.setText(line)
        self.repo_status.setVisible(True)
        self.repo_error.setVisible(False)

    def _show_listing(self, header: RepoView, views: list[RemoteModelView]) -> None:
        self.models_scroll.setVisible(True)
        self.repo_title.setText(header.title)
        self.repo_gated.setText(header.gated_label)
        self.repo_gated.setToolTip(header.gated_hint)
        self.repo_gated.setVisible(header.gated)
        self.repo_status.setText(header.summary)
        self._clear_models()
        for index, view in enumerate(views):
            row = RemoteModelRow(view)
            row.requested.connect(self._row_requested)
            self.rows[view.key] = row
            self.models_layout.insertWidget(index, row)

    def _listing_failed(self, message: str) -> None:
        self.repo_status.setVisible(False)
        self.models_scroll.setVisible(False)
        self.repo_error.setText(message)
        self.repo_error.setVisible(True)

    def _clear_models(self) -> None:
        for row in self.rows.values():
            row.hide()
            row.deleteLater()
        self.rows = {}

    def _model_changed(self, view: RemoteModelView) -> None:
        if (row := self.rows.get(view.key)) is not None:
            row.render(view)

    def _row_requested(self, key: str, action: str) -> None:
        if action == "download":
            self.browser.download(key)
        elif action == "load":
            self.browser.load(key)
