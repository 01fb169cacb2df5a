"""Try it: chat with a loaded model (or send it a raw prompt) and watch each reply arrive.

A chat goes the way /v1/chat/completions does: the system prompt and the turns so far, as
messages, in the model's own chat template (applied in its host). "Raw completion" sends the
prompt alone, untemplated, for base models. The panel keeps the conversation (`Conversation`,
no Qt) and renders it into a read-only document; what a turn's label and footer say comes from
the serving presenter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeySequence,
    QShortcut,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFrameFormat,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.core.generation import CHAT, COMPLETION, ReplyRequest
from llm_desktop.core.serving_presenter import ASSISTANT, NO_TEMPLATE_HINT, USER, turn_label
from llm_desktop.ui import theme

DEFAULT_MAX_TOKENS = 128
SCROLL_SLACK_PX = 4  # within this of the end counts as "at the end": follow the reply
BUBBLE_INDENT_PX = 28  # a turn leaves this much room on the other side (yours right, its left)


@dataclass
class Turn:
    """One turn of the conversation, as shown: who, what, and the line under a reply."""

    role: str  # USER or ASSISTANT
    label: str  # "You", the model's title
    text: str = ""
    footer: str = ""
    failed: bool = False
    raw: bool = False  # a raw prompt or its completion: shown, never sent as chat history


class Conversation:
    """The turns so far, and the chat messages they make."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def add(self, turn: Turn) -> Turn:
        self.turns.append(turn)
        return turn

    def clear(self) -> None:
        self.turns.clear()

    def messages(self, system: str) -> tuple[tuple[str, str], ...]:
        """The system prompt, then each chat turn. A reply with no text (it failed, or was
        stopped before its first token) leaves the history with the message it answered, so
        the model never sees a question without its answer followed by another question."""
        messages = [("system", system)] if system else []
        turns = self.turns
        for index, turn in enumerate(turns):
            if turn.raw:
                continue
            answer = turns[index + 1] if index + 1 < len(turns) else None
            unanswered = turn.role == USER and answer is not None and not answer.text
            if unanswered or (turn.role == ASSISTANT and not turn.text):
                continue
            messages.append((turn.role, turn.text))
        return tuple(messages)


class ChatTranscript(QTextBrowser):
    """The conversation, rendered: one tinted block per turn, yours indented from the left and
    the model's from the right, with a muted line under each reply. A reply's pieces are
    appended in place; anything else renders the whole conversation again (cheap, and
    always right after a theme change)."""

    def __init__(self, conversation: Conversation, parent: QWidget | None = None):
        super().__init__(parent)
        self.conversation = conversation
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setAccessibleName("Conversation")
        self.setPlaceholderText("Your conversation with the model appears here.")
        self._stream: QTextCursor | None = None
        self._text_format = QTextCharFormat()
        self._restyle = theme.RestyleAfterThemeChange(self, self.render)

    def render(self, *, streaming: bool = False) -> None:
        """Draw every turn; with `streaming`, later pieces go to the end of the last turn."""
        colors = theme.colors()
        self.document().clear()
        self._stream = None
        cursor = QTextCursor(self.document())
        for turn in self.conversation.turns:
            self._stream = self._add_turn(cursor, turn, colors)
            cursor = QTextCursor(self.document().rootFrame().lastCursorPosition())
        if not streaming:
            self._stream = None
        self.scroll_to_end()

    def append(self, piece: str) -> None:
        if self._stream is None:
            return
        follow = self._at_end()
        self._stream.insertText(piece, self._text_format)
        if follow:
            self.scroll_to_end()

    def scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _at_end(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - SCROLL_SLACK_PX

    def _add_turn(self, cursor: QTextCursor, turn: Turn, colors: dict[str, str]) -> QTextCursor:
        mine = turn.role == USER
        frame = QTextFrameFormat()
        frame.setBackground(QColor(colors["accent_bg"] if mine else colors["surface_alt"]))
        frame.setBorder(1)
        frame.setBorderBrush(QColor(colors["accent"] if mine else colors["border"]))
        frame.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
        frame.setPadding(8)
        frame.setTopMargin(0)
        frame.setBottomMargin(0)  # the empty line between two frames spaces them
        frame.setLeftMargin(BUBBLE_INDENT_PX if mine else 0)
        frame.setRightMargin(0 if mine else BUBBLE_INDENT_PX)
        cursor.insertFrame(frame)

        label = QTextCharFormat()
        label.setFontWeight(QFont.Weight.DemiBold)
        label.setForeground(QColor(colors["accent"] if mine else colors["text"]))
        cursor.insertText(turn.label, label)

        self._text_format = QTextCharFormat()
        self._text_format.setForeground(QColor(colors["text"]))
        cursor.insertBlock(QTextBlockFormat(), self._text_format)
        # The space a tokenizer puts before a reply's first word is not the model's to show.
        cursor.insertText(turn.text.lstrip(), self._text_format)
        stream = QTextCursor(cursor)

        if turn.role == ASSISTANT:
            footer = QTextCharFormat()
            footer.setForeground(QColor(colors["error"] if turn.failed else colors["muted"]))
            footer.setFontPointSize(max(7.0, self.font().pointSizeF() - 1))
            spaced = QTextBlockFormat()
            spaced.setTopMargin(4)
            cursor.insertBlock(spaced, footer)
            cursor.insertText(turn.footer or "Writing…", footer)
        return stream

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._restyle.request()


class TryPanel(QFrame):
    """A chat with one of the loaded models.

    Signals:
        reply_requested(str, object): a model id and the `ReplyRequest` to send it.
        stop_requested(str): the model id whose reply should stop.
    """

    reply_requested = Signal(str, object)
    stop_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sidePanel")
        self.setAccessibleName("Try a loaded model")
        self.conversation = Conversation()
        title = QLabel("Try it")
        title.setObjectName("panelTitle")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("linkButton")
        self.clear_button.setAccessibleName("Clear conversation")
        self.clear_button.setToolTip("Start a new conversation")
        self.model_picker = QComboBox()
        self.model_picker.setAccessibleName("Model to chat with")
        self.hint = QLabel("Load a model to chat with it.")
        self.hint.setObjectName("muted")
        self.hint.setWordWrap(True)
        self.template_hint = QLabel(NO_TEMPLATE_HINT)
        self.template_hint.setObjectName("muted")
        self.template_hint.setWordWrap(True)
        self._without_template: frozenset[str] = frozenset()
        self.system_prompt = QLineEdit()
        self.system_prompt.setAccessibleName("System prompt")
        self.system_prompt.setPlaceholderText("System prompt (optional)")
        self.system_prompt.setToolTip(
            "Sent first in every chat message: how the model should answer (a role, a tone, "
            "rules). Raw completions leave it out."
        )
        self.transcript = ChatTranscript(self.conversation)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Message the model, then Ctrl+Enter")
        self.prompt.setAccessibleName("Message")
        self.prompt.setFixedHeight(self._lines_height(self.prompt, 2))
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 4096)
        self.max_tokens.setValue(DEFAULT_MAX_TOKENS)
        self.max_tokens.setPrefix("max ")
        self.max_tokens.setSuffix(" tokens")
        self.max_tokens.setAccessibleName("Maximum tokens in the reply")
        self.raw = QCheckBox("Raw")
        self.raw.setAccessibleName("Raw completion")
        self.raw.setToolTip(
            "Raw completion: send the message alone, without the chat template, and let the "
            "model continue it (for base models, which have no chat template)"
        )
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primaryButton")
        self.send_button.setAccessibleName("Send message")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop the reply")

        header = QHBoxLayout()
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.clear_button)
        controls = QHBoxLayout()
        controls.addWidget(self.max_tokens)
        controls.addWidget(self.raw)
        controls.addStretch(1)
        controls.addWidget(self.stop_button)
        controls.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.addLayout(header)
        layout.addWidget(self.hint)
        layout.addWidget(self.model_picker)
        layout.addWidget(self.template_hint)
        layout.addWidget(self.system_prompt)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.prompt)
        layout.addLayout(controls)

        self.send_button.clicked.connect(self.submit)
        self.stop_button.clicked.connect(self._stop)
        self.clear_button.clicked.connect(self.clear)
        self.raw.toggled.connect(self._refresh)
        self.model_picker.currentIndexChanged.connect(self._refresh)
        QShortcut(QKeySequence("Ctrl+Return"), self.prompt, self.submit)
        self._generating = False
        self._reply: Turn | None = None
        self._replying: str | None = None  # the model answering: Stop goes to it
        self.pieces_received = 0
        self._refresh()

    @staticmethod
    def _lines_height(editor: QPlainTextEdit, lines: int) -> int:
        margins = editor.contentsMargins()
        frame = 2 * editor.frameWidth() + margins.top() + margins.bottom()
        return editor.fontMetrics().lineSpacing() * lines + frame + 12

    def set_models(self, models: dict[str, str], without_template: Iterable[str] = ()) -> None:
        """The loaded models, id → display name; those whose file has no chat template."""
        self._without_template = frozenset(without_template)
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
        title = self.model_picker.currentText()
        raw = self.raw.isChecked()
        self.conversation.add(Turn(USER, turn_label(USER, title, raw=raw), text, raw=raw))
        if raw:
            request = ReplyRequest(mode=COMPLETION, prompt=text, max_tokens=self.max_tokens.value())
        else:
            system = self.system_prompt.text().strip()
            request = ReplyRequest(
                mode=CHAT,
                messages=self.conversation.messages(system),
                max_tokens=self.max_tokens.value(),
            )
        self._reply = self.conversation.add(
            Turn(ASSISTANT, turn_label(ASSISTANT, title, raw=raw), raw=raw)
        )
        self.prompt.clear()
        self.pieces_received = 0
        self._replying = model_id
        self._generating = True
        self.transcript.render(streaming=True)
        self._refresh()
        self.reply_requested.emit(model_id, request)

    def append_piece(self, piece: str) -> None:
        if self._reply is None:
            return
        self.pieces_received += 1
        starting = not self._reply.text.strip()
        self._reply.text += piece
        self.transcript.append(piece.lstrip() if starting else piece)

    def finish(self, footer: str, *, failed: bool = False) -> None:
        """The reply ended: `footer` says how (tokens and speed, or why it failed)."""
        if self._reply is not None:
            self._reply.footer = footer
            self._reply.failed = failed
        self._reply = None
        self._generating = False
        self.transcript.render()
        self._refresh()

    def clear(self) -> None:
        if self._generating:
            return
        self.conversation.clear()
        self.transcript.render()
        self._refresh()

    @property
    def generating(self) -> bool:
        return self._generating

    def _stop(self) -> None:
        if self._generating and self._replying:
            self.stop_requested.emit(self._replying)

    def _refresh(self) -> None:
        has_models = self.model_picker.count() > 0
        self.hint.setVisible(not has_models)
        self.model_picker.setEnabled(has_models and not self._generating)
        self.send_button.setEnabled(has_models and not self._generating)
        self.stop_button.setEnabled(self._generating)
        self.clear_button.setEnabled(bool(self.conversation.turns) and not self._generating)
        self.system_prompt.setEnabled(not self.raw.isChecked())
        no_template = self.model_picker.currentData() in self._without_template
        self.template_hint.setVisible(no_template and not self.raw.isChecked())
