"""The loopback hub (`tests.helpers.fake_hub.FakeHub`) in a process of its own, for the bench.

A download measured against a hub in the same Python process would share the interpreter's
lock with the server's threads, and curl, in a process of its own, would not: the server runs
here instead, so both clients meet the same server from outside. The parent drives it with one
JSON object a line on stdin and reads one answer a line on stdout:

    {"op": "add_repo", "repo": "org/name", "files": {"File-Q8_0.gguf": "/path"}} -> {"sha": ...}
    {"op": "resolve_url", "repo": ..., "file": ...}                               -> {"url": ...}
    {"op": "drop_after", "file": ..., "bytes": N}    (one GET of `file` is cut)   -> {}
    {"op": "bytes_served", "file": ...}                                           -> {"bytes": N}
    {"op": "requests"}                                    (how many so far)       -> {"count": N}

The first line it prints is `{"endpoint": ..., "cdn": ...}`; end of stdin stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def serve(root: Path) -> int:
    from tests.helpers.fake_hub import DropAfter, FakeHub

    with FakeHub(root) as hub:
        _answer({"endpoint": hub.endpoint, "cdn": hub.cdn_endpoint})
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "add_repo":
                files = {name: Path(path) for name, path in command["files"].items()}
                _answer({"sha": hub.add_repo(command["repo"], files)})
            elif op == "resolve_url":
                _answer({"url": hub.resolve_url(command["repo"], command["file"])})
            elif op == "drop_after":
                hub.inject(command["file"], DropAfter(int(command["bytes"])))
                _answer({})
            elif op == "bytes_served":
                _answer({"bytes": hub.bytes_served(command["file"])})
            elif op == "requests":
                _answer({"count": len(hub.requests)})
            else:
                _answer({"error": f"unknown op {op!r}"})
    return 0


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


class HubProcess:
    """The parent's side: start the hub process, call it, stop it (a context manager)."""

    def __init__(self, root: Path):
        self.root = root
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def __enter__(self) -> HubProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hub_process", str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.endpoint = self._read()["endpoint"]
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self.process is not None
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def _read(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the hub process ended (exit status {self.process.poll()})")
        return json.loads(line)


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1])))
