"""Accounts: API tokens and bearer requests, CSRF, the login limit, invitation and reset links, sessions
that end, and the token/invite commands."""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from archive import accounts
from archive.auth import hash_password
from archive.errors import Refusal
from archive.models import ApiToken, AuditEvent, Invitation, LoginFailure, Photo, Role, User, db, utcnow
from tests.conftest import PASSWORD, IsolatedClient, jpeg_bytes, login, make_ready_app, settings_for

NEW_PASSWORD = "ein ganz neues passwort"


def fresh(user: User) -> User:
    """The row as the requests left it (they run in sessions of their own)."""
    db.session.expire_all()
    return db.session.get(User, user.id)


def events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def upload(client: FlaskClient, headers: dict[str, str] | None = None, color: tuple[int, int, int] = (9, 99, 9),
           **form: str) -> Any:
    data: dict[str, Any] = {"photos": [(io.BytesIO(jpeg_bytes(color)), "bruecke.jpg")], **form}
    return client.post("/upload", data=data, content_type="multipart/form-data",
                       headers={"Accept": "application/json", **(headers or {})})


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def secret_on_page(page: str, field: str) -> str:
    match = re.search(rf'id="{field}" class="secret" value="([^"]+)"', page)
    assert match, page
    return html.unescape(match.group(1))


def make_token(client: FlaskClient, name: str = "Import-Skript") -> str:
    response = client.post("/account/tokens", data={"name": name})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    return secret_on_page(response.get_data(as_text=True), "new-token")


# --------------------------------------------------------------------------------------------------------------------
# API tokens


def test_a_token_is_shown_once_stored_as_a_hash_and_listed_by_its_prefix(client: FlaskClient,
                                                                          people: dict[str, User]) -> None:
    login(client, "mia")
    secret = make_token(client)
    assert secret.startswith("brk_") and len(secret) > 40
    row = db.session.scalar(select(ApiToken))
    assert row.user_id == people["member"].id and row.name == "Import-Skript"
    assert row.token_hash == accounts.digest(secret) and secret not in row.token_hash
    assert secret.startswith(row.prefix)
    page = client.get("/account").get_data(as_text=True)
    assert row.prefix in page and secret not in page  # never shown again
    assert [e.subject_id for e in events("token.created")] == [row.id]


def test_a_token_needs_a_name(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    response = client.post("/account/tokens", data={"name": "   "})
    assert response.status_code == 422
    assert "Namen" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ApiToken.id))) == 0


def test_a_bearer_request_acts_as_the_tokens_person_without_a_cookie(client: FlaskClient, app: Flask,
                                                                       people: dict[str, User]) -> None:
    login(client, "mia")
    secret = make_token(client)
    script = app.test_client()
    assert script.get("/photos").status_code == 302  # no token: please log in
    response = script.get("/photos", headers=bearer(secret))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers  # a script gets no session
    uploaded = upload(script, bearer(secret))
    assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
    photo = db.session.scalar(select(Photo))
    assert photo.uploader_id == people["member"].id and photo.association.slug == "pasadena"
    db.session.expire_all()
    assert db.session.scalar(select(ApiToken)).last_used_at is not None


def test_with_a_cookie_and_a_token_the_token_decides(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    secret = make_token(client)
    client.post("/logout")
    login(client, "omar")  # the browser is omar's; the script sends mia's token
    assert upload(client, bearer(secret)).status_code == 201
    assert db.session.scalar(select(Photo)).uploader_id == people["member"].id


@pytest.mark.parametrize("case", ["unknown", "revoked", "disabled", "empty", "not ours"])
def test_a_token_that_does_not_work_is_a_401_in_both_languages(client: FlaskClient, app: Flask,
                                                               people: dict[str, User], case: str) -> None:
    login(client, "mia")
    secret = make_token(client)
    token = db.session.scalar(select(ApiToken))
    if case == "unknown":
        secret = "brk_" + "x" * 43
    elif case == "revoked":
        assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 302
    elif case == "disabled":
        people["member"].active = False
        db.session.commit()
    elif case == "empty":
        secret = ""
    else:
        secret = "ghp_somebody-elses-token"
    response = app.test_client().get("/photos", headers=bearer(secret))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error = response.get_json()["error"]
    assert error["code"] == "token_invalid" and error["de"] and error["en"]
    assert upload(app.test_client(), bearer(secret)).status_code == 401
    assert db.session.scalar(select(Photo.id)) is None


def test_revoking_ends_a_token_at_once_and_is_audited(client: FlaskClient, app: Flask,
                                                      people: dict[str, User]) -> None:
    login(client, "mia")
    secret = make_token(client)
    script = app.test_client()
    assert script.get("/photos", headers=bearer(secret)).status_code == 200
    token = db.session.scalar(select(ApiToken))
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 302
    assert script.get("/photos", headers=bearer(secret)).status_code == 401
    assert "widerrufen" in client.get("/account").get_data(as_text=True)
    [event] = events("token.revoked")
    assert event.subject == "token" and event.subject_id == token.id and event.actor_id == people["member"].id


def test_nobody_revokes_someone_elses_token_from_their_own_page(client: FlaskClient, app: Flask,
                                                                people: dict[str, User]) -> None:
    login(client, "mia")
    secret = make_token(client)
    token = db.session.scalar(select(ApiToken))
    client.post("/logout")
    login(client, "omar")
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 404
    with pytest.raises(Refusal) as refused:
        accounts.revoke_token(db.session, people["other_member"], token.id)
    assert refused.value.status == 404
    assert app.test_client().get("/photos", headers=bearer(secret)).status_code == 200


def test_a_token_cannot_manage_accounts_or_tokens(client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    login(client, "ada")
    secret = make_token(client)
    script = app.test_client()
    for method, path in (("get", "/account"), ("post", "/account/tokens"), ("get", "/admin"),
                         ("post", "/admin/invitations"), ("post", "/password")):
        response = getattr(script, method)(path, headers=bearer(secret), data={"name": "mehr", "role": "admin"})
        assert response.status_code == 403, path
        assert response.get_json()["error"]["code"] == "token_not_accepted_here"
    assert db.session.scalar(select(func.count(ApiToken.id))) == 1
    assert db.session.scalar(select(func.count(Invitation.id))) == 0


def test_a_token_of_someone_who_must_change_the_password_gets_json_not_a_redirect(
        client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    login(client, "mia")
    secret = make_token(client)
    people["member"].must_change_password = True
    db.session.commit()
    response = app.test_client().get("/photos", headers=bearer(secret))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "password_change_required"


def test_csrf_is_needed_with_a_cookie_but_not_with_a_token(tmp_path: Path) -> None:
    from archive.auth import hash_password

    app = make_ready_app(settings_for(tmp_path, WTF_CSRF_ENABLED=True))
    app.test_client_class = IsolatedClient
    with app.app_context():
        pasadena = db.session.scalar(select(accounts.Association.id).where(accounts.Association.slug == "pasadena"))
        mia = User(username="mia", role=Role.MEMBER, association_id=pasadena, password_hash=hash_password(PASSWORD))
        db.session.add(mia)
        db.session.commit()
        _token, secret = accounts.create_token(db.session, mia, "Skript")

        browser = app.test_client()
        assert browser.post("/login", data={"username": "mia", "password": PASSWORD}).status_code == 400
        page = browser.get("/login").get_data(as_text=True)
        csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        assert browser.post("/login", data={"username": "mia", "password": PASSWORD,
                                            "csrf_token": csrf}).status_code == 302
        # Logging in starts a fresh session, with a new form token.
        page = browser.get("/account").get_data(as_text=True)
        csrf = page.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]
        # The logged-in browser without the form's token: refused, nothing made.
        refused = upload(browser)
        assert refused.status_code == 400
        assert refused.get_json()["error"]["code"] == "form_expired"
        assert browser.post("/account/tokens", data={"name": "ohne"}).status_code == 400
        assert browser.post("/account/sessions").status_code == 400
        assert browser.post("/logout").status_code == 400
        assert db.session.scalar(select(func.count(ApiToken.id))) == 1
        # With the form's token it works.
        assert browser.post("/account/tokens", data={"name": "mit", "csrf_token": csrf}).status_code == 201
        # A script with a bearer token and no cookie needs no CSRF token.
        script = app.test_client()
        assert upload(script, bearer(secret)).status_code == 201
        assert db.session.scalar(select(Photo.uploader_id)) == mia.id
        # A cookie session cannot borrow that: a wrong bearer token is a 401, not the cookie's person.
        assert upload(browser, bearer("brk_wrong"), color=(1, 2, 3)).status_code == 401
        # Every state-changing route of the app, present and future, asks a cookie session for the token.
        adapter = app.url_map.bind("localhost")
        checked = 0
        for rule in app.url_map.iter_rules():
            for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
                url = adapter.build(rule.endpoint, {name: 1 for name in rule.arguments}, method=method)
                response = browser.open(url, method=method, data={"name": "x", "role": "admin"})
                assert response.status_code == 400, (method, url, response.status_code)
                checked += 1
        assert checked >= 10
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------------------------------------------------
# The login limit


@pytest.fixture
def strict(app: Flask) -> Flask:
    app.config.update(LOGIN_MAX_FAILURES_PER_NAME=3, LOGIN_MAX_FAILURES_PER_ADDRESS=5, LOGIN_WINDOW_MINUTES=15)
    return app


def test_too_many_failures_for_a_name_are_refused_without_checking_the_password(
        strict: Flask, client: FlaskClient, people: dict[str, User], monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        assert client.post("/login", data={"username": "mia", "password": "falsch"}).status_code == 401
    checked: list[str] = []
    import archive.views.auth as auth_views

    real = auth_views.authenticate
    monkeypatch.setattr(auth_views, "authenticate", lambda *a: checked.append(a[1]) or real(*a))
    response = client.post("/login", data={"username": "MIA ", "password": PASSWORD})  # the right one, too late
    assert response.status_code == 429
    assert checked == []  # the password was not looked at
    retry = int(response.headers["Retry-After"])
    assert 14 * 60 < retry <= 15 * 60
    page = response.get_data(as_text=True)
    assert "Zu viele fehlgeschlagene Anmeldeversuche" in page and "15 Minuten" in page
    assert "Too many failed logins" in page
    # Another name from elsewhere is not affected.
    assert client.post("/login", data={"username": "omar", "password": PASSWORD},
                       environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 302


def test_an_unknown_name_is_limited_the_same_way(strict: Flask, client: FlaskClient, people: dict[str, User]) -> None:
    answers = [client.post("/login", data={"username": name, "password": "falsch"}).status_code
               for name in ["niemand"] * 4 + ["mia"] * 4]
    # niemand: 3 failures, then refused (and not counted); mia: 2 failures bring the address to its 5.
    assert answers == [401, 401, 401, 429, 401, 401, 429, 429]


def test_too_many_failures_from_one_address_are_refused(strict: Flask, client: FlaskClient,
                                                        people: dict[str, User]) -> None:
    for name in ("a1", "a2", "a3", "a4", "a5"):
        client.post("/login", data={"username": name, "password": "falsch"})
    assert client.post("/login", data={"username": "mia", "password": PASSWORD}).status_code == 429
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.post("/login", data={"username": "mia", "password": PASSWORD}, environ_base=other).status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_address_counts(tmp_path: Path) -> None:
    behind = make_ready_app(settings_for(tmp_path, TRUSTED_PROXIES=1, LOGIN_MAX_FAILURES_PER_NAME=3,
                                         LOGIN_MAX_FAILURES_PER_ADDRESS=5))
    behind.test_client_class = IsolatedClient
    with behind.app_context():
        db.session.add(User(username="mia", role=Role.CURATOR, password_hash=hash_password(PASSWORD)))
        db.session.commit()
    client = behind.test_client()
    for i in range(5):
        client.post("/login", data={"username": f"x{i}", "password": "falsch"},
                    headers={"X-Forwarded-For": "198.51.100.1"})
    with behind.app_context():
        assert db.session.scalar(select(LoginFailure.address).limit(1)) == "198.51.100.1"
    assert client.post("/login", data={"username": "mia", "password": PASSWORD},
                       headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
    assert client.post("/login", data={"username": "mia", "password": PASSWORD},
                       headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 302
    with behind.app_context():
        db.session.remove()
        db.engine.dispose()


def test_without_trusted_proxies_a_forwarded_header_is_ignored(strict: Flask, client: FlaskClient,
                                                              people: dict[str, User]) -> None:
    for i in range(5):
        client.post("/login", data={"username": f"x{i}", "password": "falsch"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"})  # made up by the guesser
    assert client.post("/login", data={"username": "mia", "password": PASSWORD},
                       headers={"X-Forwarded-For": "203.0.113.99"}).status_code == 429


def test_a_successful_login_clears_the_names_failures(strict: Flask, client: FlaskClient,
                                                      people: dict[str, User]) -> None:
    for _ in range(2):
        client.post("/login", data={"username": "mia", "password": "falsch"})
    login(client, "mia")
    assert db.session.scalar(select(func.count(LoginFailure.id)).where(LoginFailure.username == "mia")) == 0
    client.post("/logout")
    for _ in range(2):
        assert client.post("/login", data={"username": "mia", "password": "falsch"}).status_code == 401
    login(client, "mia")  # would be the 5th failure in a row without the clearing


def test_failures_age_out_and_old_rows_are_pruned(app: Flask, people: dict[str, User]) -> None:
    throttle = accounts.Throttle(window=timedelta(minutes=15), per_name=2, per_address=100)
    start = utcnow()
    for minute in (0, 5):
        accounts.record_login_failure(db.session, "mia", "10.0.0.1", throttle, now=start + timedelta(minutes=minute))
    with pytest.raises(accounts.TooManyAttempts) as refused:
        accounts.reserve_login_attempt(db.session, "mia", "10.0.0.1", throttle, now=start + timedelta(minutes=6))
    assert refused.value.retry_after == 9 * 60 and refused.value.status == 429
    # The first failure has aged out: this attempt may go on to the password (and counts until a success clears it).
    later = start + timedelta(minutes=15, seconds=1)
    accounts.reserve_login_attempt(db.session, "mia", "10.0.0.1", throttle, now=later)
    accounts.record_login_failure(db.session, "omar", "10.0.0.2", throttle, now=start + timedelta(minutes=20))
    assert list(db.session.scalars(select(LoginFailure.username).order_by(LoginFailure.at))) == ["mia", "omar"]
    assert db.session.scalar(select(func.min(LoginFailure.at))) == later  # the two old failures are pruned


# --------------------------------------------------------------------------------------------------------------------
# Invitations


def invite(client: FlaskClient, role: str = "member", association: str = "pasadena") -> tuple[str, str]:
    """As the admin: make an invitation; returns the link and its token."""
    ident = db.session.scalar(select(accounts.Association.id).where(accounts.Association.slug == association))
    response = client.post("/admin/invitations", data={"role": role, "association_id": str(ident)})
    assert response.status_code == 201, response.get_data(as_text=True)
    link = secret_on_page(response.get_data(as_text=True), "link")
    return link, link.rsplit("/", 1)[1]


def test_an_invitation_link_makes_an_account_once(client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    login(client, "ada")
    link, token = invite(client)
    assert link.startswith("http://localhost/invite/")
    newcomer = app.test_client()
    page = newcomer.get(f"/invite/{token}")
    assert page.status_code == 200 and "Freundeskreis Ludwigshafen-Pasadena" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    response = newcomer.post(f"/invite/{token}", data={"username": "Nina.Klein", "display_name": "Nina Klein",
                                                       "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert newcomer.get("/upload").status_code == 200  # logged in
    nina = db.session.scalar(select(User).where(User.username == "nina.klein"))
    assert nina.role == Role.MEMBER and nina.association.slug == "pasadena" and nina.display_name == "Nina Klein"
    invitation = db.session.scalar(select(Invitation))
    assert invitation.used_at is not None and invitation.created_by_id == people["admin"].id
    assert [e.subject_id for e in events("invitation.created")] == [invitation.id]
    [used] = events("invitation.used")
    assert used.subject_id == invitation.id and used.detail["user_id"] == nina.id
    [created] = events("user.created")
    assert created.detail["after"] == {"username": "nina.klein", "role": "member", "association": "pasadena",
                                       "active": True}
    again = app.test_client().get(f"/invite/{token}")
    assert again.status_code == 410
    assert "schon benutzt" in again.get_data(as_text=True) and "neuen Link" in again.get_data(as_text=True)
    assert app.test_client().post(f"/invite/{token}", data={"username": "zweite", "password": NEW_PASSWORD,
                                                            "confirm": NEW_PASSWORD}).status_code == 410
    assert db.session.scalar(select(User.id).where(User.username == "zweite")) is None


def test_an_expired_or_unknown_link_says_so(client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    login(client, "ada")
    _link, token = invite(client)
    invitation = db.session.scalar(select(Invitation))
    invitation.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    expired = app.test_client().get(f"/invite/{token}", headers={"Accept-Language": "en"})
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    unknown = app.test_client().get("/invite/nicht-vorhanden")
    assert unknown.status_code == 404 and "neuen Link" in unknown.get_data(as_text=True)
    assert app.test_client().get(f"/reset/{token}").status_code == 404  # an invitation is no reset link


def test_an_invitation_checks_the_name_and_password(client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    login(client, "ada")
    _link, token = invite(client)
    newcomer = app.test_client()
    for data, status, message in (
            ({"username": "mia", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, 409, "gibt es schon"),
            ({"username": "a b", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, 422, "2 bis 40 Zeichen"),
            ({"username": "nina", "password": "x7q9", "confirm": "x7q9"}, 422, "mindestens 10"),
            ({"username": "nina", "password": NEW_PASSWORD, "confirm": "etwas anderes"}, 422, "nicht überein")):
        response = newcomer.post(f"/invite/{token}", data=data)
        assert response.status_code == status
        assert message in response.get_data(as_text=True)
        assert data["password"] not in response.get_data(as_text=True)  # passwords are not echoed
    assert db.session.scalar(select(Invitation.used_at)) is None  # still usable
    assert db.session.scalar(select(func.count(User.id))) == 4


def test_member_invitations_need_an_association_others_have_none(client: FlaskClient, app: Flask,
                                                                  people: dict[str, User]) -> None:
    login(client, "ada")
    response = client.post("/admin/invitations", data={"role": "member", "association_id": ""})
    assert response.status_code == 422 and "Verein" in response.get_data(as_text=True)
    assert client.post("/admin/invitations", data={"role": "chef"}).status_code == 422
    _link, token = invite(client, role="curator")  # an association chosen by mistake is dropped
    assert db.session.scalar(select(Invitation.association_id)) is None
    newcomer = app.test_client()
    newcomer.post(f"/invite/{token}", data={"username": "kurt", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    kurt = db.session.scalar(select(User).where(User.username == "kurt"))
    assert kurt.role == Role.CURATOR and kurt.association_id is None


def test_only_admins_make_invitations(client: FlaskClient, people: dict[str, User]) -> None:
    for name in ("mia", "cora"):
        login(client, name)
        assert client.post("/admin/invitations", data={"role": "admin"}).status_code == 403
        client.post("/logout")
    with pytest.raises(Refusal):
        accounts.create_invitation(db.session, people["curator"], "admin")
    assert db.session.scalar(select(func.count(Invitation.id))) == 0


def test_an_open_invitation_can_be_withdrawn(client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    login(client, "ada")
    _link, token = invite(client)
    assert "Offene Links" in client.get("/admin").get_data(as_text=True)
    invitation = db.session.scalar(select(Invitation))
    assert client.post(f"/admin/invitations/{invitation.id}/withdraw").status_code == 302
    assert app.test_client().get(f"/invite/{token}").status_code == 410
    assert [e.subject_id for e in events("invitation.withdrawn")] == [invitation.id]


# --------------------------------------------------------------------------------------------------------------------
# Reset links and sessions


def test_a_reset_link_sets_a_new_password_and_ends_the_other_sessions(client: FlaskClient, app: Flask,
                                                                     people: dict[str, User]) -> None:
    mia = people["member"]
    old_session = app.test_client()
    login(old_session, "mia")
    login(client, "ada")
    first = secret_on_page(client.post(f"/admin/users/{mia.id}/reset-link").get_data(as_text=True), "link")
    response = client.post(f"/admin/users/{mia.id}/reset-link")
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    link = secret_on_page(response.get_data(as_text=True), "link")
    assert "/reset/" in link
    assert app.test_client().get(first.replace("http://localhost", "")).status_code == 410  # superseded
    path = link.replace("http://localhost", "")
    person = app.test_client()
    assert "mia" in person.get(path).get_data(as_text=True)
    assert person.post(path, data={"password": "kurz", "confirm": "kurz"}).status_code == 422
    assert person.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert person.get("/account").status_code == 200  # logged in
    assert old_session.get("/account").status_code == 302  # the old session ended
    assert app.test_client().post("/login", data={"username": "mia", "password": PASSWORD}).status_code == 401
    login(app.test_client(), "mia", NEW_PASSWORD)
    assert person.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 410
    assert len(events("user.reset_link_created")) == 2
    [reset] = events("user.password_reset")
    assert reset.subject_id == mia.id


def test_no_reset_link_for_a_disabled_account(client: FlaskClient, people: dict[str, User]) -> None:
    people["member"].active = False
    db.session.commit()
    login(client, "ada")
    response = client.post(f"/admin/users/{people['member'].id}/reset-link")
    assert response.status_code == 409 and "gesperrt" in response.get_data(as_text=True)


def test_a_password_change_ends_the_other_sessions_only(client: FlaskClient, app: Flask,
                                                        people: dict[str, User]) -> None:
    other = app.test_client()
    login(other, "mia")
    login(client, "mia")
    response = client.post("/password", data={"current": PASSWORD, "password": NEW_PASSWORD,
                                              "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other.get("/account").status_code == 302
    assert [e.subject_id for e in events("user.password_changed")] == [people["member"].id]


def test_logging_out_and_ending_the_other_sessions(client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    other = app.test_client()
    login(other, "mia")
    login(client, "mia")
    assert client.post("/account/sessions").status_code == 302
    assert client.get("/account").status_code == 200  # this one goes on
    assert other.get("/account").status_code == 302  # that one ended
    assert [e.subject_id for e in events("user.sessions_ended")] == [people["member"].id]
    assert client.post("/logout").status_code == 302
    assert client.get("/account").status_code == 302


def test_a_person_changes_their_name_but_not_their_role(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    lorient = db.session.scalar(select(accounts.Association.id).where(accounts.Association.slug == "lorient"))
    response = client.post("/account/name", data={"display_name": "Mia  Müller", "role": "admin",
                                                  "association_id": str(lorient), "active": "1"})
    assert response.status_code == 302
    mia = fresh(people["member"])
    assert mia.display_name == "Mia Müller"
    assert mia.role == Role.MEMBER and mia.association.slug == "pasadena"
    [event] = events("user.changed")
    assert event.detail == {"before": {"display_name": ""}, "after": {"display_name": "Mia Müller"}}


# --------------------------------------------------------------------------------------------------------------------
# The commands


def test_token_commands_create_list_and_revoke(app: Flask, people: dict[str, User]) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(args=["token", "create", "mia", "Laptop"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[0]
    assert secret.startswith("brk_")
    assert accounts.user_for_token(db.session, secret).id == people["member"].id
    listed = runner.invoke(args=["token", "list", "mia"])
    token = db.session.scalar(select(ApiToken))
    assert f"{token.id}\tmia\tLaptop\t{token.prefix}" in listed.output and secret not in listed.output
    assert "keine" in runner.invoke(args=["token", "list", "omar"]).output.lower()
    assert runner.invoke(args=["token", "revoke", str(token.id)]).exit_code == 0
    assert accounts.user_for_token(db.session, secret) is None
    assert "revoked" in runner.invoke(args=["token", "list"]).output
    assert runner.invoke(args=["token", "create", "niemand", "x"]).exit_code == 2
    assert runner.invoke(args=["token", "revoke", "999"]).exit_code == 1
    assert [e.actor_id for e in events("token.created")] == [None]  # by the command line


def test_invite_command_prints_a_working_link(app: Flask, client: FlaskClient, people: dict[str, User]) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["invite", "member"]).exit_code == 2  # a member needs an association
    assert runner.invoke(args=["invite", "member", "--association", "atlantis"]).exit_code == 2
    app.config["BASE_URL"] = "https://bruecken.example.org/"
    result = runner.invoke(args=["invite", "member", "--association", "lorient"])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip().splitlines()[0]
    assert link.startswith("https://bruecken.example.org/invite/")
    path = link.removeprefix("https://bruecken.example.org")
    assert client.post(path, data={"username": "lea", "password": NEW_PASSWORD,
                                   "confirm": NEW_PASSWORD}).status_code == 302
    lea = db.session.scalar(select(User).where(User.username == "lea"))
    assert lea.association.slug == "lorient"
    app.config["BASE_URL"] = ""
    bare = runner.invoke(args=["invite", "curator"])
    assert bare.stdout.startswith("/invite/")


def test_logging_out_ends_the_session_for_a_copied_cookie_too(app: Flask, people: dict[str, User]) -> None:
    app.test_client_class = IsolatedClient
    browser = app.test_client()
    login(browser, "mia")
    stolen = app.test_client()
    stolen.set_cookie("session", browser.get_cookie("session").value)
    assert stolen.get("/account").status_code == 200  # the copy works while the session is open ...
    browser.post("/logout")
    assert stolen.get("/account").status_code == 302  # ... and not after logging out
    assert browser.get("/account").status_code == 302


def test_one_other_device_can_be_logged_out_from_the_account_page(app: Flask, people: dict[str, User]) -> None:
    app.test_client_class = IsolatedClient
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, "mia")
    phone.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (Linux; Android 14) Chrome/130.0 Mobile"
    login(phone, "mia")
    page = laptop.get("/account").get_data(as_text=True)
    assert "Chrome auf Android" in page and "(dieses Gerät)" in page
    ids = [int(i) for i in re.findall(r"/account/sessions/(\d+)/end", page)]
    assert len(ids) == 1  # the other device; this one has no button
    other = login_as_omar_cannot_end(app, ids[0])
    assert other == 404
    assert laptop.post(f"/account/sessions/{ids[0]}/end").status_code == 302
    assert phone.get("/account").status_code == 302
    assert laptop.get("/account").status_code == 200


def login_as_omar_cannot_end(app: Flask, session_id: int) -> int:
    client = app.test_client()
    login(client, "omar")
    return client.post(f"/account/sessions/{session_id}/end").status_code


def test_a_password_reset_or_a_disabled_account_revokes_the_persons_tokens(people: dict[str, User]) -> None:
    mia = people["member"]
    _token, secret = accounts.create_token(db.session, mia, "Skript")
    _invitation, link = accounts.create_reset_link(db.session, people["admin"], mia)
    accounts.use_reset_link(db.session, link, password="ein-ganz-neues-passwort", confirm="ein-ganz-neues-passwort")
    assert accounts.user_for_token(db.session, secret) is None
    _token, secret = accounts.create_token(db.session, mia, "Skript 2")
    accounts.change_account(db.session, people["admin"], mia, role=mia.role, association_id=mia.association_id,
                            active=False, display_name=mia.display_name)
    accounts.change_account(db.session, people["admin"], mia, role=mia.role, association_id=mia.association_id,
                            active=True, display_name=mia.display_name)
    assert accounts.user_for_token(db.session, secret) is None  # re-enabling does not bring it back
    revoked = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token.revoked")).all()
    assert sorted(e.detail["why"] for e in revoked) == ["account disabled", "password reset"]
