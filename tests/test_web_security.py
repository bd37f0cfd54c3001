"""Web security (catalogue section 8 (B) and (C), and section 7 on Flask): the headers on every kind of answer,
CSRF on every state-changing route with the protection switched on, the session cookie, open redirects, user
enumeration and the login limit (also across several gunicorn workers at once), injection through search and
filter parameters, the Host header, the secret key, what a 500 shows, and the S3 bucket and signed links.

Most tests use the test client on an app of their own; the worker test starts the real archive (gunicorn), the
S3 tests use the real radosgw of tests/servers/fixtures.py.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from archive import accounts
from archive.auth import hash_password
from archive.models import Association, LoginFailure, Photo, PhotoStatus, Role, User, db
from tests.access_rules import ADMIN, CURATOR, USERNAMES
from tests.conftest import PASSWORD, IsolatedClient, login, make_ready_app, settings_for
from tests.photos import complete_bundle, publish, upload_one
from tests.servers.database import fingerprint
from tests.servers.fixtures import admin_client
from tests.servers.radosgw import ExternalS3Server
from tests.test_access_matrix import Archive, archive  # noqa: F401 (fixture: every kind of thing, real ids)

# --------------------------------------------------------------------------------------------------------------------
# Case 55: the login limit holds across several web worker processes, also for attempts fired at the same moment

WORKERS = 4
NAME_LIMIT = 10  # LOGIN_MAX_FAILURES_PER_NAME's default


def _csrf_ready_session(base: str) -> tuple[requests.Session, str]:
    """A browser of its own: the login page's session cookie and CSRF token, on a connection closed at once."""
    browser = requests.Session()
    browser.headers["Connection"] = "close"  # no keep-alive: every request may land on another worker
    page = browser.get(f"{base}/login", timeout=30).text
    return browser, re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def _until_several_workers_answer(base: str, log: Path, seconds: float = 90) -> None:
    """The server is up when one worker answers; on a busy machine the others may still be starting, and the
    attempts would all land on the first. Wait until at least two workers have answered."""
    deadline = time.monotonic() + seconds
    while len(set(re.findall(r"GET /login\S* HTTP/1.1 200 pid=<(\d+)>", log.read_text()))) < 2:
        assert time.monotonic() < deadline, "only one web worker answered"
        requests.get(f"{base}/login", headers={"Connection": "close"}, timeout=30)
        time.sleep(0.1)


@pytest.mark.slow
def test_the_login_limit_holds_exactly_across_workers_even_for_simultaneous_attempts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers.archive import running_archive

    # gunicorn's access log names the worker process that answered each request.
    # Sync workers take one connection at a time, so simultaneous attempts spread over the processes (a gthread
    # worker may accept all of them at once): the processes, not the threads, are what this test is about.
    monkeypatch.setenv("GUNICORN_CMD_ARGS", '--access-logformat="%(r)s %(s)s pid=%(p)s" --worker-class=sync')
    attempts = 3 * NAME_LIMIT
    with running_archive(tmp_path, WEB_WORKERS=str(WORKERS)) as (base, _password):
        _until_several_workers_answer(base, tmp_path / "run.log")
        browsers = [_csrf_ready_session(base) for _ in range(attempts)]
        start = threading.Barrier(attempts)
        answers: list[requests.Response] = []

        def guess(browser: requests.Session, token: str) -> None:
            start.wait()
            answers.append(browser.post(f"{base}/login", data={"username": "admin", "password": "wrong guess",
                                                                "csrf_token": token}, timeout=60))

        threads = [threading.Thread(target=guess, args=browser) for browser in browsers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = Counter(answer.status_code for answer in answers)
        # Exactly the limit were checked and failed; every other one was refused before the password was looked at.
        assert statuses == {401: NAME_LIMIT, 429: attempts - NAME_LIMIT}, statuses
        assert all(int(a.headers["Retry-After"]) > 0 for a in answers if a.status_code == 429)
        # Later, one at a time, still refused: the right password too.
        browser, token = _csrf_ready_session(base)
        late = browser.post(f"{base}/login", data={"username": "admin", "password": _password, "csrf_token": token},
                            timeout=30)
        assert late.status_code == 429 and "Retry-After" in late.headers
    pids = set(re.findall(r"POST /login\S* HTTP/1.1 4\d\d pid=<(\d+)>", (tmp_path / "run.log").read_text()))
    assert len(pids) >= 2, f"all attempts went to one worker: {pids}"


def test_attempts_reserved_at_the_same_moment_cannot_both_pass(app: Flask, people: dict[str, User]) -> None:
    """The interleaving the worker test above provokes, one step at a time: two attempts both reach the point
    before their passwords are checked. Only the limit's worth may get past it."""
    throttle = accounts.Throttle(window=timedelta(minutes=15), per_name=1, per_address=100)
    accounts.reserve_login_attempt(db.session, "mia", "10.0.0.1", throttle)  # the first: its password is checked
    with pytest.raises(accounts.TooManyAttempts):
        accounts.reserve_login_attempt(db.session, "mia", "10.0.0.2", throttle)  # the second, meanwhile: refused
    # The refused one was taken back: only the first counts (for the name and for its address).
    assert list(db.session.scalars(select(LoginFailure.address))) == ["10.0.0.1"]
    accounts.clear_login_failures(db.session, "mia")  # the first had the right password after all
    accounts.reserve_login_attempt(db.session, "mia", "10.0.0.2", throttle)


# --------------------------------------------------------------------------------------------------------------------
# Helpers: apps of our own, people, a published photo


def _ready(tmp_path: Path, **extra: Any) -> Flask:
    app = make_ready_app(settings_for(tmp_path, **extra))
    app.test_client_class = IsolatedClient
    return app


def _add_people() -> dict[str, User]:
    pasadena = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    made = {"member": User(username="mia", role=Role.MEMBER, association_id=pasadena,
                           password_hash=hash_password(PASSWORD)),
            "curator": User(username="cora", role=Role.CURATOR, password_hash=hash_password(PASSWORD))}
    db.session.add_all(made.values())
    db.session.commit()
    return made


def _published_photo(app: Flask, people: dict[str, User]) -> int:
    member = app.test_client()
    login(member, "mia")
    photo_id = upload_one(member)
    complete_bundle(photo_id, people["member"])
    publish(photo_id, people["curator"])
    return photo_id


def _token(page: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def _browser_logged_in(app: Flask, username: str) -> tuple[FlaskClient, str]:
    """With CSRF switched on: a browser that logged in through the form, and the token of its session."""
    browser = app.test_client()
    token = _token(browser.get("/login").get_data(as_text=True))
    response = browser.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser, _token(browser.get("/password").get_data(as_text=True))


def _cookie(response: Any, name: str) -> str:
    """The Set-Cookie header of ``name`` (one line, attributes included)."""
    found = [value for value in response.headers.getlist("Set-Cookie") if value.startswith(f"{name}=")]
    assert found, f"no {name} cookie in {response.headers.getlist('Set-Cookie')}"
    return found[-1]


# --------------------------------------------------------------------------------------------------------------------
# Case 35: security headers on every kind of answer; HSTS only over TLS; no-store on pages for someone logged in


def _assert_headers(response: Any, what: str, *, tls: bool = False) -> None:
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'",
                      "frame-ancestors 'none'"):
        assert directive in policy, f"{what}: CSP lacks {directive!r}: {policy!r}"
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("Referrer-Policy") in {"same-origin", "no-referrer", "strict-origin",
                                              "strict-origin-when-cross-origin"}, what
    assert ("Strict-Transport-Security" in headers) == tls, f"{what}: HSTS must come exactly with TLS"
    if tls:
        assert int(headers["Strict-Transport-Security"].split("max-age=")[1].split(";")[0]) >= 180 * 86400, what


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_every_kind_of_answer_carries_the_security_headers(tmp_path: Path, tls: bool) -> None:
    app = _ready(tmp_path, MAX_REQUEST_BYTES=50_000)
    base = "https://localhost" if tls else "http://localhost"
    with app.app_context():
        people = _add_people()
        photo_id = _published_photo(app, people)
        visitor, curator = app.test_client(), app.test_client()
        login(curator, "cora")
        answers = {
            "HTML page": (visitor.get("/", base_url=base), 200),
            "JSON API": (visitor.get("/api/v1/search?q=Rhein", base_url=base), 200),
            "404 page": (visitor.get("/gibt-es-nicht", base_url=base), 404),
            "404 JSON": (visitor.get("/api/v1/gibt-es-nicht", base_url=base), 404),
            "405": (visitor.get("/logout", base_url=base), 405),
            "413": (curator.post("/upload", base_url=base, data={"photos": [(io.BytesIO(b"x" * 60_000), "a.jpg")]},
                                 content_type="multipart/form-data"), 413),
            "redirect to the login": (visitor.get("/photos", base_url=base), 302),
            "redirect of the language switch": (visitor.get("/sprache/en?next=/", base_url=base), 303),
            "thumbnail": (visitor.get(f"/media/{photo_id}/thumb.webp", base_url=base), 200),
            "original download": (curator.get(f"/photos/{photo_id}/original", base_url=base), 200),
            "static file": (visitor.get("/static/style.css", base_url=base), 200),
            "atom feed": (visitor.get("/feed.atom", base_url=base), 200),
        }
        for what, (response, status) in answers.items():
            assert response.status_code == status, (what, response.status_code)
            _assert_headers(response, what, tls=tls)
            response.close()
        original = answers["original download"][0]
        assert original.headers["Content-Disposition"].startswith("attachment")
        db.session.remove()
        db.engine.dispose()

    strict = _ready(tmp_path / "csrf", WTF_CSRF_ENABLED=True)
    with strict.app_context():
        refused = strict.test_client().post("/login", base_url=base, data={"username": "x", "password": "y"})
        assert refused.status_code == 400
        _assert_headers(refused, "CSRF refusal", tls=tls)
        db.session.remove()
        db.engine.dispose()


def test_a_500_shows_no_traceback_and_keeps_the_headers(tmp_path: Path) -> None:
    """Case 41: as in production (TESTING off, DEBUG off), an error in a view is a plain 500 page."""
    app = make_ready_app({**settings_for(tmp_path), "TESTING": False,
                          "SECRET_KEY": "a-long-enough-secret-key-for-this-test-0123456789"})
    assert app.debug is False and app.testing is False

    def broken() -> str:
        raise RuntimeError("secret detail: /srv/brucken/config.py line 12")

    app.add_url_rule("/kaputt", "broken", broken)
    with app.app_context():
        for accept in ("text/html", "application/json"):
            response = app.test_client().get("/kaputt", headers={"Accept": accept})
            body = response.get_data(as_text=True)
            assert response.status_code == 500
            assert "Traceback" not in body and "secret detail" not in body and "RuntimeError" not in body
            assert "Werkzeug Debugger" not in body and "__debugger__" not in body
            _assert_headers(response, f"500 ({accept})")
        db.session.remove()
        db.engine.dispose()


def test_hsts_follows_the_scheme_a_trusted_proxy_reports_and_only_then(tmp_path: Path) -> None:
    behind = _ready(tmp_path / "behind", TRUSTED_PROXIES=1)
    direct = _ready(tmp_path / "direct")
    forwarded = {"X-Forwarded-Proto": "https"}
    with behind.app_context():
        assert "Strict-Transport-Security" in behind.test_client().get("/login", headers=forwarded).headers
    with direct.app_context():
        # Without trusted proxies anyone could send the header: it is ignored.
        assert "Strict-Transport-Security" not in direct.test_client().get("/login", headers=forwarded).headers
    for app in (behind, direct):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_pages_for_someone_logged_in_are_not_stored_by_caches(app: Flask, client: FlaskClient,
                                                                people: dict[str, User]) -> None:
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")  # public pages may be cached
    login(client, "mia")
    for path in ("/photos", "/account", "/upload", "/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response.headers.get("Cache-Control", ""), path


# --------------------------------------------------------------------------------------------------------------------
# Case 31: CSRF on every state-changing route (with the protection on), and no state change on GET

# Routes a cookie session may change state on without the form's token: none. Requests that carry a bearer token
# (scripts, /api/...) skip the CSRF check as a class, whatever the route, because a browser never sends that header
# across sites (tested in tests/test_accounts.py::test_csrf_is_needed_with_a_cookie_but_not_with_a_token).
CSRF_EXEMPT_FOR_COOKIES: dict[str, str] = {}

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _fingerprint(app: Flask) -> str:
    return fingerprint(app)


def _every_url(scene: Archive, methods: set[str]) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every rule with one of ``methods``, with real ids of the archive's things."""
    from flask import url_for

    found = []
    with scene.app.test_request_context():
        for rule in scene.app.url_map.iter_rules():
            values: dict[str, Any] = {name: scene.values.get(name, 1) for name in rule.arguments}
            if "photo_id" in rule.arguments:
                values["photo_id"] = scene.photos[PhotoStatus.SUBMITTED]
            if "lang" in rule.arguments:
                values["lang"] = "en"
            for method in sorted((rule.methods or set()) & methods):
                found.append((rule.endpoint, method, url_for(rule.endpoint, **values)))
    return found


def test_no_state_changing_route_works_for_a_cookie_without_the_forms_token(archive: Archive) -> None:  # noqa: F811
    """As the admin, who may do everything, so a refusal can only come from the CSRF check: no token, a wrong one,
    another session's token. Each answer is the 400 "reload the form" refusal, and the database is untouched."""
    archive.app.config["WTF_CSRF_ENABLED"] = True
    try:
        admin, _own = _browser_logged_in(archive.app, USERNAMES[ADMIN])
        _someone, others_token = _browser_logged_in(archive.app, USERNAMES[CURATOR])
        before = _fingerprint(archive.app)
        routes = [r for r in _every_url(archive, STATE_CHANGING) if r[0] not in CSRF_EXEMPT_FOR_COOKIES]
        assert len(routes) >= 50
        wrong = []
        for endpoint, method, url in routes:
            for label, token in (("no token", None), ("a wrong token", "IjEyMzQ1Ig.wrong.token"),
                                 ("another session's token", others_token)):
                data = {"name": "x", "role": "admin", "action": "publish", "title": "x"}
                headers = {}
                if token is not None:
                    data["csrf_token"] = token
                    headers["X-CSRFToken"] = token
                response = admin.open(url, method=method, data=data, headers=headers)
                code = (response.get_json(silent=True) or {}).get("error", {}).get("code")
                if response.status_code != 400 or ("Seite neu" not in response.get_data(as_text=True)
                                                   and code != "form_expired"):
                    wrong.append(f"{method} {url} ({endpoint}) with {label}: {response.status_code}")
        assert not wrong, "\n".join(wrong)
        assert _fingerprint(archive.app) == before
        # The admin's own token gets through the same check (the refusals above were the CSRF check's).
        admin_again, own = _browser_logged_in(archive.app, USERNAMES[ADMIN])
        assert admin_again.post("/account/name", data={"display_name": "Ada", "csrf_token": own}).status_code < 400
        assert _fingerprint(archive.app) != before
    finally:
        archive.app.config["WTF_CSRF_ENABLED"] = False


def test_no_get_changes_anything(archive: Archive) -> None:  # noqa: F811
    """ASVS 3.5.3: every GET, as the admin (who reaches every page), leaves the database as it was."""
    client = archive.app.test_client()
    login(client, USERNAMES[ADMIN])
    before = _fingerprint(archive.app)
    changed = []
    routes = _every_url(archive, {"GET"})
    assert len(routes) >= 40
    for endpoint, _method, url in routes:
        client.get(url).close()
        if _fingerprint(archive.app) != before:
            changed.append(f"GET {url} ({endpoint})")
            before = _fingerprint(archive.app)
    assert not changed, "a GET changed the database:\n" + "\n".join(changed)


# --------------------------------------------------------------------------------------------------------------------
# Case 33: the session cookie's attributes


def test_the_session_cookie_is_httponly_lax_and_secure_over_tls(app: Flask, client: FlaskClient,
                                                                 people: dict[str, User]) -> None:
    plain = _cookie(client.post("/login", data={"username": "mia", "password": PASSWORD}), "session")
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Path=/" in plain and "Domain" not in plain
    assert "Secure" not in plain  # plain http on a laptop: a Secure cookie would never come back
    tls = app.test_client()
    secure = _cookie(tls.post("/login", base_url="https://localhost",
                              data={"username": "mia", "password": PASSWORD}), "session")
    assert "Secure" in secure and "HttpOnly" in secure and "SameSite=Lax" in secure
    assert tls.get("/account", base_url="https://localhost").status_code == 200


def test_with_secure_cookies_configured_the_cookie_is_host_only(tmp_path: Path) -> None:
    """What a production site file sets behind TLS (README): SESSION_COOKIE_SECURE = True. The cookie is then
    named __Host-session, which browsers accept only as Secure, Path=/ and without Domain."""
    app = _ready(tmp_path, SESSION_COOKIE_SECURE=True)
    with app.app_context():
        _add_people()
        client = app.test_client()
        cookie = _cookie(client.post("/login", base_url="https://localhost",
                                     data={"username": "mia", "password": PASSWORD}), "__Host-session")
        assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie and "HttpOnly" in cookie
        assert client.get("/account", base_url="https://localhost").status_code == 200
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------------------------------------------------
# Case 34: a new session at login; logging out ends a copied cookie (also tests/test_accounts.py)


def test_logging_in_starts_a_fresh_session_and_a_planted_one_gives_nothing(tmp_path: Path) -> None:
    app = _ready(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        _add_people()
        browser = app.test_client()
        before_token = _token(browser.get("/login").get_data(as_text=True))
        with browser.session_transaction() as planted:
            planted["planted"] = "by someone else"
        before_cookie = browser.get_cookie("session").value
        assert browser.post("/login", data={"username": "mia", "password": PASSWORD,
                                            "csrf_token": before_token}).status_code == 302
        assert browser.get_cookie("session").value != before_cookie
        with browser.session_transaction() as now:
            assert "planted" not in now  # the session was cleared, not carried over
        # The token from before the login (known to whoever planted the cookie) does not work in the new session.
        refused = browser.post("/account/name", data={"display_name": "Eve", "csrf_token": before_token})
        assert refused.status_code == 400
        # The cookie from before the login is still nobody.
        planter = app.test_client()
        planter.set_cookie("session", before_cookie)
        assert planter.get("/account").status_code == 302
        fresh = _token(browser.get("/account").get_data(as_text=True))
        assert browser.post("/account/name", data={"display_name": "Mia", "csrf_token": fresh}).status_code == 302
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------------------------------------------------
# Case 37 (the ?next= part) and 42: redirects stay on this site

ELSEWHERE = ["//evil.example/x", "https://evil.example/x", "http:evil.example", "javascript:alert(1)",
             "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/%2F%2Fevil.example"[0:1] + "/evil.example",
             "%2F%2Fevil.example", "evil.example", " //evil.example", "/\r\n//evil.example", "///evil.example"]


def _stays_here(location: str) -> bool:
    parts = urlsplit(location)
    return (not parts.scheme and not parts.netloc and location.startswith("/") and not location.startswith("//")
            and "\\" not in location and not any(ord(c) < 0x21 for c in location))


@pytest.mark.parametrize("target", ELSEWHERE)
def test_the_login_never_sends_people_to_another_site(client: FlaskClient, people: dict[str, User],
                                                      target: str) -> None:
    response = client.post(f"/login?{urlencode({'next': target})}", data={"username": "mia", "password": PASSWORD})
    assert response.status_code == 302
    assert _stays_here(response.headers["Location"]), response.headers["Location"]
    assert response.headers["Location"] == "/photos"


@pytest.mark.parametrize("target", ELSEWHERE)
def test_the_language_switch_never_sends_people_to_another_site(client: FlaskClient, target: str) -> None:
    response = client.get(f"/sprache/en?{urlencode({'next': target})}")
    assert response.status_code == 303
    assert response.headers["Location"] == "/", response.headers["Location"]


def test_a_path_of_this_site_is_kept(client: FlaskClient, people: dict[str, User]) -> None:
    to = "/photos?association=pasadena"
    assert client.post(f"/login?{urlencode({'next': to})}",
                       data={"username": "mia", "password": PASSWORD}).headers["Location"] == to
    assert client.get(f"/sprache/de?{urlencode({'next': to})}").headers["Location"] == to


# --------------------------------------------------------------------------------------------------------------------
# Case 39: no user enumeration; the limit per name and per address; forged X-Forwarded-For


def _login_answer(client: FlaskClient, username: str, password: str) -> tuple[int, str]:
    response = client.post("/login", data={"username": username, "password": password})
    return response.status_code, response.get_data(as_text=True).replace(username, "NAME")


def test_an_unknown_name_and_a_wrong_password_get_the_same_answer_in_the_same_time(
        app: Flask, client: FlaskClient, people: dict[str, User]) -> None:
    people["other_member"].active = False  # a disabled account answers the same way, too
    db.session.commit()
    known = _login_answer(client, "mia", "falsch-falsch")
    assert known[0] == 401
    assert _login_answer(client, "niemand", "falsch-falsch") == known
    assert _login_answer(client, "omar", PASSWORD) == known
    # The timing: an unknown name is checked against a dummy hash, so it takes as long as a known one.
    accounts.clear_login_failures(db.session, "mia")

    def median(name: str) -> float:
        times = []
        for _ in range(7):
            start = time.perf_counter()
            client.post("/login", data={"username": name, "password": "falsch-falsch"},
                        environ_base={"REMOTE_ADDR": f"10.9.{len(times)}.{len(name)}"})
            times.append(time.perf_counter() - start)
            accounts.clear_login_failures(db.session, name)
        return sorted(times)[len(times) // 2]

    median("mia")  # warm up (the dummy hash is made once)
    median("niemand")
    known_time, unknown_time = median("mia"), median("niemand")
    assert 0.5 < unknown_time / known_time < 2.0, (known_time, unknown_time)


def test_the_limit_answers_the_same_for_known_and_unknown_names(strict: Flask, client: FlaskClient,
                                                                 people: dict[str, User]) -> None:
    answers = {}
    for name, address in (("mia", "10.1.0.1"), ("niemand", "10.1.0.2")):
        for _ in range(3):
            client.post("/login", data={"username": name, "password": "falsch"}, environ_base={"REMOTE_ADDR": address})
        response = client.post("/login", data={"username": name, "password": "falsch"},
                               environ_base={"REMOTE_ADDR": address})
        answers[name] = (response.status_code, response.headers.get("Retry-After") is not None,
                         response.get_data(as_text=True).replace(name, "NAME"))
    assert answers["mia"] == answers["niemand"]
    assert answers["mia"][:2] == (429, True)


@pytest.fixture
def strict(app: Flask) -> Flask:
    app.config.update(LOGIN_MAX_FAILURES_PER_NAME=3, LOGIN_MAX_FAILURES_PER_ADDRESS=5, LOGIN_WINDOW_MINUTES=15)
    return app


def test_a_forged_forwarded_for_cannot_get_past_the_limit_behind_one_proxy(tmp_path: Path) -> None:
    """With TRUSTED_PROXIES=1 only the address the proxy itself appended counts; what the guesser put in front of
    it (a new made-up address each time) does not."""
    app = _ready(tmp_path, TRUSTED_PROXIES=1, LOGIN_MAX_FAILURES_PER_NAME=100, LOGIN_MAX_FAILURES_PER_ADDRESS=5)
    with app.app_context():
        _add_people()
        client = app.test_client()
        answers = [client.post("/login", data={"username": f"name{i}", "password": "falsch"},
                               headers={"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.1"}).status_code
                   for i in range(7)]
        assert answers == [401] * 5 + [429] * 2
        assert set(db.session.scalars(select(LoginFailure.address))) == {"198.51.100.1"}
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------------------------------------------------
# Case 38 and 37 (the search query): injection through parameters, and the query echoed on the page

SECRET_CAPTION = "Geheimprojekt Zeppelin"

ODD_PARAMETERS = [
    "sort=name;DROP TABLE photos", "sort=date desc,(select 1)", "order=desc,(select+password_hash+from+users)",
    "association=1 OR 1=1", "association=pasadena' OR '1'='1", "status=draft", "status=submitted",
    "q=caption:* OR published:false", "q=status:submitted", "q=*", "q=Geheimprojekt OR *",
    "q=association:pasadena Geheimprojekt", "q=(((((", "q=\"", "q=Geheim*", "q=Geheimprojekt~2",
    "page=-1", "page=abc", "page=99999999999999999999", "year=abc", "year=99999999999999999999",
    "year=²",
    "year=1900&year=3000", "q=" + "a" * 5000, "q=%00", "tag=' OR 1=1 --", "licence=%25",
]


@pytest.fixture
def with_a_secret(app: Flask, client: FlaskClient, people: dict[str, User]) -> int:
    """One published photo and one not yet published whose caption nobody outside may find."""
    published = _published_photo(app, people)
    login(client, "mia")
    hidden = upload_one(client, (5, 80, 160))
    complete_bundle(hidden, people["member"], caption=f"{SECRET_CAPTION} am Rhein", title=SECRET_CAPTION)
    client.post("/logout")
    return published


@pytest.mark.parametrize("query", ODD_PARAMETERS)
def test_odd_search_and_filter_parameters_are_refused_or_ignored_never_an_error(
        client: FlaskClient, with_a_secret: int, query: str) -> None:
    for path in ("/search", "/api/v1/search", "/photos", "/"):
        response = client.get(f"{path}?{query}")
        body = response.get_data(as_text=True)
        assert response.status_code in (200, 302, 400, 404), (path, query, response.status_code)
        assert "Zeppelin" not in body, (path, query)  # (the query itself may be echoed)
        assert "sqlite" not in body.lower() and "Traceback" not in body and "OperationalError" not in body
        if response.is_json and response.status_code == 200 and path == "/api/v1/search":
            assert all(hit["id"] == with_a_secret for hit in response.get_json()["hits"]), query


def test_a_member_of_another_association_finds_nothing_of_it_either(client: FlaskClient, with_a_secret: int,
                                                                   people: dict[str, User]) -> None:
    login(client, "omar")
    for query in ("q=Geheimprojekt", "q=caption:* OR published:false", "status=submitted&q=Zeppelin",
                  "association=pasadena&status=submitted"):
        body = client.get(f"/api/v1/search?{query}").get_data(as_text=True)
        assert "Geheimprojekt" not in body and "Zeppelin" not in body, query


PAYLOADS = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)",
            "'';!--\"<XSS>=&{()}", "</title><svg onload=alert(1)>"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_search_query_is_escaped_where_the_page_shows_it(client: FlaskClient, with_a_secret: int,
                                                             payload: str) -> None:
    for query in ({"q": payload}, {"q": "Rhein", "tag": payload}, {"q": payload, "sort": payload}):
        body = client.get(f"/search?{urlencode(query)}").get_data(as_text=True)
        for raw in ("<script>alert", "<img src=x", "<svg onload", "<XSS>"):
            assert raw not in body, (query, raw)
        assert 'href="javascript:' not in body


# --------------------------------------------------------------------------------------------------------------------
# Case 42: the Host header; case 41: secret key, debug, files that must never be served


def test_with_trusted_hosts_a_foreign_host_header_is_refused(tmp_path: Path) -> None:
    """Flask's TRUSTED_HOSTS, set in the site file (ARCHIVE_CONFIG), answers another Host with a 400."""
    app = _ready(tmp_path, TRUSTED_HOSTS=["archiv.example.org"], BASE_URL="https://archiv.example.org")
    with app.app_context():
        client = app.test_client()
        assert client.get("/login", headers={"Host": "archiv.example.org"}).status_code == 200
        refused = client.get("/login", headers={"Host": "evil.example"})
        assert refused.status_code == 400
        _assert_headers(refused, "foreign Host")
        db.session.remove()
        db.engine.dispose()


def test_links_given_out_use_base_url_not_the_requests_host(client: FlaskClient, app: Flask,
                                                            people: dict[str, User]) -> None:
    app.config["BASE_URL"] = "https://archiv.example.org"
    evil = "http://evil.example"  # every request of this admin came with this Host header
    assert client.post("/login", base_url=evil, data={"username": "ada", "password": PASSWORD}).status_code == 302
    ident = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    page = client.post("/admin/invitations", base_url=evil,
                       data={"role": "member", "association_id": str(ident)}).get_data(as_text=True)
    assert "https://archiv.example.org/invite/" in page
    assert "evil.example" not in page


@pytest.mark.parametrize("key", ["dev", "secret", "changeme", "x" * 31])
def test_a_short_secret_key_is_refused_at_start(tmp_path: Path, key: str) -> None:
    from archive import create_app
    from archive.settings import SettingsError

    with pytest.raises(SettingsError, match="SECRET_KEY"):
        create_app({**settings_for(tmp_path), "TESTING": False, "SECRET_KEY": key})


def test_without_a_configured_key_a_long_random_one_is_made_and_debug_is_off(tmp_path: Path) -> None:
    from archive import create_app

    settings = {k: v for k, v in settings_for(tmp_path).items() if k not in ("SECRET_KEY", "TESTING")}
    app = create_app({**settings, "SECRET_KEY": ""})
    assert len(app.config["SECRET_KEY"]) >= 32 and app.config["SECRET_KEY"] != "test-secret"
    assert app.debug is False and app.testing is False and app.config["DEBUG"] is False
    long_key = "k" * 40
    assert create_app({**settings, "SECRET_KEY": long_key}).config["SECRET_KEY"] == long_key


@pytest.mark.parametrize("path", ["/.git/HEAD", "/.git/config", "/.env", "/config.py", "/instance/secret_key",
                                  "/static/../config.py", "/static/%2e%2e/config.py", "/static/..%2fconfig.py",
                                  "/uploads/store", "/instance/brucken.sqlite"])
def test_nothing_outside_the_static_folder_is_served(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, path
    assert "SECRET" not in response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------------------------------
# Cases 29 and 30 [S3-real]: the bucket is not public; signed links are short-lived attachments for one object


def test_originals_go_out_as_short_signed_attachments_and_the_bucket_answers_no_one_else(
        tmp_path: Path, s3_config: dict[str, Any]) -> None:
    import urllib.error
    import urllib.request

    app = _ready(tmp_path, **s3_config)
    with app.app_context():
        people = _add_people()
        photo_id = _published_photo(app, people)
        photo = db.session.get(Photo, photo_id)
        curator = app.test_client()
        login(curator, "cora")
        answer = curator.get(f"/photos/{photo_id}/original")
        assert answer.status_code == 303
        link = answer.headers["Location"]
        query = parse_qs(urlsplit(link).query)
        assert int(query["X-Amz-Expires"][0]) <= 600  # short-lived
        assert query["response-content-disposition"][0].startswith("attachment")
        with urllib.request.urlopen(link, timeout=10) as signed:
            assert signed.headers["Content-Disposition"].startswith("attachment")
            assert signed.read()

        def refused(url: str) -> int:
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(url, timeout=10).close()
            caught.value.close()
            return caught.value.code

        # The link is for this one object, this long: changing the key or the expiry breaks the signature.
        other_key = link.replace(photo.original_key, photo.derivatives[0].key)
        assert other_key != link and refused(other_key) == 403
        assert refused(link.replace(f"X-Amz-Expires={query['X-Amz-Expires'][0]}", "X-Amz-Expires=604800")) == 403
        assert refused(link.replace("attachment", "inline")) == 403
        # Without a signature: nothing, neither an object nor the listing.
        bucket = f"{s3_config['S3_ENDPOINT']}/{s3_config['S3_BUCKET']}"
        assert refused(f"{bucket}/{photo.original_key}") == 403
        assert refused(f"{bucket}/{photo.derivatives[0].key}") == 403
        assert refused(f"{bucket}?list-type=2") == 403
        # And nothing in the bucket's own settings makes it public.
        raw = admin_client(ExternalS3Server(endpoint=s3_config["S3_ENDPOINT"], access_key=s3_config["S3_ACCESS_KEY"],
                                            secret_key=s3_config["S3_SECRET_KEY"]))
        grants = raw.get_bucket_acl(Bucket=s3_config["S3_BUCKET"])["Grants"]
        assert not [g for g in grants if "AllUsers" in g["Grantee"].get("URI", "")
                    or "AuthenticatedUsers" in g["Grantee"].get("URI", "")]
        with pytest.raises(ClientError) as no_policy:
            raw.get_bucket_policy(Bucket=s3_config["S3_BUCKET"])
        assert no_policy.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
        db.session.remove()
        db.engine.dispose()


def test_a_nul_character_is_refused_in_words_never_a_500(client: FlaskClient, people: dict[str, Any]) -> None:
    """PostgreSQL refuses text holding NUL (a 500 there, before this check): in a query, a form or an address."""
    for response in (client.get("/search", query_string={"q": "Brücke\x00"}),
                     client.get("/api/v1/search", query_string={"verein": "\x00"})):
        assert response.status_code == 400
        text = response.get_data(as_text=True)
        assert "NUL" in text and ("nicht erlaubt" in text or "not allowed" in text or "unzulässig" in text)
    assert client.get("/photos/1%00").status_code == 404
    # A form: an ordinary failed login on SQLite, a 400 in words on PostgreSQL (which refuses the value).
    login_form = client.post("/login", data={"username": "mia\x00", "password": "x"})
    assert login_form.status_code in (400, 401), login_form.get_data(as_text=True)
