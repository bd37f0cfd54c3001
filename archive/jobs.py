"""Background jobs on Huey: an embedded SQLite queue by default, Redis by configuration.

The job code (archive.processing) knows nothing of the queue; this module only wires the two.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from huey import Huey, MemoryHuey, SqliteHuey, crontab

if TYPE_CHECKING:
    from flask import Flask
    from huey.consumer import Consumer

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

    def _process_photo(self, photo_id: int) -> None:
        from .models import db
        from .processing import process_photo
        from .services import get_store

        with self.app.app_context():
            try:
                process_photo(photo_id, db.session, get_store(), self.app.config)
            finally:
                db.session.remove()

    def _reconcile(self) -> None:
        from .models import db
        from .reconcile import reconcile
        from .services import get_store

        with self.app.app_context():
            try:
                report = reconcile(db.session, get_store(), self.app.config, self.enqueue_processing)
                log.info("reconcile: %s", report.as_dict())
            finally:
                db.session.remove()

    def enqueue_processing(self, photo_id: int) -> None:
        self._process(photo_id)

    def run_processing_here(self, photo_id: int) -> None:
        """Run the same job in this process (the import command waits for its photos this way)."""
        self._process_photo(photo_id)

    def consumer(self, threads: int) -> Consumer:
        return self.huey.create_consumer(workers=threads, worker_type="thread", periodic=True)
