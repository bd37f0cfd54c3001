"""Background jobs on Huey: an embedded SQLite queue by default, Redis by configuration.

The job code (archive.processing) knows nothing of the queue; this module only wires the two. The same code runs
on both queues; with Redis, any number of ``brucken worker`` processes on any number of hosts share one queue,
and Huey's locks (kept in Redis) let only one of them reconcile or write the search index at a time.

A job that raises is tried again JOB_RETRIES times, each wait twice the one before (JOB_RETRY_SECONDS, then
double...): Huey itself knows only a fixed delay, so the error signal sets the next delay on the task before
Huey schedules it again. A job that failed on every try lands in the failed list (``archive.failed_jobs``,
/admin/jobs), from which an admin starts it again.

With SEARCH_INDEX_WRITER=follower the workers leave the search index alone: each web host's ``brucken
follow-index`` applies the outbox to its own index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from huey import Huey, MemoryHuey, SqliteHuey, crontab
from huey.signals import SIGNAL_ERROR

if TYPE_CHECKING:
    from flask import Flask
    from huey.api import Task, TaskWrapper
    from huey.consumer import Consumer
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

RECONCILE_EVERY_MINUTES = 15


def make_huey(settings: dict[str, Any]) -> Huey:
    kind = settings["QUEUE"]
    if kind == "immediate":
        return MemoryHuey("brucken", immediate=True)
    if kind == "redis":
        from huey import RedisHuey  # needs the optional 'redis' package

        return RedisHuey("brucken", url=settings["REDIS_URL"])
    return SqliteHuey("brucken", filename=settings["QUEUE_PATH"])


def retry_delay(base_seconds: float, failed_attempt: int) -> float:
    """The wait after the n-th failed attempt (1, 2, ...): base, 2 × base, 4 × base, ..."""
    return base_seconds * 2 ** (max(failed_attempt, 1) - 1)


class Jobs:
    """The archive's jobs, bound to one app so that each job runs inside its app context."""

    def __init__(self, app: Flask, huey: Huey) -> None:
        self.app = app
        self.huey = huey
        self.retries = int(app.config["JOB_RETRIES"])
        self.retry_seconds = float(app.config["JOB_RETRY_SECONDS"])
        self.writes_index = app.config["SEARCH_INDEX_WRITER"] != "follower"
        retried = {"retries": self.retries, "retry_delay": self.retry_seconds}
        # Retries cover a storage or database outage; a photo that cannot be decoded fails without raising.
        self._process = huey.task(**retried, name="process_photo")(self._process_photo)
        # Whatever a crash or an outage left half-done is finished or cleaned without anyone having to
        # remember `brucken reconcile`.
        huey.periodic_task(crontab(minute=f"*/{RECONCILE_EVERY_MINUTES}"), name="reconcile")(self._reconcile)
        # The search index has one writer: this job, never two at once (a Huey lock), fed by the outbox.
        # It runs after every change that wrote an outbox event, and every minute to catch up after a crash.
        # With followers, each web host writes its own index: the task stays known (a job queued before the
        # switch still finds it, and does nothing), but nothing queues it and it has no periodic run.
        self._index = huey.task(**retried, name="apply_outbox")(self._apply_outbox)
        if self.writes_index:
            huey.periodic_task(crontab(minute="*"), name="apply_outbox_periodic")(self._apply_outbox)
        # With MEDIA_CDN_URL, published photos' thumbnails and previews get public copies, made and removed by
        # following the outbox like the index (archive.public_media), after each change and every minute.
        self.copies_public_media = bool(app.config["MEDIA_CDN_URL"])
        self._public_media = huey.task(name="sync_public_media")(self._sync_public_media)
        if self.copies_public_media:
            huey.periodic_task(crontab(minute="*"), name="sync_public_media_periodic")(self._sync_public_media)
        # Exports (ZIP, catalogue, contact sheet): a failure is recorded on the export with its reason, and people
        # start it again; a retry here would only repeat a long job.
        self._export = huey.task(name="run_export")(self._run_export)
        # The jobs that are retried with growing waits and land in the failed list when every try failed.
        self._retried: dict[str, TaskWrapper] = {"process_photo": self._process, "apply_outbox": self._index}
        huey.signal(SIGNAL_ERROR)(self._on_error)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """An app context and a database session of the job's own, removed afterwards."""
        from .models import db

        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()

    # --- failures: growing waits, then the failed list ---------------------------------------------------------

    def _on_error(self, _signal: str, task: Task, error: Exception) -> None:
        """Huey calls this in the worker after a task raised, before it schedules a retry with
        ``task.retry_delay``; ``task.retries`` is the number of retries still left."""
        if task.name not in self._retried:
            return  # exports and the periodic runs: no retries, no failed list
        if task.retries > 0:
            failed_attempt = self.retries - task.retries + 1
            task.retry_delay = retry_delay(self.retry_seconds, failed_attempt)
            log.warning("job %s%s failed (attempt %d of %d), trying again in %.1f s: %s", task.name,
                        tuple(task.args), failed_attempt, self.retries + 1, task.retry_delay, error)
            return
        log.error("job %s%s failed on every try (%d), it is in the failed list (/admin/jobs): %s", task.name,
                  tuple(task.args), self.retries + 1, error)
        self._record_failure(task, error)

    def _record_failure(self, task: Task, error: Exception) -> None:
        from .failed_jobs import describe_error, record

        try:
            with self._session() as session:
                record(session, task.name, list(task.args), describe_error(error), attempts=self.retries + 1)
        except Exception:
            # The database may be what failed the job: then the log above is all that is left of it, and
            # reconcile finds the photo still 'processing' later.
            log.exception("could not record the failed job %s%s", task.name, tuple(task.args))

    def enqueue_again(self, task_name: str, args: list[Any]) -> None:
        """Queue a job from the failed list once more, with fresh retries (``archive.failed_jobs.retry``)."""
        if task_name not in self._retried:
            raise ValueError(f"no job named {task_name!r} can be started again")
        self._retried[task_name](*args)

    # --- the jobs ----------------------------------------------------------------------------------------------

    def _process_photo(self, photo_id: int, remake: bool = False) -> None:
        from .processing import process_photo
        from .services import get_store

        with self._session() as session:
            process_photo(photo_id, session, get_store(), self.app.config, remake=remake)
        self.outbox_changed()

    def _apply_outbox(self) -> None:
        from .indexing import apply_outbox
        from .search import IndexBusy
        from .services import get_search_index

        if not self.writes_index:
            log.info("SEARCH_INDEX_WRITER=follower: the web hosts keep their own indexes, the worker leaves it")
            return
        with self.huey.lock_task("search-index-writer"), self._session() as session:
            try:
                apply_outbox(session, get_search_index())
            except IndexBusy as busy:
                # Another process holds Whoosh's write lock (a rebuild by hand, say). Nothing was written and
                # nothing is lost: the outbox keeps the changes, and the every-minute run applies them.
                log.info("search index busy, applying the outbox later: %s", busy)

    def outbox_changed(self) -> None:
        """Wake the outbox's followers that the worker runs: the search index (unless each web host follows
        on its own) and, with a CDN, the public copies of published photos."""
        if self.writes_index:
            self._index()
        if self.copies_public_media:
            self._public_media()

    def _sync_public_media(self) -> None:
        from .public_media import sync_public_media
        from .services import get_store
        from .storage import StorageUnavailable

        with self.huey.lock_task("public-media"), self._session() as session:
            try:
                sync_public_media(session, get_store(), self.app.config)
            except StorageUnavailable as problem:
                # The cursor did not move: the every-minute run makes the copies match once S3 answers again.
                log.warning("public copies for the CDN: S3 unavailable, trying again later: %s", problem)

    def _reconcile(self) -> None:
        from .reconcile import reconcile
        from .services import get_store

        # Several worker processes each run periodic tasks: the lock lets one reconcile at a time.
        with self.huey.lock_task("reconcile"), self._session() as session:
            report = reconcile(session, get_store(), self.app.config, self.enqueue_processing)
            log.info("reconcile: %s", report.as_dict())

    def enqueue_processing(self, photo_id: int) -> None:
        self._process(photo_id)

    def run_processing_here(self, photo_id: int, *, remake: bool = False) -> None:
        """Run the same job in this process (`import` waits for its photos this way; `derivatives`
        remakes the images of processed photos with ``remake``)."""
        self._process_photo(photo_id, remake)

    def _run_export(self, export_id: int, base_url: str = "") -> None:
        from .exports import run_export
        from .services import get_store

        with self._session() as session:
            run_export(session, get_store(), self.app.config, export_id, base_url=base_url)

    def enqueue_export(self, export_id: int, base_url: str = "") -> None:
        """``base_url``: the address the export was asked from, for its QR codes when BASE_URL is not set."""
        self._export(export_id, base_url)

    def run_export_here(self, export_id: int, base_url: str = "") -> None:
        self._run_export(export_id, base_url)

    def consumer(self, threads: int) -> Consumer:
        return self.huey.create_consumer(workers=threads, worker_type="thread", periodic=True)
