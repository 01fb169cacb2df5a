"""Try it: send a loaded model a prompt and watch the reply arrive piece by piece."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


class TryPanel(QFrame):
    """A prompt box and a streamed reply for one of the loaded models.

    Signals:
        prompt_submitted(str, str, int): model id, prompt, max tokens.
        stop_requested(str): model id whose reply should stop.
    """

    prompt_submitted = Signal(str, str, int)
    stop_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sidePanel")
        self.setAccessibleName("Try a loaded model")
        title = QLabel("Try it")
        title.setObjectName("panelTitle")
        self.model_picker = QComboBox()
        self.model_picker.setAccessibleName("Model to prompt")
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Write a prompt, then Ctrl+Enter")
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setMaximumHeight(90)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 4096)
        self.max_tokens.setValue(64)
        self.max_tokens.setPrefix("max ")
        self.max_tokens.setSuffix(" tokens")
        self.max_tokens.setAccessibleName("Maximum tokens in the reply")
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primaryButton")
        self.send_button.setAccessibleName("Send prompt")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop the reply")
        self.reply = QPlainTextEdit()
        self.reply.setReadOnly(True)
        self.reply.setAccessibleName("Reply")
        self.reply.setPlaceholderText("The reply appears here as it is written.")
        self.hint = QLabel("Load a model to try it.")
        self.hint.setObjectName("muted")
        self.hint.setWordWrap(True)

        controls = QHBoxLayout()
        controls.addWidget(self.max_tokens)
        controls.addStretch(1)
        controls.addWidget(self.stop_button)
        controls.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.addWidget(title)
        layout.addWidget(self.hint)
        layout.addWidget(self.model_picker)
        layout.addWidget(self.prompt)
        layout.addLayout(controls)
        layout.addWidget(self.reply, 1)

        self.send_button.clicked.connect(self.submit)
        self.stop_button.clicked.connect(self._stop)
        QShortcut(QKeySequence("Ctrl+Return"), self.prompt, self.submit)
        self._generating = False
        self.pieces_received = 0
        self._refresh()

    def set_models(self, models: dict[str, str]) -> None:
        """The loaded models, id → display name."""
        current = self.model_picker.currentData()
        self.model_picker.clear()
        for model_id, name in models.items():
            self.model_picker.addItem(name, model_id)
        index = self.model_picker.findData(current)
        if index >= 0:
            self.model_picker.setCurrentIndex(index)
        self._refresh()

    def select(self, model_id: str) -> None:
        index = self.model_picker.findData(model_id)
        if index >= 0:
            self.model_picker.setCurrentIndex(index)
        self.prompt.setFocus(Qt.FocusReason.OtherFocusReason)

    def submit(self) -> None:
        model_id = self.model_picker.currentData()
        text = self.prompt.toPlainText().strip()
        if not model_id or not text or self._generating:
            return
        self.reply.clear()
        self.pieces_received = 0
        self._generating = True
        self._refresh()
        self.prompt_submitted.emit(model_id, text, self.max_tokens.value())

    def append_piece(self, piece: str) -> None:
        self.pieces_received += 1
        self.reply.moveCursor(QTextCursor.MoveOperation.End)
        self.reply.insertPlainText(piece)

    def finish(self, note: str | None = None) -> None:
        self._generating = False
        if note:
            self.reply.moveCursor(QTextCursor.MoveOperation.End)
            self.reply.insertPlainText(f"\n[{note}]")
        self._refresh()

    @property
    def generating(self) -> bool:
        return self._generating

    def _stop(self) -> None:
        model_id = self.model_picker.currentData()
        if model_id:
            self.stop_requested.emit(model_id)

    def _refresh(self) -> None:
        has_models = self.model_picker.count() > 0
        self.hint.setVisible(not has_models)
        self.model_picker.setEnabled(has_models and not self._generating)
        self.send_button.setEnabled(has_models and not self._generating)
        self.stop_button.setEnabled(self._generating)
