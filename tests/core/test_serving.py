"""Serving's rules without a server: room planning, durations and sizes, the fair queue, and
how a reply's text is cut at a stop word."""

from __future__ import annotations

import pytest

from llm_desktop.core.events import LIMIT_COUNT, LIMIT_MEMORY
from llm_desktop.core.generation import FairQueue, Reply, ReplyRequest
from llm_desktop.core.host.replies import _TextOut
from llm_desktop.core.serving import (
    InvalidDuration,
    InvalidSize,
    Need,
    NoRoom,
    Resident,
    gpu_share,
    parse_keep_alive,
    parse_size,
    plan_room,
)

MB = 1_000_000


def need(ram: int, vram: int = 0, gpu_needed: int = 0) -> Need:
    """A model needing `ram` bytes (and, when `gpu_needed`, that much free VRAM)."""
    return Need(
        ram=ram,
        vram=vram,
        fits=lambda ram_free, vram_free: ram_free >= ram and vram_free >= gpu_needed,
        title="New",
    )


def resident(name: str, memory: int, last_used: float, in_use: bool = False, vram: int = 0):
    return Resident(name, memory, vram, in_use, last_used)


def plan(wanted: Need, residents, **limits):
    settings = {"max_loaded": None, "memory_budget": None, "ram_free": 10_000 * MB, "vram_free": 0}
    return plan_room(wanted, residents, **{**settings, **limits})


def evicted(room) -> list[tuple[str, str]]:
    return [(r.model, limit) for r, limit in room.evict]


def test_nothing_is_unloaded_when_the_model_fits():
    assert evicted(plan(need(100 * MB), [resident("a", 100 * MB, 1.0)])) == []


def test_the_count_limit_unloads_the_least_recently_used_idle_models():
    residents = [resident("new", MB, 3.0), resident("old", MB, 1.0), resident("mid", MB, 2.0)]
    assert evicted(plan(need(MB), residents, max_loaded=2)) == [
        ("old", LIMIT_COUNT),
        ("mid", LIMIT_COUNT),
    ]


def test_memory_unloads_least_recently_used_until_it_fits():
    residents = [resident("a", 300 * MB, 1.0), resident("b", 300 * MB, 2.0)]
    room = plan(need(500 * MB), residents, ram_free=300 * MB)
    assert evicted(room) == [("a", LIMIT_MEMORY)]
    budgeted = plan(need(500 * MB), residents, memory_budget=900 * MB)
    assert evicted(budgeted) == [("a", LIMIT_MEMORY)]


def test_a_model_in_use_is_never_planned_for_unloading():
    residents = [resident("busy", 300 * MB, 1.0, in_use=True), resident("idle", 300 * MB, 2.0)]
    assert evicted(plan(need(500 * MB), residents, ram_free=300 * MB)) == [("idle", LIMIT_MEMORY)]
    with pytest.raises(NoRoom) as no_room:
        plan(need(800 * MB), residents, ram_free=300 * MB)
    assert no_room.value.wait  # once "busy" is idle it can go


def test_what_cannot_fit_even_with_nothing_loaded_fails_at_once():
    residents = [resident("a", 300 * MB, 1.0)]
    with pytest.raises(NoRoom) as no_room:
        plan(need(2_000 * MB), residents, ram_free=300 * MB)
    assert not no_room.value.wait
    with pytest.raises(NoRoom) as over_budget:
        plan(need(600 * MB), [], memory_budget=500 * MB)
    assert not over_budget.value.wait and "budget" in str(over_budget.value)


def test_vram_counts_what_unloading_would_free_on_the_gpu():
    residents = [resident("gpu-old", 100 * MB, 1.0, vram=4_000 * MB), resident("b", MB, 2.0)]
    room = plan(need(MB, gpu_needed=5_000 * MB), residents, vram_free=2_000 * MB)
    assert evicted(room) == [("gpu-old", LIMIT_MEMORY)]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(300, 300.0), ("300", 300.0), ("5m", 300.0), ("1h30m", 5400.0), ("90s", 90.0), (0, 0.0)],
)
def test_keep_alive_durations(value, seconds):
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", [-1, "-1", "-5m"])
def test_a_negative_keep_alive_is_forever(value):
    assert parse_keep_alive(value) is None


@pytest.mark.parametrize("value", ["soon", "5 minutes", "", None, True, "m"])
def test_a_bad_keep_alive_is_named(value):
    with pytest.raises(InvalidDuration):
        parse_keep_alive(value)


def test_sizes_are_decimal_like_every_size_shown():
    assert parse_size("12G") == 12 * 10**9
    assert parse_size("800mb") == 800 * MB
    assert parse_size("1024") == 1024
    with pytest.raises(InvalidSize):
        parse_size("lots")


def reply(client: str, n: int) -> Reply:
    return Reply(ReplyRequest(prompt=str(n), client=client), sink=lambda _piece: None)


def test_clients_take_turns_in_the_queue():
    queue = FairQueue()
    burst = [reply("burst", n) for n in range(4)]
    for item in burst:
        queue.push(item)
    lone = reply("lone", 9)
    queue.push(lone)
    order = [queue.pop() for _ in range(5)]
    # The lone client's one request goes second, not after the whole burst.
    assert order == [burst[0], lone, burst[1], burst[2], burst[3]]
    assert queue.pop() is None


def test_a_newcomer_goes_next_even_after_a_busy_clients_line_emptied():
    queue = FairQueue()
    first = reply("burst", 0)
    queue.push(first)
    assert queue.pop() is first  # the model starts it at once; the line is empty again
    rest = [reply("burst", n) for n in range(1, 4)]
    for item in rest:
        queue.push(item)
    lone = reply("lone", 9)
    queue.push(lone)
    assert queue.pop() is lone  # the burst was served last; the lone client never was
    assert [queue.pop() for _ in range(3)] == rest


def test_a_queued_reply_can_be_taken_out():
    queue = FairQueue()
    first, second = reply("a", 1), reply("a", 2)
    queue.push(first)
    queue.push(second)
    assert queue.remove(first) and not queue.remove(first)
    assert queue.pop() is second and len(queue) == 0


def text_out(stop_words):
    sent: list[str] = []
    return _TextOut(stop_words, sent.append), sent


def test_text_goes_out_at_once_unless_it_may_begin_a_stop_word():
    out, sent = text_out(["###"])
    assert not out.add("Hello")
    assert sent == ["Hello"]
    assert not out.add(" #")  # may begin "###": held
    assert sent == ["Hello", " "]
    assert not out.add("x")  # it did not
    assert "".join(sent) == "Hello #x"


def test_a_stop_word_ends_the_text_before_it():
    out, sent = text_out(["\n\n", "END"])
    out.add("one\n")
    assert out.add("\ntwo")
    assert "".join(sent) == "one" and out.stopped


def test_gpu_share_is_what_a_verdict_puts_on_the_gpu():
    from llm_desktop.core.fit import FitVerdict, MemoryEstimate

    estimate = MemoryEstimate(
        weights=3_000 * MB, kv_cache=500 * MB, compute=500 * MB, total=4_000 * MB
    )

    def verdict(kind: str, layers: int) -> FitVerdict:
        return FitVerdict(kind, layers, 31, estimate, 0, 0, None, "")

    assert gpu_share(verdict("gpu", 32)) == 4_000 * MB
    assert gpu_share(verdict("partial", 16)) == 2_000 * MB
    assert gpu_share(verdict("cpu", 0)) == 0
