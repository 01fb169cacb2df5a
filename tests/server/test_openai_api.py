"""The OpenAI-compatible API, driven by the official `openai` package over loopback HTTP,
against real model hosts loading generated models."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.events import (
    LIMIT_COUNT,
    LIMIT_MEMORY,
    REASON_EVICTED,
    REASON_IDLE,
    REASON_REQUEST,
    ErrorKind,
    ModelState,
    Stage,
)
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.serving import ServingPolicy
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread

TOKEN = "test-token-0123456789"
SETTLE_S = 30.0


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("api-models")
    # A 32,000-token vocabulary: an end-of-text token is then a rare pick, so a long reply
    # really runs long (a 259-token demo vocabulary ends most replies within a few hundred).
    write_demo_model(folder / "alpha.gguf", DemoSpec(vocab=32_000, name="Alpha", seed=1))
    write_demo_model(folder / "beta.gguf", DemoSpec(name="Beta", seed=2))
    write_demo_model(folder / "gamma.gguf", DemoSpec(name="Gamma", seed=5))
    write_demo_model(folder / "base.gguf", DemoSpec(name="Base", chat_template=None, seed=3))
    write_demo_model(folder / "embed.gguf", DemoSpec(name="Embed", pooling_type=1, seed=4))
    write_demo_model(folder / "alien.gguf", DemoSpec(name="Alien", architecture="alien"))
    broken = "{% for message in messages %}{{ message['content'] }}"  # no endfor
    write_demo_model(folder / "odd.gguf", DemoSpec(name="Odd", chat_template=broken, seed=6))
    return folder


@pytest.fixture(scope="module")
def served(models_dir):
    engine = Engine(warm_hosts=1)
    library = ModelLibrary([models_dir], include_known=False)
    library.refresh()
    server = ServerThread(engine, library, config=ServerConfig(token=TOKEN)).start()
    yield server
    server.stop()
    engine.shutdown()


@pytest.fixture
def api(served):
    """A clean slate for each test: nothing loaded, the default policy, and the client."""
    serving = served.state.serving
    serving.set_policy(ServingPolicy(keep_alive_s=None))
    yield openai.OpenAI(base_url=served.api_url, api_key=TOKEN, max_retries=0, timeout=60.0)
    engine = served.state.engine
    for model in engine.loaded_models():
        unload_and_wait(engine, model)
    serving.set_policy(ServingPolicy(keep_alive_s=None))


def unload_and_wait(engine: Engine, model: str) -> None:
    with engine.events(model) as stream:
        if engine.unload(model):
            for _event in stream.until_terminal(timeout=SETTLE_S):
                pass


def ids(served) -> dict[str, str]:
    """File stem → model id."""
    return {Path(m.entry.path).stem: m.entry.id for m in served.state.library.models()}


def chat(api, model: str, **extra):
    return api.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        **extra,
    )


# -- listing and chatting ---------------------------------------------------------------------


def test_models_lists_the_library_by_catalog_id(api, served):
    listed = {model.id: model for model in api.models.list().data}
    expected = {v for k, v in ids(served).items()}
    assert set(listed) == expected
    embed = listed[ids(served)["embed"]]
    assert embed.object == "model"
    assert embed.model_extra["kind"] == "embedding"
    assert listed[ids(served)["alpha"]].model_extra["kind"] == "text"
    assert api.models.retrieve(ids(served)["beta"]).id == ids(served)["beta"]


def test_a_chat_loads_its_model_first_and_the_load_is_an_event(api, served):
    model = ids(served)["beta"]
    engine = served.state.engine
    assert engine.state(model) is None or engine.state(model).state is not ModelState.LOADED
    with engine.events(model) as stream:
        reply = chat(api, model, max_tokens=6, temperature=0)
        events = list(iter(lambda: stream.get(1.0), None))
    stages = [event.stage for event in events]
    assert stages[0] is Stage.CONNECTING and Stage.LOADING in stages
    assert stages.index(Stage.COMPLETE) == len(stages) - 1
    assert {event.reason.kind for event in events} == {REASON_REQUEST}
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 6
    # The prompt went through the model's chat template: both turns and their tags count.
    raw_length = len("Answer in one word.What is the capital of France?")
    assert reply.usage.prompt_tokens > raw_length
    record = served.state.serving.requests(model)[0]
    assert record.loaded_for_it and record.endpoint == "chat"
    # Its time to first token counts the load it waited for: it began before the load.
    assert record.started <= events[0].ts
    assert record.first_token_s >= events[-1].ts - events[0].ts
    assert record.completion_tokens == reply.usage.completion_tokens


def test_a_streamed_chat_sends_chunks_then_usage(api, served):
    model = ids(served)["beta"]
    stream = chat(
        api,
        model,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens <= 12
    # The same request, not streamed and greedy, writes the same text.
    whole = chat(api, model, max_tokens=12, temperature=0)
    assert whole.choices[0].message.content == text
    assert whole.usage == usage


def test_a_raw_completion_is_the_prompt_as_it_is(api, served):
    model = ids(served)["base"]
    reply = api.completions.create(model=model, prompt="Once upon", max_tokens=5, temperature=0)
    assert reply.object == "text_completion" and reply.choices[0].text
    # No template around it: the same words as a chat turn take more tokens.
    as_chat = api.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Once upon"}], max_tokens=1
    )
    assert reply.usage.prompt_tokens < as_chat.usage.prompt_tokens
    streamed = api.completions.create(
        model=model, prompt="Once upon", max_tokens=5, temperature=0, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in streamed) == reply.choices[0].text


def test_embeddings_from_an_embedding_model_only(api, served):
    model = ids(served)["embed"]
    result = api.embeddings.create(model=model, input=["hello", "world"])
    vectors = [item.embedding for item in result.data]
    assert len(vectors) == 2 and len(vectors[0]) == 64 and vectors[0] != vectors[1]
    assert abs(sum(v * v for v in vectors[0]) - 1.0) < 1e-3  # normalised
    as_floats = api.embeddings.create(model=model, input="hello", encoding_format="float")
    assert as_floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)
    with pytest.raises(openai.BadRequestError) as refused:
        api.embeddings.create(model=ids(served)["beta"], input="x")
    assert refused.value.code == "cannot_embed"
    with pytest.raises(openai.BadRequestError) as refused:
        chat(api, model)
    assert refused.value.code == "cannot_generate"
    # Refused before loading anything.
    assert ids(served)["beta"] not in served.state.engine.loaded_models()


# -- failures, named ---------------------------------------------------------------------------


def test_a_wrong_token_is_401_invalid_api_key(served):
    client = openai.OpenAI(base_url=served.api_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.models.list()
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"


def test_an_unknown_model_is_404_model_not_found(api):
    with pytest.raises(openai.NotFoundError) as refused:
        chat(api, "no-such-model")
    assert refused.value.code == "model_not_found"
    assert "no-such-model" in refused.value.message


def test_a_model_that_fails_to_load_answers_with_its_named_error(api, served):
    model = ids(served)["alien"]
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        chat(api, model, max_tokens=4)
    assert refused.value.code == str(ErrorKind.UNSUPPORTED_MODEL)
    assert "alien" in refused.value.message
    assert served.state.engine.state(model).stage is Stage.FAILED  # on the card too


def test_a_broken_chat_template_fails_the_chat_not_the_load(api, served):
    model = ids(served)["odd"]
    with pytest.raises(openai.BadRequestError) as refused:
        chat(api, model, max_tokens=2)
    assert refused.value.code == "invalid_request"
    assert "chat template cannot format this chat" in refused.value.message
    assert model in served.state.engine.loaded_models()
    raw = api.completions.create(model=model, prompt="Hi", max_tokens=2, temperature=0)
    assert raw.usage.completion_tokens == 2  # greedy: the same two tokens every run


def test_bad_parameters_are_refused_by_name(api, served):
    model = ids(served)["beta"]
    with pytest.raises(openai.BadRequestError) as refused:
        chat(api, model, temperature=5)
    assert refused.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as refused:
        chat(api, model, n=2)
    assert refused.value.code == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError) as refused:
        chat(api, model, max_tokens=4, extra_body={"keep_alive": "soon"})
    assert refused.value.param == "keep_alive"


def test_a_prompt_longer_than_the_context_is_named(api, served):
    model = ids(served)["beta"]
    with pytest.raises(openai.BadRequestError) as refused:
        api.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "w" * 3000}], max_tokens=4
        )
    assert refused.value.code == "context_length_exceeded"
    assert "2048-token context" in refused.value.message


# -- a client that goes away -----------------------------------------------------------------


def test_a_client_that_disconnects_mid_stream_stops_the_host(api, served):
    model = ids(served)["alpha"]
    ask = dict(
        model=model,
        messages=[{"role": "user", "content": "Tell me a very long story."}],
        max_tokens=1900,
        temperature=0,
    )
    whole = api.chat.completions.create(**ask)  # greedy: what the uncut reply is
    stream = api.chat.completions.create(**ask, stream=True)
    for index, _chunk in enumerate(stream):
        if index == 3:
            break
    stream.close()
    record = wait_for_record(served, model, lambda r: r.finish_reason == "cancelled")
    # The host stopped between two tokens: it sampled fewer than the uncut reply has.
    assert record.completion_tokens < whole.usage.completion_tokens
    usage = served.state.engine.usage(model)
    assert usage is not None and not usage.in_use


def wait_for_record(served, model, matches, timeout=SETTLE_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in served.state.serving.requests(model):
            if matches(record):
                return record
        time.sleep(0.05)
    raise AssertionError(f"no such request logged: {served.state.serving.requests(model)}")


# -- keep-alive and eviction -------------------------------------------------------------------


def test_two_models_under_a_limit_of_one_the_second_evicts_the_first(api, served):
    engine = served.state.engine
    served.state.serving.set_policy(ServingPolicy(keep_alive_s=None, max_loaded=1))
    first, second = ids(served)["beta"], ids(served)["base"]
    chat(api, first, max_tokens=2)
    with engine.events() as stream:
        api.completions.create(model=second, prompt="Hi", max_tokens=2)
        events = []
        while (event := stream.get(2.0)) is not None:
            events.append(event)
    steps = [(event.model, event.stage) for event in events if event.op in ("load", "unload")]
    assert steps[:2] == [(first, Stage.UNLOADING), (first, Stage.UNLOADED)]
    assert steps[2] == (second, Stage.CONNECTING) and steps[-1] == (second, Stage.COMPLETE)
    evicted = events[1]
    assert evicted.reason.kind == REASON_EVICTED and evicted.reason.limit == LIMIT_COUNT
    assert evicted.reason.for_model == second and evicted.reason.max_loaded == 1
    assert engine.loaded_models() == [second]
    # The page sees why: the card's detail and the event's notice say it.
    status = httpx.get(
        f"{served.base_url}/api/llm/status", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    detail = status["views"][first]["detail"]
    assert "to make room for Base: at most 1 model loaded at once" in detail


def test_a_model_in_use_is_never_evicted_the_request_waits_for_it(api, served):
    engine = served.state.engine
    served.state.serving.set_policy(ServingPolicy(keep_alive_s=None, max_loaded=1))
    busy, waiting = ids(served)["alpha"], ids(served)["beta"]
    chat(api, busy, max_tokens=2)
    streaming_ended: list[float] = []
    started = threading.Event()

    def long_reply():
        stream = api.chat.completions.create(
            model=busy,
            messages=[{"role": "user", "content": "Go on."}],
            max_tokens=1500,
            temperature=0,
            stream=True,
        )
        for _chunk in stream:
            started.set()
        streaming_ended.append(time.time())

    reader = threading.Thread(target=long_reply)
    with engine.events(busy) as stream:
        reader.start()
        assert started.wait(SETTLE_S)
        chat(api, waiting, max_tokens=2)  # blocks until `busy` is idle, then evicts it
        reader.join(SETTLE_S)
        events = [e for e in iter(lambda: stream.get(0.5), None)]
    unloading = next(e for e in events if e.stage is Stage.UNLOADING)
    assert streaming_ended and unloading.ts >= streaming_ended[0] - 0.05
    record = served.state.serving.requests(busy)[0]
    assert record.finish_reason in ("stop", "length")  # the reply was never cut
    assert engine.loaded_models() == [waiting]


def test_out_of_memory_before_anything_is_unloaded(api, served):
    engine = served.state.engine
    loaded = ids(served)["beta"]
    chat(api, loaded, max_tokens=2)
    held = engine.usage(loaded).memory_bytes
    # A budget that the loaded model alone already fills: the next cannot fit even after
    # unloading it, so nothing is unloaded and the request is told why.
    served.state.serving.set_policy(ServingPolicy(keep_alive_s=None, memory_budget=held // 2))
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        chat(api, ids(served)["alpha"], max_tokens=2)
    assert refused.value.code == "out_of_memory"
    assert "budget" in refused.value.message
    assert engine.loaded_models() == [loaded]


def test_memory_budget_evicts_the_least_recently_used(api, served):
    engine = served.state.engine
    serving = served.state.serving
    older, newer, wanted = ids(served)["beta"], ids(served)["base"], ids(served)["gamma"]
    chat(api, older, max_tokens=2)
    api.completions.create(model=newer, prompt="Hi", max_tokens=2)
    held = engine.usage(older).memory_bytes + engine.usage(newer).memory_bytes
    need = serving.need_of(served.state.entry_of(wanted)).ram
    # One byte short of room for all three: one model must go, the least recently used.
    serving.set_policy(ServingPolicy(keep_alive_s=None, memory_budget=held + need - 1))
    with engine.events(older) as stream:
        chat(api, wanted, max_tokens=2)
        unloaded = next(e for e in iter(lambda: stream.get(2.0), None) if e.is_terminal)
    assert unloaded.stage is Stage.UNLOADED
    assert unloaded.reason.kind == REASON_EVICTED and unloaded.reason.limit == LIMIT_MEMORY
    assert unloaded.reason.for_title == "Gamma"
    assert sorted(engine.loaded_models()) == sorted([newer, wanted])


def test_keep_alive_unloads_an_idle_model_with_its_reason(api, served):
    engine = served.state.engine
    model = ids(served)["beta"]
    served.state.serving.set_policy(ServingPolicy(keep_alive_s=0.5))
    with engine.events(model) as stream:
        chat(api, model, max_tokens=2)
        terminal = [e for e in stream.until_terminal(SETTLE_S)][-1]
        assert terminal.stage is Stage.COMPLETE
        unloaded = [e for e in stream.until_terminal(SETTLE_S)][-1]
    assert unloaded.stage is Stage.UNLOADED
    assert unloaded.reason.kind == REASON_IDLE and unloaded.reason.idle_s >= 0.5


def test_a_request_keep_alive_overrides_the_global_one(api, served):
    engine = served.state.engine
    model = ids(served)["beta"]
    served.state.serving.set_policy(ServingPolicy(keep_alive_s=3600))
    with engine.events(model) as stream:
        chat(api, model, max_tokens=2, extra_body={"keep_alive": 0})
        events = list(stream.until_terminal(SETTLE_S)) + list(stream.until_terminal(SETTLE_S))
    assert events[-1].stage is Stage.UNLOADED and events[-1].reason.kind == REASON_IDLE
    # A negative keep_alive keeps it loaded for good.
    chat(api, model, max_tokens=2, extra_body={"keep_alive": -1})
    assert served.state.serving.keep_alive_of(model) is None


# -- what editors and agents send, with curl ------------------------------------------------


def curl(served, path: str, body: dict) -> tuple[int, str]:
    import subprocess

    completed = subprocess.run(
        [
            "curl",
            "-sS",
            "-N",
            "-w",
            "\n%{http_code}",
            f"{served.api_url}{path}",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(body),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text, _, status = completed.stdout.rpartition("\n")
    return int(status), text


def test_curl_shapes_editors_send(api, served):
    model = ids(served)["beta"]
    status, text = curl(
        served,
        "/chat/completions",
        {
            "model": model,
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
            ],
            "max_tokens": 5,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["\n\n", "###"],
            "seed": 7,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "editor",
        },
    )
    assert status == 200
    frames = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data")]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[-1]["usage"]["completion_tokens"] <= 5
    status, text = curl(served, "/chat/completions", {"model": model, "messages": []})
    assert status == 400 and json.loads(text)["error"]["param"] == "messages"
    status, text = curl(
        served,
        "/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": "x"}], "tools": [{}]},
    )
    assert status == 400 and json.loads(text)["error"]["code"] == "unsupported_parameter"
