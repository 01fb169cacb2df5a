"""The API's clients for bench/serving.py, in a process of their own (as other programs are):
the official `openai` package, streamed text completions, timed here.

`python -m bench.serving_client BASE_URL TOKEN MODEL` reads one JSON command a line on stdin and
answers each with one JSON line on stdout:

- `{"op": "complete", "request": R}`: one completion on this process's long-lived client;
- `{"op": "together", "requests": [R, ...]}`: each request on a thread of its own with an
  `openai.OpenAI` client of its own, all released at once by a barrier (a request's `delay_s`
  holds it back after the barrier).

R is `{"prompt", "max_tokens", "seed", "user"}`. Each answer gives the request's times on this
machine's wall clock (`sent`, `first`, `ended`: `time.time()`), the text, and the usage the
server reported. Nothing is retried: a failure is an answer with `error`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import openai


def _client(base_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=600.0)


def complete(client: openai.OpenAI, model: str, request: dict[str, Any]) -> dict[str, Any]:
    """One streamed completion: greedy, with the usage chunk at the end."""
    if request.get("delay_s"):
        time.sleep(request["delay_s"])
    sent = time.time()
    first = None
    texts: list[str] = []
    usage = None
    finish = None
    try:
        stream = client.completions.create(
            model=model,
            prompt=request["prompt"],
            max_tokens=request["max_tokens"],
            temperature=0,
            seed=request["seed"],
            user=request["user"],
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.text:
                    if first is None:
                        first = time.time()
                    texts.append(choice.text)
                finish = choice.finish_reason or finish
    except openai.OpenAIError as exc:
        return {"user": request["user"], "error": f"{type(exc).__name__}: {exc}"}
    return {
        "user": request["user"],
        "sent": sent,
        "first": first,
        "ended": time.time(),
        "text": "".join(texts),
        "finish_reason": finish,
        "prompt_tokens": usage.prompt_tokens if usage else None,
        "completion_tokens": usage.completion_tokens if usage else None,
    }


def together(base_url: str, token: str, model: str, requests: list[dict[str, Any]]) -> list:
    clients = [_client(base_url, token) for _ in requests]
    barrier = threading.Barrier(len(requests))
    answers: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = complete(clients[index], model, requests[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return answers


def main() -> None:
    base_url, token, model = sys.argv[1:4]
    client = _client(base_url, token)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "complete":
            answer: Any = complete(client, model, command["request"])
        elif command["op"] == "together":
            answer = together(base_url, token, model, command["requests"])
        else:
            answer = {"error": f"unknown op {command['op']!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
