"""Starting a model host process: the one place that says how, light enough to import first.

The CLI starts its host before it imports anything else, so the host's own start (Python and
llama.cpp, a few hundred milliseconds) runs while the CLI imports and reads the model's header.
"""

from __future__ import annotations

import os
import subprocess
import sys


def host_command() -> list[str]:
    """How to start a host: the same program in host mode when frozen, else the package."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--model-host"]
    return [sys.executable, "-m", "llm_desktop.core.host"]


def host_environment() -> dict[str, str]:
    # ggml answers a failed assertion by running gdb for a backtrace: seconds of delay and a
    # stderr full of frames instead of the one line that says what failed.
    return {**os.environ, "GGML_NO_BACKTRACE": "1"}


def spawn(command: list[str] | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A host process with its three pipes (messages, commands, native stderr)."""
    return subprocess.Popen(
        command or host_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or host_environment(),
        bufsize=0,
    )
