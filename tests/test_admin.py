"""The admins' pages: who gets in, changing roles, associations and access (audited), the last admin, and
associations."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from archive import accounts
from archive.errors import Refusal
from archive.models import Association, AuditEvent, OutboxEvent, Photo, PhotoStatus, Role, User, db
from tests.conftest import login


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def association_id(slug: str) -> int:
    return db.session.scalar(select(Association.id).where(Association.slug == slug))


def events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def as_form(user: User, **change: Any) -> dict[str, str]:
    form = {"role": user.role.value, "association_id": str(user.association_id or ""),
            "active": "1" if user.active else "0", "display_name": user.display_name}
    form.update({k: str(v) for k, v in change.items()})
    return form


def test_only_admins_get_in(client: FlaskClient, people: dict[str, User]) -> None:
    anonymous = client.get("/admin")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    for name in ("mia", "cora"):
        login(client, name)
        for path in ("/admin", f"/admin/users/{people['member'].id}", "/admin/associations/new"):
            assert client.get(path).status_code == 403, (name, path)
        client.post("/logout")
    login(client, "ada")
    page = client.get("/admin").get_data(as_text=True)
    assert client.get("/admin").status_code == 200
    for text in ("mia", "omar", "cora", "Freundeskreis Ludwigshafen-Pasadena", "Jemanden einladen", "Kurator:in"):
        assert text in page


@pytest.mark.parametrize("who", ["member", "curator"])
def test_nobody_but_an_admin_changes_a_role(client: FlaskClient, people: dict[str, User], who: str) -> None:
    me = people[who]
    login(client, me.username)
    for target in (me, people["other_member"]):
        response = client.post(f"/admin/users/{target.id}", data=as_form(target, role="admin"))
        assert response.status_code == 403
    # The person's own page reads only the name.
    client.post("/account/name", data={"display_name": "X", "role": "admin", "active": "1"})
    assert fresh(me).role == (Role.MEMBER if who == "member" else Role.CURATOR)
    assert fresh(people["other_member"]).role == Role.MEMBER
    assert [e.detail["after"] for e in events("user.changed")] == [{"display_name": "X"}]
    with pytest.raises(Refusal) as refused:
        accounts.change_account(db.session, fresh(me), fresh(me), role="admin", association_id=None, active=True,
                                display_name="")
    assert refused.value.status == 403


def test_an_admin_changes_role_and_association_and_it_is_audited(client: FlaskClient,
                                                                 people: dict[str, User]) -> None:
    mia = people["member"]
    login(client, "ada")
    page = client.get(f"/admin/users/{mia.id}").get_data(as_text=True)
    assert "Rolle, Verein, Zugang" in page
    response = client.post(f"/admin/users/{mia.id}", data=as_form(mia, association_id=association_id("lorient")))
    assert response.status_code == 302
    assert fresh(mia).association.slug == "lorient"
    response = client.post(f"/admin/users/{mia.id}", data=as_form(fresh(mia), role="curator"))
    assert response.status_code == 302
    mia = fresh(mia)
    assert mia.role == Role.CURATOR and mia.association_id is None  # curators work for every association
    changes = [(e.actor_id, e.subject, e.subject_id, e.detail) for e in events("user.changed")]
    admin = people["admin"].id
    assert changes == [
        (admin, "user", mia.id, {"before": {"association": "pasadena"}, "after": {"association": "lorient"}}),
        (admin, "user", mia.id, {"before": {"role": "member", "association": "lorient"},
                                 "after": {"role": "curator", "association": None}}),
    ]
    assert "curator" in client.get(f"/admin/users/{mia.id}").get_data(as_text=True)  # the history shows it


def test_a_member_needs_an_association(client: FlaskClient, people: dict[str, User]) -> None:
    cora = people["curator"]
    login(client, "ada")
    response = client.post(f"/admin/users/{cora.id}", data=as_form(cora, role="member", association_id=""))
    assert response.status_code == 422 and "Verein" in response.get_data(as_text=True)
    assert fresh(cora).role == Role.CURATOR
    assert client.post(f"/admin/users/{cora.id}", data=as_form(cora, role="superuser")).status_code == 422
    assert events("user.changed") == []


def test_a_field_left_out_keeps_its_value(client: FlaskClient, people: dict[str, User]) -> None:
    mia = people["member"]
    login(client, "ada")
    assert client.post(f"/admin/users/{mia.id}", data={"display_name": "Mia M."}).status_code == 302
    mia = fresh(mia)
    assert (mia.display_name, mia.role, mia.active, mia.association.slug) == ("Mia M.", Role.MEMBER, True, "pasadena")


def test_disabling_an_account_ends_its_sessions_and_tokens(client: FlaskClient, app: Flask,
                                                           people: dict[str, User]) -> None:
    mia = people["member"]
    hers = app.test_client()
    login(hers, "mia")
    _token, secret = accounts.create_token(db.session, mia, "Skript")
    login(client, "ada")
    assert client.post(f"/admin/users/{mia.id}", data=as_form(mia, active="0")).status_code == 302
    assert hers.get("/account").status_code == 302  # her session ended
    assert app.test_client().get("/photos", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert hers.post("/login", data={"username": "mia", "password": "correct horse battery"}).status_code == 401
    [event] = events("user.changed")
    assert event.detail == {"before": {"active": True}, "after": {"active": False}}
    assert "gesperrt" in client.get("/admin").get_data(as_text=True)
    # Enabled again, she logs in as before.
    assert client.post(f"/admin/users/{mia.id}", data=as_form(fresh(mia), active="1")).status_code == 302
    login(hers, "mia")


def test_the_last_active_admin_cannot_demote_or_disable_themselves(client: FlaskClient,
                                                                   people: dict[str, User]) -> None:
    ada = people["admin"]
    login(client, "ada")
    for change in ({"role": "curator"}, {"active": "0"}):
        response = client.post(f"/admin/users/{ada.id}", data=as_form(ada, **change))
        assert response.status_code == 409
        assert "letzte aktive Admin" in response.get_data(as_text=True)
        assert fresh(ada).role == Role.ADMIN and fresh(ada).active
    assert events("user.changed") == []
    # With a second admin it works; then the other one is the last.
    cora = people["curator"]
    assert client.post(f"/admin/users/{cora.id}", data=as_form(cora, role="admin")).status_code == 302
    response = client.post(f"/admin/users/{ada.id}", data=as_form(fresh(ada), role="curator"))
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert fresh(ada).role == Role.CURATOR
    assert client.get("/admin").status_code == 403
    with pytest.raises(Refusal) as refused:
        accounts.change_account(db.session, None, fresh(cora), role="admin", association_id=None, active=False,
                                display_name="")
    assert refused.value.code == "last_admin"


def test_an_admin_ends_someones_sessions_and_revokes_their_token(client: FlaskClient, app: Flask,
                                                                 people: dict[str, User]) -> None:
    mia = people["member"]
    hers = app.test_client()
    login(hers, "mia")
    token, secret = accounts.create_token(db.session, mia, "Skript")
    login(client, "ada")
    assert "Skript" in client.get(f"/admin/users/{mia.id}").get_data(as_text=True)
    assert client.post(f"/admin/users/{mia.id}/sessions").status_code == 302
    assert hers.get("/account").status_code == 302
    assert client.get("/admin").status_code == 200  # the admin's own session goes on
    assert client.post(f"/admin/tokens/{token.id}/revoke").status_code == 302
    assert app.test_client().get("/photos", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    [revoked] = events("token.revoked")
    assert revoked.actor_id == people["admin"].id and revoked.detail["user_id"] == mia.id
    assert [e.subject_id for e in events("user.sessions_ended")] == [mia.id]


def test_an_unknown_account_is_a_404(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "ada")
    assert client.get("/admin/users/999").status_code == 404
    assert client.post("/admin/users/999/reset-link").status_code == 404
    assert client.post("/admin/tokens/999/revoke").status_code == 404


# --------------------------------------------------------------------------------------------------------------------
# Associations


def test_an_admin_creates_an_association(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "ada")
    assert "Neuer Verein" in client.get("/admin/associations/new").get_data(as_text=True)
    data = {"slug": "Mannheim", "name": "Freundeskreis Mannheim", "partner_city": "Mannheim",
            "country": "Deutschland", "contact": "info@example.org"}
    assert client.post("/admin/associations/new", data=data).status_code == 302
    made = db.session.scalar(select(Association).where(Association.slug == "mannheim"))
    assert (made.name, made.partner_city, made.contact) == ("Freundeskreis Mannheim", "Mannheim", "info@example.org")
    [event] = events("association.created")
    assert event.subject == "association" and event.subject_id == made.id
    assert event.detail["after"]["slug"] == "mannheim"
    taken = client.post("/admin/associations/new", data={**data, "slug": "pasadena"})
    assert taken.status_code == 409 and "Kürzel" in taken.get_data(as_text=True)
    for bad in ({"slug": "ä ö"}, {"name": ""}, {"partner_city": "  "}, {"contact": "x" * 301}):
        response = client.post("/admin/associations/new", data={**data, "slug": "neu", **bad})
        assert response.status_code == 422, bad
    assert db.session.scalar(select(func.count(Association.id))) == 8


def test_members_cannot_create_associations(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "cora")
    response = client.post("/admin/associations/new", data={"slug": "neu", "name": "Neu", "partner_city": "X"})
    assert response.status_code == 403
    assert db.session.scalar(select(Association.id).where(Association.slug == "neu")) is None


def test_editing_an_association_is_audited_and_reindexes_its_photos(client: FlaskClient,
                                                                    people: dict[str, User]) -> None:
    pasadena = db.session.get(Association, association_id("pasadena"))
    photo = Photo(association_id=pasadena.id, status=PhotoStatus.PUBLISHED, sha256="a" * 64, original_key="k",
                  format="jpeg", mime_type="image/jpeg", size_bytes=1, width=1, height=1)
    db.session.add(photo)
    db.session.commit()
    login(client, "ada")
    page = client.get(f"/admin/associations/{pasadena.id}").get_data(as_text=True)
    assert "pasadena" in page and pasadena.name in page
    form = {"name": pasadena.name, "partner_city": pasadena.partner_city, "country": pasadena.country,
            "contact": "Frau Beispiel, 0621 123"}
    assert client.post(f"/admin/associations/{pasadena.id}", data=form).status_code == 302
    assert db.session.scalar(select(func.count(OutboxEvent.id))) == 0  # the contact is not searchable
    form["partner_city"] = "Pasadena (Kalifornien)"
    assert client.post(f"/admin/associations/{pasadena.id}", data=form).status_code == 302
    db.session.expire_all()
    assert db.session.scalars(select(OutboxEvent.photo_id)).all() == [photo.id]
    assert db.session.get(Association, pasadena.id).partner_city == "Pasadena (Kalifornien)"
    changed = [e.detail for e in events("association.changed")]
    assert changed == [{"before": {"contact": ""}, "after": {"contact": "Frau Beispiel, 0621 123"}},
                       {"before": {"partner_city": "Pasadena"}, "after": {"partner_city": "Pasadena (Kalifornien)"}}]
    # Saving without a change writes nothing.
    assert client.post(f"/admin/associations/{pasadena.id}", data=form).status_code == 302
    assert len(events("association.changed")) == 2
    assert client.post(f"/admin/associations/{pasadena.id}", data={**form, "name": ""}).status_code == 422
    assert client.get("/admin/associations/999").status_code == 404


def test_admin_pages_have_no_inline_script_or_style(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "ada")
    paths = ["/admin", f"/admin/users/{people['member'].id}", "/admin/associations/new",
             f"/admin/associations/{association_id('lorient')}", "/account"]
    for path in paths:
        page = client.get(path).get_data(as_text=True)
        assert "<script" not in page and "<style" not in page and " style=" not in page, path
        assert 'name="csrf_token"' in page, path
        assert "admin.css" in page
    css = client.get("/static/admin.css")
    assert css.status_code == 200 and b".list" in css.get_data()
    css.close()
