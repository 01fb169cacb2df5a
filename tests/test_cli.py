"""The command line, run as a person runs it: a real process, real hosts, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

from llm_desktop.core import catalog, presenter
from llm_desktop.core.engine import preflight
from llm_desktop.core.events import ErrorKind, ModelError, ProgressEvent, Stage
from llm_desktop.core.options import LoadOptions

CLI = [sys.executable, "-m", "llm_desktop.cli"]


def run_cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def parse_events(stdout: str) -> list[ProgressEvent]:
    return [ProgressEvent.from_json(line) for line in stdout.splitlines() if line.strip()]


def test_load_json_prints_one_event_per_line_and_the_outcome_last(tiny_model):
    result = run_cli("load", str(tiny_model), "--json", "--n-ctx", "128")
    assert result.returncode == 0, result.stderr
    events = parse_events(result.stdout)
    assert events[0].stage is Stage.CONNECTING
    assert events[-1].stage is Stage.COMPLETE
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_load_with_a_prompt_streams_a_reply(tiny_model):
    result = run_cli("load", str(tiny_model), "--prompt", "Hi", "--max-tokens", "4")
    assert result.returncode == 0, result.stderr
    assert "is ready" in result.stderr
    assert result.stdout.strip() != "" or result.stdout == "\n"


def test_load_of_a_missing_file_fails_with_its_name(tmp_path):
    result = run_cli("load", str(tmp_path / "nope.gguf"), "--json")
    assert result.returncode == 1
    final = parse_events(result.stdout)[-1]
    assert final.stage is Stage.FAILED
    assert final.error.kind is ErrorKind.NOT_FOUND
    assert final.error.message.startswith("Model file not found")


def test_ctrl_c_cancels_cleanly(big_model):
    process = subprocess.Popen(
        [*CLI, "load", str(big_model), "--json", "--no-mmap"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if '"stage":"connecting"' in line:  # the host is still starting: well before the end
            process.send_signal(signal.SIGINT)
            break
    rest, _ = process.communicate(timeout=60)
    events = parse_events("".join(lines) + rest)
    assert process.returncode == 130
    assert events[-1].stage is Stage.CANCELLED


def test_permission_denied_is_named(tiny_model, tmp_path):
    """Root reads any file, so the check runs in a forked child that has become `nobody`."""
    locked = tmp_path / "locked.gguf"
    shutil.copyfile(tiny_model, locked)
    locked.chmod(0o000)
    tmp_path.chmod(0o755)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, then do exactly what a load does first
        os.close(reader)
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            preflight(str(locked))
            outcome = "no error"
        except ModelError as exc:
            outcome = f"{exc.kind.value}|{exc.info.message}"
        except BaseException as exc:
            outcome = f"unexpected|{exc!r}"
        os.write(writer, outcome.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        outcome = pipe.read()
    os.waitpid(pid, 0)
    kind, _, message = outcome.partition("|")
    assert kind == ErrorKind.PERMISSION_DENIED.value, outcome
    assert message.startswith("Permission denied accessing model file")


def test_demo_model_then_models_lists_it(tmp_path):
    result = run_cli("demo-model", str(tmp_path / "lib" / "demo.gguf"), "--size-mb", "2")
    assert result.returncode == 0, result.stderr
    listing = run_cli("models", "--dir", str(tmp_path / "lib"), "--no-known", "--json")
    assert listing.returncode == 0, listing.stderr
    document = json.loads(listing.stdout)
    (model,) = document["models"]
    assert model["architecture"] == "llama"
    assert model["fit"]["verdict"] in ("gpu", "partial", "cpu")
    assert "ram" in document["hardware"]
    text = run_cli("models", "--dir", str(tmp_path / "lib"), "--no-known")
    view = model["view"]
    assert f"{view['title']}  [{view['model']}]" in text.stdout
    assert view["facts"] in text.stdout and f"{view['fit']['text']}: " in text.stdout


def test_load_prints_the_presenters_view_of_every_event(tiny_model):
    """The CLI decides no wording: each JSON line carries the presenter's view of its event,
    and the terminal lines are the presenter's progress lines."""
    (entry,) = catalog.scan([tiny_model], include_known=False)
    result = run_cli("load", str(tiny_model), "--json", "--n-ctx", "128")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        event = ProgressEvent.from_dict(line)
        view = presenter.card_view(entry, event, options=LoadOptions(n_ctx=128))
        assert line["view"] == view.to_dict()
    assert lines[-1]["notice"]["text"] == f"{entry.display_name} is ready"

    text = run_cli("load", str(tiny_model), "--n-ctx", "128")
    final = [line for line in text.stderr.splitlines() if ": Loaded · 100%" in line]
    assert final and final[0].startswith(f"{entry.display_name}: Loaded · 100% · Ready")
