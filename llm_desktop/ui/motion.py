"""Whether the interface should animate: one answer for toasts, spinners and every transition.

`reduced_motion()` is asked at the moment an animation would start, so a change takes effect on
the next one. It is True when any of these says so, checked in this order:

1. ``LLM_DESKTOP_REDUCED_MOTION``: ``1``/``true``/``yes``/``on`` turns motion off and
   ``0``/``false``/``no``/``off`` turns it on, whatever the rest says (for tests and demos).
2. The user's setting ``ui/reduced_motion`` in ``QSettings("llm-desktop", "llm-desktop")``,
   written by `set_reduced_motion()`.
3. The platform:

   - ``QStyleHints.accessibility().motionPreference()`` (``QAccessibilityHints``, Qt 6.12+), which
     Qt fills from the desktop's own setting where the platform plugin reports one;
   - the widget style's ``SH_Widget_Animation_Duration`` hint: 0 is Qt's own convention for
     "widget animations are off" (`QStyleHints` itself has no duration hint);
   - on Linux, ``GTK_ENABLE_ANIMATIONS=0``, which GTK desktops set when animations are off.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QStyle

ENV_VAR = "LLM_DESKTOP_REDUCED_MOTION"
SETTINGS_KEY = "ui/reduced_motion"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _settings() -> QSettings:
    return QSettings("llm-desktop", "llm-desktop")


def _as_bool(value: object) -> bool | None:
    """A QSettings value as a bool (INI files give back strings); None when it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def reduced_motion(settings: QSettings | None = None) -> bool:
    """True when animations should be skipped (see the module docstring for the sources)."""
    forced = _as_bool(os.environ.get(ENV_VAR, ""))
    if forced is not None:
        return forced
    stored = _as_bool((settings or _settings()).value(SETTINGS_KEY, False))
    if stored:
        return True
    return platform_prefers_reduced_motion()


def set_reduced_motion(enabled: bool, settings: QSettings | None = None) -> None:
    """Remember the user's choice (the environment variable still overrides it)."""
    store = settings or _settings()
    store.setValue(SETTINGS_KEY, bool(enabled))
    store.sync()


def platform_prefers_reduced_motion() -> bool:
    """What the desktop asks for; False when there is no application to ask yet."""
    if sys.platform.startswith("linux") and os.environ.get("GTK_ENABLE_ANIMATIONS") == "0":
        return True
    app = QGuiApplication.instance()
    if app is None:
        return False
    hints = QGuiApplication.styleHints()  # keep the wrapper alive while its child is used
    accessibility = getattr(hints, "accessibility", None)  # Qt 6.10+
    preference = getattr(Qt, "MotionPreference", None)  # Qt 6.12+
    if (
        accessibility is not None
        and preference is not None
        and accessibility().motionPreference() == preference.ReducedMotion
    ):
        return True
    if isinstance(app, QApplication):
        duration = app.style().styleHint(QStyle.StyleHint.SH_Widget_Animation_Duration)
        if duration == 0:
            return True
    return False
