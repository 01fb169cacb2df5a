"""The "Get models" logic: search the hub, list a repository's GGUF models, read each model's
remote header for its fit verdict; all of it in background jobs, none of it in the GUI thread.

It keeps the state the view shows (the results, the repository open, each model's fit and
whether an earlier download left it here) and turns it into the hub presenter's views; the
widgets in `get_models.py` only bind them. Results of a search or a listing that a newer one
replaced are dropped, and the fit job of a repository a person left is cancelled.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from PySide6.QtCore import QObject, Signal

from llm_desktop.core import hardware, hf_hub, hub_presenter
from llm_desktop.core.download import hub_cache_dir
from llm_desktop.core.hub_presenter import HitView, RemoteModelView, RepoView
from llm_desktop.core.presenter import FitBadge
from llm_desktop.core.transfer_presenter import TransferView
from llm_desktop.ui.controller import AppController
from llm_desktop.workers.jobs import Job, JobContext

log = logging.getLogger(__name__)

FIT_READERS = 4  # remote headers read at once


class HubBrowser(QObject):
    """Signals:
    searching(str): the line to show while a search runs.
    results_ready(list, str): the `HitView`s found, and the line that sums them up.
    search_failed(str): why the search failed, as a person reads it.
    listing_started(str): the line to show while a repository is read.
    listing_ready(object, list): the `RepoView` header and its `RemoteModelView`s.
    listing_failed(str): why the repository could not be read.
    model_changed(object): one `RemoteModelView` changed (its fit was read, its download moved).
    """

    searching = Signal(str)
    results_ready = Signal(list, str)
    search_failed = Signal(str)
    listing_started = Signal(str)
    listing_ready = Signal(object, list)
    listing_failed = Signal(str)
    model_changed = Signal(object)

    def __init__(self, controller: AppController, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.hits: list[hf_hub.RepoHit] = []
        self.listing: hf_hub.RepoListing | None = None
        self._fits: dict[str, FitBadge] = {}
        self._on_disk: dict[str, str] = {}
        self._recommended: str | None = None
        self._search_generation = 0
        self._listing_generation = 0
        self._fit_job: Job | None = None
        self._closed = False
        controller.transfer_changed.connect(self._transfer_changed)
        controller.transfer_removed.connect(self._transfer_removed)

    # -- searching ------------------------------------------------------------------------------

    def search(self, text: str) -> Job:
        self._search_generation += 1
        generation = self._search_generation
        self.searching.emit(hub_presenter.searching_text(text))
        job = Job("hub search", lambda _context: hf_hub.search(text))
        job.succeeded.connect(lambda hits: self._found(generation, text, hits))
        job.errored.connect(lambda exc: self._search_error(generation, text, exc))
        return self.controller.jobs.start(job, report_errors=False)

    def _found(self, generation: int, text: str, hits: list[hf_hub.RepoHit]) -> None:
        if generation != self._search_generation:
            return
        self.hits = hits
        search = hub_presenter.search_view(text, hits)
        views: list[HitView] = list(search.hits)
        self.results_ready.emit(views, search.summary)

    def _search_error(self, generation: int, text: str, exc: BaseException) -> None:
        if generation == self._search_generation:
            self.search_failed.emit(
                hub_presenter.error_text(exc, f"Searching the hub for {text!r}")
            )

    # -- a repository's models -------------------------------------------------------------------

    def open_repo(self, repo_id: str) -> Job:
        self._listing_generation += 1
        generation = self._listing_generation
        self._cancel_fit_job()
        self.listing = None
        self.listing_started.emit(hub_presenter.listing_loading_text(repo_id))
        job = Job("hub listing", lambda _context: _read_listing(repo_id))
        job.succeeded.connect(lambda result: self._listed(generation, *result))
        job.errored.connect(lambda exc: self._listing_error(generation, repo_id, exc))
        return self.controller.jobs.start(job, report_errors=False)

    def _listed(
        self, generation: int, listing: hf_hub.RepoListing, on_disk: dict[str, str]
    ) -> None:
        if generation != self._listing_generation or self._closed:
            return
        self.listing = listing
        self._on_disk = on_disk
        self._fits = {
            hub_presenter.download_key(m): hub_presenter.fit_checking() for m in listing.models
        }
        self._recommended = hub_presenter.recommended_key(listing)
        header: RepoView = hub_presenter.repo_view(listing)
        self.listing_ready.emit(header, self.model_views())
        if listing.models:
            self._start_fit_job(generation, listing)

    def _listing_error(self, generation: int, repo_id: str, exc: BaseException) -> None:
        if generation == self._listing_generation:
            self.listing_failed.emit(hub_presenter.error_text(exc, f"Reading {repo_id}"))

    def model_views(self) -> list[RemoteModelView]:
        if self.listing is None:
            return []
        return [self._view(model) for model in self.listing.models]

    def _view(self, model: hf_hub.RemoteModel) -> RemoteModelView:
        key = hub_presenter.download_key(model)
        return hub_presenter.remote_model_view(
            model,
            fit=self._fits.get(key) or hub_presenter.fit_checking(),
            transfer=self.controller.store.transfer(key),
            on_disk=self._on_disk.get(key),
            recommended=key == self._recommended,
        )

    def download(self, key: str) -> None:
        model = self._model(key)
        if model is not None:
            self.controller.download(hub_presenter.download_reference(model))

    def load(self, key: str) -> None:
        """Load a model of this repository that is here already (downloaded now or before)."""
        transfer = self.controller.store.transfer(key)
        path = transfer.result_path if transfer is not None else None
        path = path or self._on_disk.get(key)
        if path:
            self.controller.load_file(path)

    def _model(self, key: str) -> hf_hub.RemoteModel | None:
        if self.listing is None:
            return None
        return next((m for m in self.listing.models if hub_presenter.download_key(m) == key), None)

    # -- fit verdicts from the remote headers -------------------------------------------------

    def _start_fit_job(self, generation: int, listing: hf_hub.RepoListing) -> None:
        snapshot = self.controller.library.hardware
        job = Job("fit", lambda context: _read_fits(context, listing.models, snapshot))
        job.progress.connect(lambda found: self._fit_read(generation, *found))
        job.done.connect(lambda: self._fit_job_done(job))
        self._fit_job = job
        self.controller.jobs.start(job, report_errors=False)

    def _fit_read(self, generation: int, key: str, badge: FitBadge) -> None:
        if generation != self._listing_generation:
            return
        self._fits[key] = badge
        model = self._model(key)
        if model is not None:
            self.model_changed.emit(self._view(model))

    def _fit_job_done(self, job: Job) -> None:
        if self._fit_job is job:
            self._fit_job = None

    def _cancel_fit_job(self) -> None:
        if self._fit_job is not None:
            self._fit_job.cancel()
            self._fit_job = None

    # -- downloads as they move --------------------------------------------------------------

    def _transfer_changed(self, view: TransferView) -> None:
        model = self._model(view.key)
        if model is not None:
            if view.result_path:
                self._on_disk[view.key] = view.result_path
            self.model_changed.emit(self._view(model))

    def _transfer_removed(self, key: str) -> None:
        model = self._model(key)
        if model is not None:
            self.model_changed.emit(self._view(model))

    def shutdown(self) -> None:
        self._closed = True
        self._cancel_fit_job()


def _read_listing(repo_id: str) -> tuple[hf_hub.RepoListing, dict[str, str]]:
    """A repository's models, and where an earlier download already left one of them."""
    listing = hf_hub.list_models(repo_id)
    snapshot = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    on_disk = {}
    for model in listing.models:
        path = snapshot / listing.commit / model.first.path
        if all((snapshot / listing.commit / file.path).is_file() for file in model.files):
            on_disk[hub_presenter.download_key(model)] = str(path)
    return listing, on_disk


def _read_fits(
    context: JobContext,
    models: tuple[hf_hub.RemoteModel, ...],
    snapshot: hardware.HardwareSnapshot | None,
) -> None:
    """Each model's fit from its remote header, a few at once, reported as each is read."""
    try:
        from llm_desktop.core.remote_fit import remote_fit
    except ImportError as exc:  # the remote header reader is not in this build
        for model in models:
            reason = f"The remote header reader is not available ({exc})"
            context.report((hub_presenter.download_key(model), hub_presenter.fit_unknown(reason)))
        return
    snapshot = snapshot or hardware.snapshot()

    def read(model: hf_hub.RemoteModel) -> FitBadge:
        if context.cancelled:
            return hub_presenter.fit_checking()
        try:
            return hub_presenter.fit_of(remote_fit(model, snapshot))
        except Exception as exc:  # one unreadable header must not hide the others
            log.info("fit of %s: %s", model.label, exc)
            return hub_presenter.fit_unknown(hub_presenter.fit_failure_text(exc))

    with ThreadPoolExecutor(FIT_READERS, thread_name_prefix="fit-reader") as pool:
        pending = {pool.submit(read, model): model for model in models}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                model = pending.pop(future)
                if not context.cancelled:
                    context.report((hub_presenter.download_key(model), future.result()))
            if context.cancelled:
                for future in pending:
                    future.cancel()
                return
