"""`llm-desktop`: the desktop app, and the command line that renders the same events."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from llm_desktop import __version__
from llm_desktop.core.events import ProgressEvent, Stage

EXIT_FAILED = 1
EXIT_CANCELLED = 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--model-host"]:  # the frozen app starts its hosts as itself
        from llm_desktop.core.host.child import main as host_main

        return host_main()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if args.self_test:
        from llm_desktop.ui.self_test import run_self_test

        return run_self_test()
    if args.command is None:
        return run_app(args)
    return args.handler(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-desktop", description="Manage local GGUF models and watch them load."
    )
    parser.add_argument("--version", action="version", version=f"llm-desktop {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--demo", action="store_true", help="with no models anywhere, create the demo model"
    )
    parser.add_argument(
        "--self-test", action="store_true", help="run the app end to end offscreen; exit 0 if ok"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = commands.add_parser("models", help="list the model catalog with fit verdicts")
    models.add_argument("--dir", action="append", default=[], metavar="DIR", help="a folder")
    models.add_argument("--json", action="store_true", help="one JSON document")
    models.add_argument(
        "--no-known", action="store_true", help="skip LM Studio, Hugging Face and Ollama folders"
    )
    models.add_argument("--n-ctx", type=int, default=None, help="context for the fit estimate")
    add_engine_arguments(models, "list the models of llama.cpp's router at URL instead")
    models.set_defaults(handler=command_models)

    load = commands.add_parser("load", help="load a model through a model host")
    load.add_argument(
        "path", help="a .gguf file (the first part of a split model); with --engine, the model's id"
    )
    load.add_argument("--json", action="store_true", help="one event per line; last: outcome")
    load.add_argument("--n-ctx", type=int, default=None, help="context length in tokens")
    load.add_argument("--gpu-layers", type=int, default=None, help="layers to offload")
    load.add_argument("--no-mmap", action="store_true", help="read weights into memory")
    load.add_argument("--force", action="store_true", help="load even if it does not fit")
    load.add_argument(
        "--prompt", help="after loading, chat: stream the reply to this message (chat template)"
    )
    load.add_argument("--system", help="with --prompt: the system prompt of the chat")
    load.add_argument(
        "--raw", action="store_true", help="with --prompt: raw completion (for base models)"
    )
    load.add_argument("--max-tokens", type=int, default=128)
    load.add_argument(
        "--stall-timeout", type=float, default=60.0, help="seconds without progress (default 60)"
    )
    add_engine_arguments(load, "load the model on llama.cpp's router at URL")
    load.set_defaults(handler=command_load)

    serve = commands.add_parser("serve", help="serve the llm.js page and SSE API (no window)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    serve.add_argument("--token", default=None, help="API token (default: a random one)")
    serve.add_argument("--dir", action="append", default=[], metavar="DIR", help="a folder")
    serve.add_argument("--no-known", action="store_true", help="skip other tools' folders")
    serve.add_argument(
        "--keep-alive",
        default="15m",
        help="unload a model loaded on request after this long idle: seconds or 5m, 1h; "
        "-1 keeps it (default 15m)",
    )
    serve.add_argument(
        "--max-loaded", type=int, default=None, help="at most this many models loaded at once"
    )
    serve.add_argument(
        "--memory-budget",
        default=None,
        help="bytes all loaded models may hold together, e.g. 12G or 800M (default: what fits)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="also serve test_llm_progress.html; with no models, write a demo model to try it",
    )
    add_engine_arguments(
        serve, "also list and load the models of llama.cpp's router at URL (repeatable)"
    )
    serve.set_defaults(handler=command_serve)

    router = commands.add_parser(
        "router",
        help="run llama.cpp's router server here, for other machines to add as a remote engine",
    )
    router.add_argument("--models-dir", required=True, metavar="DIR", help="its models' folder")
    router.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    router.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0: reachable from others)"
    )
    router.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help=f"the key clients must send (default: ${ENGINE_KEY_ENV}, else none)",
    )
    router.add_argument(
        "--models-max", type=int, default=None, metavar="N", help="at most N models loaded"
    )
    router.add_argument(
        "--sleep-idle-seconds",
        type=int,
        default=None,
        metavar="S",
        help="a model idle this long drops its weights until its next request",
    )
    router.add_argument(
        "--models-preset",
        default=None,
        metavar="INI",
        help="per-model settings (context size, GPU layers, …): llama.cpp's preset file",
    )
    router.set_defaults(handler=command_router)

    search = commands.add_parser("search", help="find GGUF models on the Hugging Face Hub")
    search.add_argument("text", nargs="?", default="", help="words in the repository's name")
    search.add_argument("--repo", help="list this repository's GGUF models with fit verdicts")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--json", action="store_true", help="one JSON document")
    search.set_defaults(handler=command_search)

    pull = commands.add_parser(
        "pull", help="download a model: org/repo[:QUANT or :FILE] from the hub, or a URL"
    )
    pull.add_argument("reference", help="org/repo, org/repo:Q4_K_M, org/repo:FILE or a URL")
    pull.add_argument("--dir", help="URL only: folder to put it in (default: the models folder)")
    pull.add_argument("--sha256", help="URL only: the checksum the file must have")
    pull.add_argument("--json", action="store_true", help="one event per line; last: outcome")
    pull.add_argument(
        "--stall-timeout", type=float, default=20.0, help="seconds without data before resuming"
    )
    pull.set_defaults(handler=command_pull)

    quantize = commands.add_parser(
        "quantize", help="convert a model to another type with llama.cpp's quantizer"
    )
    quantize.add_argument("path", help="a GGUF model of F32, F16 or BF16 weights")
    quantize.add_argument("type", help="Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, … (any case)")
    quantize.add_argument("--out", help="the new file (default: NAME-TYPE.gguf beside PATH)")
    quantize.add_argument("--json", action="store_true", help="one event per line; last: outcome")
    quantize.set_defaults(handler=command_quantize)

    demo = commands.add_parser("demo-model", help="write a small valid GGUF with random weights")
    demo.add_argument("path")
    demo.add_argument("--size-mb", type=float, default=0.0, help="approximate file size")
    demo.add_argument("--vocab", type=int, default=None, help="vocabulary size")
    demo.set_defaults(handler=command_demo_model)
    return parser


ENGINE_KEY_ENV = "LLM_DESKTOP_ENGINE_KEY"
CONNECT_TIMEOUT_S = 30.0  # the first answer of a router; each request has its own timeout


class _AddEngine(argparse.Action):
    """`--engine URL`: one more router to follow."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        engines = list(getattr(namespace, self.dest, None) or [])
        engines.append({"url": values, "key": None, "name": None})
        setattr(namespace, self.dest, engines)


class _EngineDetail(argparse.Action):
    """`--api-key KEY` and `--engine-name NAME`: of the `--engine` before them; given before
    any, of every engine that names none."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        engines = getattr(namespace, "engines", None) or []
        field = "key" if self.dest == "api_key" else "name"
        if engines:
            engines[-1][field] = values
        else:
            setattr(namespace, self.dest, values)


def add_engine_arguments(parser: argparse.ArgumentParser, engine_help: str) -> None:
    parser.add_argument(
        "--engine", dest="engines", action=_AddEngine, default=[], metavar="URL", help=engine_help
    )
    parser.add_argument(
        "--api-key",
        action=_EngineDetail,
        default=None,
        metavar="KEY",
        help=f"the router's API key (default: ${ENGINE_KEY_ENV}); never printed",
    )
    parser.add_argument(
        "--engine-name",
        action=_EngineDetail,
        default=None,
        metavar="NAME",
        help="the name its models show (default: its host and port)",
    )


def engine_sources(args: argparse.Namespace) -> list[tuple[object, str | None]]:
    """Each `--engine` as a checked source and its key (`--api-key`, else the environment's).
    `InvalidSource` names a bad name or address."""
    from llm_desktop.core.engine_sources import EngineSource, name_for_url

    if not args.engines and (args.api_key or args.engine_name):
        raise ValueError("--api-key and --engine-name go with --engine URL")
    sources = []
    for engine in args.engines:
        name = engine["name"] or args.engine_name or name_for_url(engine["url"])
        key = engine["key"] or args.api_key or os.environ.get(ENGINE_KEY_ENV) or None
        sources.append((EngineSource.checked(name, engine["url"]), key))
    return sources


def stray_engine_options(args: argparse.Namespace, command: str) -> bool:
    """Whether an engine's key or name came with no `--engine` (said, rather than ignored)."""
    try:
        engine_sources(args)
    except ValueError as exc:
        print(f"llm-desktop {command}: {exc}", file=sys.stderr)
        return True
    return False


def run_app(args: argparse.Namespace) -> int:
    try:
        from llm_desktop.ui.app import run
    except ImportError as exc:
        print(f"llm-desktop: the desktop app is not available ({exc})", file=sys.stderr)
        return EXIT_FAILED
    return run(args)


# -- models ------------------------------------------------------------------------------------


def command_models(args: argparse.Namespace) -> int:
    if args.engines:
        return command_remote_models(args)
    if stray_engine_options(args, "models"):
        return 2
    from llm_desktop.core import catalog, presenter
    from llm_desktop.core.library import ModelLibrary

    library = ModelLibrary(
        [Path(d) for d in args.dir] or None,
        include_known=not args.no_known,
        cache=catalog.MetadataCache(),
        n_ctx=args.n_ctx,
    )
    models = library.refresh()
    snapshot = library.hardware
    titles = presenter.titles(model.entry for model in models)
    views = [
        presenter.card_view(model.entry, verdict=model.verdict, title=titles[model.entry.id])
        for model in models
    ]
    if args.json:
        document = {
            "hardware": snapshot.to_dict(),
            "models": [
                {**model.to_dict(), "view": view.to_dict()}
                for model, view in zip(models, views, strict=True)
            ],
        }
        print(json.dumps(document, indent=2))
        return 0
    print(presenter.library_summary(views, snapshot))
    if not views:
        print("No models found. Try: llm-desktop demo-model ~/models/demo.gguf")
        return 0
    for view in views:
        print(f"\n{view.title}  [{view.model}]")
        print(f"  {view.path}")
        print(f"  {view.facts}")
        if view.fit:
            print(f"  {view.fit.text}: {view.fit.summary}")
    return 0


# -- remote engines: llama.cpp's router on another machine -------------------------------------


def open_remote(args: argparse.Namespace, command: str):
    """The one `--engine` of `models` or `load`, connected: (engine, None), or (None, exit code)
    with the reason printed. Its first answer decides: the CLI does not retry."""
    from llm_desktop.core.remote_engine import RemoteEngine
    from llm_desktop.core.router_client import RouterClient

    if len(args.engines) > 1:
        print(f"llm-desktop {command}: one --engine at a time", file=sys.stderr)
        return None, 2
    try:
        ((source, key),) = engine_sources(args)
    except ValueError as exc:
        print(f"llm-desktop {command}: {exc}", file=sys.stderr)
        return None, 2
    answered = threading.Event()

    def changed(remote: RemoteEngine) -> None:
        if remote.status().state != "connecting":
            answered.set()

    remote = RemoteEngine(RouterClient(source.name, source.url, key), on_change=changed)
    remote.start()
    try:
        answered.wait(CONNECT_TIMEOUT_S)
    except KeyboardInterrupt:
        remote.shutdown()
        return None, EXIT_CANCELLED
    status = remote.status()
    if status.state == "connected":
        return remote, None
    remote.shutdown()
    from llm_desktop.core import presenter

    words = status.error.message if status.error else presenter.connection_line(status)
    print(f"llm-desktop {command}: {words}", file=sys.stderr)
    return None, EXIT_FAILED


def command_remote_models(args: argparse.Namespace) -> int:
    """A router's models as the presenter words their cards, under its connection line."""
    from llm_desktop.core import presenter
    from llm_desktop.core.library import LibraryModel

    if args.dir or args.no_known or args.n_ctx is not None:
        print(
            "llm-desktop models: --dir, --no-known and --n-ctx are for this machine's models, "
            "not a router's",
            file=sys.stderr,
        )
        return 2
    remote, failed = open_remote(args, "models")
    if remote is None:
        return failed
    try:
        status = remote.status()
        entries = remote.entries()
        titles = presenter.titles(entries)
        views = [
            presenter.card_view(
                entry, remote.state(entry.id), title=titles[entry.id], connection=status
            )
            for entry in entries
        ]
    finally:
        remote.shutdown()
    if args.json:
        document = {
            "engine": {**status.to_dict(), "line": presenter.connection_line(status)},
            "models": [
                # The shape of this machine's listing; a remote model has no fit verdict.
                {**LibraryModel(entry, None).to_dict(), "view": view.to_dict()}
                for entry, view in zip(entries, views, strict=True)
            ],
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"{status.name}: {presenter.connection_line(status)}")
    for view in views:
        print(f"\n{presenter.progress_line(view)}")
        print(f"  {view.facts}")
    return 0


class RemoteCancel:
    """Ctrl-C during a router load. The router can stop a model only once it is loading, so a
    cancel asked for before its first frame is sent when that frame comes."""

    def __init__(self, remote, key: str) -> None:
        self.remote = remote
        self.key = key
        self.wanted = False
        self.sent = False

    def __call__(self) -> None:
        self.wanted = True
        self.send()

    def send(self) -> None:
        if self.wanted and not self.sent:
            self.sent = self.remote.cancel(self.key)


def remote_presentation(remote, router_id: str):
    """The presenter's card view and notice of a router load's event, with the model's facts
    and the connection as they are when the event comes."""
    from llm_desktop.core import presenter
    from llm_desktop.core.remote_engine import RouterModel, model_entry

    def present(event: ProgressEvent):
        entry = next((entry for entry in remote.entries() if entry.id == event.model), None)
        if entry is None:
            entry = model_entry(remote.name, RouterModel(router_id, event.model))
        view = presenter.card_view(entry, event, connection=remote.status())
        return view, presenter.notice_for(view, event), presenter.progress_line(view)

    return present


def command_remote_load(args: argparse.Namespace) -> int:
    """Load a router's model (by the router's id), rendering its events as a local load's;
    Ctrl-C cancels it there."""
    from llm_desktop.core.remote_engine import remote_key

    local_only = {
        "--n-ctx": args.n_ctx is not None,
        "--gpu-layers": args.gpu_layers is not None,
        "--no-mmap": args.no_mmap,
        "--force": args.force,
    }
    refused = [flag for flag, given in local_only.items() if given]
    if refused:
        print(
            f"llm-desktop load: a router takes no per-load options ({', '.join(refused)}): "
            "set them on its command line or in its --models-preset file",
            file=sys.stderr,
        )
        return 2
    if args.prompt or args.system or args.raw:
        print(
            "llm-desktop load: --prompt is for this machine's models; a router answers on its "
            "own OpenAI API (URL/v1)",
            file=sys.stderr,
        )
        return 2
    remote, failed = open_remote(args, "load")
    if remote is None:
        return failed
    router_id = args.path
    key = remote_key(remote.name, router_id)
    render = ViewRenderer(
        remote_presentation(remote, router_id),
        args.json,
        sys.stdout if args.json else sys.stderr,
    )
    try:
        with remote.bus.stream(key) as stream:
            latest = remote.state(key)
            if latest is not None and latest.stage in (Stage.COMPLETE, Stage.SLEEPING):
                render(latest)  # loaded already (asleep: its next request wakes it)
                return 0
            cancel = RemoteCancel(remote, key)
            remote.load(router_id)

            def show(event: ProgressEvent) -> None:
                render(event)
                cancel.send()

            final = _follow(cancel, stream, show)
    finally:
        remote.shutdown()
    if final is not None and final.stage is Stage.COMPLETE:
        return 0
    if final is not None and final.stage is Stage.CANCELLED:
        return EXIT_CANCELLED
    return EXIT_FAILED


# -- load ------------------------------------------------------------------------------------


def command_load(args: argparse.Namespace) -> int:
    if args.engines:
        return command_remote_load(args)
    if stray_engine_options(args, "load"):
        return 2
    # First of all, the host: Python and llama.cpp start there while this process imports the
    # engine and reads the model's header.
    from llm_desktop.core.host.spawn import spawn

    early_host = spawn()
    from llm_desktop.core import catalog
    from llm_desktop.core.engine import Engine
    from llm_desktop.core.options import InvalidOptions, LoadOptions
    from llm_desktop.core.timings import StageTimes

    if args.prompt and args.json:
        print("llm-desktop load: --prompt cannot be combined with --json", file=sys.stderr)
        return 2
    if (args.system or args.raw) and not args.prompt:
        print("llm-desktop load: --system and --raw need --prompt", file=sys.stderr)
        return 2
    if args.system and args.raw:
        print("llm-desktop load: a raw completion has no system prompt", file=sys.stderr)
        return 2
    try:
        options = LoadOptions.parse(
            {
                "n_ctx": args.n_ctx,
                "gpu_layers": args.gpu_layers,
                "use_mmap": not args.no_mmap,
                "force": args.force,
            }
        )
    except InvalidOptions as exc:
        print(f"llm-desktop load: {exc}", file=sys.stderr)
        return 2
    times = StageTimes.default()
    with Engine(warm_hosts=0, stall_timeout_s=args.stall_timeout, stage_times=times) as engine:
        engine.prestart_host(early_host)
        entries = catalog.scan([args.path], include_known=False)
        entry = entries[0] if entries else None
        model = entry.id if entry else engine.model_id(args.path)
        render = ViewRenderer(
            load_presentation(entry, options), args.json, sys.stdout if args.json else sys.stderr
        )
        with engine.events(model) as stream:
            engine.load(args.path, options, model=model)
            final = _follow(lambda: engine.cancel(model), stream, render)
        if final is None or final.stage is not Stage.COMPLETE:
            if final is not None and final.stage is Stage.CANCELLED:
                return EXIT_CANCELLED
            return EXIT_FAILED
        if args.prompt:
            return _reply(engine, model, args)
    return 0


def _reply(engine, model: str, args: argparse.Namespace) -> int:
    """Stream the loaded model's reply to `--prompt`: a chat in the model's own template (the
    path of /v1/chat/completions), or with `--raw` the prompt as it is. Ctrl-C stops it."""
    from llm_desktop.core.events import ModelError
    from llm_desktop.core.generation import CHAT, COMPLETION, ReplyRequest

    if args.raw:
        request = ReplyRequest(mode=COMPLETION, prompt=args.prompt, max_tokens=args.max_tokens)
    else:
        turns = ((("system", args.system),) if args.system else ()) + (("user", args.prompt),)
        request = ReplyRequest(mode=CHAT, messages=turns, max_tokens=args.max_tokens)
    try:
        for piece in engine.generate(model, request):
            print(piece, end="", flush=True)
    except KeyboardInterrupt:
        print()
        return EXIT_CANCELLED
    except ModelError as exc:
        print()
        print(f"llm-desktop load: the reply failed: {exc.info.message}", file=sys.stderr)
        return EXIT_FAILED
    print()
    return 0


def _follow(cancel, stream, render) -> ProgressEvent | None:
    """Render events until the operation ends; Ctrl-C cancels it and waits for `cancelled`."""
    import signal

    # A handler, not `except KeyboardInterrupt`: the interrupt may land anywhere in the loop
    # (inside a render, say), and a cancel must never lose the event being shown.
    previous = signal.signal(signal.SIGINT, lambda *_: cancel())
    try:
        while True:
            event = stream.get(timeout=0.2)
            if event is None:
                continue
            render(event)
            if event.is_terminal:
                return event
    finally:
        signal.signal(signal.SIGINT, previous)


def load_presentation(entry, options):
    """The presenter's card view and notice of a load event (none for a file not in a catalog)."""
    from llm_desktop.core import presenter

    def present(event: ProgressEvent):
        if entry is None:
            return None, None, f"{event.stage}: {event.message}"
        view = presenter.card_view(entry, event, options=options)
        return view, presenter.notice_for(view, event), presenter.progress_line(view)

    return present


def transfer_presentation(event: ProgressEvent):
    """The presenter's view and notice of a download, upload or quantize event."""
    from llm_desktop.core import transfer_presenter

    view = transfer_presenter.transfer_view(event)
    notice = transfer_presenter.transfer_notice(view, event)
    return view, notice, transfer_presenter.transfer_line(view)


class ViewRenderer:
    """The presenter's view of each event: one JSON line each (`--json`, the server's payload),
    a redrawn line with a bar on a terminal, or one line per stage elsewhere."""

    def __init__(self, present, as_json: bool, stream) -> None:
        self.present = present
        self.as_json = as_json
        self.stream = stream
        self.tty = stream.isatty()
        self.last_stage: Stage | None = None

    def __call__(self, event: ProgressEvent) -> None:
        view, notice, line = self.present(event)
        if self.as_json:
            data = event.to_dict()
            data["view"] = view.to_dict() if view else None
            data["notice"] = notice.to_dict() if notice else None
            print(json.dumps(data, separators=(",", ":")), file=self.stream, flush=True)
            return
        if self.tty:
            columns = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r\x1b[2K" + with_bar(line, event.pct, columns))
            if event.is_terminal:
                self.stream.write("\n")
        elif event.stage is not self.last_stage or event.is_terminal:
            self.stream.write(line + "\n")
        if notice is not None and not self.tty:
            self.stream.write(f"{notice.title or notice.kind_word}: {notice.text}\n")
        self.last_stage = event.stage
        if event.error and event.error.detail and event.stage is Stage.FAILED:
            for detail in event.error.detail[-5:]:
                self.stream.write(f"    {detail}\n")
        self.stream.flush()


def with_bar(line: str, pct: float, columns: int) -> str:
    """A text bar before `line`, all within the terminal's width."""
    width = max(10, min(30, columns - len(line) - 4))
    filled = int(width * pct / 100)
    return ("[" + "#" * filled + "." * (width - filled) + "] " + line)[: max(20, columns - 1)]


# -- getting models ------------------------------------------------------------------------------


def command_search(args: argparse.Namespace) -> int:
    """Prints the hub presenter's views: the words of the app's and the page's Get models."""
    from llm_desktop.core import hf_hub, hub_presenter
    from llm_desktop.core.events import ModelError

    try:
        if args.repo:
            listing = hf_hub.list_models(args.repo)
            rows, fits = _with_fit(listing)
            if args.json:
                print(json.dumps({"listing": listing.to_dict(), "fit": rows}, indent=2))
                return 0
            repo = hub_presenter.repo_view(listing, hub_presenter.model_views(listing, fits))
            print(f"{repo.title} · {repo.summary}")
            if repo.gated_hint:
                print(f"  {repo.gated_hint}")
            for model in repo.models:
                fit = f"{model.fit.text}: {model.fit.summary}" if model.fit else ""
                chosen = f"  ({model.recommended_label})" if model.recommended else ""
                print(f"  {model.quantization:<10} {model.facts:>9}  {fit}  {model.file}{chosen}")
            return 0
        hits = hf_hub.search(args.text, limit=args.limit)
    except ModelError as exc:
        print(f"llm-desktop search: {exc.info.message}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=2))
        return 0
    search = hub_presenter.search_view(args.text, hits)
    print(search.summary)
    for hit in search.hits:
        gated = f"  ({hit.gated_label})" if hit.gated else ""
        print(f"  {hit.title}  {hit.facts}{gated}")
    return 0


def _with_fit(listing) -> tuple[list[dict], dict]:
    """Each model's fit from its remote header, read with Range requests: the JSON rows, and
    the badges by download key."""
    from llm_desktop.core import hub_presenter
    from llm_desktop.core.remote_fit import remote_fit

    rows, badges = [], {}
    for model in listing.models:
        key = hub_presenter.download_key(model)
        try:
            verdict = remote_fit(model)
            rows.append({"fit": verdict.summary, "verdict": verdict.to_dict()})
            badges[key] = hub_presenter.fit_of(verdict)
        except Exception as exc:  # one unreadable header must not hide the others
            reason = hub_presenter.fit_failure_text(exc)
            rows.append({"fit": reason, "verdict": None})
            badges[key] = hub_presenter.fit_unknown(reason)
    return rows, badges


def command_pull(args: argparse.Namespace) -> int:
    from llm_desktop.core.bus import EventBus
    from llm_desktop.core.download import DownloadJob, DownloadSpec
    from llm_desktop.core.transfer import RetryPolicy

    spec = DownloadSpec(args.reference, dest_dir=args.dir, sha256=args.sha256)
    if (args.dir or args.sha256) and not spec.is_url:
        print(
            "llm-desktop pull: --dir and --sha256 are for direct links; hub models go to the "
            "Hugging Face cache and are checked against the hub's own sha256",
            file=sys.stderr,
        )
        return 2
    bus = EventBus()
    job = DownloadJob(spec, bus, policy=RetryPolicy(stall_s=args.stall_timeout))
    render = ViewRenderer(transfer_presentation, args.json, sys.stdout if args.json else sys.stderr)
    with bus.stream(spec.key) as stream:
        job.start()
        final = _follow(lambda: job.cancel(keep_partial=True), stream, render)
    kept = final is not None and final.stage is Stage.CANCELLED and final.bytes_done
    if kept and not args.json:
        print("Run the same command again to resume.", file=sys.stderr)
    return _exit_code(final, args.json)


def command_quantize(args: argparse.Namespace) -> int:
    from llm_desktop.core.bus import EventBus
    from llm_desktop.core.quantize import QuantizeJob

    bus = EventBus()
    job = QuantizeJob(bus, args.path, args.type, args.out)
    render = ViewRenderer(transfer_presentation, args.json, sys.stdout if args.json else sys.stderr)
    with bus.stream(job.key) as stream:
        job.start()
        final = _follow(lambda: threading.Thread(target=job.cancel).start(), stream, render)
    return _exit_code(final, args.json)


def _exit_code(final: ProgressEvent | None, as_json: bool) -> int:
    """0 with the new file's path printed, 130 when cancelled, 1 when it failed."""
    if final is not None and final.stage is Stage.COMPLETE:
        if not as_json:
            print(final.result_path)
        return 0
    if final is not None and final.stage is Stage.CANCELLED:
        return EXIT_CANCELLED
    return EXIT_FAILED


# -- serve ---------------------------------------------------------------------------------------


def command_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from llm_desktop.core import catalog
    from llm_desktop.core.engine import Engine
    from llm_desktop.core.library import ModelLibrary, default_hidden_path
    from llm_desktop.core.presenter import connection_line, serving_policy_line
    from llm_desktop.core.serving_presenter import api_lines
    from llm_desktop.core.timings import StageTimes
    from llm_desktop.server.app import ServerConfig
    from llm_desktop.server.runner import ServerThread

    try:
        policy = serving_policy(args)
        sources = engine_sources(args)
    except ValueError as exc:
        print(f"llm-desktop serve: {exc}", file=sys.stderr)
        return 2
    config = ServerConfig(hosts=(args.host,), dev=args.dev, serving=policy)
    if args.token:
        config.token = args.token
    library = ModelLibrary(
        [Path(d) for d in args.dir] or None,
        include_known=not args.no_known,
        cache=catalog.MetadataCache(),
        hidden_path=default_hidden_path(),
    )
    if args.dev and not library.refresh():
        from llm_desktop.core.demo import spec_for_size, write_demo_model

        folder = Path(args.dir[0]) if args.dir else catalog.default_models_dir()
        path = write_demo_model(folder / "llm-desktop-demo.gguf", spec_for_size(64))
        print(f"no models found: wrote the demo model {path}")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Engine(warm_hosts=1, stage_times=StageTimes.default()) as local:
        # With --engine, the server drives this machine's engine and the routers as one: their
        # models are listed, loaded and cancelled from the page like this machine's.
        engine = remote_engines(local, sources) if sources else local
        try:
            server = ServerThread(engine, library, host=args.host, port=args.port, config=config)
        except OSError as exc:
            print(f"llm-desktop serve: cannot listen on {args.host}:{args.port}: {exc}")
            if engine is not local:
                close_remotes(engine)
            return EXIT_FAILED
        server.start()
        # Downloads, uploads and quantizing from the page run in the server's own transfers
        # service (new files in the first --dir, hub downloads in the Hugging Face cache);
        # downloads an earlier run left unfinished carry on.
        server.state.transfers.resume_pending()
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: listening on {args.host}, reachable beyond this machine")
        print(f"llm-desktop serving on {server.base_url}")
        print(f"open: {server.page_url}")
        for line in api_lines(server.api_url, config.token):
            print(line)
        print(
            serving_policy_line(policy.keep_alive_s, policy.max_loaded, policy.memory_budget),
            flush=True,
        )
        if engine is not local:
            for status in first_answers(engine):
                print(f"engine {status.name}: {connection_line(status)}", flush=True)
        stop.wait()
        server.stop()
        if engine is not local:
            close_remotes(engine)
    return 0


def remote_engines(local, sources):
    """This machine's engine and the `--engine` routers as one `EngineSet`. Their keys are for
    this run: nothing is added to the window's list of engines or to the keyring."""
    from llm_desktop.core.engines import EngineSet

    engines = EngineSet(local)
    for source, key in sources:
        engines.add_source(source, key)
    return engines


def close_remotes(engines) -> None:
    """Stop following the routers (their models stay as they are there)."""
    for remote in engines.remotes():
        engines.remove_source(remote.name, forget=False)


def first_answers(engines, timeout: float = CONNECT_TIMEOUT_S):
    """Each router's connection once it has answered (connected or refused), or as it stands
    after `timeout`; the server keeps retrying those that did not connect."""
    changed = threading.Event()
    engines.on_change(changed.set)
    deadline = time.monotonic() + timeout
    while True:
        statuses = engines.statuses()
        left = deadline - time.monotonic()
        if all(status.state != "connecting" for status in statuses) or left <= 0:
            return statuses
        changed.wait(left)
        changed.clear()


def serving_policy(args: argparse.Namespace):
    """`serve`'s keep-alive and eviction options as a policy; ValueError names a bad one."""
    from llm_desktop.core.serving import ServingPolicy, parse_keep_alive, parse_size

    if args.max_loaded is not None and args.max_loaded < 1:
        raise ValueError("--max-loaded must be 1 or more")
    return ServingPolicy(
        keep_alive_s=parse_keep_alive(args.keep_alive),
        max_loaded=args.max_loaded,
        memory_budget=parse_size(args.memory_budget) if args.memory_budget else None,
    )


# -- router ------------------------------------------------------------------------------------


def command_router(args: argparse.Namespace) -> int:
    """Become llama.cpp's router (`llama-server` with a models folder and no model): its
    signals, output and exit code are then the router's own. The key goes in its environment
    (`LLAMA_API_KEY`), not its command line, where any user of the machine could read it."""
    import socket

    from llm_desktop.core.router_binary import RouterNotInstalled, router_binary, router_command

    try:
        binary = router_binary()
    except RouterNotInstalled as exc:
        print(f"llm-desktop router: {exc}", file=sys.stderr)
        return EXIT_FAILED
    folder = Path(args.models_dir).expanduser()
    if not folder.is_dir():
        print(f"llm-desktop router: no such folder: {folder}", file=sys.stderr)
        return 2
    if args.models_preset and not Path(args.models_preset).is_file():
        print(f"llm-desktop router: no such preset file: {args.models_preset}", file=sys.stderr)
        return 2
    command = router_command(
        folder,
        port=args.port,
        host=args.host,
        models_max=args.models_max,
        sleep_idle_s=args.sleep_idle_seconds,
        preset=args.models_preset,
        binary=binary,
    )
    key = args.api_key or os.environ.get(ENGINE_KEY_ENV) or None
    environment = dict(os.environ)
    if key:
        environment["LLAMA_API_KEY"] = key
    # llama.cpp's own ways of setting a key count too.
    guarded = any(environment.get(name) for name in ("LLAMA_API_KEY", "LLAMA_ARG_API_KEY_FILE"))
    everywhere = args.host in ("0.0.0.0", "::", "")
    host = socket.gethostname() if everywhere else args.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{args.port}"
    print(f"llama.cpp's router, models from {folder}: {url}")
    with_key = " --api-key KEY" if guarded else ""
    print(f"add it: llm-desktop models --engine {url}{with_key}, or the window's Engines tab")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not guarded:
        print(
            f"warning: listening on {args.host} with no API key: anyone who reaches this port "
            "can load and run its models"
        )
    sys.stdout.flush()
    os.execve(command[0], command, environment)
    return EXIT_FAILED  # not reached: exec replaced this process


# -- demo-model --------------------------------------------------------------------------------


def command_demo_model(args: argparse.Namespace) -> int:
    from llm_desktop.core.demo import spec_for_size, write_demo_model

    overrides = {"vocab": args.vocab} if args.vocab else {}
    path = write_demo_model(os.path.expanduser(args.path), spec_for_size(args.size_mb, **overrides))
    size = path.stat().st_size
    print(f"Wrote {path} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
