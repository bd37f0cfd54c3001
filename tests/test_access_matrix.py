"""Who may do what: every route of the app's URL map × every role × every photo state, with the expected answer.

The routes come from ``app.url_map``: a new route without a line in POLICY fails this test until someone decides
who may use it. GET cells are asked on one archive; each POST cell runs on a fresh copy of it (database and
object store restored from a snapshot), and a refused POST must leave the database exactly as it was.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from archive import accounts, workflow
from archive.auth import hash_password, open_login_session
from archive.models import (
    Association,
    ConsentScope,
    LoginSession,
    PeopleShown,
    Photo,
    PhotoStatus,
    Role,
    Tag,
    User,
    db,
)
from tests.access_rules import (
    ADMIN,
    ALLOWED,
    ANON,
    CURATOR,
    LOGIN,
    OK,
    OTHER,
    OWN,
    ROLES,
    STATES,
    USERNAMES,
    Rule,
    admin_may,
    admin_page,
    edit_page,
    edit_photo,
    gone,
    logged_in,
    logged_in_may,
    manage_photo,
    original,
    own_token,
    public,
    see_photo,
    staff_may,
    staff_on_photo,
    staff_page,
    staff_photo_page,
)
from tests.conftest import PASSWORD, IsolatedClient, login, make_ready_app, settings_for
from tests.photos import a_place, complete_bundle, upload_one
from tests.servers.database import fingerprint, restore_database, snapshot_database

# (endpoint, method) -> rule. Every route in the app must be here.
POLICY: dict[tuple[str, str], Rule] = {
    ("static", "GET"): public,
    ("gallery.index", "GET"): public,
    ("search.page", "GET"): public,
    ("search.api", "GET"): public,
    ("auth.login", "GET"): public,
    ("auth.login", "POST"): lambda role, state: 401,  # a wrong password, whoever is logged in
    ("auth.logout", "POST"): logged_in_may,
    ("auth.password", "GET"): logged_in,
    ("auth.password", "POST"): logged_in_may,
    ("auth.accept_invitation", "GET"): gone,
    ("auth.accept_invitation", "POST"): gone,
    ("auth.reset_password", "GET"): gone,
    ("auth.reset_password", "POST"): gone,
    ("account.index", "GET"): logged_in,
    ("account.change_name", "POST"): logged_in_may,
    ("account.end_other_sessions", "POST"): logged_in_may,
    ("account.create_token", "POST"): logged_in_may,
    ("account.revoke_token", "POST"): own_token,
    ("account.end_session", "POST"): own_token,  # one of the admin's sessions
    ("photos.grid", "GET"): logged_in,
    ("upload.form", "GET"): logged_in,
    ("upload.receive", "POST"): logged_in_may,
    ("photos.detail", "GET"): see_photo,
    ("media.derivative", "GET"): see_photo,
    ("media.original", "GET"): original,
    ("photos.edit", "GET"): edit_page,
    ("photos.edit", "POST"): edit_photo,
    ("photos.add_consent", "POST"): manage_photo,
    ("photos.withdraw_consent", "POST"): manage_photo,
    ("photos.discard", "POST"): manage_photo,
    ("photos.change_status", "POST"): staff_on_photo,
    ("photos.change_owner", "POST"): staff_on_photo,
    ("curate.queue", "GET"): staff_page,
    ("curate.audit_log", "GET"): staff_page,
    ("curate.photo_audit", "GET"): staff_photo_page,
    ("curate.bulk", "POST"): staff_may,
    ("curate.places", "GET"): staff_page,
    ("curate.places", "POST"): staff_may,
    ("curate.place_edit", "GET"): staff_page,
    ("curate.place_edit", "POST"): staff_may,
    ("curate.tags", "GET"): staff_page,
    ("curate.tags", "POST"): staff_may,
    ("curate.tag_rename", "POST"): staff_may,
    ("curate.tag_promote", "POST"): staff_may,
    ("admin.index", "GET"): admin_page,
    ("admin.invite", "POST"): admin_may,
    ("admin.withdraw_invitation", "POST"): admin_may,
    ("admin.person", "GET"): admin_page,
    ("admin.person", "POST"): admin_may,
    ("admin.reset_link", "POST"): admin_may,
    ("admin.end_sessions", "POST"): admin_may,
    ("admin.revoke_token", "POST"): admin_may,
    ("admin.association", "GET"): admin_page,
    ("admin.association", "POST"): admin_may,
    ("admin.new_association", "GET"): admin_page,
    ("admin.new_association", "POST"): admin_may,
}

# What a POST sends, so that the cell tests the permission and not an empty form.
BODIES: dict[str, dict[str, str]] = {
    "photos.change_status": {"action": "publish"},
    "photos.change_owner": {"association": "lorient"},
    "photos.edit": {"title": "Geändert"},
    "photos.add_consent": {"person": "Lena K.", "given_on": "2024-05-01", "scope_web": "1"},
    "photos.withdraw_consent": {"reason": "widerrufen"},
    "curate.bulk": {"action": "publish", "confirm": "1"},
    "curate.places": {"name": "Rheinbrücke", "city": "Mannheim"},
    "curate.tags": {"name": "Nacht"},
    "admin.person": {"role": "admin"},
    "admin.invite": {"role": "admin"},
    "admin.new_association": {"slug": "neu", "name": "Neu", "partner_city": "Neustadt"},
    "account.change_name": {"display_name": "Neu"},
    "auth.login": {"username": "niemand", "password": "falsch"},
}


AREAS = [importlib.import_module(f"tests.{path.stem}") for path in sorted(Path(__file__).parent.glob("policy_*.py"))]
for _area in AREAS:
    POLICY.update(_area.POLICY)
    BODIES.update(getattr(_area, "BODIES", {}))


@dataclass
class Archive:
    app: Flask
    folder: Path
    snapshot: Path
    users: dict[str, int]
    photos: dict[PhotoStatus, int]
    values: dict[str, Any]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    folder = tmp_path_factory.mktemp("matrix")
    app = make_ready_app(settings_for(folder / "live"))
    app.test_client_class = IsolatedClient
    with app.app_context():
        slug_id = {a.slug: a.id for a in db.session.scalars(select(Association))}
        users = {}
        for role, name in USERNAMES.items():
            user = User(username=name, password_hash=hash_password(PASSWORD),
                        role={OWN: Role.MEMBER, OTHER: Role.MEMBER, CURATOR: Role.CURATOR, ADMIN: Role.ADMIN}[role],
                        association_id={OWN: slug_id["pasadena"], OTHER: slug_id["lorient"]}.get(role))
            db.session.add(user)
            db.session.commit()
            users[role] = user.id
        client = app.test_client()
        login(client, "mia")
        photos: dict[PhotoStatus, int] = {}
        member = db.session.get(User, users[OWN])
        for n, state in enumerate(STATES):
            photo_id = upload_one(client, (10 + n * 20, 40, 200 - n * 20))
            photo = complete_bundle(photo_id, member, people=PeopleShown.CONSENT)
            workflow.record_consent(db.session, photo, member, person="Lena K.", given_on=date(2024, 5, 1),
                                    scopes={ConsentScope.WEB})
            photo.status = state
            db.session.commit()
            photos[state] = photo_id
        tag = Tag(name="Brücke", controlled=True)
        db.session.add(tag)
        admin = db.session.get(User, users[ADMIN])
        token, _secret = accounts.create_token(db.session, admin, "Skript")
        invitation, _secret = accounts.create_invitation(db.session, admin, Role.CURATOR)
        open_login_session(db.session, admin)
        admin_session = db.session.scalar(select(LoginSession.id).order_by(LoginSession.id.desc()).limit(1))
        values = {
            "place_id": a_place().id, "tag_id": tag.id, "user_id": users[OWN], "association_id": slug_id["lorient"],
            "token_id": token.id, "session_id": admin_session, "invitation_id": invitation.id,
            "token": "kein-gueltiger-link",
            "size": "thumb", "ext": "jpg", "filename": "style.css",
        }
        for area in AREAS:
            if hasattr(area, "values"):
                values.update(area.values(users, photos))
        db.session.remove()
        db.engine.dispose()
    snapshot = folder / "snapshot"
    shutil.copytree(folder / "live", snapshot)
    snapshot_database(folder / "live" / "instance")
    yield Archive(app, folder / "live", snapshot, users, photos, values)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _client(archive: Archive, role: str) -> FlaskClient:
    """A client already logged in as ``role``: a login session row and the cookie Flask-Login expects, without the
    password hashing of a real login in every cell (the login itself is tested elsewhere)."""
    client = archive.app.test_client()
    if role != ANON:
        with archive.app.app_context():
            user = db.session.get(User, archive.users[role])
            ident, secret = user.get_id(), open_login_session(db.session, user)
        with client.session_transaction() as session:
            session["_user_id"] = ident
            session["_fresh"] = True
            session["sid"] = secret
    return client


def _routes(archive: Archive) -> list[tuple[str, str, str]]:
    return sorted((rule.endpoint, method, rule.rule) for rule in archive.app.url_map.iter_rules()
                  for method in rule.methods - {"HEAD", "OPTIONS"})


def _url(archive: Archive, endpoint: str, photo_id: int | None) -> str:
    from flask import url_for

    rule = next(r for r in archive.app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {name: archive.values[name] for name in rule.arguments if name in archive.values}
    if "photo_id" in rule.arguments:
        values["photo_id"] = photo_id
    if "consent_id" in rule.arguments:
        with archive.app.app_context():
            values["consent_id"] = db.session.get(Photo, photo_id).consents[0].id
    with archive.app.test_request_context():
        return url_for(endpoint, **values)


def _cells(archive: Archive, method: str) -> Iterator[tuple[str, str, PhotoStatus | None, str]]:
    for endpoint, verb, rule in _routes(archive):
        if verb != method:
            continue
        states: tuple[PhotoStatus | None, ...] = STATES if "<int:photo_id>" in rule else (None,)
        for state in states:
            for role in ROLES:
                yield endpoint, role, state, _url(archive, endpoint, archive.photos[state] if state else None)


def _check(expected: int | str, response: Any) -> bool:
    if expected == LOGIN:
        return response.status_code == 302 and "/login" in response.headers.get("Location", "")
    if expected == OK:
        return response.status_code in ALLOWED
    return response.status_code == expected


def test_every_route_has_a_policy(archive: Archive) -> None:
    routes = {(endpoint, method) for endpoint, method, _ in _routes(archive)}
    assert routes - POLICY.keys() == set(), "routes without a line in POLICY: decide who may use them"
    assert POLICY.keys() - routes == set(), "POLICY names routes that no longer exist"


def test_every_get_for_every_role_and_photo_state(archive: Archive) -> None:
    wrong = []
    cells = 0
    for endpoint, role, state, url in _cells(archive, "GET"):
        expected = POLICY[endpoint, "GET"](role, state)
        response = _client(archive, role).get(url)
        response.close()
        cells += 1
        if not _check(expected, response):
            wrong.append(f"GET {url} as {role} ({state}): expected {expected}, got {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert cells >= 300


def _fingerprint(archive: Archive) -> str:
    return fingerprint(archive.app)


def _restore(archive: Archive) -> None:
    with archive.app.app_context():
        db.session.remove()
        db.engine.dispose()
    shutil.rmtree(archive.folder)
    shutil.copytree(archive.snapshot, archive.folder)
    restore_database(archive.folder / "instance")


def test_every_post_for_every_role_and_photo_state(archive: Archive) -> None:
    wrong = []
    cells = 0
    pristine = _fingerprint(archive)
    for endpoint, role, state, url in _cells(archive, "POST"):
        expected = POLICY[endpoint, "POST"](role, state)
        response = _client(archive, role).post(url, data=BODIES.get(endpoint, {}))
        cells += 1
        if not _check(expected, response):
            wrong.append(f"POST {url} as {role} ({state}): expected {expected}, got {response.status_code} "
                         f"{response.get_data(as_text=True)[:200]!r}")
        elif expected != OK and _fingerprint(archive) != pristine:
            wrong.append(f"POST {url} as {role} ({state}) was refused but changed the database")
        if expected == OK or response.status_code < 400:
            _restore(archive)
    assert not wrong, "\n".join(wrong)
    assert cells > 300
