"""Toasts: stacking, replacing, timing out, dismissing, actions, motion and accessibility."""

from __future__ import annotations

import itertools
import sys

import pytest
import shiboken6
from PySide6.QtCore import QEvent, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication, QWidget

from llm_desktop.core.presenter import NOTICE_KIND_WORDS, NOTICE_TIMEOUT_MS
from llm_desktop.ui import motion
from llm_desktop.ui.toast import (
    DEFAULT_TIMEOUT_MS,
    Toast,
    ToastKind,
    ToastManager,
    ToastMessage,
)

WAIT_MS = 3000


@pytest.fixture(autouse=True)
def full_motion(monkeypatch):
    """Animations on (whatever this machine's settings say), but short."""
    monkeypatch.setenv(motion.ENV_VAR, "0")
    monkeypatch.setattr(Toast, "ENTER_MS", 40)
    monkeypatch.setattr(Toast, "EXIT_MS", 40)
    monkeypatch.setattr(Toast, "MOVE_MS", 40)


@pytest.fixture
def host(qtbot):
    widget = QWidget()
    widget.resize(800, 600)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def manager(host):
    return ToastManager(host)


def settle(qtbot, manager: ToastManager) -> None:
    qtbot.waitUntil(
        lambda: not any(toast.is_animating() for toast in manager.visible_toasts()),
        timeout=WAIT_MS,
    )


def hover(toast: Toast, inside: bool) -> None:
    if inside:
        point = QPointF(toast.card_rect().center())
        QApplication.sendEvent(toast, QEnterEvent(point, point, toast.mapToGlobal(point)))
    else:
        QApplication.sendEvent(toast, QEvent(QEvent.Type.Leave))


def test_default_timeouts_by_kind():
    # The presenter's one table for every surface; the worse the news, the longer it stays.
    timeouts = {kind: ToastMessage(kind, "a").effective_timeout_ms for kind in ToastKind}
    assert timeouts == NOTICE_TIMEOUT_MS
    assert timeouts[ToastKind.SUCCESS] == timeouts[ToastKind.INFO] < timeouts[ToastKind.WARNING]
    assert timeouts[ToastKind.WARNING] < timeouts[ToastKind.ERROR]
    assert ToastMessage("error", "a", timeout_ms=150).effective_timeout_ms == 150
    assert ToastMessage("error", "a").kind is ToastKind.ERROR
    assert set(DEFAULT_TIMEOUT_MS) == set(ToastKind)


def test_a_toast_shows_as_a_child_of_the_host(qtbot, host, manager):
    toast = manager.info("Scanning models")
    settle(qtbot, manager)
    assert toast.isVisible() and toast.parentWidget() is host and not toast.isWindow()
    assert toast.text_label.text() == "Scanning models"
    assert not toast.title_label.isVisible() and not toast.action_button.isVisible()
    assert toast.objectName() == "toast" and toast.property("kind") == "info"
    assert manager.visible_toasts() == [toast]
    assert not toast.graphicsEffect().isEnabled(), "no offscreen rendering once shown"


def test_toasts_stack_top_right_newest_first(qtbot, host, manager):
    manager.info("first")
    manager.warning("second, a longer message that wraps onto a second line of the card")
    manager.error("third", title="With a title", action_text="Retry")
    settle(qtbot, manager)
    toasts = manager.visible_toasts()
    assert toasts[0].text_label.text() == "third"
    cards = [t.card_geometry() for t in toasts]
    assert cards[0].top() == ToastManager.MARGIN
    for card in cards:
        assert host.width() - (card.x() + card.width()) == ToastManager.MARGIN
        assert card.width() == Toast.CARD_WIDTH
    for upper, lower in itertools.pairwise(cards):
        assert lower.top() - (upper.top() + upper.height()) == ToastManager.SPACING
    assert cards[1].height() > cards[2].height(), "the long text wraps"
    stacking = [w for w in host.children() if isinstance(w, Toast)]
    assert stacking[-1] is toasts[0], "the newest is raised above the others"


def test_same_key_replaces_the_visible_toast(qtbot, manager):
    first = manager.info("Loading model", key="load:m")
    settle(qtbot, manager)
    first_remaining = first.remaining_ms()
    second = manager.error("Model failed", key="load:m", title="m failed to load")
    assert second is first and manager.visible_toasts() == [first]
    assert first.text_label.text() == "Model failed" and first.kind is ToastKind.ERROR
    assert first.property("kind") == "error"
    assert first.accessibleName().startswith("Error: m failed to load")
    assert first.remaining_ms() > first_remaining, "the timer restarted with the new timeout"


def test_identical_messages_are_not_repeated(qtbot, manager):
    one = manager.info("Same words")
    two = manager.info("Same words")
    assert one is two and len(manager.visible_toasts()) == 1
    other = manager.warning("Same words")
    assert other is not one and len(manager.visible_toasts()) == 2


def test_toast_dismisses_itself_after_its_timeout(qtbot, manager):
    toast = manager.info("Short-lived", timeout_ms=150)
    with qtbot.waitSignal(toast.dismissed, timeout=WAIT_MS):
        pass
    assert manager.visible_toasts() == []
    qtbot.waitUntil(lambda: not shiboken6.isValid(toast), timeout=WAIT_MS)


def test_hover_pauses_the_timer_and_leaving_resumes_it(qtbot, manager):
    toast = manager.info("Read me slowly", timeout_ms=300)
    hover(toast, inside=True)
    assert toast.is_paused()
    qtbot.wait(800)
    assert toast.isVisible() and manager.visible_toasts() == [toast]
    assert 0 <= toast.remaining_ms() <= toast.message.effective_timeout_ms
    with qtbot.waitSignal(toast.dismissed, timeout=WAIT_MS):
        hover(toast, inside=False)
    assert manager.visible_toasts() == []


def test_a_click_on_the_card_dismisses_it(qtbot, manager):
    toast = manager.info("Click me")
    settle(qtbot, manager)
    card = toast.card_rect()
    with qtbot.waitSignal(toast.dismissed, timeout=WAIT_MS):
        qtbot.mouseClick(toast, Qt.MouseButton.LeftButton, pos=QPoint(card.left() + 6, 20))
    assert manager.visible_toasts() == []


def test_close_button_and_escape_dismiss(qtbot, manager):
    by_button = manager.info("close me")
    by_key = manager.info("escape me")
    settle(qtbot, manager)
    with qtbot.waitSignal(by_button.dismissed, timeout=WAIT_MS):
        qtbot.mouseClick(by_button.close_button, Qt.MouseButton.LeftButton)
    by_key.setFocus()
    with qtbot.waitSignal(by_key.dismissed, timeout=WAIT_MS):
        qtbot.keyClick(by_key, Qt.Key.Key_Escape)
    assert manager.visible_toasts() == []


def test_action_button_emits_the_message_key(qtbot, manager):
    toast = manager.error("Out of memory", key="load:llama", action_text="Retry")
    settle(qtbot, manager)
    assert toast.action_button.isVisible() and toast.action_button.text() == "Retry"
    own, keys = [], []
    toast.action_triggered.connect(lambda: own.append(True))
    manager.action_triggered.connect(keys.append)
    with qtbot.waitSignal(toast.dismissed, timeout=WAIT_MS):
        qtbot.mouseClick(toast.action_button, Qt.MouseButton.LeftButton)
    assert own == [True] and keys == ["load:llama"]


def test_action_without_a_key_emits_the_text(qtbot, manager):
    toast = manager.warning("Disk almost full", action_text="Open folder")
    settle(qtbot, manager)
    with qtbot.waitSignal(manager.action_triggered, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(toast.action_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["Disk almost full"]


def test_at_most_five_toasts_the_oldest_dropped(qtbot, manager):
    shown = [manager.info(f"message {i}") for i in range(7)]
    visible = manager.visible_toasts()
    assert len(visible) == ToastManager.MAX_VISIBLE
    assert visible == list(reversed(shown[2:]))
    assert all(toast.is_dismissing() for toast in shown[:2])
    qtbot.waitUntil(lambda: not any(shiboken6.isValid(t) for t in shown[:2]), timeout=WAIT_MS)
    manager.dismiss_all()
    assert manager.visible_toasts() == []


def test_toasts_follow_the_host_when_it_is_resized(qtbot, host, manager):
    manager.info("one")
    manager.info("two")
    settle(qtbot, manager)

    def right_margins() -> set[int]:
        return {host.width() - t.card_geometry().right() - 1 for t in manager.visible_toasts()}

    host.resize(1000, 700)
    qtbot.waitUntil(lambda: host.width() == 1000, timeout=WAIT_MS)
    assert right_margins() == {ToastManager.MARGIN}
    host.resize(320, 400)
    qtbot.waitUntil(lambda: host.width() == 320, timeout=WAIT_MS)
    assert right_margins() == {ToastManager.MARGIN}
    assert {t.card_geometry().width() for t in manager.visible_toasts()} == {320 - 24}


def show_then_dismiss(manager: ToastManager, text: str) -> dict[str, object]:
    """What a toast does at once, before any event is processed, when shown and dismissed."""
    toast = manager.success(text)
    shown = {
        "animating": toast.is_animating(),
        "at_target": toast.pos() == toast.target_pos(),
        "fading": toast.graphicsEffect().isEnabled(),
    }
    seen = []
    toast.dismissed.connect(lambda: seen.append(True))
    toast.dismiss()
    return {**shown, "dismissed_at_once": seen == [True], "hidden_at_once": not toast.isVisible()}


def test_reduced_motion_shows_and_hides_at_once(qtbot, manager, monkeypatch):
    # The same calls under full motion first: the toast slides and fades in, and fades out.
    normal = show_then_dismiss(manager, "Model loading")
    assert normal == {
        "animating": True,
        "at_target": False,
        "fading": True,
        "dismissed_at_once": False,
        "hidden_at_once": False,
    }
    monkeypatch.setenv(motion.ENV_VAR, "1")
    reduced = show_then_dismiss(manager, "Model ready")
    assert reduced == {
        "animating": False,
        "at_target": True,
        "fading": False,
        "dismissed_at_once": True,
        "hidden_at_once": True,
    }


def test_accessible_names_carry_the_kind(qtbot, manager):
    for kind in ToastKind:
        toast = manager.show(ToastMessage(kind, f"{kind} text"))
        assert toast.accessibleName() == f"{NOTICE_KIND_WORDS[kind]}: {kind} text"
        assert toast.icon.accessibleName() == NOTICE_KIND_WORDS[kind]
    titled = manager.error("Not enough memory", title="Load failed")
    assert titled.accessibleName() == "Error: Load failed. Not enough memory"
    assert "Escape" in titled.accessibleDescription()
    assert titled.close_button.accessibleName() == "Dismiss notification"


def test_reduced_motion_sources(tmp_path, monkeypatch, qapp):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.delenv(motion.ENV_VAR, raising=False)
    monkeypatch.delenv("GTK_ENABLE_ANIMATIONS", raising=False)
    # With no environment and no setting, the platform's answer decides, both ways.
    for platform_says in (True, False):
        monkeypatch.setattr(motion, "platform_prefers_reduced_motion", lambda v=platform_says: v)
        assert motion.reduced_motion(settings) is platform_says
    # The platform now says "animate": each source below changes the answer.
    motion.set_reduced_motion(True, settings)
    assert motion.reduced_motion(settings) is True, "the setting overrides the platform"
    monkeypatch.setenv(motion.ENV_VAR, "0")
    assert motion.reduced_motion(settings) is False, "the environment overrides the setting"
    monkeypatch.setenv(motion.ENV_VAR, "1")
    motion.set_reduced_motion(False, settings)
    assert motion.reduced_motion(settings) is True, "the environment overrides the setting"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a GTK variable, read on Linux")
def test_gtk_animations_off_means_reduced_motion(tmp_path, monkeypatch, qapp):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.delenv(motion.ENV_VAR, raising=False)
    monkeypatch.setenv("GTK_ENABLE_ANIMATIONS", "1")
    if motion.platform_prefers_reduced_motion():
        pytest.skip("this desktop already asks for reduced motion: GTK's variable cannot change it")
    monkeypatch.setenv("GTK_ENABLE_ANIMATIONS", "0")
    assert motion.platform_prefers_reduced_motion() is True
    assert motion.reduced_motion(settings) is True


def test_the_app_style_sheet_can_style_the_whole_toast(qtbot, host):
    manager = ToastManager(host, use_default_style=False)
    toast = manager.warning("Styled by the application", title="Plain")
    settle(qtbot, manager)
    assert toast.card_rect() == toast.rect(), "no room for a painted shadow"
    assert toast.testAttribute(Qt.WidgetAttribute.WA_StyledBackground)
    card = toast.card_geometry()
    assert card.top() == ToastManager.MARGIN
    assert host.width() - card.right() - 1 == ToastManager.MARGIN
    assert not toast.grab().isNull()
