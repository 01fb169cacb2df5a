"""Serving through the OpenAI-compatible API, side by side with a bare in-process `llama_cpp.Llama`.

One generated model (random weights: gibberish text, real compute) in a library folder, served
by `ServerThread` on loopback; its clients are the official `openai` package in a process of
their own (`bench.serving_client`, as other programs are), streaming raw text completions at
temperature 0 with a seed. The peer is `llama_cpp.Llama(path, n_ctx=2048)` in this process
with the host's defaults (threads included) and `create_completion(prompt tokens, stream=True)`
with the same sampling settings the host passes (`replies.SAMPLING_DEFAULTS`, temperature 0,
the seed); the prompt is tokenized the way the host does (`special=True`) inside its timing.
Every prompt has the same token count and each round's differs in its first characters, so
neither side reuses an earlier prompt's KV cache; both sides of a round get the same prompt.
Every reply must run to `max_tokens` (finish reason `length`) with the same token count and the
same text on both sides, or the run stops.

- First token incl. load: the model unloaded and a warm host ready (what a request long after
  start-up finds), a request with `max_tokens=1` loads it on request (`loaded_for_it` checked in
  the server's request log); against the peer constructing `Llama(...)` and streaming its first
  token; alternating rounds, page cache warm.
- Throughput: the same `max_tokens` completion through the API and on the peer, alternating
  rounds after one untimed round of each. Tokens/s is the completion's tokens over the whole
  request (client-side: from the call to the last chunk); the rate after the first token is
  given too, and the server's own figure from its request log (first piece to last, in the app),
  and the CPU time each side's processes used per token (ours: host, app, client).
- Time to first token, model loaded: `max_tokens=1` requests alternating with the peer's first
  token, the same prompts; beside it the server's own figure (request arrival in the app to its
  first piece), which splits the overhead into the app's part and HTTP plus the client's.
- Concurrent clients: N threads, each with its own `openai.OpenAI` client and its own `user`,
  released at once by a barrier, the same-size request each; a few rounds. Replies of one model
  are answered one at a time, the clients' lines taking turns (`generation.FairQueue`), so the
  figures are per-request latency (p50, p99), aggregate tokens/s against one client's (the same
  number of requests sent one after another by one client, right after each round), and how
  evenly the waiting fell on the clients (each client's mean latency, max over min).
- Turns: one client (`user` "burst") sends N requests at once and another ("lone") sends one
  a moment later, while the burst's requests are queued (the queue is sampled in the engine):
  the lone request's latency against the burst's, and its place in the order of service.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.events import Stage
from llm_desktop.core.gguf_header import read_gguf
from llm_desktop.core.host.replies import SAMPLING_DEFAULTS
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.options import LoadOptions
from llm_desktop.core.serving import RequestRecord
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread

N_CTX = 2048
MAX_TOKENS = 128
SEED = 1234
# Printable ASCII only: with the generated model's byte vocabulary every prompt of the same
# length has the same token count. Each prompt starts with its own five digits.
PROMPT_TEXT = (
    " Serving bench: a raw completion of a fixed length, the same on both sides of a round,"
    " long enough that reading it is real work for the model before its first token."
)
# llama-cpp-python checks max_tokens only after a token that completes the UTF-8 text: a
# random model's greedy reply that repeats a multi-byte lead byte runs on until the context is
# full ("llama_decode returned 1"). The model's seed and the prompts are chosen clear of it.
RUNAWAY = (
    "the greedy reply ran past max_tokens in incomplete UTF-8, which llama-cpp-python does not "
    "count: choose another model size or seed"
)
LONE_DELAY_S = 0.5  # the lone client sends this long after the burst
ROOT = Path(__file__).resolve().parent.parent


def prompt_for(key: int) -> str:
    return f"{key:05d}{PROMPT_TEXT}"


# -- the two sides ----------------------------------------------------------------------------


class ApiClients:
    """The client process (`bench.serving_client`): one command at a time, one answer each."""

    def __init__(self, base_url: str, token: str, model: str, timeout: float = 600.0):
        self.timeout = timeout
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.serving_client", base_url, token, model],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.pid = self.process.pid
        ready = self._answer()
        assert ready == {"ready": True}, ready

    def _answer(self) -> Any:
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        line = self.process.stdout.readline() if readable else ""
        if not line:
            raise RuntimeError(f"the client process gave no answer (exit {self.process.poll()})")
        return json.loads(line)

    def _ask(self, command: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        return _checked(self._ask({"op": "complete", "request": request}))

    def together(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [_checked(answer) for answer in self._ask({"op": "together", "requests": requests})]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _checked(answer: dict[str, Any]) -> dict[str, Any]:
    if answer.get("error"):
        hint = f" ({RUNAWAY})" if "llama_decode returned 1" in answer["error"] else ""
        raise RuntimeError(f"request {answer.get('user')} failed: {answer['error']}{hint}")
    return answer


def request(key: int, max_tokens: int, user: str, delay_s: float = 0.0) -> dict[str, Any]:
    return {
        "prompt": prompt_for(key),
        "max_tokens": max_tokens,
        "seed": SEED,
        "user": user,
        "delay_s": delay_s,
    }


class BarePeer:
    """The same model in this process: `llama_cpp.Llama` and its own streamed completion."""

    def __init__(self, path: Path):
        import llama_cpp

        self.llm = llama_cpp.Llama(str(path), n_ctx=N_CTX, n_gpu_layers=0, verbose=False)

    def complete(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        """Timed like the client's answers: `sent`, `first` (text), `ended`; the completion's
        tokens counted as the host counts them (a stopping rule called once per sampled token,
        and once more after the last)."""
        from llama_cpp import StoppingCriteriaList

        sampled = [0]

        def count(_input_ids: Any, _logits: Any) -> bool:
            sampled[0] += 1
            if sampled[0] > max_tokens + 1:
                raise RuntimeError(RUNAWAY)
            return False

        sent = time.time()
        tokens = self.llm.tokenize(prompt.encode("utf-8"), special=True)
        first = None
        texts: list[str] = []
        finish = None
        stream = self.llm.create_completion(
            tokens,
            max_tokens=max_tokens,
            stream=True,
            seed=SEED,
            stopping_criteria=StoppingCriteriaList([count]),
            **{**SAMPLING_DEFAULTS, "temperature": 0.0},
        )
        for chunk in stream:
            choice = chunk["choices"][0]
            if choice["text"]:
                if first is None:
                    first = time.time()
                texts.append(choice["text"])
            finish = choice.get("finish_reason") or finish
        ended = time.time()
        return {
            "sent": sent,
            "first": first,
            "ended": ended,
            "text": "".join(texts),
            "finish_reason": finish,
            "prompt_tokens": len(tokens),
            "completion_tokens": sampled[0] - 1,
        }

    def close(self) -> None:
        self.llm.close()


# -- figures ------------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _quantile(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method; the largest value when there are few)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _ttft(answer: dict[str, Any]) -> float:
    return answer["first"] - answer["sent"]


def _total(answer: dict[str, Any]) -> float:
    return answer["ended"] - answer["sent"]


def _same_reply(ours: dict[str, Any], bare: dict[str, Any], max_tokens: int) -> None:
    """Like for like: both ran to max_tokens on the same prompt and wrote the same text."""
    assert ours["prompt_tokens"] == bare["prompt_tokens"], (ours, bare)
    for side in (ours, bare):
        assert side["finish_reason"] == "length", f"a reply ended early: {side}"
        assert side["completion_tokens"] == max_tokens, side
    assert ours["text"] == bare["text"], "greedy decoding differed between the two sides"


# -- the rounds ---------------------------------------------------------------------------------


def _unload(engine: Engine, model_id: str) -> None:
    with engine.events(model_id) as stream:
        if engine.unload(model_id):
            list(stream.until_terminal(60))


def _first_token_with_load(
    engine: Engine, clients: ApiClients, model: Path, model_id: str, records, rounds: int
) -> dict[str, Any]:
    from bench.__main__ import _wait_for_warm_host

    ours, ours_loaded, bare, bare_built = [], [], [], []
    for round_ in range(rounds):
        _unload(engine, model_id)
        _wait_for_warm_host(engine)
        key = 10 + round_
        with engine.events(model_id) as stream:
            answer = clients.complete(request(key, 1, f"load-{round_}"))
            events = []
            while (event := stream.get(0)) is not None:
                events.append(event)
        assert records.pop(answer["user"]).loaded_for_it, "the request found its model loaded"
        (complete,) = [event for event in events if event.stage is Stage.COMPLETE]
        ours.append(_ttft(answer))
        ours_loaded.append(complete.ts - answer["sent"])

        started = time.time()
        peer = BarePeer(model)
        built = time.time()
        reply = peer.complete(prompt_for(key), 1)
        bare.append(reply["first"] - started)
        bare_built.append(built - started)
        peer.close()
        assert reply["text"] == answer["text"], (answer, reply)
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    return {
        "rounds": rounds,
        "ours_s": round(ours_s, 3),
        "bare_s": round(bare_s, 3),
        "ratio": round(ours_s / bare_s, 3),
        "extra_s": round(ours_s - bare_s, 3),
        # Where each side's time went: ours to the load's `complete` event (the request in,
        # the room planned, the host attached, the load with its warm-up decode), the bare
        # `Llama(...)` constructor; each side's first reply follows.
        "ours_to_loaded_s": round(statistics.median(ours_loaded), 3),
        "bare_constructed_s": round(statistics.median(bare_built), 3),
    }


class _CpuClock:
    """CPU seconds (user + system) the processes of each side used during one request: ours
    the model host, the app (this process: server, session, host reader) and the client
    process; the bare model this process alone."""

    def __init__(self, processes: dict[str, psutil.Process]):
        self.processes = processes

    def read(self) -> dict[str, float]:
        found = {}
        for name, process in self.processes.items():
            times = process.cpu_times()
            found[name] = times.user + times.system
        return found

    @contextmanager
    def measure(self, into: list[dict[str, float]]) -> Iterator[None]:
        before = self.read()
        yield
        after = self.read()
        into.append({name: after[name] - before[name] for name in before})


def _throughput(
    clients: ApiClients, peer: BarePeer, records, rounds: int, host_pid: int
) -> dict[str, Any]:
    ours: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    server: list[RequestRecord] = []
    this = psutil.Process()
    ours_cpu = _CpuClock(
        {"host": psutil.Process(host_pid), "app": this, "client": psutil.Process(clients.pid)}
    )
    bare_cpu = _CpuClock({"bare": this})
    ours_used: list[dict[str, float]] = []
    bare_used: list[dict[str, float]] = []
    # One untimed round of each: the first reply of a loaded model allocates its buffers.
    warm = clients.complete(request(99, MAX_TOKENS, "warm-up"))
    records.pop(warm["user"])
    _same_reply(warm, peer.complete(prompt_for(99), MAX_TOKENS), MAX_TOKENS)
    for round_ in range(rounds):
        key = 100 + round_
        with ours_cpu.measure(ours_used):
            answer = clients.complete(request(key, MAX_TOKENS, f"throughput-{round_}"))
        with bare_cpu.measure(bare_used):
            reply = peer.complete(prompt_for(key), MAX_TOKENS)
        _same_reply(answer, reply, MAX_TOKENS)
        ours.append(answer)
        bare.append(reply)
        server.append(records.pop(answer["user"]))

    def rate(answers: list[dict[str, Any]]) -> float:
        return statistics.median(MAX_TOKENS / _total(answer) for answer in answers)

    def after_first(answers: list[dict[str, Any]]) -> float:
        return statistics.median(
            (MAX_TOKENS - 1) / (answer["ended"] - answer["first"]) for answer in answers
        )

    def cpu_ms_per_token(used: list[dict[str, float]], name: str) -> float:
        return round(statistics.median(u[name] for u in used) / MAX_TOKENS * 1000, 3)

    ours_total = statistics.median(_total(answer) for answer in ours)
    bare_total = statistics.median(_total(answer) for answer in bare)
    return {
        "rounds": rounds,
        "max_tokens": MAX_TOKENS,
        "prompt_tokens": ours[0]["prompt_tokens"],
        "same_text_rounds": rounds,  # checked: the run stops on any difference
        "ours_tokens_s": round(rate(ours), 2),
        "bare_tokens_s": round(rate(bare), 2),
        "ratio": round(rate(ours) / rate(bare), 3),
        "ours_request_s": round(ours_total, 3),
        "bare_request_s": round(bare_total, 3),
        "overhead_ms_per_token": round((ours_total - bare_total) / MAX_TOKENS * 1000, 3),
        # Each round's request, for judging the medians on a machine shared with other work.
        "ours_request_s_rounds": [round(_total(answer), 3) for answer in ours],
        "bare_request_s_rounds": [round(_total(answer), 3) for answer in bare],
        "ours_first_token_s": round(statistics.median(_ttft(answer) for answer in ours), 3),
        "bare_first_token_s": round(statistics.median(_ttft(answer) for answer in bare), 3),
        "ours_after_first_tokens_s": round(after_first(ours), 2),
        "bare_after_first_tokens_s": round(after_first(bare), 2),
        "server_after_first_tokens_s": round(
            statistics.median(record.tokens_per_second for record in server), 2
        ),
        "server_request_s": round(statistics.median(record.seconds for record in server), 3),
        # CPU time per token (medians of the rounds): where our side's work happens.
        "ours_cpu_ms_per_token": {
            name: cpu_ms_per_token(ours_used, name) for name in ("host", "app", "client")
        },
        "bare_cpu_ms_per_token": cpu_ms_per_token(bare_used, "bare"),
    }


def _first_token(clients: ApiClients, peer: BarePeer, records, rounds: int) -> dict[str, Any]:
    ours, bare, server = [], [], []
    for round_ in range(rounds):
        key = 200 + round_
        answer = clients.complete(request(key, 1, f"first-{round_}"))
        reply = peer.complete(prompt_for(key), 1)
        assert answer["text"] == reply["text"], (answer, reply)
        ours.append(_ttft(answer))
        bare.append(_ttft(reply))
        server.append(records.pop(answer["user"]).first_token_s)
    ours_p50, bare_p50 = statistics.median(ours), statistics.median(bare)
    server_p50 = statistics.median(server)
    return {
        "rounds": rounds,
        "ours_p50_ms": _ms(ours_p50),
        "ours_p90_ms": _ms(_quantile(ours, 90)),
        "bare_p50_ms": _ms(bare_p50),
        "bare_p90_ms": _ms(_quantile(bare, 90)),
        "extra_p50_ms": _ms(ours_p50 - bare_p50),
        "ratio": round(ours_p50 / bare_p50, 3),
        # Of ours: request arrival in the app to its first piece there (the host's work, the
        # pipe, the session); the rest is HTTP in and out and the client's own parsing.
        "server_p50_ms": _ms(server_p50),
        "server_extra_p50_ms": _ms(server_p50 - bare_p50),
        "http_and_client_p50_ms": _ms(ours_p50 - server_p50),
    }


def _concurrent(clients: ApiClients, records, count: int, rounds: int) -> dict[str, Any]:
    """Rounds of `count` clients at once, each followed by the same number of requests sent
    one after another by one client (the single-client peer, in the same conditions)."""
    latencies: list[float] = []
    firsts: list[float] = []
    aggregate: list[float] = []
    single: list[float] = []
    by_client: dict[str, list[float]] = {f"client-{i}": [] for i in range(count)}
    positions: dict[str, list[int]] = {name: [] for name in by_client}
    for round_ in range(rounds):
        base = 1000 + round_ * count
        asked = [request(base + i, MAX_TOKENS, name) for i, name in enumerate(by_client)]
        answers = clients.together(asked)
        for answer in answers:
            assert answer["finish_reason"] == "length", answer
            assert answer["completion_tokens"] == MAX_TOKENS, answer
            records.pop(answer["user"])
            latencies.append(_total(answer))
            firsts.append(_ttft(answer))
            by_client[answer["user"]].append(_total(answer))
        served = sorted(answers, key=lambda answer: answer["first"])
        for place, answer in enumerate(served, 1):
            positions[answer["user"]].append(place)
        wall = max(a["ended"] for a in answers) - min(a["sent"] for a in answers)
        aggregate.append(count * MAX_TOKENS / wall)

        started = time.time()
        for i in range(count):
            answer = clients.complete(request(base + 500 + i, MAX_TOKENS, "one-client"))
            assert answer["completion_tokens"] == MAX_TOKENS, answer
            records.pop(answer["user"])
        single.append(count * MAX_TOKENS / (time.time() - started))
    means = [statistics.mean(values) for values in by_client.values()]
    aggregate_tokens_s = statistics.median(aggregate)
    single_tokens_s = statistics.median(single)
    return {
        "clients": count,
        "rounds": rounds,
        "requests": len(latencies),
        "max_tokens": MAX_TOKENS,
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(_quantile(latencies, 99), 3),
        "latency_max_s": round(max(latencies), 3),
        "first_token_p50_s": round(statistics.median(firsts), 3),
        "first_token_p99_s": round(_quantile(firsts, 99), 3),
        "aggregate_tokens_s": round(aggregate_tokens_s, 2),
        "single_client_tokens_s": round(single_tokens_s, 2),
        "aggregate_over_single": round(aggregate_tokens_s / single_tokens_s, 3),
        "client_mean_latency_min_s": round(min(means), 3),
        "client_mean_latency_max_s": round(max(means), 3),
        "client_mean_latency_max_over_min": round(max(means) / min(means), 3),
        "positions_by_client": positions,
    }


@contextmanager
def _queue_samples(engine: Engine, model_id: str) -> Iterator[list[tuple[float, int]]]:
    """(time, replies running or waiting) of the model, sampled every 5 ms in the engine."""
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            session = engine._session(model_id)
            if session is None:
                continue
            try:
                queued = len(session.waiting) + (session.active is not None)
            except RuntimeError:  # the session changed its lines while they were counted
                continue
            samples.append((time.time(), queued))

    thread = threading.Thread(target=sample, name="queue-samples", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def _turns(
    engine: Engine, clients: ApiClients, model_id: str, records, count: int, rounds: int
) -> dict[str, Any]:
    lone_latency, lone_first, places, queued = [], [], [], []
    burst_latency: list[float] = []
    for round_ in range(rounds):
        base = 5000 + round_ * (count + 1)
        asked = [request(base + i, MAX_TOKENS, "burst") for i in range(count)]
        asked.append(request(base + count, MAX_TOKENS, "lone", delay_s=LONE_DELAY_S))
        with _queue_samples(engine, model_id) as samples:
            answers = clients.together(asked)
        *burst, lone = answers
        for answer in answers:
            assert answer["completion_tokens"] == MAX_TOKENS, answer
        for record in [records.pop("lone"), *(records.pop("burst") for _ in burst)]:
            assert record.completion_tokens == MAX_TOKENS
        before = [n for stamp, n in samples if stamp <= lone["sent"]]
        queued.append(before[-1] if before else 0)
        served = sorted(answers, key=lambda answer: answer["first"])
        places.append(next(i for i, a in enumerate(served, 1) if a is lone))
        lone_latency.append(_total(lone))
        lone_first.append(_ttft(lone))
        burst_latency += [_total(answer) for answer in burst]
    return {
        "burst": count,
        "rounds": rounds,
        "lone_delay_s": LONE_DELAY_S,
        "queued_when_lone_sent": queued,
        "lone_place": places,  # in the order of service, of count + 1
        "lone_latency_s": round(statistics.median(lone_latency), 3),
        "lone_first_token_s": round(statistics.median(lone_first), 3),
        "burst_latency_p50_s": round(statistics.median(burst_latency), 3),
        "burst_latency_max_s": round(max(burst_latency), 3),
        "lone_over_burst_p50": round(
            statistics.median(lone_latency) / statistics.median(burst_latency), 3
        ),
    }


class _Records:
    """The server's request log as it fills (`ModelServing.on_request`), taken by `user`."""

    def __init__(self) -> None:
        self._by_client: dict[str, list[RequestRecord]] = {}
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._by_client.setdefault(record.client, []).append(record)

    def pop(self, client: str, timeout: float = 10.0) -> RequestRecord:
        """The oldest record of `client` (the server logs a request just after its last chunk
        is sent, so it may come a moment after the client's answer)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._by_client.get(client):
                    return self._by_client[client].pop(0)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server logged no request of {client!r}")
            time.sleep(0.005)


def bench_serving(
    root: Path,
    *,
    size_mb: float,
    rounds: int,
    first_token_rounds: int,
    clients: int,
    concurrent_rounds: int,
    burst_rounds: int,
) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    folder = root / "library"
    folder.mkdir()
    model = write_demo_model(folder / "Serving-F32.gguf", spec_for_size(size_mb, seed=41))
    model.read_bytes()  # page cache warm for both sides
    info = read_gguf(model, tensors=True)
    results: dict[str, Any] = {
        "model": {
            "mb": round(model.stat().st_size / 1e6, 1),
            "tensor_type": info.quantization,
            "layers": info.block_count,
            "n_ctx": N_CTX,
        },
        "client": "openai " + _openai_version(),
    }
    records = _Records()
    with Engine(warm_hosts=1) as engine:
        library = ModelLibrary([folder], include_known=False)
        library.refresh()
        (entry,) = [item.entry for item in library.models()]
        server = ServerThread(engine, library, config=ServerConfig())
        server.state.store.set_options(entry.id, LoadOptions(n_ctx=N_CTX))
        server.state.serving.on_request(records.add)
        server.start()
        api = ApiClients(server.api_url, server.config.token, entry.id)
        try:
            results["first_token_with_load"] = _part(
                _first_token_with_load, engine, api, model, entry.id, records, rounds
            )
            peer = BarePeer(model)
            results["model"]["n_threads"] = peer.llm.n_threads
            try:
                results["throughput"] = _part(
                    _throughput, api, peer, records, rounds, engine.host_pid(entry.id)
                )
                results["first_token"] = _part(_first_token, api, peer, records, first_token_rounds)
            finally:
                peer.close()
            results["concurrent"] = _part(_concurrent, api, records, clients, concurrent_rounds)
            results["turns"] = _part(_turns, engine, api, entry.id, records, clients, burst_rounds)
        finally:
            api.close()
            server.stop()
    model.unlink()
    return results


def _part(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """One part's figures, with the machine's 1-minute load average before and after it
    (other work on this machine slows every figure)."""
    before = os.getloadavg()[0]
    found = function(*args)
    found["load_average_1m"] = [round(before, 2), round(os.getloadavg()[0], 2)]
    return found


def _openai_version() -> str:
    from importlib.metadata import version

    return version("openai")


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.serving`: the same as `python -m bench --only serving`."""
    from bench.__main__ import main as bench_main

    return bench_main(["--only", "serving", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
