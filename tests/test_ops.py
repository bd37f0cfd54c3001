"""/healthz, /metrics and gunicorn.conf.py: what a load balancer and Prometheus see, with real parts (the radosgw
behind the fault proxy, a PostgreSQL server that is stopped, a closed Redis port, a real gunicorn with two
workers).

Catalogue cases: 35 (security headers on these answers), 41 (no exception text or secret in an answer), 42
(TRUSTED_HOSTS holds here too), 43 and 44 (S3 refusing or black-holing: the health answer is quick and says
"down"), 50 (a lost or damaged index: "degraded", not "down").
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select

from archive import metrics
from archive.indexing import apply_outbox, rebuild
from archive.models import OutboxEvent, Photo, db, utcnow
from archive.services import get_jobs, get_search_index
from archive.views import ops
from tests.conftest import IsolatedClient, jpeg_bytes, login, make_ready_app, settings_for
from tests.faultproxy import FaultProxy
from tests.photos import upload, upload_one
from tests.servers.archive import free_port
from tests.servers.database import database_env
from tests.servers.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "prometheus-liest-mit-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# A probe is waited for CHECK_SECONDS; the rest is the request itself on a busy shared test machine.
QUICK = ops.CHECK_SECONDS + 0.7


def _ready(tmp_path: Path, **extra: Any) -> Flask:
    """An archive as `brucken init` leaves it: migrated, seeded, with its (empty) search index."""
    app = make_ready_app(settings_for(tmp_path, **extra))
    app.test_client_class = IsolatedClient
    with app.app_context():
        rebuild(db.session, get_search_index())
        db.session.remove()
    return app


@pytest.fixture
def ready(tmp_path: Path) -> Iterator[Flask]:
    app = _ready(tmp_path, METRICS_TOKEN=TOKEN)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _health(client: FlaskClient, **kwargs: Any) -> tuple[int, dict[str, Any], float]:
    began = time.monotonic()
    response = client.get("/healthz", **kwargs)
    return response.status_code, response.get_json(), time.monotonic() - began


def _scrape(client: FlaskClient) -> str:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------------------------------
# /healthz


def test_a_fresh_archive_is_healthy_to_anyone_without_a_cookie_or_a_cache(ready: Flask) -> None:
    client = ready.test_client()
    status, body, seconds = _health(client)
    assert status == 200 and body["status"] == "ok", body
    assert set(body["checks"]) == {"database", "store", "index", "queue"}
    assert all(check["status"] == "ok" for check in body["checks"].values()), body
    assert body["checks"]["index"]["lag_events"] == 0 and body["checks"]["queue"]["pending"] == 0
    assert seconds < QUICK
    response = client.get("/healthz")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # case 35: the site's headers stay
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_someone_logged_in_gets_the_same_answer_and_their_session_is_left_alone(ready: Flask,
                                                                                people: dict[str, Any]) -> None:
    browser = ready.test_client()
    login(browser, "mia")
    response = browser.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"
    assert "Set-Cookie" not in response.headers
    assert "no-store" in response.headers["Cache-Control"]


def test_a_missing_or_damaged_index_is_degraded_and_the_host_stays_in(ready: Flask, people: dict[str, Any]) -> None:
    """Case 50: search answers 503 then, but uploads are kept, and the writer rebuilds the index."""
    client = ready.test_client()
    login(client, "mia")
    upload_one(client)  # the immediate queue indexes it: the index has a segment
    index = get_search_index()
    live = index.index_dir / (index.index_dir / "CURRENT").read_text().strip()
    segment = next(live.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:16] + bytes(range(256)) * 4)
    ready.extensions.pop("brucken.search")  # as a web process started after the damage
    assert client.get("/search?q=Br%C3%BCcke").status_code == 503  # the reader marks it DAMAGED
    status, body, _ = _health(client)
    assert (status, body["status"], body["checks"]["index"]["status"]) == (200, "degraded", "degraded"), body
    assert body["checks"]["index"]["problem"] == "damaged"
    assert body["checks"]["database"]["status"] == body["checks"]["store"]["status"] == "ok"

    for child in index.index_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    status, body, _ = _health(client)
    assert (status, body["status"], body["checks"]["index"]["problem"]) == (200, "degraded", "missing"), body

    rebuild(db.session, get_search_index())  # what the writer does on its next run
    assert _health(client)[:2][1]["status"] == "ok"


def test_an_index_behind_the_outbox_is_degraded_only_when_changes_wait_too_long(ready: Flask) -> None:
    client = ready.test_client()
    stale = utcnow() - timedelta(seconds=ops.INDEX_STALE_SECONDS + 60)
    db.session.add_all([OutboxEvent(topic="photo.changed", at=stale), OutboxEvent(topic="photo.changed", at=stale)])
    db.session.commit()
    status, body, _ = _health(client)
    index = body["checks"]["index"]
    assert (status, body["status"], index["status"]) == (200, "degraded", "degraded"), body
    assert index["lag_events"] == 2 and index["oldest_waiting_seconds"] > ops.INDEX_STALE_SECONDS

    apply_outbox(db.session, get_search_index())  # the writer catches up
    db.session.add(OutboxEvent(topic="photo.changed"))  # a change made just now: normal, the writer is on it
    db.session.commit()
    status, body, _ = _health(client)
    assert (status, body["status"], body["checks"]["index"]["lag_events"]) == (200, "ok", 1), body


def test_a_long_queue_is_degraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _ready(tmp_path, QUEUE="sqlite")  # a real queue file, and no worker taking jobs out of it
    with app.app_context():
        monkeypatch.setattr(ops, "QUEUE_DEPTH_DEGRADED", 2)
        client = app.test_client()
        for _ in range(2):
            get_jobs().outbox_changed()
        assert _health(client)[1]["status"] == "ok"  # at the threshold
        get_jobs().outbox_changed()
        status, body, _ = _health(client)
        assert (status, body["status"], body["checks"]["queue"]) == (
            200, "degraded", {"status": "degraded", "pending": 3, "ms": body["checks"]["queue"]["ms"]}), body
        db.session.remove()
        db.engine.dispose()


def test_an_unreachable_queue_is_degraded_not_down(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: a Redis server that is gone
    app = _ready(tmp_path, QUEUE="redis", REDIS_URL=f"redis://:queue-password@127.0.0.1:{closed}/0")
    with app.app_context():
        response = app.test_client().get("/healthz")
        body = response.get_json()
        assert (response.status_code, body["status"], body["checks"]["queue"]["status"]) == (200, "degraded", "down")
        assert body["checks"]["queue"]["error"] == "ConnectionError"
        text = response.get_data(as_text=True)
        assert str(closed) not in text and "queue-password" not in text  # case 41
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def s3_behind_proxy(s3_config: dict[str, Any]) -> Iterator[tuple[dict[str, Any], FaultProxy]]:
    from urllib.parse import urlsplit

    upstream = urlsplit(s3_config["S3_ENDPOINT"])
    with FaultProxy(upstream.hostname or "127.0.0.1", upstream.port or 80) as proxy:
        yield {**s3_config, "S3_ENDPOINT": proxy.endpoint, "S3_CONNECT_TIMEOUT": 2.0, "S3_READ_TIMEOUT": 3.0,
               "S3_MAX_ATTEMPTS": 2}, proxy


def test_an_unreachable_or_hanging_store_is_down_quickly_and_says_no_more(
        tmp_path: Path, s3_behind_proxy: tuple[dict[str, Any], FaultProxy]) -> None:
    """Cases 43, 44: S3 refusing connections or accepting and never answering. The answer comes within about a
    second either way; probes during a hang join the one waiting check instead of starting more."""
    settings, proxy = s3_behind_proxy
    app = _ready(tmp_path, **settings)
    with app.app_context():
        client = app.test_client()
        assert _health(client)[1]["status"] == "ok"

        proxy.refuse()
        status, body, seconds = _health(client)
        assert (status, body["status"], body["checks"]["store"]["status"]) == (503, "down", "down"), body
        assert seconds < QUICK
        assert body["checks"]["database"]["status"] == "ok"

        proxy.blackhole()
        answers = [_health(client) for _ in range(3)]
        for status, body, seconds in answers:
            assert (status, body["checks"]["store"]["status"]) == (503, "down"), body
            assert body["checks"]["store"]["error"] == f"no answer within {ops.CHECK_SECONDS} s"
            assert seconds < QUICK, seconds
        waiting = [t for t in threading.enumerate() if t.name == "healthz-store"]
        assert len(waiting) == 1, "each probe of a hanging store started a thread of its own"

        for secret in (settings["S3_SECRET_KEY"], settings["S3_ACCESS_KEY"], settings["S3_BUCKET"], str(proxy.port)):
            assert secret not in client.get("/healthz").get_data(as_text=True)  # case 41

        proxy.passing()  # also resets the hanging connection: the waiting check ends
        deadline = time.monotonic() + 15
        while _health(client)[0] != 200:
            assert time.monotonic() < deadline, "the store came back but /healthz did not follow"
            time.sleep(0.2)
        assert _health(client)[1]["status"] == "ok"
        db.session.remove()
        db.engine.dispose()


def test_a_stopped_database_is_down_and_metrics_say_so_too(tmp_path: Path) -> None:
    """A PostgreSQL server of this test's own, stopped under the running app."""
    server = PostgresServer()
    try:
        server.start()
        url = server.create_database()
        app = _ready(tmp_path, DATABASE_URL=url, METRICS_TOKEN=TOKEN)
        with app.app_context():
            client = app.test_client()
            assert _health(client)[:2][0] == 200
            assert metrics.total(_scrape(client), "brucken_database_up") == 1

            server.stop()
            status, body, seconds = _health(client)
            assert (status, body["status"], body["checks"]["database"]["status"]) == (503, "down", "down"), body
            assert body["checks"]["store"]["status"] == "ok"
            assert seconds < QUICK
            text = client.get("/healthz").get_data(as_text=True)
            assert str(server.port) not in text and "postgres" not in text.lower()  # case 41
            scrape = _scrape(client)  # the counters still come; the database's figures are left out
            assert metrics.total(scrape, "brucken_database_up") == 0
            assert "brucken_photos{" not in scrape
            db.session.remove()
            db.engine.dispose()
    finally:
        server.stop()


def test_trusted_hosts_hold_for_the_operators_pages_too(tmp_path: Path) -> None:
    """Case 42."""
    app = _ready(tmp_path, TRUSTED_HOSTS=["archiv.example.org"], METRICS_TOKEN=TOKEN)
    with app.app_context():
        client = app.test_client()
        assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
        assert client.get("/healthz", headers={"Host": "archiv.example.org"}).status_code == 200
        # With a bearer token the login machinery looks at the token before the Host is refused (a 401 then, as on
        # every route): either way a foreign Host gets no figures.
        foreign = client.get("/metrics", headers={**BEARER, "Host": "evil.example"})
        assert foreign.status_code in (400, 401) and "brucken_" not in foreign.get_data(as_text=True)
        assert client.get("/metrics", headers={**BEARER, "Host": "archiv.example.org"}).status_code == 200
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------------------------------------------------
# /metrics


def test_metrics_are_off_without_a_token_and_a_wrong_token_gets_the_same_404(tmp_path: Path) -> None:
    off = _ready(tmp_path / "off")
    with off.app_context():
        client = off.test_client()
        for headers in ({}, {"Authorization": "Bearer "}, BEARER):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 404, headers
        metrics_off = response.get_data()
        db.session.remove()
        db.engine.dispose()
    on = _ready(tmp_path / "on", METRICS_TOKEN=TOKEN)
    with on.app_context():
        client = on.test_client()
        for headers in ({}, {"Authorization": "Bearer falsch"}, {"Authorization": f"Bearer {TOKEN}x"},
                        {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN.upper()}"}):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 404, headers
            # Word for word the answer of an archive without metrics: a wrong token does not learn they are on.
            assert response.get_data() == metrics_off, headers
            assert "Set-Cookie" not in response.headers
        right = client.get("/metrics", headers=BEARER)
        assert right.status_code == 200
        assert right.headers["Content-Type"].startswith("text/plain; version=")
        assert right.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in right.headers
        assert "# TYPE brucken_uploads_total counter" in right.get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()


def test_metrics_count_uploads_searches_requests_and_read_the_archive(ready: Flask,
                                                                      people: dict[str, Any]) -> None:
    client = ready.test_client()
    login(client, "mia")
    before = _scrape(client)

    assert upload(client, [(jpeg_bytes((10, 20, 30)), "a.jpg"), (jpeg_bytes((40, 50, 60)), "b.jpg")]).status_code == 201
    assert upload(client, [(jpeg_bytes((10, 20, 30)), "a-again.jpg")]).status_code == 200  # a duplicate
    refused = upload(client, [(b"%PDF-1.4 not a photo", "brief.jpg")])
    code = refused.get_json()["results"][0]["reason"]["code"]
    searches = {"search.page": 3, "search.api": 2}
    for _ in range(searches["search.page"]):
        assert client.get("/search?q=Br%C3%BCcke").status_code == 200
    for _ in range(searches["search.api"]):
        assert client.get("/api/v1/search?q=Rhein").status_code == 200

    after = _scrape(client)

    def grew(name: str, **labels: str) -> float:
        return metrics.total(after, name, labels) - metrics.total(before, name, labels)

    assert grew("brucken_uploads_total", outcome="archived") == 2
    assert grew("brucken_uploads_total", outcome="duplicate") == 1
    assert grew("brucken_uploads_total", outcome="refused", reason=code) == 1
    for endpoint, count in searches.items():
        assert grew("brucken_search_duration_seconds_count", endpoint=endpoint) == count
        assert grew("brucken_http_request_duration_seconds_count", endpoint=endpoint, status_class="2xx") == count
    assert grew("brucken_search_duration_seconds_count") == sum(searches.values())
    assert grew("brucken_http_request_duration_seconds_count", endpoint="upload.receive") == 3
    # The scrapes themselves are not counted among the requests.
    assert metrics.total(after, "brucken_http_request_duration_seconds_count", {"endpoint": "ops.metrics"}) == 0

    # Read from the database at scrape time: every photo by its status, and how many were processed.
    by_status = dict(db.session.execute(select(Photo.status, func.count(Photo.id)).group_by(Photo.status)).all())
    assert sum(by_status.values()) == 2
    for status, count in by_status.items():
        assert metrics.total(after, "brucken_photos", {"status": str(status)}) == count
    assert metrics.total(after, "brucken_photos_processed") == db.session.scalar(
        select(func.count(Photo.id)).where(Photo.processed_at.is_not(None)))
    assert metrics.total(after, "brucken_jobs_pending") == 0
    assert metrics.total(after, "brucken_index_lag_events") == 0  # the immediate queue indexed everything
    newest = db.session.scalar(select(func.max(OutboxEvent.id)))
    assert metrics.total(after, "brucken_outbox_newest_event") == newest > 0
    has_failed_list = inspect(db.engine).has_table("failed_jobs")
    assert ("brucken_jobs_failed " in after) == has_failed_list

    db.session.add(OutboxEvent(topic="photo.changed"))  # a change the index has not seen yet
    db.session.commit()
    assert metrics.total(_scrape(client), "brucken_index_lag_events") == 1


# --------------------------------------------------------------------------------------------------------------------
# The real gunicorn with gunicorn.conf.py


def _wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("gunicorn did not come up:\n" + log.read_text())
        time.sleep(0.2)


def _per_process_search_counts(metrics_dir: Path, scratch: Path) -> dict[str, float]:
    """pid -> searches counted by that worker alone (its own file, read on its own)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for file in sorted(metrics_dir.glob("histogram_*.db")):
        alone = scratch / file.stem
        alone.mkdir(parents=True)
        shutil.copy(file, alone / file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[file.stem.split("_", 1)[1]] = metrics.total(generate_latest(registry).decode(),
                                                           "brucken_search_duration_seconds_count")
    return counts


@pytest.mark.slow
def test_gunicorn_with_two_workers_sums_what_each_counted(tmp_path: Path) -> None:
    port = free_port()
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHIVE_", "PROMETHEUS_"))}
    env.update(ARCHIVE_INSTANCE_DIR=str(instance), ARCHIVE_UPLOAD_DIR=str(tmp_path / "uploads"),
               ARCHIVE_INDEX_DIR=str(tmp_path / "index"), ARCHIVE_PORT=str(port), ARCHIVE_WEB_WORKERS="2",
               ARCHIVE_WEB_THREADS="1", ARCHIVE_METRICS_TOKEN=TOKEN, ARCHIVE_QUEUE="immediate",
               **database_env(instance))
    init = subprocess.run([sys.executable, "-m", "archive", "init"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    # A count left from an earlier run in the folder must not be added to this run's.
    metrics_dir = instance / "prometheus"
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_999999.db").write_bytes(b"left over")

    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                                   "archive:create_app()"], env=env, cwd=tmp_path, stdout=output,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server, log)
        assert not (metrics_dir / "counter_999999.db").exists()

        def search(_n: int) -> int:
            # A connection of its own each time (no pool): every search is a new accept, by either worker.
            return requests.get(f"{base}/api/v1/search?q=Br%C3%BCcke", timeout=30,
                                headers={"Connection": "close"}).status_code

        sent = 0
        with ThreadPoolExecutor(max_workers=6) as pool:
            while True:
                assert all(status == 200 for status in pool.map(search, range(24)))
                sent += 24
                counted = _per_process_search_counts(metrics_dir, tmp_path / f"scratch-{sent}")
                if len([pid for pid, count in counted.items() if count > 0]) >= 2 or sent >= 480:
                    break
        assert len([count for count in counted.values() if count > 0]) == 2, \
            f"the searches did not reach both workers: {counted}"
        assert sum(counted.values()) == sent

        scrape = requests.get(f"{base}/metrics", headers=BEARER, timeout=30)
        assert scrape.status_code == 200
        # Whichever worker answered, the scrape holds both workers' searches.
        assert metrics.total(scrape.text, "brucken_search_duration_seconds_count") == sent
        assert metrics.total(scrape.text, "brucken_http_request_duration_seconds_count",
                             {"endpoint": "search.api", "status_class": "2xx"}) == sent
        health = requests.get(f"{base}/healthz", timeout=30)
        assert health.json()["status"] == "ok" and health.headers["Cache-Control"] == "no-store"
        assert "ms " in log.read_text() or "ms \"" in log.read_text()  # the access log carries durations
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, log.read_text()


def test_gunicorn_conf_reads_the_archives_settings(tmp_path: Path) -> None:
    """The values gunicorn takes from the settings: address, processes, proxies, the Prometheus folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHIVE_", "PROMETHEUS_", "FORWARDED_"))}
    env.update(ARCHIVE_INSTANCE_DIR=str(tmp_path / "i"), ARCHIVE_HOST="::1", ARCHIVE_PORT="8123",
               ARCHIVE_WEB_WORKERS="3", ARCHIVE_WEB_THREADS="5", ARCHIVE_TRUSTED_PROXIES="0")

    def printed(**extra: str) -> dict[str, str]:
        done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                               "--print-config", "archive:create_app()"], env={**env, **extra},
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return {name.strip(): value.strip() for name, _, value in
                (line.partition("=") for line in done.stdout.splitlines()) if value}

    config = printed()
    assert config["bind"] == "['[::1]:8123']"
    assert (config["workers"], config["threads"], config["worker_class"]) == ("3", "5", "gthread")
    assert config["forwarded_allow_ips"] == "[]"  # no proxies: nobody's X-Forwarded-* counts
    assert int(config["max_requests"]) > 0 and int(config["max_requests_jitter"]) > 0
    assert config["accesslog"] == "-"
    assert config["control_socket"] == str(tmp_path / "i" / "gunicorn.ctl")
    behind = printed(ARCHIVE_TRUSTED_PROXIES="1", FORWARDED_ALLOW_IPS="10.0.0.0/8")
    assert behind["forwarded_allow_ips"] == "['10.0.0.0/8']"
    assert printed(ARCHIVE_TRUSTED_PROXIES="2")["forwarded_allow_ips"] == "['*']"
