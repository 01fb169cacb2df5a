"""The transfer tray: a row per download or quantize job, under the library and "Get models".

Each `TransferRow` renders the transfer presenter's `TransferView` (title, bar, the progress line
with amount, rate or "stalled N s" and time left, the detail line, the buttons it offers) and
decides nothing. Cancel asks the view's own question (keep the bytes received, or delete them)
when it has one. The tray hides itself when it has no rows and can be folded to its header.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.core import hub_presenter
from llm_desktop.core.presenter import ActionId
from llm_desktop.core.transfer_presenter import CancelQuestion, TransferView
from llm_desktop.ui.elided_label import ElidedLabel
from llm_desktop.ui.model_card import announce
from llm_desktop.ui.theme import repolish

MAX_TRAY_HEIGHT = 280  # about two rows; more scroll, so the view above keeps its room


class TransferRow(QFrame):
    """One transfer. Signals:
    action_requested(str, str): the transfer's key and the action id (`presenter.ActionId`)
        chosen, the cancel question already answered.
    """

    action_requested = Signal(str, str)

    def __init__(self, view: TransferView, parent: QWidget | None = None):
        super().__init__(parent)
        self.key = view.key
        self.view = view
        self.question: QMessageBox | None = None
        self.setObjectName("transferRow")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.kind = QLabel()
        self.kind.setObjectName("badge")
        self.kind.setProperty("tone", "accent")
        self.title = ElidedLabel(Qt.TextElideMode.ElideRight)
        self.title.setObjectName("transferTitle")
        self.bar = QProgressBar()
        self.bar.setObjectName("slimBar")
        self.bar.setTextVisible(False)
        self.line = QLabel()
        self.line.setObjectName("transferLine")
        self.detail = QLabel()
        self.detail.setObjectName("cardStatus")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons: dict[ActionId, QPushButton] = {}
        self._button_row = QHBoxLayout()
        self._button_row.setSpacing(6)

        header = QHBoxLayout()
        header.setSpacing(8)
        header.addWidget(self.kind, 0, Qt.AlignmentFlag.AlignVCenter)
        header.addWidget(self.title, 1)
        header.addLayout(self._button_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(5)
        layout.addLayout(header)
        layout.addWidget(self.bar)
        layout.addWidget(self.line)
        layout.addWidget(self.detail)
        self.render(view, first=True)

    def render(self, view: TransferView, *, first: bool = False) -> None:
        stage_changed = first or view.stage is not self.view.stage
        self.view = view
        self.kind.setText(view.kind_word)
        self.title.setText(view.title)
        self.title.setToolTip(view.title)
        self.setAccessibleName(f"{view.kind_word} {view.title}")
        if view.indeterminate:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 100)
            self.bar.setValue(view.pct)
        self.bar.setAccessibleName(f"{view.kind_word} of {view.title}")
        self.bar.setAccessibleDescription(view.progress_text)
        self.line.setText(view.progress_text)
        self.detail.setText(view.detail)
        self.detail.setToolTip(view.detail)
        self.detail.setVisible(bool(view.detail))
        self._render_buttons(view)
        if stage_changed:
            self.setProperty("stage", str(view.stage))
            repolish(self)
        announce(self.line, view.announcement)
        if self.question is not None and view.cancel_question is None:
            self.question.close()  # nothing left to ask about: it ended meanwhile

    def _render_buttons(self, view: TransferView) -> None:
        wanted = [(a.id, a.label, a.primary) for a in view.actions]
        shown = [(i, b.text(), b.objectName() == "primaryButton") for i, b in self.buttons.items()]
        if wanted != shown:
            had_focus = any(button.hasFocus() for button in self.buttons.values())
            for button in self.buttons.values():
                button.hide()  # gone now, not when the deferred delete comes
                button.deleteLater()
            self.buttons = {}
            for action in view.actions:
                button = QPushButton(action.label)
                button.setObjectName("primaryButton" if action.primary else "")
                button.clicked.connect(lambda _=False, a=action.id: self.request(a))
                self._button_row.addWidget(button)
                button.show()  # now, not on the layout's next turn of the event loop
                self.buttons[action.id] = button
            if had_focus and self.buttons:
                next(iter(self.buttons.values())).setFocus(Qt.FocusReason.OtherFocusReason)
        for action in view.actions:
            button = self.buttons[action.id]
            button.setAccessibleName(action.accessible_name)
            button.setAccessibleDescription(action.hint)
            button.setToolTip(action.hint)

    def request(self, action_id: ActionId) -> None:
        if not self.view.has(action_id):
            return
        if action_id is ActionId.CANCEL and self.view.cancel_question is not None:
            self.ask(self.view.cancel_question)
            return
        self.action_requested.emit(self.key, str(action_id))

    def ask(self, question: CancelQuestion) -> QMessageBox:
        """Keep the bytes or delete them: the view's question, its two answers, and a way back
        (Esc or closing the box does nothing)."""
        if self.question is not None:
            self.question.raise_()
            return self.question
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(question.keep.accessible_name)
        box.setText(question.text)
        box.setAccessibleName(question.text)
        keep = box.addButton(question.keep.label, QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton(question.discard.label, QMessageBox.ButtonRole.DestructiveRole)
        back = box.addButton(QMessageBox.StandardButton.Close)
        for button, action in ((keep, question.keep), (discard, question.discard)):
            button.setAccessibleName(action.accessible_name)
            button.setToolTip(action.accessible_name)
        box.setDefaultButton(keep)
        box.setEscapeButton(back)
        answers = {keep: question.keep.id, discard: question.discard.id}

        def answered(button: QAbstractButton) -> None:
            chosen = answers.get(button)
            if chosen is not None and self.view.has(ActionId.CANCEL):
                self.action_requested.emit(self.key, str(chosen))

        box.buttonClicked.connect(answered)
        box.finished.connect(lambda _result: setattr(self, "question", None))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.question = box
        box.open()
        return box


class TransfersPanel(QFrame):
    """The tray of transfer rows. Signals:
    action_requested(str, str): a row's key and chosen action id.
    """

    action_requested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("transferTray")
        self.rows: dict[str, TransferRow] = {}
        title = QLabel("Transfers")
        title.setObjectName("sectionTitle")
        self.summary = QLabel()
        self.summary.setObjectName("muted")
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setChecked(True)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.setAccessibleName("Show transfers")
        self.toggle.setToolTip("Show or hide the transfers")
        self.toggle.toggled.connect(self._fold)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setObjectName("linkButton")
        self.clear_button.setAccessibleName("Take finished transfers off the list")
        self.clear_button.clicked.connect(self.clear_finished)
        header = QHBoxLayout()
        header.setContentsMargins(14, 6, 10, 0)
        header.setSpacing(10)
        header.addWidget(title)
        header.addWidget(self.summary, 1)
        header.addWidget(self.clear_button)
        header.addWidget(self.toggle)

        self.rows_widget = QWidget()
        self.rows_widget.setObjectName("transferRows")
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setContentsMargins(8, 0, 8, 8)
        self.rows_layout.setSpacing(6)
        self.rows_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.rows_widget)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setAccessibleName("Transfers")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.scroll)
        self.setVisible(False)

    def show_view(self, view: TransferView) -> TransferRow:
        row = self.rows.get(view.key)
        if row is None:
            row = TransferRow(view)
            row.action_requested.connect(self.action_requested)
            self.rows[view.key] = row
            self.rows_layout.insertWidget(0, row)  # the newest on top
            self.toggle.setChecked(True)
        else:
            row.render(view)
        self._update()
        return row

    def remove(self, key: str) -> None:
        row = self.rows.pop(key, None)
        if row is not None:
            row.hide()
            row.deleteLater()
        self._update()

    def clear_finished(self) -> None:
        """Dismiss every row that offers Dismiss (finished, nothing left to act on)."""
        for key, row in list(self.rows.items()):
            if row.view.has(ActionId.DISMISS):
                self.action_requested.emit(key, str(ActionId.DISMISS))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def _fold(self, shown: bool) -> None:
        self.scroll.setVisible(shown)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.toggle.setAccessibleName("Hide transfers" if shown else "Show transfers")

    def _update(self) -> None:
        self.summary.setText(hub_presenter.tray_summary(row.view for row in self.rows.values()))
        self.clear_button.setVisible(any(r.view.has(ActionId.DISMISS) for r in self.rows.values()))
        self.setVisible(bool(self.rows))
        self._fit_height()

    def _fit_height(self) -> None:
        """As tall as the rows at the tray's width (wrapped detail lines included), at most
        `MAX_TRAY_HEIGHT`."""
        if not self.rows:
            return
        width = self.scroll.viewport().width() or self.width()
        layout = self.rows_widget.layout()
        height = layout.heightForWidth(width) if layout.hasHeightForWidth() else -1
        if height < 0:
            height = self.rows_widget.sizeHint().height()
        self.scroll.setFixedHeight(min(height, MAX_TRAY_HEIGHT))
