"""The app's controller: the one Qt object that owns the engine, the library, the model store,
the in-app server, background jobs and settings. Views ask it to act and render what it says.

Data flows one way: engine → bus → `EngineBridge` (GUI thread) → `ModelStore` (Qt-free, decides
views and notices through the presenter) → signals here → the window's cards and toasts. Every
background task (a scan, an import, the demo model, a reply, the server itself) is a `Job`, so
every failure reaches a person as a notice.

Getting models goes the same way: one `Transfers` (downloads, quantizing) publishes on the
engine's bus, so its events reach the store through the same bridge and come out as transfer
views (`transfer_changed`) and notices. Commands to it run on one serial worker thread, in the
order given (they write the restart list and delete partial files); a new file it reports is
listed by a fresh scan.

Serving: one `ModelServing` (load on request, keep-alive, eviction, the request log) is shared
by the web panel's server, the OpenAI-compatible API server the Serving tab starts and stops,
and Try it, so a chat in the window keeps its model alive and is listed with the API's
requests. Its policy lives in the settings (`serving/…`). It serves this machine's models only:
a remote engine's router serves its own API.

Remote engines: the engine is an `EngineSet` (this machine's engine plus llama.cpp routers on
other machines), so a remote card's load, cancel and unload go where its model is, and its
events come on the same bus. The set says when a source connects, drops or lists other models
(on its own threads); that comes here as a queued signal, so the cards' source chips and the
Engines tab follow it in the GUI thread, and a changed list of remote models is read by a
library scan on a job. Adding and removing a source (the keyring, the sources file, stopping a
connection's thread) run on a worker thread of their own, in order.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import platformdirs
from PySide6.QtCore import QObject, QSettings, Signal

from llm_desktop.core import catalog, presenter, sources_presenter
from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.engine_api import EngineApi
from llm_desktop.core.engine_sources import EngineSource, SourceRegistry
from llm_desktop.core.engines import EngineSet
from llm_desktop.core.events import ModelError, ModelState, ProgressEvent
from llm_desktop.core.generation import COMPLETION, ReplyRequest, raise_for
from llm_desktop.core.library import LibraryModel, ModelLibrary, default_hidden_path
from llm_desktop.core.model_locations import APP_NAME
from llm_desktop.core.model_names import model_id as file_model_id
from llm_desktop.core.options import InvalidOptions, LoadOptions
from llm_desktop.core.presenter import ActionId, CardView, Notice, NoticeKind
from llm_desktop.core.quantize import default_output_path
from llm_desktop.core.remote_engine import ConnectionStatus
from llm_desktop.core.serving import (
    DEFAULT_KEEP_ALIVE_S,
    ModelServing,
    RequestRecord,
    ServingPolicy,
)
from llm_desktop.core.serving_presenter import (
    SERVER_RUNNING,
    SERVER_STARTING,
    SERVER_STOPPED,
    SERVER_STOPPING,
    SERVING_DEFAULT,
    api_server_notice,
    start_failure,
    stopped_unexpectedly,
)
from llm_desktop.core.store import ModelStore, TransferChange
from llm_desktop.core.transfer_presenter import TransferView
from llm_desktop.core.transfers import Transfers, is_transfer_key
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from llm_desktop.workers.engine_bridge import EngineBridge
from llm_desktop.workers.jobs import (
    Job,
    JobContext,
    JobRunner,
    copy_with_progress,
    unique_destination,
)
from llm_desktop.workers.serial_worker import SerialWorker

log = logging.getLogger(__name__)

DEMO_MODEL_MB = 64
DEMO_MODEL_NAME = "llm-desktop-demo.gguf"
BUSY_STATES = (ModelState.LOADING, ModelState.LOADED, ModelState.UNLOADING)
DEFAULT_API_PORT = 8765  # as `llm-desktop serve`
APP_CLIENT = "app"  # Try it's replies: the window's Stop stops this client's replies


def default_state_dir() -> Path:
    """Where the restart list of unfinished downloads is kept."""
    return platformdirs.user_data_path(APP_NAME)


class AppController(QObject):
    """Signals:
    library_changed(list): the cards to show, as `CardView`s in library order.
    view_changed(object): one model's new `CardView`.
    options_changed(str, object): a model id and the `LoadOptions` now in force for it.
    notice(object): a `Notice` (toast) to show.
    loaded_changed(dict): model id → title of the loaded models.
    details_requested(object): the `CardView` whose error details a person asked for.
    try_requested(str): a model id whose prompt panel a person asked for.
    import_started(str, object): a file name and the `Job` copying it.
    status_message(str): a line for the status bar.
    transfer_changed(object): a download's or a quantize job's new `TransferView`.
    transfer_removed(str): the key of a transfer taken off the list.
    reveal_model(str): a model id whose card a person should see (a new model being loaded).
    model_added(str, str): the path and model id of a file a transfer finished (emitted from
        the transfer's thread; handled in the GUI thread).
    api_server_changed(str): the API server's new state (serving_presenter's SERVER_ names).
    api_server_failed(str): why the API server could not start, or stopped on its own.
    request_logged(object): a finished `RequestRecord` (an API request or a Try it reply),
        emitted from the request's thread, handled in the GUI thread.
    sources_changed(list): the remote engines' `ConnectionStatus`es, after any change (a
        source added or removed, connected or dropped, its models listed).
    source_added(object, bool, bool, bool): an `EngineSource` added, whether an API key came
        with it, whether that key is kept past this run, and whether it replaced one of the
        same name (emitted from the sources' worker thread).
    source_removed(str): the name of a source removed.
    source_failed(str, str): a source's name and why adding or removing it failed.
    """

    library_changed = Signal(list)
    view_changed = Signal(object)
    options_changed = Signal(str, object)
    notice = Signal(object)
    loaded_changed = Signal(dict)
    details_requested = Signal(object)
    try_requested = Signal(str)
    import_started = Signal(str, object)
    status_message = Signal(str)
    transfer_changed = Signal(object)
    transfer_removed = Signal(str)
    reveal_model = Signal(str)
    model_added = Signal(str, str)
    api_server_changed = Signal(str)
    api_server_failed = Signal(str)
    request_logged = Signal(object)
    sources_changed = Signal(list)
    source_added = Signal(object, bool, bool, bool)
    source_removed = Signal(str)
    source_failed = Signal(str, str)
    _engines_changed = Signal()  # from the engines' threads: a queued call to this thread

    def __init__(
        self,
        engine: EngineApi | EngineSet,
        *,
        settings: QSettings,
        models_dir: Path,
        include_known: bool = True,
        remember_removals: bool = False,
        state_dir: Path | None = None,
        sources: SourceRegistry | None = None,
        parent: QObject | None = None,
    ):
        """`engine`: an `EngineSet`, or this machine's engine alone (then a set is made
        around it, following the sources of `sources`; None: none, and any added later only
        for this run)."""
        super().__init__(parent)
        if not isinstance(engine, EngineSet):
            engine = EngineSet(engine, registry=sources)
        self.engines: EngineSet = engine
        self.engine = engine  # every operation goes through the set: a remote card's too
        self.settings = settings
        self.models_dir = models_dir
        self.store = ModelStore()
        # One library for the cards and the in-app server: the same ids, the same scan.
        self.library = ModelLibrary(
            None,
            include_known=include_known,
            cache=catalog.MetadataCache(),
            hidden_path=default_hidden_path() if remember_removals else None,
        )
        self.library.remote_entries = engine.remote_entries
        self.server: ServerThread | None = None
        self.jobs = JobRunner(self)
        self.jobs.job_failed.connect(self._job_failed)
        self.bridge = EngineBridge(engine, self)
        self.bridge.event_received.connect(self.apply_event)
        self._closed = False
        # Getting models: one Transfers on the engine's bus; its commands on one worker thread.
        self.transfers = Transfers(
            engine.bus,
            models_dir=models_dir,
            state_dir=state_dir or default_state_dir(),
            on_model_added=self._transfer_added_model,
        )
        self.commands = SerialWorker("transfer-commands", self)
        self.commands.failed.connect(self._job_failed)
        self.model_added.connect(self._model_added)
        self._new_files: dict[str, str] = {}  # new file's path -> its model id
        self._expected: dict[str, str] = {}  # model id -> path, until a scan lists it
        self._scan_extra: list[Path] = []  # folders of new files no library folder covers
        self._pending_load: str | None = None  # a new model to load once a scan lists it
        self._server_stale = False  # a new file the in-app server's page does not list yet
        # One serving for every surface: the page's server, the API server, Try it.
        self.serving = ModelServing(
            engine, self._entry_of, self.serving_policy(), options=self.store.options
        )
        self.serving.on_request(self._request_logged)
        self.api_server: ServerThread | None = None
        self.api_state = SERVER_STOPPED
        self._api_servers: list[ServerThread] = []  # the API job's server, once it is bound
        self._api_auto_start = False
        self._reply_stops: dict[str, threading.Event] = {}
        # Remote engines: their changes, coalesced into one queued call at a time.
        self._source_commands: SerialWorker | None = None  # made on first add or remove
        self._remote_listed: list = []  # the remote models the last scan was asked for
        self._change_lock = threading.Lock()
        self._change_pending = False
        self._engines_changed.connect(self._apply_engines_change)
        engine.on_change(self._engines_listener)
        if engine.remotes():
            self._apply_engines_change()

    # -- the library ---------------------------------------------------------------------------

    def library_folders(self) -> list[Path]:
        extra = self.settings.value("library/folders", []) or []
        if isinstance(extra, str):
            extra = [extra]
        return [self.models_dir, *(Path(folder) for folder in extra)]

    def scan_folders(self) -> list[Path]:
        """The folders a scan reads: the library's, and those of files transfers added there."""
        folders = self.library_folders()
        return folders + [folder for folder in self._scan_extra if folder not in folders]

    def refresh_library(self) -> Job:
        self.library.folders = self.scan_folders()
        library = self.library
        job = Job("scan", lambda _context: library.refresh())
        job.succeeded.connect(self._library_scanned)
        return self.jobs.start(job)

    def _library_scanned(self, models: list[LibraryModel]) -> None:
        if self._closed:
            return  # a scan that ended as the window closed starts nothing more
        for model in models:
            self.store.set_options(model.entry.id, self.saved_options(model.entry.id))
            if (own := self.keep_alive_setting(model.entry.id)) != SERVING_DEFAULT:
                self.serving.set_keep_alive(model.entry.id, own)
        for model in models:  # a card that appears mid-load shows where the load is
            if (last := self.engine.state(model.entry.id)) is not None:
                self.store.apply(last)
        views = self.store.set_library(models, keep=self._still_busy())
        self.library_changed.emit(views)
        self.status_message.emit(presenter.library_summary(views, self.library.hardware))
        self._after_scan({model.entry.id for model in models})

    def _after_scan(self, listed: set[str]) -> None:
        """New files a scan did not list (a hub download while the hub cache is not scanned):
        their folders join this run's scan. A new model waiting to load loads."""
        missing = [path for model_id, path in self._expected.items() if model_id not in listed]
        self._expected = {m: p for m, p in self._expected.items() if m not in listed}
        folders = {Path(path).parent for path in missing} - set(self.scan_folders())
        if folders:
            self._scan_extra.extend(sorted(folders))
            self.refresh_library()
            return
        if self._server_stale and self.server is not None:
            # The page lists the new files too (its scan, of the same folders: off this thread).
            self.commands.submit("list new models", self.server.state.refresh_now)
        self._server_stale = False
        if self._pending_load is not None and self._pending_load in listed:
            model_id, self._pending_load = self._pending_load, None
            self._load_new(model_id)

    def _still_busy(self) -> dict[str, str]:
        """The busy models a scan keeps listing though it did not list them (a loaded model
        whose file went away); a removed engine's models go with it."""
        followed = {remote.name for remote in self.engines.remotes()}
        busy = self.store.in_state(*BUSY_STATES)
        return {
            model_id: title
            for model_id, title in busy.items()
            if (model := self.store.model(model_id)) is None
            or model.entry.engine is None
            or model.entry.engine in followed
        }

    def add_library_folder(self, folder: Path) -> None:
        folders = [str(path) for path in self.library_folders()[1:]]
        if str(folder) not in folders:
            folders.append(str(folder))
            self.settings.setValue("library/folders", folders)
        self.refresh_library()

    def quantize_offer(self, model_id: str):
        """The card menu's "Quantize to…" for this model, or None where it makes no sense."""
        menu = self.card_menu(model_id)
        return menu.quantize if menu is not None else None

    def card_menu(self, model_id: str) -> sources_presenter.CardMenu | None:
        """What the model's card offers besides its buttons (settings, "Quantize to…")."""
        model = self.store.model(model_id)
        view = self.store.view(model_id)
        if model is None or view is None:
            return None
        return sources_presenter.card_menu(model.entry, view.title)

    # -- remote engines --------------------------------------------------------------------------

    def _engines_listener(self) -> None:
        """Called on an engine's thread: one queued call to the GUI thread at a time."""
        if self._closed:
            return
        with self._change_lock:
            if self._change_pending:
                return
            self._change_pending = True
        self._engines_changed.emit()

    def _apply_engines_change(self) -> None:
        with self._change_lock:
            self._change_pending = False
        if self._closed:
            return
        statuses = self.engines.statuses()
        for view in self.store.set_connections(statuses):
            self.view_changed.emit(view)
        self.sources_changed.emit(statuses)
        listed = self.engines.remote_entries()
        if listed != self._remote_listed:
            self._remote_listed = listed
            self.refresh_library()  # reads the same lists, with the folders, off this thread

    def connections(self) -> list[ConnectionStatus]:
        """The remote engines' connections, as the cards show them."""
        return self.store.connections()

    @property
    def keys_persistent(self) -> bool:
        """Whether an API key can be kept past this run (a system keyring is there)."""
        keys = self.engines.keys
        return keys is not None and keys.persistent

    def add_source(self, source: EngineSource, api_key: str | None = None) -> None:
        """Follow a router (a checked `EngineSource`); `source_added` or `source_failed` says
        how it went. The keyring and the sources file are written off the GUI thread."""
        engines = self.engines

        def add() -> None:
            replaced = any(remote.name == source.name for remote in engines.remotes())
            try:
                kept = engines.add_source(source, api_key or None)
            except Exception as exc:
                log.exception("adding the engine %s failed", source.name)
                message = sources_presenter.add_failure(source.name, exc)
                self.source_failed.emit(source.name, message)
                return
            self.source_added.emit(source, bool(api_key), kept, replaced)

        self._sources_worker().submit(f"add engine {source.name}", add)

    def remove_source(self, name: str) -> None:
        """Stop following a router and forget it (its key too); `source_removed` says when."""
        engines = self.engines

        def remove() -> None:
            try:
                engines.remove_source(name)
            except Exception as exc:
                log.exception("removing the engine %s failed", name)
                self.source_failed.emit(name, sources_presenter.remove_failure(name, exc))
                return
            self.source_removed.emit(name)

        self._sources_worker().submit(f"remove engine {name}", remove)

    def _sources_worker(self) -> SerialWorker:
        if self._source_commands is None:
            self._source_commands = SerialWorker("engine-source-commands", self)
            self._source_commands.failed.connect(self._job_failed)
        return self._source_commands

    # -- options -------------------------------------------------------------------------------

    def saved_options(self, model_id: str) -> LoadOptions:
        key = f"models/{model_id}"
        try:
            return LoadOptions.parse(
                {
                    "n_ctx": self.settings.value(f"{key}/n_ctx"),
                    "gpu_layers": self.settings.value(f"{key}/gpu_layers"),
                    "use_mmap": self.settings.value(f"{key}/use_mmap"),
                }
            )
        except InvalidOptions as exc:
            log.warning("ignoring saved options of %s: %s", model_id, exc)
            return LoadOptions()

    def keep_alive_setting(self, model_id: str) -> float | str | None:
        """A model's own keep-alive as saved: seconds, None (never) or `SERVING_DEFAULT`."""
        value = self.settings.value(f"models/{model_id}/keep_alive")
        if value is None:
            return SERVING_DEFAULT
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return SERVING_DEFAULT
        return None if seconds < 0 else seconds

    def set_keep_alive(self, model_id: str, value: float | str | None) -> None:
        """A person set a model's own keep-alive on its card: keep it, and apply it now."""
        key = f"models/{model_id}/keep_alive"
        if value == SERVING_DEFAULT:
            self.settings.remove(key)
            self.serving.set_keep_alive(model_id, None, clear=True)
            return
        self.settings.setValue(key, -1 if value is None else value)
        self.serving.set_keep_alive(model_id, value)

    def set_options(self, model_id: str, options: LoadOptions) -> None:
        """A person changed a card's settings: remember them; the card's Load uses them."""
        key = f"models/{model_id}"
        for name, value in options.to_dict().items():
            self.settings.setValue(f"{key}/{name}", value)
        self.store.set_options(model_id, options)
        self.options_changed.emit(model_id, options)
        if (view := self.store.view(model_id)) is not None:
            self.view_changed.emit(view)

    # -- acting on a model ---------------------------------------------------------------------

    def act(self, model_id: str, action: str, options: dict | None = None) -> None:
        """Carry out a card's (or a toast's) action, with the options the view gave it."""
        if is_transfer_key(model_id):
            self.transfer_act(model_id, action)
            return
        model = self.store.model(model_id)
        view = self.store.view(model_id)
        if model is None or view is None:
            return
        action = ActionId(action)
        if action in (ActionId.LOAD, ActionId.RETRY):
            chosen = LoadOptions.parse(options or {})
            if action is ActionId.RETRY and chosen != self.store.options(model_id):
                self.set_options(model_id, chosen)  # the retry's smaller setting sticks
            self.engine.load(model.entry.path, chosen, model=model_id)
        elif action is ActionId.CANCEL:
            self.engine.cancel(model_id)
        elif action is ActionId.UNLOAD:
            self.engine.unload(model_id)
        elif action is ActionId.TRY:
            self.try_requested.emit(model_id)
        elif action is ActionId.DETAILS:
            self.details_requested.emit(view)
        elif action is ActionId.REMOVE:
            self.remove(model_id)

    def remove(self, model_id: str) -> None:
        if model_id in self.store.in_state(*BUSY_STATES):
            return
        title = self.store.view(model_id).title if self.store.view(model_id) else model_id
        self.library.remove(model_id)
        views = self.store.set_library(self.library.models(), keep=self._still_busy())
        self.library_changed.emit(views)
        self.notice.emit(
            presenter.info_notice(f"{title} removed from the library", f"remove:{model_id}")
        )

    def unload_all(self) -> None:
        for model_id in self.store.in_state(ModelState.LOADED):
            self.engine.unload(model_id)

    def apply_event(self, event: ProgressEvent) -> None:
        if event.engine is not None and event.is_terminal:
            # A router tells what a model is once it has loaded it: its card's facts follow.
            self._engines_listener()
        change = self.store.apply(event)
        if change is None:
            return
        if isinstance(change, TransferChange):
            self.transfer_changed.emit(change.view)
            if change.notice is not None:
                self.notice.emit(change.notice)
            return
        self.view_changed.emit(change.view)
        if change.notice is not None:
            self.notice.emit(change.notice)
        if change.state_changed:
            self.loaded_changed.emit(self.store.in_state(ModelState.LOADED))

    def loaded_pids(self) -> dict[str, int]:
        pids = {model_id: self.engine.host_pid(model_id) for model_id in self.loaded_models()}
        return {model_id: pid for model_id, pid in pids.items() if pid is not None}

    def loaded_models(self) -> dict[str, str]:
        """Model id → title of the models loaded on this machine (those Try it, the Serving
        tab's examples and the process monitor know)."""
        loaded = self.store.in_state(ModelState.LOADED)
        return {model_id: title for model_id, title in loaded.items() if self.runs_here(model_id)}

    def runs_here(self, model_id: str) -> bool:
        """Whether a listed model is this machine's (not a remote engine's)."""
        model = self.store.model(model_id)
        return model is not None and model.entry.engine is None

    def start_reply(self, model_id: str, request: ReplyRequest) -> Job:
        """Try it: a chat turn (or a raw completion) of `model_id`, on a job that reports each
        piece and returns the `RequestRecord`. It holds a lease (so the model's keep-alive
        counts this use, and eviction spares it) and logs the request beside the API's; a
        failure is raised (`errored`) after it is logged."""
        engine, serving = self.engine, self.serving
        stop = threading.Event()
        endpoint = "completion" if request.mode == COMPLETION else "chat"

        def answer(context: JobContext) -> RequestRecord | None:
            def sink(piece: str | None) -> None:
                if piece is not None:
                    context.report(piece)

            with serving.acquire(model_id, client=request.client) as lease:
                if stop.is_set():
                    return None  # stopped while its model was loading: nothing was asked
                try:
                    reply = engine.reply(model_id, request, sink)
                except ModelError as exc:
                    lease.record(endpoint, request.client, None, str(exc.kind))
                    raise
                if stop.is_set():  # Stop came between the check above and the reply's queue
                    reply.cancel()
                reply.done.wait()
                record = lease.record(endpoint, request.client, reply)
            raise_for(reply)
            return record

        job = Job("generate", answer, on_cancel=partial(self.stop_reply, model_id))
        self._reply_stops[model_id] = stop
        job.done.connect(partial(self._reply_ended, model_id, stop))
        return self.jobs.start(job, report_errors=False)

    def stop_reply(self, model_id: str) -> None:
        """Try it's Stop: the model stops the window's reply between two tokens."""
        if (stop := self._reply_stops.get(model_id)) is not None:
            stop.set()
        self.engine.stop_generation(model_id, APP_CLIENT)

    def _reply_ended(self, model_id: str, stop: threading.Event) -> None:
        if self._reply_stops.get(model_id) is stop:
            del self._reply_stops[model_id]

    def without_chat_template(self, model_ids: Iterable[str]) -> set[str]:
        """Those of `model_ids` whose file has no chat template of its own (base models)."""
        models = (self.store.model(model_id) for model_id in model_ids)
        return {m.entry.id for m in models if m is not None and not m.entry.has_chat_template}

    def model_title(self, model_id: str) -> str:
        view = self.store.view(model_id)
        return view.title if view is not None else model_id

    # -- getting models: downloads and quantizing ----------------------------------------------

    def start_transfers(self) -> None:
        """Downloads an earlier run left unfinished carry on (paused ones stay paused)."""
        self.commands.submit("resume downloads", self.transfers.resume_pending)

    def download(self, reference: str) -> None:
        """Start (or rejoin) a download; its row appears with its first event."""
        self.commands.submit("download", self.transfers.download, reference)

    def quantize(self, model_id: str, type_name: str) -> None:
        """Write a `type_name` copy of a model; its row shows the progress. The copy goes
        beside the source in a folder of the library, else (a source in the hub cache, LM
        Studio's or Ollama's store, which other tools own) into the app's models folder."""
        model = self.store.model(model_id)
        if model is None:
            return
        source = Path(model.entry.path)
        if any(source.is_relative_to(folder) for folder in self.library_folders()):
            self.commands.submit("quantize", self.transfers.quantize, str(source), type_name)
            return
        out = self.models_dir / default_output_path(source, type_name).name
        transfers = self.transfers

        def start() -> None:
            out.parent.mkdir(parents=True, exist_ok=True)
            transfers.quantize(str(source), type_name, str(out))

        self.commands.submit("quantize", start)

    def transfers_list(self) -> list[TransferView]:
        return self.store.transfers()

    def transfer_act(self, key: str, action: str) -> None:
        """Carry out a transfer row's (or its toast's) action."""
        view = self.store.transfer(key)
        if view is None:
            return
        action = ActionId(action)
        transfers = self.transfers
        if action is ActionId.PAUSE:
            self.commands.submit("pause", transfers.pause, key)
        elif action is ActionId.RESUME:
            self.commands.submit("resume", transfers.resume, key)
        elif action is ActionId.CANCEL:
            self.commands.submit("cancel", transfers.cancel, key, True)
        elif action is ActionId.DISCARD:
            self.commands.submit("delete partial file", transfers.discard, key)
            if not view.active:  # nothing more will be said about it: take its row away
                self._remove_transfer(key)
        elif action is ActionId.DISMISS:
            self._remove_transfer(key)
        elif action is ActionId.LOAD and view.result_path:
            self.load_file(view.result_path)
            self._remove_transfer(key)  # done with: the card shows the load from here on

    def _remove_transfer(self, key: str) -> None:
        if self.store.dismiss_transfer(key) or self.store.transfer(key) is None:
            self.transfer_removed.emit(key)

    def load_file(self, path: str) -> None:
        """Load a new model file (a finished transfer's): now if the library lists it, else
        after a scan that lists it."""
        model_id = self._new_files.get(path) or file_model_id(path)
        if self.store.model(model_id) is not None:
            self._load_new(model_id)
            return
        self._expected[model_id] = path
        self._pending_load = model_id
        self.refresh_library()

    def _load_new(self, model_id: str) -> None:
        self.reveal_model.emit(model_id)
        view = self.store.view(model_id)
        if view is not None and view.has(ActionId.LOAD):
            self.act(model_id, str(ActionId.LOAD), self.store.options(model_id).to_dict())

    def _transfer_added_model(self, path: str) -> None:
        """Called in a transfer's thread: the id (a realpath) is worked out there."""
        self.model_added.emit(path, file_model_id(path))

    def _model_added(self, path: str, model_id: str) -> None:
        if self._closed:
            return
        self._new_files[path] = model_id
        self._expected[model_id] = path
        self._server_stale = True
        self.refresh_library()

    # -- adding models ---------------------------------------------------------------------------

    def import_model(self, source: Path) -> Job:
        destination = unique_destination(self.models_dir, source.name)
        job = Job("import", lambda context: copy_with_progress(source, destination, context))
        job.succeeded.connect(lambda path: self._added(f"Imported {path.name}"))
        job.cancelled.connect(lambda: self._added(f"Import of {source.name} cancelled"))
        job.errored.connect(lambda _exc: self.refresh_library())
        self.import_started.emit(source.name, job)
        return self.jobs.start(job)

    def create_demo_model(self) -> Job:
        path = self.models_dir / DEMO_MODEL_NAME
        self.status_message.emit("Writing the demo model…")
        job = Job("demo", lambda _context: write_demo_model(path, spec_for_size(DEMO_MODEL_MB)))
        job.succeeded.connect(
            lambda written: self._added(
                f"Demo model written to {written}. Press Load to watch it load.",
                NoticeKind.SUCCESS,
            )
        )
        return self.jobs.start(job)

    def _added(self, text: str, kind: NoticeKind = NoticeKind.INFO) -> None:
        self.notice.emit(presenter.info_notice(text, f"added:{text}", kind))
        self.refresh_library()

    # -- serving: the policy and the API server -------------------------------------------------

    def _entry_of(self, model_id: str):
        """A model id's catalog entry (called from request threads; the store locks). Serving
        is this machine's: a remote engine's model is no model here (its router serves it)."""
        model = self.store.model(model_id) or self.library.get(model_id)
        if model is None or model.entry.engine is not None:
            return None
        return model.entry

    def serving_policy(self) -> ServingPolicy:
        """The policy saved in the settings: keep-alive seconds (negative: never unload), the
        most models loaded at once and the memory budget in bytes (0: none)."""
        return ServingPolicy(
            keep_alive_s=self._keep_alive_setting(),
            max_loaded=self._count_setting("serving/max_loaded") or None,
            memory_budget=self._count_setting("serving/memory_budget") or None,
        )

    def _keep_alive_setting(self) -> float | None:
        value = self.settings.value("serving/keep_alive_s")
        if value is None:
            return DEFAULT_KEEP_ALIVE_S
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            log.warning("ignoring the saved keep-alive %r", value)
            return DEFAULT_KEEP_ALIVE_S
        return None if seconds < 0 else seconds

    def _count_setting(self, key: str) -> int:
        try:
            return max(0, int(float(self.settings.value(key, 0) or 0)))
        except (TypeError, ValueError):
            log.warning("ignoring the saved %s %r", key, self.settings.value(key))
            return 0

    def set_serving_policy(self, policy: ServingPolicy) -> None:
        """Save the policy and put it in force at once (for every server and Try it)."""
        keep_alive = -1 if policy.keep_alive_s is None else policy.keep_alive_s
        self.settings.setValue("serving/keep_alive_s", keep_alive)
        self.settings.setValue("serving/max_loaded", policy.max_loaded or 0)
        self.settings.setValue("serving/memory_budget", policy.memory_budget or 0)
        self.serving.set_policy(policy)

    def api_port(self) -> int:
        port = self._count_setting("serving/port")
        return port if 0 < port < 65536 else DEFAULT_API_PORT

    def api_token(self) -> str:
        """The API key: made once and kept, so programs set up with it keep working after a
        restart of the app or the server."""
        token = self.settings.value("serving/token")
        if not token:
            token = secrets.token_urlsafe(24)
            self.settings.setValue("serving/token", token)
        return str(token)

    @property
    def api_url(self) -> str:
        """The API's base URL (what `openai.OpenAI(base_url=…)` takes), running or not."""
        if self.api_server is not None:
            return self.api_server.api_url
        return f"http://127.0.0.1:{self.api_port()}/v1"

    def start_api_server(self, port: int | None = None, *, automatic: bool = False) -> Job | None:
        """Serve the OpenAI-compatible API on 127.0.0.1:`port` (the saved port by default), on
        a job: the port is bound there, never on the GUI thread, and a port in use comes back
        as `api_server_failed`. None when it is running already."""
        if self.api_state != SERVER_STOPPED or self._closed:
            return None
        port = self.api_port() if port is None else port
        self.settings.setValue("serving/port", port)
        self.settings.setValue("serving/api_on", True)
        self.library.folders = self.scan_folders()
        engine, library, transfers, serving = (
            self.engine,
            self.library,
            self.transfers,
            self.serving,
        )
        config = ServerConfig(token=self.api_token())
        bound = self._api_servers = []

        def serve(context: JobContext) -> None:
            server = ServerThread(
                engine, library, port=port, config=config, transfers=transfers, serving=serving
            )
            bound.append(server)  # from here on a stop reaches it
            context.report(server)  # listening: a client that connects now is answered
            try:
                if context.cancelled:
                    server.request_stop()
                server.run()
            finally:
                server.stop()  # the page's feeds and the socket

        job = Job("api-server", serve, on_cancel=partial(self._request_api_stop, bound))
        job.progress.connect(self._api_server_bound)
        job.errored.connect(partial(self._api_server_failed, port, automatic))
        job.done.connect(self._api_server_ended)
        self._set_api_state(SERVER_STARTING)
        return self.jobs.start(job, report_errors=False)

    def stop_api_server(self) -> None:
        """Stop serving the API (open requests end); `api_server_changed` says when it has."""
        if self.api_state not in (SERVER_STARTING, SERVER_RUNNING):
            return
        self.settings.setValue("serving/api_on", False)
        self._set_api_state(SERVER_STOPPING)
        self._request_api_stop(self._api_servers)

    def restore_api_server(self) -> None:
        """Start the API server if it was running when the app last closed."""
        if str(self.settings.value("serving/api_on", False)).lower() in ("true", "1"):
            self.start_api_server(automatic=True)

    @staticmethod
    def _request_api_stop(servers: list[ServerThread]) -> None:
        for server in servers:
            server.request_stop()  # thread-safe; its job ends when the server has

    def _api_server_bound(self, server: ServerThread) -> None:
        self.api_server = server
        if self.api_state == SERVER_STARTING:
            self._set_api_state(SERVER_RUNNING)

    def _api_server_failed(self, port: int, automatic: bool, exc: object) -> None:
        if self._closed:
            return
        running = self.api_server is not None
        if running:
            message = stopped_unexpectedly(exc)
        else:
            message = start_failure(port, exc) if isinstance(exc, BaseException) else str(exc)
        self.api_server_failed.emit(message)
        if automatic or running:  # nobody is looking at the Serving tab: a toast says it
            self.notice.emit(api_server_notice(message, was_running=running))

    def _api_server_ended(self) -> None:
        self.api_server = None
        self._api_servers = []
        if not self._closed:
            self._set_api_state(SERVER_STOPPED)

    def _set_api_state(self, state: str) -> None:
        self.api_state = state
        self.api_server_changed.emit(state)

    def _request_logged(self, record: RequestRecord) -> None:
        """Called on the request's thread; the signal takes it to the GUI thread."""
        if not self._closed:
            self.request_logged.emit(record)

    # -- the in-app server -------------------------------------------------------------------------

    def ensure_server(self) -> ServerThread:
        """The in-app server, started on first need (binding is instant; it serves at once),
        run as a job like every other background task, so its failure becomes a notice."""
        if self.server is None:
            self.library.folders = self.scan_folders()
            # The page's downloads, uploads and quantize jobs are the app's own: one restart
            # list, one set of rows, whichever surface started them.
            server = ServerThread(
                self.engine, self.library, transfers=self.transfers, serving=self.serving
            )
            self.jobs.start(Job("server", lambda _context: server.run(), server.request_stop))
            self.server = server
        return self.server

    def page_url(self, scheme: str | None) -> str:
        """The page in the app's own light or dark look (the page's `theme` parameter)."""
        url = self.ensure_server().page_url
        if scheme is None:
            return url
        return f"{url}&theme={'dark' if scheme in ('dark', 'high-contrast') else 'light'}"

    # -- errors and shutdown ---------------------------------------------------------------------

    def _job_failed(self, name: str, exc: object) -> None:
        if self._closed:
            return
        if name == "server":
            self.server = None  # the next need starts a fresh one
        self.notice.emit(presenter.job_notice(name, str(exc)))

    def shutdown(self) -> None:
        """Cancel loads, end every host and stop every thread; safe to call twice."""
        self._closed = True
        self.bridge.close()
        for job in self.jobs.running:
            job.cancel()
        if self.server is not None:
            self.server.request_stop()
        self.commands.shutdown()
        if self._source_commands is not None:
            self._source_commands.shutdown()  # an add or remove under way ends first
        self.transfers.shutdown()  # downloads stop quietly and resume at the next start
        self.engine.shutdown()
        self.jobs.shutdown()
        self.serving.close()  # after the servers and replies that lease from it
        if self.server is not None:
            self.server.stop()
            self.server = None

    @staticmethod
    def notice_action(notice: Notice) -> tuple[str, str, dict | None] | None:
        """(model, action id, options) of a notice's button, if it has one."""
        if not notice.actions or not notice.model:
            return None
        action = notice.actions[0]
        return notice.model, str(action.id), action.options


__all__ = ["AppController", "CardView"]
