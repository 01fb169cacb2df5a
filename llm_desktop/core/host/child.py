"""The model host: a child process that holds one llama.cpp model.

llama.cpp can abort or segfault on bad input, so it never runs in the app's process. A host
starts, imports llama_cpp, says `ready` (with what this llama.cpp build can run on), and
waits. It loads at most one model, reports progress from llama.cpp's own progress callback,
answers prompts, and exits when asked, when its stdin closes (the app is gone), or after a load
that failed or was cancelled. Exiting is how memory really comes back.

A host can instead quantize a model (`quantize`): llama.cpp reports nothing but its log, so the
host reads the quantizer's per-tensor log lines as progress (`quantize_log`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import queue
import re
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from llm_desktop.core.host import protocol, quantize_log, replies

PROGRESS_INTERVAL_S = 0.02
READ_AHEAD_CHUNK = 8 << 20  # bytes per step: ~10-80 ms of disk, so a cancel is quick
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Read ahead only what fits: past this share of the memory available, reading the whole file
# would evict its own first pages before llama.cpp touches them.
READ_AHEAD_MEMORY_SHARE = 0.8
# mincore sets bit 0 of a page's byte when it is resident; the other bits are reserved.
_RESIDENT_BIT = bytes(value & 1 for value in range(256))


class HostChannel:
    """The message stream to the app, safe to use from llama.cpp's callbacks and any thread."""

    def __init__(self) -> None:
        # Keep a private copy of stdout for messages and point fd 1 at stderr: a native printf
        # can then never corrupt the protocol.
        self._out = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)
        self._lock = threading.Lock()
        # Called (from any thread) just before the host exits because the app is gone.
        self.on_app_gone: Callable[[], None] | None = None

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        with self._lock:
            try:
                self._out.write(data)
            except (BrokenPipeError, OSError):
                self.app_gone()

    def app_gone(self) -> None:
        """The app is gone; nobody is left to report to, or to wait for what this host makes."""
        if self.on_app_gone is not None:
            with contextlib.suppress(BaseException):
                self.on_app_gone()
        os._exit(0)


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
        # While set, sees every non-debug line (complete=True) and each fragment of the line
        # still being assembled (complete=False): the quantizer's progress is in its log.
        self.watcher: Callable[[str, bool], None] | None = None

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
        watcher = self.watcher
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            if line.strip():
                self.recent.append(line)
                if watcher is not None:
                    watcher(line, True)
                if self._level in (self.WARN, self.ERROR):
                    self.channel.send({"t": "log", "level": self._level, "text": line})
        if watcher is not None and self._partial:
            watcher(self._partial, False)

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


class ReadAhead:
    """Brings a memory-mapped model's files into the page cache, in order, and says how many
    of their bytes are in memory.

    With mmap, llama.cpp's progress callback only maps the file: the real reads happen later,
    page by page, when the first decode touches the weights, and the bar would sit still while
    the disk works. Reading the files first (kernel to kernel, `sendfile` to /dev/null, so no
    copy into Python) makes "Loading weights" move with the disk, at the disk's rate, and makes
    the warm-up decode fast. Pages already in memory (`mincore`) are counted at once and not
    read again, so a warm cache costs milliseconds.
    """

    def __init__(self, paths: list[str], cancelled: threading.Event):
        self.paths = paths
        self.cancelled = cancelled
        self.sizes = [os.path.getsize(path) for path in paths]
        self.total = sum(self.sizes)
        self.done = 0

    def worth_it(self) -> bool:
        available = _memory_available()
        return available is None or self.total <= available * READ_AHEAD_MEMORY_SHARE

    def run(self, report) -> bool:
        """Read every part; `report(done, total)` as it goes. False if cancelled."""
        with open(os.devnull, "wb") as sink:
            for path, size in zip(self.paths, self.sizes, strict=True):
                if not self._read(path, size, sink.fileno(), report):
                    return False
        return True

    def _read(self, path: str, size: int, sink: int, report) -> bool:
        fd = os.open(path, os.O_RDONLY)
        try:
            resident = Residency(fd, size)
            offset = 0
            while offset < size:
                if self.cancelled.is_set():
                    return False
                length = min(READ_AHEAD_CHUNK, size - offset)
                if not resident.all_in(offset, length):
                    sent = 0
                    while sent < length:
                        count = os.sendfile(sink, fd, offset + sent, length - sent)
                        if count == 0:
                            break
                        sent += count
                offset += length
                self.done += length
                report(self.done, self.total)
            resident.close()
        finally:
            os.close(fd)
        return True


class Residency:
    """Which pages of a file are in memory (`mincore` over a read-only mapping of it)."""

    _libc: Any = None

    def __init__(self, fd: int, size: int):
        self.size = size
        self.address: int | None = None
        libc = self._load()
        if libc is None or size == 0:
            return
        address = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        if address not in (None, ctypes.c_void_p(-1).value):
            self.address = address

    @classmethod
    def _load(cls) -> Any:
        if cls._libc is None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.mmap.restype = ctypes.c_void_p
                libc.mmap.argtypes = [
                    ctypes.c_void_p,
                    ctypes.c_size_t,
                    ctypes.c_int,
                    ctypes.c_int,
                    ctypes.c_int,
                    ctypes.c_long,
                ]
                libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
                libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
                cls._libc = libc
            except (OSError, AttributeError):
                cls._libc = False
        return cls._libc or None

    def all_in(self, offset: int, length: int) -> bool:
        """True when every page of [offset, offset+length) is in memory; False if unknown."""
        if self.address is None:
            return False
        first = offset - offset % PAGE_SIZE
        pages = (offset + length - first + PAGE_SIZE - 1) // PAGE_SIZE
        vector = (ctypes.c_ubyte * pages)()
        if self._libc.mincore(ctypes.c_void_p(self.address + first), pages * PAGE_SIZE, vector):
            return False
        return b"\x00" not in bytes(vector).translate(_RESIDENT_BIT)

    def close(self) -> None:
        if self.address is not None:
            self._libc.munmap(ctypes.c_void_p(self.address), self.size)
            self.address = None


def _fsync_folder(folder: str) -> None:
    """Make a rename in `folder` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _memory_available() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class ModelHost:
    def __init__(self, channel: HostChannel, log: LogRelay, llama_cpp_module: Any):
        self.channel = channel
        self.log = log
        self.llama_cpp = llama_cpp_module
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cancel = threading.Event()
        self.stops = replies.StopFlags()
        self.llm: Any = None
        self.quantizing: str | None = None  # the partial file being written, while quantizing

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
                self.stops.stop(command.get("id"))
                continue  # a flag, not a task: the reply reads it between tokens
            self.commands.put(command)
        self.cancel.set()
        self.stops.everything.set()
        if self.quantizing is not None:
            # llama.cpp's quantizer cannot be stopped and nobody waits for its file.
            self.channel.app_gone()
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
                replies.generate(self.llm, command, self.channel.send, self.stops)
            elif op == "embed" and self.llm is not None:
                replies.embed(self.llm, command, self.channel.send)
            elif op == "quantize" and self.llm is None:
                try:
                    self.quantize(command)
                finally:
                    self.quantizing = None
                    self.channel.on_app_gone = None

    def load(self, command: dict[str, Any]) -> bool:
        from llama_cpp import llama as llama_module

        bindings = self.llama_cpp
        last_sent = [0.0]
        announced_context = [False]
        # With mmap the bytes come from the read-ahead; llama.cpp's fraction only maps them.
        read_ahead = self._read_ahead(command) if command.get("use_mmap", True) else None
        if read_ahead is False:
            self.channel.send({"t": "cancelled"})
            return False
        bytes_from_llama = read_ahead is None

        @bindings.llama_progress_callback
        def on_progress(fraction: float, _user_data: ctypes.c_void_p) -> bool:
            try:
                now = time.monotonic()
                due = fraction >= 1.0 or now - last_sent[0] >= PROGRESS_INTERVAL_S
                if bytes_from_llama and due:
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

    def _read_ahead(self, command: dict[str, Any]) -> bool | None:
        """Read a memory-mapped model into the page cache first, reporting the bytes in
        memory as load progress. True when done, False when cancelled, None when not done
        (the file is larger than memory can hold, or it cannot be read: llama.cpp says why)."""
        paths = [str(path) for path in command.get("parts") or [command["path"]]]
        try:
            reader = ReadAhead(paths, self.cancel)
        except OSError:
            return None
        if not reader.worth_it():
            return None
        last_sent = [0.0]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last_sent[0] >= PROGRESS_INTERVAL_S:
                last_sent[0] = now
                self.channel.send({"t": "progress", "f": done / total if total else 1.0})

        try:
            return reader.run(report)
        except OSError:
            return None  # unreadable part: let llama.cpp name the failure

    @staticmethod
    def _construct(llama_module: Any, command: dict[str, Any]) -> Any:
        # `Llama` compiles every chat template of the file as it loads, so one broken template
        # would fail the whole load. Replies format chats themselves (`replies.chat_prompt`,
        # where a broken template is a named error of that chat), so the load skips them.
        chat_format = llama_module.llama_chat_format
        compile_template = chat_format.Jinja2ChatFormatter
        chat_format.Jinja2ChatFormatter = replies.UncompiledTemplate
        try:
            return ModelHost._construct_llama(llama_module, command)
        finally:
            chat_format.Jinja2ChatFormatter = compile_template

    @staticmethod
    def _construct_llama(llama_module: Any, command: dict[str, Any]) -> Any:
        return llama_module.Llama(
            model_path=command["path"],
            n_ctx=int(command.get("n_ctx") or 2048),
            n_gpu_layers=int(command.get("n_gpu_layers") or 0),
            use_mmap=bool(command.get("use_mmap", True)),
            n_threads=command.get("n_threads"),
            embedding=bool(command.get("embedding", False)),
            verbose=True,
        )

    def quantize(self, command: dict[str, Any]) -> None:
        """Quantize `path` into `out` (written as `out.part`, renamed when whole). Progress is
        read from llama.cpp's per-tensor log lines; the call cannot be interrupted, so the
        app cancels by ending this process (and removes the partial file itself)."""
        out = str(command["out"])
        part = quantize_log.partial_path(out)
        type_name = str(command.get("type", ""))
        ftype = quantize_log.quantize_file_type(type_name)
        if ftype is None:
            offered = ", ".join(quantize_log.QUANTIZE_TYPES)
            self.channel.send(
                {
                    "t": "error",
                    "kind": "unsupported_model",
                    "message": f"Unknown quantization type {type_name!r} (one of {offered})",
                    "detail": [],
                }
            )
            return
        bindings = self.llama_cpp
        params = bindings.llama_model_quantize_default_params()
        params.ftype = ftype
        if command.get("threads"):
            params.nthread = int(command["threads"])
        lines: deque[str] = deque(maxlen=40)
        started = [0]

        def watch(text: str, complete: bool) -> None:
            if complete:
                lines.append(text)
            tensor = quantize_log.parse_tensor_line(text, complete=complete)
            if tensor is None or (not tensor.complete and started[0] == tensor.index):
                return
            started[0] = tensor.index
            self.channel.send(
                {
                    "t": "quantize_progress",
                    "i": tensor.index,
                    "n": tensor.count,
                    "tensor": tensor.name,
                    "bytes": tensor.source_bytes,
                    "done": tensor.complete,
                }
            )
            if tensor.complete and tensor.index == tensor.count:
                # The last tensor is converted: what is left is writing it and the header.
                self.channel.send({"t": "stage", "stage": "finalizing"})

        def remove_part() -> None:
            with contextlib.suppress(OSError):
                os.remove(part)

        self.log.watcher = watch
        self.quantizing = part
        self.channel.on_app_gone = remove_part
        try:
            status = bindings.llama_model_quantize(
                str(command["path"]).encode(), part.encode(), ctypes.byref(params)
            )
        finally:
            self.log.watcher = None
        if status != 0:
            folder = os.path.dirname(os.path.abspath(out))
            try:
                free = shutil.disk_usage(folder).free
            except OSError:
                free = None
            info = quantize_log.classify_quantize_failure(
                lines, out=out, free_bytes=free, writable=os.access(folder, os.W_OK)
            )
            remove_part()
            self.channel.send({"t": "error", **info.to_dict()})
            return
        try:
            with open(part, "rb+") as written:
                os.fsync(written.fileno())  # whole on disk before it takes the real name
            if os.path.exists(out):
                raise FileExistsError(f"{out} appeared while quantizing; it was left as it is")
            os.replace(part, out)
            _fsync_folder(os.path.dirname(os.path.abspath(out)))
            size = os.path.getsize(out)
        except OSError as exc:
            remove_part()
            kind = "disk_full" if exc.errno == errno.ENOSPC else "permission_denied"
            self.channel.send(
                {
                    "t": "error",
                    "kind": kind,
                    "message": f"Could not save {out}: {exc}",
                    "detail": [],
                }
            )
            return
        self.channel.send({"t": "quantized", "out": out, "size": size})


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
