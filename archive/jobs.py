"""Background jobs on Huey: an embedded SQLite queue by default, Redis by configuration.

The job code (archive.processing) knows nothing of the queue; this module only wires the two.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from huey import Huey, MemoryHuey, SqliteHuey, crontab

if TYPE_CHECKING:
    from flask import Flask
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


class Jobs:
    """The archive's jobs, bound to one app so that each job runs inside its app context."""

    def __init__(self, app: Flask, huey: Huey) -> None:
        self.app = app
        self.huey = huey
        # Retries cover a storage or database outage; a photo that cannot be decoded fails without raising.
        self._process = huey.task(retries=3, retry_delay=10, name="process_photo")(self._process_photo)
        # Whatever a crash or an outage left half-done is finished or cleaned without anyone having to
        # remember `brucken reconcile`.
        huey.periodic_task(crontab(minute=f"*/{RECONCILE_EVERY_MINUTES}"), name="reconcile")(self._reconcile)
        # The search index has one writer: this job, never two at once (a Huey lock), fed by the outbox.
        # It runs after every change that wrote an outbox event, and every minute to catch up after a crash.
        self._index = huey.task(retries=5, retry_delay=5, name="apply_outbox")(self._apply_outbox)
        huey.periodic_task(crontab(minute="*"), name="apply_outbox_periodic")(self._apply_outbox)
        # Exports (ZIP, catalogue, contact sheet): a failure is recorded on the export with its reason, and people
        # start it again; a retry here would only repeat a long job.
        self._export = huey.task(name="run_export")(self._run_export)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """An app context and a database session of the job's own, removed afterwards."""
        from .models import db

        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()

    def _process_photo(self, photo_id: int, remake: bool = False) -> None:
        from .processing import process_photo
        from .services import get_store

        with self._session() as session:
            process_photo(photo_id, session, get_store(), self.app.config, remake=remake)
        self.enqueue_indexing()

    def _apply_outbox(self) -> None:
        from .indexing import apply_outbox
        from .search import IndexBusy
        from .services import get_search_index

        with self.huey.lock_task("search-index-writer"), self._session() as session:
            try:
                apply_outbox(session, get_search_index())
            except IndexBusy as busy:
                # Another process holds Whoosh's write lock (a rebuild by hand, say). Nothing was written and
                # nothing is lost: the outbox keeps the changes, and the every-minute run applies them.
                log.info("search index busy, applying the outbox later: %s", busy)

    def enqueue_indexing(self) -> None:
        self._index()

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
