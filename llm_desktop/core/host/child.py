"""The model host: a child process that holds one llama.cpp model.

llama.cpp can abort or segfault on bad input, so it never runs in the app's process. A host
starts, imports llama_cpp, says `ready` (with what this llama.cpp build can run on), and
waits. It loads at most one model, reports progress from llama.cpp's own progress callback,
answers prompts, and exits when asked, when its stdin closes (the app is gone), or after a load
that failed or was cancelled. Exiting is how memory really comes back.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import queue
import re
import sys
import threading
import time
from collections import deque
from typing import Any

from llm_desktop.core.host import protocol

PROGRESS_INTERVAL_S = 0.02


class HostChannel:
    """The message stream to the app, safe to use from llama.cpp's callbacks and any thread."""

    def __init__(self) -> None:
        # Keep a private copy of stdout for messages and point fd 1 at stderr: a native printf
        # can then never corrupt the protocol.
        self._out = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        with self._lock:
            try:
                self._out.write(data)
            except (BrokenPipeError, OSError):
                os._exit(0)  # the app is gone; nobody is left to report to


class LogRelay:
    """Keeps llama.cpp's recent log lines (to name a failure) and forwards warnings and errors.

    A load of a few hundred tensors logs thousands of fragments; relaying each over the pipe
    measured a 2x slower load, so debug lines are dropped at once and info lines stay here.
    """

    # ggml_log_level in this llama.cpp: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5.
    DEBUG, WARN, ERROR, CONT = 1, 3, 4, 5

    def __init__(self, channel: HostChannel):
        self.channel = channel
        self.recent: deque[str] = deque(maxlen=64)
        self._partial = ""
        self._level = 1
        self._callback = None  # the ctypes object must outlive every call from C

    def install(self, llama_cpp: Any) -> None:
        @llama_cpp.llama_log_callback
        def on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
            with contextlib.suppress(BaseException):  # an exception must never cross into C
                self._receive(level, text)

        self._callback = on_log
        llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))

    def _receive(self, level: int, text: bytes) -> None:
        if level != self.CONT:
            self._level = level
        if self._level == self.DEBUG:
            return
        self._partial += text.decode("utf-8", errors="replace")
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            if line.strip():
                self.recent.append(line)
                if self._level in (self.WARN, self.ERROR):
                    self.channel.send({"t": "log", "level": self._level, "text": line})

    def mark(self) -> int:
        return len(self.recent)


# ggml_backend_dev_type: CPU 0, GPU 1, IGPU 2, ACCEL 3, META 4.
_GPU_DEVICE_TYPES = (1, 2)


def build_info(llama_cpp: Any) -> dict[str, Any]:
    """What this llama.cpp can run on, for the `ready` message (hardware.LlamaBuild reads it).

    `gpu_offload` is llama.cpp's own answer. The backends and devices come from ggml's backend
    registry, which llama-cpp-python does not bind: its functions are looked up in the ggml
    library it loads. Where that fails, the backend names are read from
    `llama_print_system_info()` ("CPU : SSE3 = 1 | ... | CUDA : ARCHS = ... |").
    """
    info: dict[str, Any] = {
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "backends": [],
        "gpu_devices": [],
    }
    try:
        info["backends"], info["gpu_devices"] = _ggml_registry()
    except (ImportError, AttributeError, OSError):
        system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
        info["backends"] = re.findall(r"([\w.-]+) : ", system_info)
    return info


def _ggml_registry() -> tuple[list[str], list[str]]:
    from llama_cpp._ggml import libggml

    text = ctypes.c_char_p
    functions = {
        "ggml_backend_reg_count": ([], ctypes.c_size_t),
        "ggml_backend_reg_get": ([ctypes.c_size_t], ctypes.c_void_p),
        "ggml_backend_reg_name": ([ctypes.c_void_p], text),
        "ggml_backend_dev_count": ([], ctypes.c_size_t),
        "ggml_backend_dev_get": ([ctypes.c_size_t], ctypes.c_void_p),
        "ggml_backend_dev_name": ([ctypes.c_void_p], text),
        "ggml_backend_dev_description": ([ctypes.c_void_p], text),
        "ggml_backend_dev_type": ([ctypes.c_void_p], ctypes.c_int),
    }
    f = {}
    for name, (argtypes, restype) in functions.items():
        function = getattr(libggml, name)
        function.argtypes, function.restype = argtypes, restype
        f[name] = function

    def decoded(value: bytes | None) -> str:
        return (value or b"").decode("utf-8", "replace")

    backends = [
        decoded(f["ggml_backend_reg_name"](f["ggml_backend_reg_get"](i)))
        for i in range(f["ggml_backend_reg_count"]())
    ]
    gpus = []
    for i in range(f["ggml_backend_dev_count"]()):
        device = f["ggml_backend_dev_get"](i)
        if f["ggml_backend_dev_type"](device) in _GPU_DEVICE_TYPES:
            name = decoded(f["ggml_backend_dev_name"](device))
            gpus.append(f"{name}: {decoded(f['ggml_backend_dev_description'](device))}")
    return backends, gpus


class ModelHost:
    def __init__(self, channel: HostChannel, log: LogRelay, llama_cpp_module: Any):
        self.channel = channel
        self.log = log
        self.llama_cpp = llama_cpp_module
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cancel = threading.Event()
        self.stop_generation = threading.Event()
        self.llm: Any = None

    def read_commands(self) -> None:
        """Reader thread: flags take effect at once, even while the main thread is inside C."""
        for line in sys.stdin.buffer:
            command = protocol.decode(line)
            if command is None:
                continue
            op = command.get("op")
            if op == "cancel":
                self.cancel.set()
            elif op == "stop":
                self.stop_generation.set()
            self.commands.put(command)
        self.cancel.set()
        self.stop_generation.set()
        self.commands.put({"op": "exit"})

    def serve(self) -> None:
        threading.Thread(target=self.read_commands, name="host-stdin", daemon=True).start()
        try:
            build = build_info(self.llama_cpp)
        except Exception as exc:  # a host that cannot say still loads; the app reads "unknown"
            build = {"error": str(exc)}
        self.channel.send({"t": "ready", "pid": os.getpid(), "build": build})
        while True:
            command = self.commands.get()
            op = command.get("op")
            if op == "exit":
                return
            if op == "load" and self.llm is None:
                if not self.load(command):
                    return
            elif op == "generate" and self.llm is not None:
                self.generate(command)

    def load(self, command: dict[str, Any]) -> bool:
        from llama_cpp import llama as llama_module

        bindings = self.llama_cpp
        last_sent = [0.0]
        announced_context = [False]

        @bindings.llama_progress_callback
        def on_progress(fraction: float, _user_data: ctypes.c_void_p) -> bool:
            try:
                now = time.monotonic()
                if fraction >= 1.0 or now - last_sent[0] >= PROGRESS_INTERVAL_S:
                    last_sent[0] = now
                    self.channel.send({"t": "progress", "f": min(float(fraction), 1.0)})
                if fraction >= 1.0 and not announced_context[0]:
                    # The last tensor is in; what llama.cpp does next is build the context.
                    announced_context[0] = True
                    self.channel.send({"t": "stage", "stage": "optimizing"})
                return not self.cancel.is_set()
            except BaseException:
                return False

        default_params = bindings.llama_model_default_params

        def params_with_progress():
            params = default_params()
            params.progress_callback = on_progress
            return params

        # `Llama` has no progress argument; it builds its model params from this function.
        llama_module.llama_cpp.llama_model_default_params = params_with_progress
        mark = self.log.mark()
        try:
            # verbose=True keeps native stderr open (an abort's last words reach the app), but
            # its Python-level prints (the whole metadata dict, chat templates) go nowhere.
            with contextlib.redirect_stderr(io.StringIO()):
                self.llm = self._construct(llama_module, command)
        except Exception as exc:
            if self.cancel.is_set():
                self.channel.send({"t": "cancelled"})
            else:
                lines = list(self.log.recent)[mark:] or [str(exc)]
                info = protocol.classify_failure(lines)
                self.channel.send({"t": "error", **info.to_dict()})
            return False
        finally:
            llama_module.llama_cpp.llama_model_default_params = default_params
        if not announced_context[0]:
            self.channel.send({"t": "stage", "stage": "optimizing"})
        if self.cancel.is_set():
            self.channel.send({"t": "cancelled"})
            return False

        self.channel.send({"t": "stage", "stage": "finalizing"})
        self.llm.eval([self.llm.token_bos()])  # one decode: proof the graph really runs
        self.llm.reset()
        if self.cancel.is_set():
            self.channel.send({"t": "cancelled"})
            return False
        self.channel.send(
            {
                "t": "loaded",
                "n_ctx": self.llm.n_ctx(),
                "n_vocab": self.llm.n_vocab(),
                "system_info": bindings.llama_print_system_info().decode("utf-8", "replace"),
            }
        )
        return True

    @staticmethod
    def _construct(llama_module: Any, command: dict[str, Any]) -> Any:
        return llama_module.Llama(
            model_path=command["path"],
            n_ctx=int(command.get("n_ctx") or 2048),
            n_gpu_layers=int(command.get("n_gpu_layers") or 0),
            use_mmap=bool(command.get("use_mmap", True)),
            n_threads=command.get("n_threads"),
            verbose=True,
        )

    def generate(self, command: dict[str, Any]) -> None:
        self.stop_generation.clear()
        reason, count = "length", 0
        try:
            stream = self.llm.create_completion(
                command.get("prompt", ""),
                max_tokens=int(command.get("max_tokens", 64)),
                temperature=float(command.get("temperature", 0.8)),
                stream=True,
            )
            for chunk in stream:
                if self.stop_generation.is_set():
                    reason = "stopped"
                    break
                choice = chunk["choices"][0]
                count += 1
                self.channel.send({"t": "token", "text": choice["text"]})
                reason = choice.get("finish_reason") or reason
        except Exception as exc:
            self.channel.send({"t": "generated", "reason": "error", "error": str(exc)})
            return
        self.channel.send({"t": "generated", "reason": reason, "n_tokens": count})


def main() -> int:
    channel = HostChannel()
    log = LogRelay(channel)
    import llama_cpp

    log.install(llama_cpp)
    host = ModelHost(channel, log, llama_cpp)
    host.serve()
    if host.llm is not None:
        host.llm.close()
    # Skip interpreter finalization: llama.cpp's destructors and a log callback into a half
    # torn-down interpreter can abort there, and the kernel returns the memory at once anyway.
    os._exit(0)
