"""A model card: what the model is, whether it fits, and its load progress, from engine events."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAccessible, QAccessibleEvent, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.engine import LoadOptions
from llm_desktop.core.events import ModelState, ProgressEvent
from llm_desktop.core.fit import FitVerdict, format_bytes
from llm_desktop.core.presenter import CardView, card_view
from llm_desktop.ui.spinner import SpinnerOverlay

FIT_LABELS = {
    "gpu": "Fits on GPU",
    "partial": "Partial offload",
    "cpu": "CPU only",
    "no": "Too large",
}


@dataclass(frozen=True)
class LoadSettings:
    """Per-model load settings a person chose (remembered by the window)."""

    n_ctx: int = 0  # 0: the model's own, at most the engine's default
    gpu_layers: int = -1  # -1: automatic, from the fit estimate
    use_mmap: bool = True

    def to_options(self) -> LoadOptions:
        return LoadOptions(
            n_ctx=self.n_ctx or None,
            n_gpu_layers=None if self.gpu_layers < 0 else self.gpu_layers,
            use_mmap=self.use_mmap,
        )


def fit_badge_text(verdict: FitVerdict) -> str:
    if verdict.verdict == "partial" and verdict.total_layers:
        return f"Partial offload: {verdict.gpu_layers}/{verdict.total_layers} layers"
    return FIT_LABELS.get(verdict.verdict, verdict.verdict)


def announce(widget: QWidget, text: str) -> None:
    """Say `text` to assistive technology: the widget's description changes and is signalled."""
    widget.setAccessibleDescription(text)
    QAccessible.updateAccessibility(QAccessibleEvent(widget, QAccessible.Event.DescriptionChanged))


class ModelCard(QFrame):
    """One model of the library.

    Signals:
        load_requested(str, object): model id and the LoadOptions to use (Load or Retry).
        cancel_requested(str): model id.
        unload_requested(str): model id.
        try_requested(str): model id; the person wants to prompt the loaded model.
        settings_changed(str, object): model id and the new LoadSettings.
    """

    load_requested = Signal(str, object)
    cancel_requested = Signal(str)
    unload_requested = Signal(str)
    try_requested = Signal(str)
    settings_changed = Signal(str, object)

    def __init__(
        self,
        entry: ModelEntry,
        verdict: FitVerdict | None = None,
        settings: LoadSettings | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.entry = entry
        self.model_id = entry.id
        self.view: CardView = card_view(None, entry.display_name)
        self.setObjectName("modelCard")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.setAccessibleName(f"Model {entry.display_name}")

        self.title = QLabel(entry.display_name)
        self.title.setObjectName("cardTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_badge = QLabel()
        self.fit_badge.setObjectName("fitBadge")
        self.facts = QLabel(self._facts_text())
        self.facts.setObjectName("cardFacts")
        self.facts.setWordWrap(True)
        self.path_label = QLabel(entry.path)
        self.path_label.setObjectName("cardPath")
        self.path_label.setToolTip(entry.path)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.progress.setAccessibleName(f"{entry.display_name} load progress")
        self.status = QLabel()
        self.status.setObjectName("cardStatus")
        self.status.setWordWrap(True)
        self.status.setAccessibleName(f"{entry.display_name} status")

        self.load_button = self._button("Load", "primaryButton", "Load this model (Enter)")
        self.cancel_button = self._button("Cancel", "", "Cancel loading (Esc)")
        self.unload_button = self._button("Unload", "", "Unload the model and free its memory")
        self.retry_button = self._button("Retry", "primaryButton", "Try loading again")
        self.try_button = self._button("Try it", "", "Send the loaded model a prompt")
        self.settings_button = QToolButton()
        self.settings_button.setText("Settings")
        self.settings_button.setCheckable(True)
        self.settings_button.setAccessibleName("Load settings")
        self.settings_button.setAccessibleDescription("Show context length, GPU layers, mmap")

        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(0, 1_048_576)
        self.n_ctx.setSingleStep(512)
        self.n_ctx.setSpecialValueText("Model default")
        self.n_ctx.setAccessibleName("Context length in tokens")
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 1024)
        self.gpu_layers.setSpecialValueText("Auto")
        self.gpu_layers.setAccessibleName("GPU layers")
        self.gpu_layers.setAccessibleDescription("Layers to offload to the GPU; Auto uses the fit")
        self.use_mmap = QCheckBox("Memory-map the file")
        self.use_mmap.setAccessibleName("Memory-map the model file")
        self.settings_panel = self._settings_panel()
        self.settings_panel.setVisible(False)

        self._layout()
        self._wire()
        self.set_settings(settings or LoadSettings())
        self.set_fit(verdict)
        self.spinner = SpinnerOverlay(self.info_area)
        self.render(self.view)

    # -- construction ----------------------------------------------------------------------

    def _button(self, text: str, object_name: str, description: str) -> QPushButton:
        button = QPushButton(text)
        if object_name:
            button.setObjectName(object_name)
        button.setAccessibleName(f"{text} {self.entry.display_name}")
        button.setAccessibleDescription(description)
        button.setToolTip(description)
        return button

    def _settings_panel(self) -> QWidget:
        panel = QWidget()
        grid = QGridLayout(panel)
        grid.setContentsMargins(0, 4, 0, 0)
        grid.addWidget(QLabel("Context"), 0, 0)
        grid.addWidget(self.n_ctx, 0, 1)
        grid.addWidget(QLabel("GPU layers"), 0, 2)
        grid.addWidget(self.gpu_layers, 0, 3)
        grid.addWidget(self.use_mmap, 0, 4)
        grid.setColumnStretch(5, 1)
        return panel

    def _layout(self) -> None:
        self.info_area = QWidget()
        info = QVBoxLayout(self.info_area)
        info.setContentsMargins(0, 0, 0, 0)
        info.setSpacing(4)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.fit_badge, 0, Qt.AlignmentFlag.AlignTop)
        info.addLayout(header)
        info.addWidget(self.facts)
        info.addWidget(self.path_label)

        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        for button in (
            self.load_button,
            self.retry_button,
            self.cancel_button,
            self.unload_button,
            self.try_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.settings_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(8)
        layout.addWidget(self.info_area)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addWidget(self.settings_panel)

    def _wire(self) -> None:
        self.load_button.clicked.connect(self.request_load)
        self.retry_button.clicked.connect(self.request_load)
        self.cancel_button.clicked.connect(lambda: self.cancel_requested.emit(self.model_id))
        self.unload_button.clicked.connect(lambda: self.unload_requested.emit(self.model_id))
        self.try_button.clicked.connect(lambda: self.try_requested.emit(self.model_id))
        self.settings_button.toggled.connect(self.settings_panel.setVisible)
        for spin in (self.n_ctx, self.gpu_layers):
            spin.valueChanged.connect(self._settings_edited)
        self.use_mmap.toggled.connect(self._settings_edited)

    def _facts_text(self) -> str:
        entry = self.entry
        if entry.error:
            return f"Unreadable: {entry.error}"
        facts = [
            entry.architecture,
            entry.size_label or None,
            entry.quantization,
            f"{entry.context_length:,} ctx" if entry.context_length else None,
            format_bytes(entry.file_size),
        ]
        if len(entry.parts) > 1:
            facts.append(f"{len(entry.parts)} parts")
        if entry.source != "folder":
            facts.append(
                {"lmstudio": "LM Studio", "huggingface": "Hugging Face"}.get(
                    entry.source, entry.source.capitalize()
                )
            )
        return "  ·  ".join(fact for fact in facts if fact)

    # -- settings and fit --------------------------------------------------------------------

    def settings(self) -> LoadSettings:
        return LoadSettings(
            n_ctx=self.n_ctx.value(),
            gpu_layers=self.gpu_layers.value(),
            use_mmap=self.use_mmap.isChecked(),
        )

    def set_settings(self, settings: LoadSettings) -> None:
        for widget, value in (
            (self.n_ctx, settings.n_ctx),
            (self.gpu_layers, settings.gpu_layers),
        ):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.use_mmap.blockSignals(True)
        self.use_mmap.setChecked(settings.use_mmap)
        self.use_mmap.blockSignals(False)

    def _settings_edited(self) -> None:
        self.settings_changed.emit(self.model_id, self.settings())

    def set_fit(self, verdict: FitVerdict | None) -> None:
        self.verdict = verdict
        if verdict is None:
            self.fit_badge.setVisible(False)
            return
        text = fit_badge_text(verdict)
        self.fit_badge.setText(text)
        self.fit_badge.setProperty("verdict", verdict.verdict)
        self.fit_badge.setToolTip(verdict.summary)
        self.fit_badge.setAccessibleName(f"Memory fit: {text}")
        self.fit_badge.setAccessibleDescription(verdict.summary)
        self.fit_badge.setVisible(True)
        self._restyle(self.fit_badge)

    # -- behaviour ---------------------------------------------------------------------------

    def request_load(self) -> None:
        if self.view.can_load or self.view.can_retry:
            self.load_requested.emit(self.model_id, self.settings().to_options())

    def apply_event(self, event: ProgressEvent) -> None:
        if event.model != self.model_id:
            return
        had_focus = self.isAncestorOf(self.focusWidget()) or self.hasFocus()
        previous = self.view
        self.render(card_view(event, self.entry.display_name))
        ended = previous.busy and not self.view.busy
        if ended and (had_focus or self.focusWidget() is None) and self.isVisible():
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    def render(self, view: CardView) -> None:
        changed_state = view.state is not self.view.state
        self.view = view
        self.setProperty("state", view.state.value)
        if view.indeterminate:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(view.pct)
        self.progress.setFormat(view.progress_text)
        # The bar is for work in progress and a loaded model; a failure or a cancel is said by
        # the status line, the border and the buttons, not by a half-filled bar.
        self.progress.setVisible(view.busy or view.state is ModelState.LOADED)
        self.progress.setAccessibleDescription(view.announcement)
        self.status.setText(view.detail)
        self.status.setVisible(bool(view.detail))
        self.load_button.setVisible(view.can_load)
        self.load_button.setEnabled(view.can_load)
        self.retry_button.setVisible(view.can_retry)
        self.cancel_button.setEnabled(view.can_cancel)
        self.cancel_button.setVisible(view.can_cancel)
        self.unload_button.setVisible(view.can_unload)
        self.try_button.setVisible(view.can_try)
        self.settings_panel.setEnabled(not view.busy and not view.can_unload)
        if view.busy:
            if self.spinner.is_spinning():
                self.spinner.set_message(view.busy_message)
            else:
                self.spinner.start(view.busy_message)
        elif self.spinner.is_spinning():
            self.spinner.stop()
        announce(self.status, view.announcement)
        if changed_state:
            self._restyle(self)

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        activate = key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)
        if activate and (self.view.can_load or self.view.can_retry):
            self.request_load()
            return
        if key == Qt.Key.Key_Escape and self.view.can_cancel:
            self.cancel_requested.emit(self.model_id)
            return
        super().keyPressEvent(event)
