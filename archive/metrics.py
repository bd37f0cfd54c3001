"""Prometheus metrics, served at ``/metrics`` (archive/views/ops.py) to whoever holds METRICS_TOKEN.

Two kinds of numbers, kept apart on purpose:

- What the web processes see happen: requests by endpoint and status class with their durations, search
  durations, and files taken in by the upload pipeline by outcome and refusal code. Counters and histograms,
  counted where it happens. Under gunicorn each worker process counts on its own: gunicorn.conf.py sets
  PROMETHEUS_MULTIPROC_DIR before any worker imports prometheus_client, every worker then writes its values to
  its own files there, and a scrape, whichever worker answers it, adds up the files of all workers (those of
  workers that have ended included, so totals do not drop when gunicorn recycles one). Without gunicorn (tests,
  ``flask run``) the values live in this process's registry.
- What the archive holds at the moment of the scrape: photos by status, processing counts, failed jobs, the
  queue's depth, the search index's lag. Computed when scraped (one GROUP BY and a few counts), never stored,
  so they are right whichever worker answers and however many hosts there are.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine

from .models import DATABASE_UNAVAILABLE, OutboxCursor, OutboxEvent, Photo

if TYPE_CHECKING:
    from .ingest import IngestResult

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Our own registry: the default one also carries process and GC collectors that make no sense summed over
# worker processes, and another library's metrics do not belong on this page.
_REGISTRY = CollectorRegistry(auto_describe=True)

UPLOADS = Counter(
    "brucken_uploads", "Files through the upload pipeline (form and chunk API), by outcome "
    "(archived, duplicate, refused) and refusal code.", ["outcome", "reason"], registry=_REGISTRY)
REQUEST_SECONDS = Histogram(
    "brucken_http_request_duration_seconds", "Requests by endpoint and status class (2xx, 4xx, ...), with the "
    "seconds until the answer began (a streamed download's transfer not included; _count: the number of "
    "requests).", ["endpoint", "status_class"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0), registry=_REGISTRY)
SEARCH_SECONDS = Histogram(
    "brucken_search_duration_seconds", "Answered searches (the search page and /api/v1/search) and how long "
    "they took, in seconds.", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 5.0), registry=_REGISTRY)

SEARCH_ENDPOINTS = frozenset({"search.page", "search.api"})
# Scrapes and load-balancer probes every few seconds would drown the real traffic in the request figures.
UNCOUNTED_ENDPOINTS = frozenset({"ops.healthz", "ops.metrics"})


# --------------------------------------------------------------------------------------------------------------------
# Counting where it happens


def init_app(app: Flask) -> None:
    """Time every request. The clock starts in the very first before-request function, so the time a request
    spends in the login and CSRF checks counts too, and a request those checks turn away is still counted."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start_clock)
    app.after_request(_observe)


def _start_clock() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Any) -> Any:
    started = g.pop("metrics_started", None)
    endpoint = request.endpoint or "unmatched"  # a 404 for a path no route knows: one label, not one per path
    if started is None or endpoint in UNCOUNTED_ENDPOINTS:
        return response
    seconds = time.perf_counter() - started
    status = int(response.status_code)
    REQUEST_SECONDS.labels(endpoint, f"{status // 100}xx").observe(seconds)
    if endpoint in SEARCH_ENDPOINTS and status < 400:  # a 503 "index being rebuilt" is no search
        SEARCH_SECONDS.labels(endpoint).observe(seconds)
    return response


def count_upload(result: IngestResult) -> None:
    """One file through the upload pipeline; called once per file by both ways in (archive/views/upload.py)."""
    UPLOADS.labels(result.outcome, result.refusal.code if result.refusal is not None else "").inc()


# --------------------------------------------------------------------------------------------------------------------
# What the archive holds, computed at scrape time


@dataclass(frozen=True)
class Snapshot:
    """Figures from outside the database that the scrape hands in (the queue and the index are asked with a time
    limit by archive/views/ops.py, as for /healthz). None: could not be read this time."""

    queue_pending: int | None = None
    index_position: int | None = None


class ArchiveNow(Collector):
    """Gauges read from the database (and the ``Snapshot``) when Prometheus scrapes. If the database does not
    answer, ``brucken_database_up`` is 0 and the database's figures are left out (a gap, not a false zero)."""

    def __init__(self, engine: Engine, snapshot: Snapshot) -> None:
        self.engine = engine
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("brucken_database_up", "1 when the database answered this scrape, else 0.")
        figures: list[Metric] = []
        try:
            figures = list(self._from_database())
        except DATABASE_UNAVAILABLE:
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
        yield up
        yield from figures
        if self.snapshot.queue_pending is not None:
            yield _gauge("brucken_jobs_pending", "Jobs waiting in the queue (queue depth).",
                         self.snapshot.queue_pending)

    def _from_database(self) -> Iterator[Metric]:
        with self.engine.connect() as connection:
            photos = GaugeMetricFamily("brucken_photos", "Photos by status.", labels=["status"])
            processed = attempts = 0
            for status, count, done, tries in connection.execute(
                    select(Photo.status, func.count(Photo.id), func.count(Photo.processed_at),
                           func.coalesce(func.sum(Photo.processing_attempts), 0)).group_by(Photo.status)):
                photos.add_metric([str(getattr(status, "value", status))], count)
                processed += done
                attempts += tries
            yield photos
            yield _gauge("brucken_photos_processed", "Photos whose thumbnails and previews were made.", processed)
            yield _gauge("brucken_processing_attempts", "Processing runs started, over all photos (retries "
                         "included); more than photos means some needed another try.", attempts)
            failed = _failed_jobs(connection)
            if failed is not None:
                yield _gauge("brucken_jobs_failed", "Jobs in the failed list (/admin/jobs) not started again yet.",
                             failed)
            newest = connection.scalar(select(func.max(OutboxEvent.id))) or 0
            yield _gauge("brucken_outbox_newest_event", "Id of the newest change in the outbox.", newest)
            if self.snapshot.index_position is not None:
                yield _gauge("brucken_index_lag_events", "Outbox changes this host's search index has not applied "
                             "yet.", max(newest - self.snapshot.index_position, 0))
            followers = GaugeMetricFamily("brucken_outbox_follower_lag_events", "Outbox changes each follower "
                                          "(index replica of a host, public copies) has not applied yet.",
                                          labels=["follower"])
            for name, position in connection.execute(select(OutboxCursor.name, OutboxCursor.position)):
                followers.add_metric([name], max(newest - int(position), 0))
            yield followers


def _failed_jobs(connection: Any) -> int | None:
    """Failed jobs no admin has started again yet, or None before that table exists (migration 0009)."""
    inspector = inspect(connection)
    if not inspector.has_table("failed_jobs"):
        return None
    columns = {column["name"] for column in inspector.get_columns("failed_jobs")}
    where = " WHERE retried_at IS NULL" if "retried_at" in columns else ""
    return int(connection.scalar(text(f"SELECT count(*) FROM failed_jobs{where}")) or 0)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


# --------------------------------------------------------------------------------------------------------------------
# The page


def multiprocess() -> bool:
    """Whether this process counts into PROMETHEUS_MULTIPROC_DIR (started by gunicorn.conf.py)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _ThisProcess(Collector):
    """This process's counters, for a scrape without gunicorn."""

    def collect(self) -> Iterable[Metric]:
        return _REGISTRY.collect()


def render(live: Collector) -> bytes:
    """The text format of every counter (all worker processes' sum under gunicorn) and of ``live``."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(live)
    return generate_latest(registry)


def total(text_format: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of the samples called ``name`` that carry ``labels`` (among others) in a scrape's text: for tests
    and scripts. 0 when there is none."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = dict(labels or {})
    return sum(float(found.value) for family in text_string_to_metric_families(text_format)
               for found in family.samples
               if found.name == name and all(found.labels.get(k) == v for k, v in wanted.items()))
