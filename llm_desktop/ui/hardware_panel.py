"""The "Hardware" side panel: GPUs, system memory and what each loaded model holds.

A view only: it shows the `HardwareReport` it is given (by `HardwarePoller.snapshot_ready`)
and never reads the hardware itself. Numbers are always written out; colour (the warning
chunk above 90 %) only repeats what the text says. GPUs that llama.cpp cannot use (a CPU-only
build) are still listed, under a sentence, in normal rather than muted text, that says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QVBoxLayout, QWidget

from llm_desktop.core.fit import format_bytes
from llm_desktop.core.hardware import GpuInfo, HardwareSnapshot
from llm_desktop.ui.theme import repolish
from llm_desktop.workers.hardware_poller import HardwareReport, ModelMemory

WARNING_FRACTION = 0.9
NO_MODEL_TEXT = "No model loaded"
READING_TEXT = "Reading hardware…"
_BAR_STEPS = 1000  # bytes overflow a QProgressBar's int range; bars show per-mille


def usage_text(used: int, total: int) -> str:
    """The text on a memory bar: "12.3 GB / 80.0 GB", plus "(93% used)" from 90 % on."""
    text = f"{format_bytes(used)} / {format_bytes(total)}"
    percent = _percent(used, total)
    if percent is not None and percent >= WARNING_FRACTION * 100:
        text += f" ({percent}% used)"
    return text


def _percent(used: int, total: int) -> int | None:
    # Rounded down, so "90% used" is never shown for 89.6 %, matching the warning threshold.
    return None if total <= 0 else int(100 * used // total)


def _label(text: str = "", *, name: str = "", muted: bool = False, wrap: bool = False) -> QLabel:
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    if muted:
        label.setProperty("muted", "true")
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class MemoryBar(QProgressBar):
    """A memory gauge whose text, accessible name and description all state the numbers."""

    def __init__(self, accessible_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setRange(0, _BAR_STEPS)
        self.setValue(0)
        self.setTextVisible(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAccessibleName(accessible_name)
        self.setProperty("level", "normal")

    def set_usage(self, used: int, total: int) -> None:
        used = max(0, min(used, total)) if total > 0 else 0
        percent = _percent(used, total)
        self.setValue(0 if not total else round(_BAR_STEPS * used / total))
        self.setFormat(usage_text(used, total))
        free = format_bytes(max(total - used, 0))
        description = f"{format_bytes(used)} of {format_bytes(total)} used"
        if percent is not None:
            description += f" ({percent}%), {free} free"
        self.setAccessibleDescription(description)
        self.setToolTip(description)
        level = "warning" if percent is not None and percent >= WARNING_FRACTION * 100 else "normal"
        if self.property("level") != level:
            self.setProperty("level", level)
            repolish(self)

    @property
    def warning(self) -> bool:
        return self.property("level") == "warning"


class _GpuRow(QWidget):
    def __init__(self, index: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"gpuRow{index}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.name = _label(name=f"gpuName{index}", wrap=True)
        self.bar = MemoryBar(f"GPU {index} memory")
        self.bar.setObjectName(f"gpuMemoryBar{index}")
        self.details = _label(name=f"gpuDetails{index}", muted=True, wrap=True)
        for widget in (self.name, self.bar, self.details):
            layout.addWidget(widget)

    def show_gpu(self, gpu: GpuInfo) -> None:
        self.name.setText(f"<b>GPU {gpu.index}</b> · {_escape(gpu.name)}")
        self.name.setAccessibleName(f"GPU {gpu.index}: {gpu.name}")
        self.bar.set_usage(gpu.memory_used, gpu.memory_total)
        parts = [
            "Utilization n/a"
            if gpu.utilization_pct is None
            else f"Utilization {gpu.utilization_pct}%"
        ]
        if gpu.temperature_c is not None:
            parts.append(f"{gpu.temperature_c} °C")
        self.details.setText("  ·  ".join(parts))


class _ModelRow(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modelRow")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        self.name = _label(name="modelName", wrap=True)
        self.details = _label(name="modelMemory", muted=True, wrap=True)
        layout.addWidget(self.name)
        layout.addWidget(self.details)

    def show_model(self, name: str, memory: ModelMemory, has_gpu: bool) -> None:
        self.name.setText(f"<b>{_escape(name)}</b>")
        self.name.setAccessibleName(name)
        parts = ["RAM unknown" if memory.rss is None else f"RAM {format_bytes(memory.rss)}"]
        if memory.vram is not None:
            parts.append(f"VRAM {format_bytes(memory.vram)}")
        elif has_gpu:
            parts.append("VRAM unknown")
        self.details.setText("  ·  ".join(parts))


class HardwarePanel(QFrame):
    """A compact side panel titled "Hardware".

    Slots:
        update_report(HardwareReport): show a polling round.
        set_model_names(dict[str, str]): display names by model id; ids without a name show
            the id. Only models in the report (the loaded ones) are listed.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sidePanel")
        self.setAccessibleName("Hardware")
        self.setMinimumWidth(240)
        self._names: dict[str, str] = {}
        self._report: HardwareReport | None = None
        self._gpu_rows: dict[int, _GpuRow] = {}
        self._model_rows: dict[str, _ModelRow] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 16)
        layout.setSpacing(6)

        title = _label("Hardware", name="panelTitle")
        title.setAccessibleName("Hardware")
        layout.addWidget(title)
        layout.addSpacing(4)

        self._gpu_title = _label("GPU", name="sectionTitle")
        layout.addWidget(self._gpu_title)
        self._gpu_status = _label(READING_TEXT, name="gpuStatus", muted=True, wrap=True)
        layout.addWidget(self._gpu_status)
        self._gpu_box = QVBoxLayout()
        self._gpu_box.setSpacing(12)
        layout.addLayout(self._gpu_box)

        layout.addSpacing(10)
        self._ram_title = _label("System memory", name="sectionTitle")
        layout.addWidget(self._ram_title)
        self._ram_bar = MemoryBar("System memory")
        self._ram_bar.setObjectName("ramBar")
        layout.addWidget(self._ram_bar)
        self._ram_available = _label(name="ramAvailable", muted=True)
        layout.addWidget(self._ram_available)

        layout.addSpacing(10)
        layout.addWidget(_label("Loaded models", name="sectionTitle"))
        self._models_empty = _label(NO_MODEL_TEXT, name="modelsEmpty", muted=True)
        layout.addWidget(self._models_empty)
        self._model_box = QVBoxLayout()
        self._model_box.setSpacing(8)
        layout.addLayout(self._model_box)
        layout.addStretch(1)

        self._ram_bar.hide()
        self._ram_available.hide()

    @property
    def report(self) -> HardwareReport | None:
        """The report on show, or None before the first."""
        return self._report

    @Slot(object)
    def update_report(self, report: HardwareReport) -> None:
        self._report = report
        snap = report.snapshot
        self._show_gpus(snap)
        ram = snap.ram
        self._ram_bar.set_usage(ram.used, ram.total)
        self._ram_available.setText(f"{format_bytes(ram.available)} available")
        self._ram_bar.show()
        self._ram_available.show()
        self._show_models()

    @Slot(dict)
    def set_model_names(self, names: Mapping[str, str]) -> None:
        self._names = dict(names)
        self._show_models()

    def _show_gpus(self, snap: HardwareSnapshot) -> None:
        gpus = snap.gpus
        self._gpu_title.setText("GPUs" if len(gpus) > 1 else "GPU")
        self._gpu_status.setText(snap.gpu_status)
        # With GPUs llama.cpp can use, their rows say it all; otherwise the sentence says why not
        # (or that llama.cpp could not be asked), and one that warns is not muted.
        offloads = snap.llama_build is not None and snap.llama_build.gpu_offload
        self._gpu_status.setVisible(not gpus or not offloads)
        muted = "false" if gpus and not offloads else "true"
        if self._gpu_status.property("muted") != muted:
            self._gpu_status.setProperty("muted", muted)
            repolish(self._gpu_status)
        wanted = {gpu.index for gpu in gpus}
        for index in [i for i in self._gpu_rows if i not in wanted]:
            row = self._gpu_rows.pop(index)
            self._gpu_box.removeWidget(row)
            row.setParent(None)  # no parent, no Python reference: deleted now
        for position, gpu in enumerate(gpus):
            row = self._gpu_rows.get(gpu.index)
            if row is None:
                row = self._gpu_rows[gpu.index] = _GpuRow(gpu.index, self)
                self._gpu_box.insertWidget(position, row)
            row.show_gpu(gpu)

    def _show_models(self) -> None:
        models = dict(self._report.models) if self._report is not None else {}
        has_gpu = bool(self._report and self._report.snapshot.gpus)
        order = sorted(models, key=lambda model_id: (self._name(model_id).casefold(), model_id))
        for model_id in [m for m in self._model_rows if m not in models]:
            row = self._model_rows.pop(model_id)
            self._model_box.removeWidget(row)
            row.setParent(None)  # no parent, no Python reference: deleted now
        for position, model_id in enumerate(order):
            row = self._model_rows.get(model_id)
            if row is None:
                row = self._model_rows[model_id] = _ModelRow(self)
            if self._model_box.indexOf(row) != position:
                self._model_box.removeWidget(row)
                self._model_box.insertWidget(position, row)
            row.show_model(self._name(model_id), models[model_id], has_gpu)
        self._models_empty.setVisible(not models)

    def _name(self, model_id: str) -> str:
        return self._names.get(model_id) or model_id


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
