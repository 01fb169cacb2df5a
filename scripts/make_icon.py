"""Draw the app icon (resources/icons/llm-desktop.png and .ico) with QPainter.

Run once when the design changes: `QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_icon.py`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QLinearGradient, QPainter

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"


def draw(size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    scale = size / 256
    tile = QRectF(12 * scale, 12 * scale, 232 * scale, 232 * scale)
    gradient = QLinearGradient(tile.topLeft(), tile.bottomRight())
    gradient.setColorAt(0, QColor("#3b82f6"))
    gradient.setColorAt(1, QColor("#1d4ed8"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(gradient)
    painter.drawRoundedRect(tile, 52 * scale, 52 * scale)
    # Three stacked layers: a model, loading.
    width = 150
    for index in range(3):
        top = (62 + index * 44) * scale
        rect = QRectF((128 - width / 2) * scale, top, width * scale, 28 * scale)
        painter.setBrush(QColor(255, 255, 255, 70))
        painter.drawRoundedRect(rect, 14 * scale, 14 * scale)
        filled = QRectF(rect)
        filled.setWidth(rect.width() * (1.0, 0.72, 0.38)[index])
        painter.setBrush(QColor("#ffffff"))
        painter.drawRoundedRect(filled, 14 * scale, 14 * scale)
    painter.end()
    return image


def main() -> None:
    QGuiApplication([])
    OUT.mkdir(parents=True, exist_ok=True)
    draw(256).save(str(OUT / "llm-desktop.png"))
    draw(256).save(str(OUT / "llm-desktop.ico"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
