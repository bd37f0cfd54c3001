"""For operators and their machines: ``GET /healthz`` for load balancers and monitoring, ``GET /metrics`` for
Prometheus (archive/metrics.py).

/healthz answers within about a second whatever hangs: each check runs in a thread of its own and is waited for
at most CHECK_SECONDS; a check still running from an earlier request is joined rather than started again, so a
hanging S3 service costs one waiting thread per check, not one per probe. It says

- ``down`` (503: the load balancer takes this host out) when the database or the photo store cannot be used:
  then no upload can be kept and most pages fail;
- ``degraded`` (200: keep the host, look at it) when only derived or deferred work lags behind: the search index
  is missing, damaged, or has changes waiting longer than INDEX_STALE_SECONDS; the queue cannot be reached or
  holds more than QUEUE_DEPTH_DEGRADED jobs. Uploads are still kept then; search or thumbnails come later;
- ``ok`` otherwise.

It names what failed by kind (the exception's class), never with the exception's text, which can carry
addresses, bucket names or a URL with credentials; the full error goes to the log, once when a check starts
failing, not at every probe.

Both pages are answered before the login and CSRF checks (``answer_first``): a load balancer's probe must not
depend on the database through a session cookie someone sent, must not start a session, and Prometheus's bearer
token is no person's API token (the login machinery would refuse it as an unknown one).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from werkzeug.exceptions import NotFound

from ..auth import bearer_token
from ..metrics import CONTENT_TYPE, ArchiveNow, Snapshot, render
from ..models import OutboxEvent, db, utcnow
from ..search import SearchIndex, SearchUnavailable
from ..services import get_jobs, get_search_index, get_store
from ..storage import ObjectStore

bp = Blueprint("ops", __name__)

log = logging.getLogger(__name__)

# Each check gets this long; they run side by side, so /healthz answers within about a second. A load balancer
# usually allows 2-5 s per probe.
CHECK_SECONDS = 0.8
# The index writer applies each change within seconds (after every change, and every minute to catch up; a
# follower every INDEX_FOLLOW_SECONDS). A change still waiting after two such minutes means the writer is stuck
# or not running: search shows old results. Counted by age, not by number: a bulk edit of thousands of photos
# makes a long but healthy queue of changes for a few seconds.
INDEX_STALE_SECONDS = 120
# One job per uploaded photo, 1-6 s each with the default two worker threads: 1000 waiting jobs are an hour of
# thumbnails or more. A big batch after an event stays below; a worker that stopped goes past it within a day.
QUEUE_DEPTH_DEGRADED = 1000
# Without these nothing can be kept: the host is taken out of the load balancer.
VITAL = ("database", "store")

Check = Callable[[], dict[str, Any]]


# --------------------------------------------------------------------------------------------------------------------
# The checks: plain functions of plain objects, run in a thread of their own (no Flask context there)


def check_database(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SET LOCAL statement_timeout = {int(CHECK_SECONDS * 1000)}"))
        connection.execute(text("SELECT 1"))
        # SQLite answers SELECT 1 without reading its file: read a table too, so a lost or garbled file shows.
        connection.execute(select(OutboxEvent.id).limit(1)).all()
    return {}


def check_store(store: ObjectStore) -> dict[str, Any]:
    store.check()
    return {}


def check_index(index: SearchIndex, engine: Engine) -> dict[str, Any]:
    """This host's search index: readable, and how far it is behind the outbox."""
    if not index.exists():
        return {"status": "degraded", "problem": "missing"}
    if index.damaged():
        return {"status": "degraded", "problem": "damaged"}
    try:
        position = index.position()
    except SearchUnavailable:
        return {"status": "degraded", "problem": "unreadable"}
    with engine.connect() as connection:
        newest = connection.scalar(select(func.max(OutboxEvent.id))) or 0
        oldest_waiting = connection.scalar(select(func.min(OutboxEvent.at)).where(OutboxEvent.id > position))
    waiting = (utcnow() - oldest_waiting).total_seconds() if oldest_waiting is not None else 0.0
    return {"status": "degraded" if waiting > INDEX_STALE_SECONDS else "ok", "position": position,
            "lag_events": max(newest - position, 0), "oldest_waiting_seconds": round(max(waiting, 0.0), 1)}


def check_queue(jobs: Any) -> dict[str, Any]:
    counter = getattr(jobs, "pending_count", None) or jobs.huey.pending_count
    pending = int(counter())
    return {"status": "degraded" if pending > QUEUE_DEPTH_DEGRADED else "ok", "pending": pending}


# --------------------------------------------------------------------------------------------------------------------
# Running them with a time limit


class Probes:
    """The checks of one process: at most one run of each at a time, and what each said last (for the log).

    A request finding a check still running joins it. Only a run older than REPLACE_AFTER_SECONDS (hanging on a
    service's own timeouts, S3_READ_TIMEOUT × S3_MAX_ATTEMPTS for the store) is left to end on its own beside a
    new one, so the answer follows a recovered service within seconds while a hang keeps a few threads waiting at
    most, never one per probe."""

    REPLACE_AFTER_SECONDS = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, tuple[float, Future[dict[str, Any]]]] = {}
        self._last: dict[str, str] = {}

    def start(self, name: str, check: Check) -> Future[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            began, future = self._running.get(name, (0.0, None))
            if future is None or future.done() or now - began > self.REPLACE_AFTER_SECONDS:
                future = Future()
                self._running[name] = (now, future)
                threading.Thread(target=_settle, args=(future, check), name=f"healthz-{name}", daemon=True).start()
            return future

    def note(self, name: str, status: str, error: BaseException | None) -> None:
        """Log a check's change of state, not every probe's answer (a load balancer asks every few seconds)."""
        with self._lock:
            before, self._last[name] = self._last.get(name, "ok"), status
        if status != "ok" and before == "ok":
            log.warning("health check %s: %s%s", name, status, f" ({error!r})" if error is not None else "")
        elif status == "ok" and before != "ok":
            log.info("health check %s: ok again", name)


def _settle(future: Future[dict[str, Any]], check: Check) -> None:
    started = time.perf_counter()
    try:
        result = check()
    except BaseException as error:  # whatever it is, the asking request reports it
        future.set_exception(error)
    else:
        future.set_result({"ms": round((time.perf_counter() - started) * 1000), **result})


def _probes() -> Probes:
    return current_app.extensions.setdefault("brucken.probes", Probes())


def run_checks(checks: dict[str, Callable[[], Check]]) -> dict[str, dict[str, Any]]:
    """``checks``: name -> a function that prepares the check in this request (the store, the index, ...) and
    returns it. All run side by side; each answer is its result with a status, or "down" with the kind of error."""
    probes = _probes()
    started: dict[str, Future[dict[str, Any]]] = {}
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, BaseException | None] = {}
    for name, prepare in checks.items():
        try:
            started[name] = probes.start(name, prepare())
        except Exception as error:  # a store or a queue that cannot even be made from the settings
            results[name], errors[name] = {"status": "down", "error": type(error).__name__}, error
    done, _late = wait(started.values(), timeout=CHECK_SECONDS)
    for name, future in started.items():
        if future not in done:
            results[name] = {"status": "down", "error": f"no answer within {CHECK_SECONDS} s"}
            errors[name] = None
        elif (error := future.exception()) is not None:
            results[name], errors[name] = {"status": "down", "error": type(error).__name__}, error
        else:
            results[name], errors[name] = {"status": "ok", **future.result()}, None
    for name, result in results.items():
        probes.note(name, result["status"], errors[name])
    return {name: results[name] for name in checks}


def overall(results: dict[str, dict[str, Any]]) -> str:
    if any(results[name]["status"] != "ok" for name in VITAL if name in results):
        return "down"
    if any(result["status"] != "ok" for result in results.values()):
        return "degraded"
    return "ok"


def _database_check() -> Check:
    engine = db.engine
    return lambda: check_database(engine)


def _store_check() -> Check:
    store = get_store()
    return lambda: check_store(store)


def _index_check() -> Check:
    index, engine = get_search_index(), db.engine
    return lambda: check_index(index, engine)


def _queue_check() -> Check:
    jobs = get_jobs()
    return lambda: check_queue(jobs)


# --------------------------------------------------------------------------------------------------------------------
# The pages


@bp.get("/healthz")
def healthz() -> Any:
    results = run_checks({"database": _database_check, "store": _store_check, "index": _index_check,
                          "queue": _queue_check})
    status = overall(results)
    response = jsonify({"status": status, "checks": results})
    response.status_code = 503 if status == "down" else 200
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics() -> Any:
    if not _metrics_token_given():
        # The same 404 whether metrics are off or the token is wrong: a stranger learns nothing, not even that
        # there is something to guess.
        raise NotFound()
    results = run_checks({"index": _index_check, "queue": _queue_check})
    snapshot = Snapshot(queue_pending=results["queue"].get("pending"),
                        index_position=results["index"].get("position"))
    response = current_app.response_class(render(ArchiveNow(db.engine, snapshot)),
                                          headers={"Content-Type": CONTENT_TYPE})
    response.headers["Cache-Control"] = "no-store"
    return response


def _metrics_token_given() -> bool:
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if not expected:
        return False
    given = bearer_token() or ""
    # Digests of equal length, compared in constant time: neither the token's characters nor its length leak.
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


ANSWERED_FIRST = {"ops.healthz": healthz, "ops.metrics": metrics}


def answer_first() -> Any:
    """Before every other before-request function (the login from a cookie or a token, the CSRF check): see the
    module's docstring."""
    view = ANSWERED_FIRST.get(request.endpoint or "")
    return view() if view is not None else None


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, answer_first)
