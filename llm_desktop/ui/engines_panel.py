"""The Engines tab: where models run. This machine, and each remote engine (llama.cpp's router on
another machine) with its connection as it stands, kept live; a form to add one (name, address,
API key) that says what is wrong in place and where the key is kept; Remove per engine.

The controller acts (adding and removing run on a worker thread: the keyring, the sources file,
a connection's thread to stop) and says what changed; every word shown here comes from the
sources presenter.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.core import sources_presenter as words
from llm_desktop.core.engine_sources import EngineSource, InvalidSource
from llm_desktop.core.remote_engine import ConnectionStatus
from llm_desktop.core.sources_presenter import SourceRow
from llm_desktop.ui import theme
from llm_desktop.ui.controller import AppController
from llm_desktop.ui.panels import fill_with_scrolling, muted_label, panel_card
from llm_desktop.ui.serving_panel import CopyButton


class EngineRow(QFrame):
    """One engine: its name and state, its address, its connection line, and Remove.

    Signals:
        remove_requested(str): the engine's name.
    """

    remove_requested = Signal(str)

    def __init__(self, row: SourceRow, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("engineRow")
        self.name = row.name
        self.title = QLabel()
        self.title.setObjectName("engineName")
        self.chip = QLabel()
        self.chip.setObjectName("badge")
        self.address = muted_label()
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.line = QLabel()
        self.line.setWordWrap(True)
        self.line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.remove_button = QPushButton(words.REMOVE_BUTTON)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.name))
        header = QHBoxLayout()
        header.setSpacing(8)
        header.addWidget(self.title)
        header.addWidget(self.chip, 0, Qt.AlignmentFlag.AlignVCenter)
        header.addStretch(1)
        header.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 12, 10)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.address)
        layout.addWidget(self.line)
        self.show_row(row)

    def show_row(self, row: SourceRow) -> None:
        self.title.setText(row.title)
        self.chip.setText(row.state)
        self.chip.setVisible(bool(row.state))
        self.chip.setAccessibleName(f"{row.title}: {row.state.lower()}")
        for widget in (self, self.chip):
            if widget.property("tone") != row.tone:
                widget.setProperty("tone", row.tone)
                theme.repolish(widget)
        self.address.setText(row.address)
        self.line.setText(row.line)
        self.setToolTip(row.line)
        self.setAccessibleName(row.accessible_name)
        self.remove_button.setVisible(row.removable)
        self.remove_button.setAccessibleName(row.remove_accessible_name)

    def set_removing(self) -> None:
        self.remove_button.setEnabled(False)
        self.remove_button.setText(words.REMOVING)


class EnginesPanel(QWidget):
    """The engines list and the add form."""

    title = words.TAB_TITLE

    def __init__(self, controller: AppController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setAccessibleName(words.TAB_TITLE)
        self.rows: dict[str, EngineRow] = {}
        self._adding: EngineSource | None = None
        content = QWidget()
        content.setObjectName("cardList")
        layout = QVBoxLayout(content)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.setSpacing(12)
        layout.addWidget(self._build_list())
        layout.addWidget(self._build_form())
        layout.addStretch(1)
        fill_with_scrolling(self, content)

        controller.sources_changed.connect(self.show_sources)
        controller.source_added.connect(self._added)
        controller.source_removed.connect(self._removed)
        controller.source_failed.connect(self._failed)
        controller.library_changed.connect(lambda _views: self.show_sources())
        controller.loaded_changed.connect(lambda _loaded: self.show_sources())
        self.show_sources()

    # -- layout -------------------------------------------------------------------------------

    def _build_list(self) -> QFrame:
        card, layout = panel_card(words.LIST_TITLE)
        layout.addWidget(muted_label(words.LIST_HELP))
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setSpacing(8)
        layout.addLayout(self.rows_layout)
        return card

    def _build_form(self) -> QFrame:
        card, layout = panel_card(words.FORM_TITLE)
        layout.addWidget(muted_label(words.FORM_HELP))
        self.command = QLabel(words.FORM_COMMAND)
        self.command.setObjectName("codeLine")
        self.command.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.command.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.command.setAccessibleName("The router's command line")
        self.copy_command = CopyButton("Copy the router's command line", self.command.text)
        command_row = QHBoxLayout()
        command_row.addWidget(self.command, 1)
        command_row.addWidget(self.copy_command)
        layout.addLayout(command_row)
        self.name_field = QLineEdit()
        self.name_field.setPlaceholderText(words.NAME_PLACEHOLDER)
        self.name_field.setToolTip(words.NAME_HINT)
        self.name_field.setAccessibleName("Engine name")
        self.name_field.setAccessibleDescription(words.NAME_HINT)
        self.url_field = QLineEdit()
        self.url_field.setPlaceholderText(words.URL_PLACEHOLDER)
        self.url_field.setToolTip(words.URL_HINT)
        self.url_field.setAccessibleName("Engine address")
        self.url_field.setAccessibleDescription(words.URL_HINT)
        self.key_field = QLineEdit()
        self.key_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_field.setPlaceholderText(words.KEY_PLACEHOLDER)
        self.key_field.setAccessibleName("Engine API key")
        self.show_key = QPushButton(words.SHOW_KEY)
        self.show_key.setCheckable(True)
        self.show_key.setAccessibleName("Show the engine's API key")
        self.show_key.toggled.connect(self._toggle_key)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        for row, (text, field) in enumerate(
            (
                (words.NAME_LABEL, self.name_field),
                (words.URL_LABEL, self.url_field),
                (words.KEY_LABEL, self.key_field),
            )
        ):
            label = QLabel(text)
            label.setBuddy(field)
            grid.addWidget(label, row, 0)
            grid.addWidget(field, row, 1)
        grid.addWidget(self.show_key, 2, 2)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self.key_hint = muted_label(words.key_storage_hint(self.controller.keys_persistent))
        layout.addWidget(self.key_hint)
        self.error_label = QLabel()
        self.error_label.setObjectName("inlineError")
        self.error_label.setWordWrap(True)
        self.error_label.setAccessibleName("Why the engine was not added")
        self.error_label.hide()
        self.note_label = QLabel()
        self.note_label.setObjectName("inlineNote")
        self.note_label.setWordWrap(True)
        self.note_label.setAccessibleName("Engine added")
        self.note_label.hide()
        self.add_button = QPushButton(words.ADD_BUTTON)
        self.add_button.setObjectName("primaryButton")
        self.add_button.setAccessibleName("Add the engine")
        self.add_button.clicked.connect(self.add)
        for field in (self.name_field, self.url_field, self.key_field):
            field.returnPressed.connect(self.add)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        layout.addWidget(self.error_label)
        layout.addWidget(self.note_label)
        layout.addLayout(buttons)
        return card

    # -- the list -----------------------------------------------------------------------------

    def show_sources(self, statuses: list[ConnectionStatus] | None = None) -> None:
        """Draw the rows again from the connections as they stand (updated in place, so a
        focused Remove button keeps its focus)."""
        if statuses is None:
            statuses = self.controller.connections()
        views = self.controller.store.views()
        local = sum(1 for view in views if self.controller.runs_here(view.model))
        rows = words.source_rows(
            statuses, local_models=local, local_loaded=len(self.controller.loaded_models())
        )
        for name in [name for name in self.rows if name not in {row.name for row in rows}]:
            self.rows.pop(name).deleteLater()
        for index, row in enumerate(rows):
            widget = self.rows.get(row.name)
            if widget is None:
                widget = EngineRow(row)
                widget.remove_requested.connect(self.remove)
                self.rows[row.name] = widget
            else:
                widget.show_row(row)
            self.rows_layout.insertWidget(index, widget)

    def remove(self, name: str) -> None:
        if (row := self.rows.get(name)) is not None:
            row.set_removing()
        self.controller.remove_source(name)

    def _removed(self, name: str) -> None:
        self._show_note(words.removed_message(name))
        self.show_sources()

    # -- the form -----------------------------------------------------------------------------

    def add(self) -> None:
        if self._adding is not None:
            return
        try:
            source = words.source_from_form(self.name_field.text(), self.url_field.text())
        except InvalidSource as exc:
            self._show_error(str(exc))
            return
        self.error_label.hide()
        self.note_label.hide()
        self._adding = source
        self.add_button.setEnabled(False)
        self.add_button.setText(words.ADDING)
        self.controller.add_source(source, self.key_field.text().strip() or None)

    def _added(self, source: EngineSource, key_given: bool, kept: bool, replaced: bool) -> None:
        if self._adding is not None and self._adding.name == source.name:
            self._form_ready()
            for field in (self.name_field, self.url_field, self.key_field):
                field.clear()
        message = words.added_message(source, key_given=key_given, kept=kept, replaced=replaced)
        self._show_note(message)

    def _failed(self, name: str, message: str) -> None:
        if self._adding is not None and self._adding.name == name:
            self._form_ready()
        elif (row := self.rows.get(name)) is not None:
            row.remove_button.setEnabled(True)
            row.remove_button.setText(words.REMOVE_BUTTON)
        self._show_error(message)

    def _form_ready(self) -> None:
        self._adding = None
        self.add_button.setEnabled(True)
        self.add_button.setText(words.ADD_BUTTON)

    def _show_error(self, message: str) -> None:
        self.note_label.hide()
        self.error_label.setText(message)
        self.error_label.show()

    def _show_note(self, message: str) -> None:
        self.error_label.hide()
        self.note_label.setText(message)
        self.note_label.show()

    def _toggle_key(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.key_field.setEchoMode(mode)
        self.show_key.setText(words.HIDE_KEY if shown else words.SHOW_KEY)
        self.show_key.setAccessibleName(
            "Hide the engine's API key" if shown else "Show the engine's API key"
        )
