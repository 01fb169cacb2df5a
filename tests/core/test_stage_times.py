"""Stages llama.cpp does not measure: elapsed time while they run, what they usually take, and
the timeline of a finished load."""

from __future__ import annotations

import sys

from llm_desktop.core.engine import Engine, LoadOptions
from llm_desktop.core.events import Stage
from llm_desktop.core.timings import KEPT, StageTimes
from tests.core.test_engine import CONTEXT_WAITS_FOR_CANCEL, collect


def test_a_running_context_step_reports_its_elapsed_time(big_model):
    """No fraction is invented: the stage repeats with the time it has run so far."""
    command = [sys.executable, "-c", CONTEXT_WAITS_FOR_CANCEL]
    with Engine(warm_hosts=0, host_command=command) as engine:
        model = engine.model_id(big_model)
        context = []

        def watch(event):
            if event.stage is Stage.OPTIMIZING:
                context.append(event)
                if len(context) == 3:
                    engine.cancel(model)

        collect(engine, big_model, LoadOptions(use_mmap=False), on_event=watch)
    assert len(context) == 3, "the context step sent no updates while it ran"
    elapsed = [event.elapsed_s for event in context]
    assert elapsed[0] == 0.0 and elapsed == sorted(set(elapsed)), elapsed
    assert {event.pct for event in context} == {90.0}, "the bar does not move: nothing measured"


def test_a_second_load_knows_what_its_unmeasured_stages_usually_take(tiny_model, tmp_path):
    path = tmp_path / "times.json"
    with Engine(warm_hosts=1, stage_times=StageTimes(path)) as engine:
        model = engine.model_id(tiny_model)
        first = collect(engine, tiny_model, LoadOptions(n_ctx=256))
        assert engine.unload(model)
        engine.wait(model, 30)
        while engine.state(model).stage is not Stage.UNLOADED:
            engine.wait(model, 1)
        second = collect(engine, tiny_model, LoadOptions(n_ctx=256))

    def entering(events, stage):
        return next(event for event in events if event.stage is stage)

    timeline = dict(first[-1].timeline)
    assert list(timeline) == ["read", "context", "warm-up"]
    assert entering(first, Stage.OPTIMIZING).expected_s is None, "nothing known the first time"
    assert entering(second, Stage.OPTIMIZING).expected_s == round(timeline["context"], 3)
    assert entering(second, Stage.FINALIZING).expected_s == round(timeline["warm-up"], 3)
    # Kept for the next run of the app, under the same model and settings only.
    again = StageTimes(path)
    key = StageTimes.key(model, 256, 0, True)
    assert again.expected(key, "context") is not None
    assert again.expected(StageTimes.key(model, 512, 0, True), "context") is None


def test_the_usual_time_is_the_median_of_the_last_few(tmp_path):
    times = StageTimes(tmp_path / "times.json")
    for seconds in (9.0, 1.0, 2.0, 3.0, 4.0, 5.0):
        times.record("k", {"context": seconds})
    assert KEPT == 5 and times.expected("k", "context") == 3.0  # 9.0 fell out


def test_an_unreadable_file_is_ignored_not_fatal(tmp_path):
    path = tmp_path / "times.json"
    path.write_text("{not json")
    times = StageTimes(path)
    assert times.expected("k", "context") is None
    times.record("k", {"context": 1.5})
    assert StageTimes(path).expected("k", "context") == 1.5
