"""A model card: what the model is, where it runs, whether it fits, and its load progress, from
engine events."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAccessible, QAccessibleEvent, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llm_desktop.core.options import MAX_CONTEXT, MAX_GPU_LAYERS, LoadOptions
from llm_desktop.core.presenter import Action, ActionId, CardView
from llm_desktop.core.serving_presenter import SERVING_DEFAULT, model_keep_alive_choices
from llm_desktop.core.sources_presenter import CardMenu, source_chip
from llm_desktop.ui import theme
from llm_desktop.ui.elided_label import ElidedLabel
from llm_desktop.ui.spinner import SpinnerOverlay


def announce(widget: QWidget, text: str) -> None:
    """Say `text` to assistive technology: the widget's description changes and is signalled."""
    widget.setAccessibleDescription(text)
    QAccessible.updateAccessibility(QAccessibleEvent(widget, QAccessible.Event.DescriptionChanged))


class ModelCard(QFrame):
    """One model of the library: renders the presenter's `CardView`, decides nothing.

    Signals:
        action_requested(str, str, object): model id, action id (`presenter.ActionId`) and the
            action's options (the wire form of `LoadOptions`, or None).
        options_changed(str, object): model id and the new `LoadOptions` a person set.
        keep_alive_changed(str, object): model id and its own keep-alive (seconds, None for
            never, or `SERVING_DEFAULT`).
        quantize_requested(str, str): model id and the quantization type chosen in the menu.
    """

    action_requested = Signal(str, str, object)
    options_changed = Signal(str, object)
    keep_alive_changed = Signal(str, object)
    quantize_requested = Signal(str, str)

    def __init__(self, view: CardView, options: LoadOptions | None = None, parent=None):
        super().__init__(parent)
        self.model_id = view.model
        self.view = view
        self.setObjectName("modelCard")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)

        self.title = QLabel()
        self.title.setObjectName("cardTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit_badge = QLabel()
        self.fit_badge.setObjectName("fitBadge")
        # Where the model runs ("lab-gpu · Connected"): the sources presenter says when and how.
        self.source_chip = QLabel()
        self.source_chip.setObjectName("badge")
        self.source_chip.setVisible(False)
        self._remote_sources = False
        self.facts = QLabel()
        self.facts.setObjectName("cardFacts")
        self.facts.setWordWrap(True)
        self.path_label = ElidedLabel()
        self.path_label.setObjectName("cardPath")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.status = QLabel()
        self.status.setObjectName("cardStatus")
        self.status.setWordWrap(True)

        # One button per action the presenter can offer; it says which are shown, with what.
        self.buttons: dict[ActionId, QPushButton] = {}
        for action_id in (
            ActionId.LOAD,
            ActionId.RETRY,
            ActionId.CANCEL,
            ActionId.UNLOAD,
            ActionId.TRY,
            ActionId.DETAILS,
            ActionId.REMOVE,
        ):
            button = QPushButton()
            button.setVisible(False)
            button.clicked.connect(lambda _=False, a=action_id: self.request(a))
            self.buttons[action_id] = button
        self.load_button = self.buttons[ActionId.LOAD]
        self.retry_button = self.buttons[ActionId.RETRY]
        self.cancel_button = self.buttons[ActionId.CANCEL]
        self.unload_button = self.buttons[ActionId.UNLOAD]
        self.try_button = self.buttons[ActionId.TRY]
        self.details_button = self.buttons[ActionId.DETAILS]
        self.remove_button = self.buttons[ActionId.REMOVE]
        self.settings_button = QToolButton()
        self.settings_button.setText("Settings")
        self.settings_button.setCheckable(True)
        self.settings_button.setAccessibleName("Load settings")
        self.settings_button.setAccessibleDescription("Show context length, GPU layers, mmap")
        # More actions, offered by the presenter outside the card's buttons ("Quantize to…").
        self.more_button = QToolButton()
        self.more_button.setText("More")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.more_button.setAccessibleName("More actions")
        self.more_menu = QMenu(self.more_button)
        self.more_button.setMenu(self.more_menu)
        self.more_button.setVisible(False)
        self.quantize_menu: QMenu | None = None

        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(0, MAX_CONTEXT)
        self.n_ctx.setSingleStep(512)
        self.n_ctx.setSpecialValueText("Model default")
        self.n_ctx.setAccessibleName("Context length in tokens")
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, MAX_GPU_LAYERS)
        self.gpu_layers.setSpecialValueText("Auto")
        self.gpu_layers.setAccessibleName("GPU layers")
        self.gpu_layers.setAccessibleDescription("Layers to offload to the GPU; Auto uses the fit")
        self.use_mmap = QCheckBox("Memory-map the file")
        self.use_mmap.setAccessibleName("Memory-map the model file")
        self.keep_alive = QComboBox()
        self.keep_alive.setAccessibleName("Unload this model when idle for")
        self.set_keep_alive(SERVING_DEFAULT)
        self.settings_panel = self._settings_panel()
        self.settings_panel.setVisible(False)

        self._layout()
        self._wire()
        self.set_options(options or LoadOptions())
        self.spinner = SpinnerOverlay(self.details_area)
        self.render(view, first=True)

    # -- construction ----------------------------------------------------------------------

    def _settings_panel(self) -> QWidget:
        panel = QWidget()
        grid = QGridLayout(panel)
        grid.setContentsMargins(0, 4, 0, 0)
        grid.addWidget(QLabel("Context"), 0, 0)
        grid.addWidget(self.n_ctx, 0, 1)
        grid.addWidget(QLabel("GPU layers"), 0, 2)
        grid.addWidget(self.gpu_layers, 0, 3)
        grid.addWidget(self.use_mmap, 0, 4)
        grid.addWidget(QLabel("Unload when idle"), 1, 0)
        grid.addWidget(self.keep_alive, 1, 1, 1, 3)
        grid.setColumnStretch(5, 1)
        return panel

    def _layout(self) -> None:
        self.info_area = QWidget()
        info = QVBoxLayout(self.info_area)
        info.setContentsMargins(0, 0, 0, 0)
        info.setSpacing(4)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.source_chip, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(self.fit_badge, 0, Qt.AlignmentFlag.AlignTop)
        info.addLayout(header)
        # The busy overlay covers what the model is made of, never its name and fit badge:
        # a person must still read which card is loading.
        self.details_area = QWidget()
        details = QVBoxLayout(self.details_area)
        details.setContentsMargins(0, 0, 0, 0)
        details.setSpacing(4)
        details.addWidget(self.facts)
        details.addWidget(self.path_label)
        details.addStretch(1)
        info.addWidget(self.details_area)

        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        for button in self.buttons.values():
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.more_button)
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
        self.settings_button.toggled.connect(self.settings_panel.setVisible)
        for spin in (self.n_ctx, self.gpu_layers):
            spin.valueChanged.connect(self._options_edited)
        self.use_mmap.toggled.connect(self._options_edited)
        self.keep_alive.activated.connect(
            lambda _index: self.keep_alive_changed.emit(
                self.model_id, self.keep_alive.currentData()
            )
        )

    def set_keep_alive(self, current: float | str | None) -> None:
        """Show the model's own keep-alive (the choices are the presenter's)."""
        self.keep_alive.blockSignals(True)
        self.keep_alive.clear()
        for value, label, meaning in model_keep_alive_choices(current):
            self.keep_alive.addItem(label, value)
            self.keep_alive.setItemData(
                self.keep_alive.count() - 1, meaning, Qt.ItemDataRole.ToolTipRole
            )
        index = next(
            i for i in range(self.keep_alive.count()) if self.keep_alive.itemData(i) == current
        )
        self.keep_alive.setCurrentIndex(index)
        self.keep_alive.blockSignals(False)

    # -- options -----------------------------------------------------------------------------

    def options(self) -> LoadOptions:
        return LoadOptions.parse(
            {
                "n_ctx": self.n_ctx.value(),
                "gpu_layers": self.gpu_layers.value(),
                "use_mmap": self.use_mmap.isChecked(),
            }
        )

    def set_options(self, options: LoadOptions) -> None:
        wire = options.to_dict()
        for widget, value in ((self.n_ctx, wire["n_ctx"]), (self.gpu_layers, wire["gpu_layers"])):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.use_mmap.blockSignals(True)
        self.use_mmap.setChecked(wire["use_mmap"])
        self.use_mmap.blockSignals(False)

    def _options_edited(self) -> None:
        # The spin boxes' ranges are the parser's, so what they hold always parses.
        self.options_changed.emit(self.model_id, self.options())

    # -- the menu ----------------------------------------------------------------------------

    def set_menu(self, menu: CardMenu | None, types: tuple[str, ...]) -> None:
        """Offer the load settings and "Quantize to…" where the presenter does (a remote
        model's router loads it its own way: neither)."""
        settings = menu is not None and menu.settings
        if not settings:
            self.settings_button.setChecked(False)
        self.settings_button.setVisible(settings)
        self.set_quantize_offer(menu.quantize if menu is not None else None, types)

    def set_quantize_offer(self, offer: Action | None, types: tuple[str, ...]) -> None:
        """Show "Quantize to…" with one entry per type, or nothing where the presenter offers
        none (an already quantized or unreadable model)."""
        self.more_menu.clear()
        self.quantize_menu = None
        if offer is not None:
            menu = self.more_menu.addMenu(offer.label)
            menu.setToolTipsVisible(True)
            menu.menuAction().setToolTip(offer.hint)
            menu.setAccessibleName(offer.accessible_name)
            for type_name in types:
                action = menu.addAction(type_name)
                action.triggered.connect(
                    lambda _=False, t=type_name: self.quantize_requested.emit(self.model_id, t)
                )
            self.quantize_menu = menu
        self.more_button.setVisible(offer is not None)

    # -- behaviour ---------------------------------------------------------------------------

    def request(self, action_id: ActionId) -> None:
        action = self.view.action(action_id)
        if action is not None:
            self.action_requested.emit(self.model_id, str(action_id), action.options)

    def primary_action(self) -> ActionId | None:
        return next((action.id for action in self.view.actions if action.primary), None)

    def render(self, view: CardView, *, first: bool = False) -> None:
        changed_state = first or view.state is not self.view.state
        had_focus = self.isAncestorOf(self.focusWidget()) or self.hasFocus()
        was_busy = self.view.busy
        self.view = view
        if first or self.title.text() != view.title:
            self.title.setText(view.title)
            self.setAccessibleName(f"Model {view.title}")
            self.progress.setAccessibleName(f"{view.title} load progress")
            self.status.setAccessibleName(f"{view.title} status")
        self.facts.setText(view.facts)
        self.path_label.setText(view.path)
        self.path_label.setToolTip(view.path)
        self.path_label.setVisible(bool(view.path))
        self._render_fit(view)
        self._render_source(view)
        self.setProperty("state", str(view.state))
        if view.indeterminate:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(view.pct)
        self.progress.setFormat(view.progress_text)
        self.progress.setVisible(view.show_progress)
        self.progress.setAccessibleDescription(view.announcement)
        self.status.setText(view.detail)
        self.status.setVisible(bool(view.detail))
        shown = {action.id: action for action in view.actions}
        for action_id, button in self.buttons.items():
            action = shown.get(action_id)
            button.setVisible(action is not None)
            button.setEnabled(action is not None)
            if action is not None:
                button.setText(action.label)
                button.setAccessibleName(action.accessible_name)
                button.setAccessibleDescription(action.hint)
                button.setToolTip(action.hint)
                name = "primaryButton" if action.primary else ""
                if button.objectName() != name:  # restyling is costly: only on a change
                    button.setObjectName(name)
                    self._restyle(button)
        self.settings_panel.setEnabled(view.settings_editable)
        # A remote model's details are one line (no path): while busy, room for the message.
        self.details_area.setMinimumHeight(self.spinner.message_height() if view.busy else 0)
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
        ended = was_busy and not view.busy
        if ended and (had_focus or self.focusWidget() is None) and self.isVisible():
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    def _render_fit(self, view: CardView) -> None:
        fit = view.fit
        self.fit_badge.setVisible(fit is not None)
        if fit is None:
            return
        if self.fit_badge.text() != fit.text or self.fit_badge.property("verdict") != fit.verdict:
            self.fit_badge.setText(fit.text)
            self.fit_badge.setProperty("verdict", fit.verdict)
            self._restyle(self.fit_badge)
        self.fit_badge.setToolTip(fit.summary)
        self.fit_badge.setAccessibleName(fit.accessible_name)
        self.fit_badge.setAccessibleDescription(fit.summary)

    def set_remote_sources(self, present: bool) -> None:
        """Whether remote engines are set up (then this machine's cards say where they run)."""
        if present != self._remote_sources:
            self._remote_sources = present
            self._render_source(self.view)

    def _render_source(self, view: CardView) -> None:
        chip = source_chip(view, remote_sources=self._remote_sources)
        self.source_chip.setVisible(chip is not None)
        if chip is None:
            return
        self.source_chip.setText(chip.text)
        if self.source_chip.property("tone") != chip.tone:
            self.source_chip.setProperty("tone", chip.tone)
            theme.repolish(self.source_chip)
        self.source_chip.setToolTip(chip.tooltip)
        self.source_chip.setAccessibleName(chip.accessible_name)
        self.source_chip.setAccessibleDescription(chip.tooltip)

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        activate = key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)
        if activate and (primary := self.primary_action()) is not None:
            self.request(primary)
            return
        if key == Qt.Key.Key_Escape and self.view.has(ActionId.CANCEL):
            self.request(ActionId.CANCEL)
            return
        super().keyPressEvent(event)
