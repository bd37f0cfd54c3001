"""Jury rounds: the pool, blind mode, conflicts of interest, voting (and its deadline), progress and going back,
closing by count and by cutoff with missing votes, and the CSV."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from archive import jury
from archive.errors import Refusal
from archive.models import (
    Association,
    AuditEvent,
    JuryMode,
    JuryPhoto,
    JuryRound,
    Photo,
    PhotoStatus,
    Shortlist,
    User,
    Vote,
    db,
    utcnow,
)
from tests.conftest import login
from tests.photos import complete_bundle, publish, upload_one

S = PhotoStatus
PASADENA = "Freundeskreis Ludwigshafen-Pasadena e.V."
LORIENT = "Deutsch-Französische Gesellschaft Ludwigshafen/Mannheim e.V."


def association_id(slug: str) -> int:
    return db.session.scalar(select(Association.id).where(Association.slug == slug))


def add_photo(title: str, *, slug: str = "pasadena", status: PhotoStatus = S.PUBLISHED, credit: str = "",
              uploader: User | None = None, filename: str = "") -> int:
    """A photo row as processing and review leave it (no images: pages show a placeholder)."""
    photo = Photo(association_id=association_id(slug), status=status, title=title, credit=credit,
                  caption=f"Bildunterschrift zu {title}", uploader_id=uploader.id if uploader else None,
                  original_filename=filename,
                  sha256=hashlib.sha256(f"{title}{slug}{status}".encode()).hexdigest(),
                  original_key=f"originals/{title}", format="jpeg", mime_type="image/jpeg", size_bytes=1,
                  width=1, height=1)
    db.session.add(photo)
    db.session.commit()
    return photo.id


def make_round(organiser: User, jurors: list[User], photo_ids: list[int], *, mode: str = "yes_no",
               blind: bool = True, name: str = "Brunch 2026, 1. Runde") -> int:
    made = jury.create_round(db.session, organiser, name=name, mode=mode, blind=blind,
                             deadline=utcnow() + timedelta(days=7), juror_ids=[u.id for u in jurors],
                             pool=jury.pool_from_photos(photo_ids))
    return made.id


def the_round(round_id: int) -> JuryRound:
    db.session.expire_all()
    found = jury.load_round(db.session, round_id)
    assert found is not None
    return found


def vote(round_id: int, user: User, photo_id: int, value: int) -> None:
    jury.cast_vote(db.session, the_round(round_id), user, photo_id, value)


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def shown_photo(html: str) -> int:
    """The photo the judge page shows (the hidden field of its vote form)."""
    match = re.search(r'name="photo_id" value="(\d+)"', html)
    assert match, html[:2000]
    return int(match.group(1))


def votes_of(round_id: int) -> dict[tuple[int, int], int]:
    db.session.expire_all()
    found = db.session.scalars(select(Vote).where(Vote.round_id == round_id))
    return {(v.photo_id, v.juror_id): v.value for v in found}


@pytest.fixture
def jurors(people: dict[str, Any]) -> dict[str, User]:
    """Two more curators beside cora: one of them ("pia") belongs to the Pasadena association."""
    from archive.auth import hash_password
    from archive.models import Role
    from tests.conftest import PASSWORD

    pia = User(username="pia", role=Role.CURATOR, association_id=association_id("pasadena"),
               password_hash=hash_password(PASSWORD))
    carl = User(username="carl", role=Role.CURATOR, password_hash=hash_password(PASSWORD))
    db.session.add_all([pia, carl])
    db.session.commit()
    return {"pia": pia, "carl": carl, "cora": people["curator"], "ada": people["admin"]}


# --------------------------------------------------------------------------------------------------------------------
# Making a round


def test_only_published_or_in_review_photos_enter_the_pool(people: dict[str, Any]) -> None:
    ids = [add_photo("A", status=S.PUBLISHED), add_photo("B", status=S.SUBMITTED), add_photo("C", status=S.IN_REVIEW),
           add_photo("D", status=S.WITHDRAWN), add_photo("E", status=S.REJECTED)]
    round_id = make_round(people["admin"], [people["curator"]], ids)
    made = the_round(round_id)
    assert [(jp.position, jp.photo_id) for jp in made.photos] == [(1, ids[0]), (2, ids[2])]
    assert "2 Fotos" in made.pool_source and "3 weitere" in made.pool_source
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "jury.created"))
    assert event is not None and event.subject_id == round_id and event.detail["photos"] == 2

    with pytest.raises(Refusal) as refused:
        make_round(people["admin"], [people["curator"]], [ids[1], ids[3]])
    assert refused.value.code == "pool_empty"


def test_jurors_must_be_curators_or_admins(people: dict[str, Any]) -> None:
    photo = add_photo("A")
    with pytest.raises(Refusal) as refused:
        make_round(people["admin"], [people["curator"], people["member"]], [photo])
    assert refused.value.code == "juror_not_allowed" and "mia" in refused.value.de
    with pytest.raises(Refusal) as refused:
        make_round(people["admin"], [], [photo])
    assert refused.value.code == "jurors_missing"
    assert db.session.scalar(select(func.count(JuryRound.id))) == 0


def test_pool_from_a_shortlist_and_from_a_closed_round(people: dict[str, Any]) -> None:
    ids = [add_photo(f"S{n}") for n in range(4)]
    shortlist = Shortlist(name="Brunch-Kandidaten", created_by_id=people["curator"].id)
    shortlist.photos = [db.session.get(Photo, i) for i in ids[:3]]
    db.session.add(shortlist)
    db.session.commit()
    first = jury.create_round(db.session, people["admin"], name="Runde 1", mode="yes_no", blind=True,
                              deadline=utcnow() + timedelta(days=1), juror_ids=[people["curator"].id],
                              pool=jury.pool_from_shortlist(db.session, shortlist.id))
    assert [jp.photo_id for jp in first.photos] == ids[:3]
    assert "Auswahlliste „Brunch-Kandidaten“" in first.pool_source

    with pytest.raises(Refusal) as refused:
        jury.pool_from_round(db.session, first.id)
    assert refused.value.code == "round_still_open"

    vote(first.id, people["curator"], ids[0], 1)
    vote(first.id, people["curator"], ids[2], 1)
    vote(first.id, people["curator"], ids[1], 0)
    jury.close_round(db.session, the_round(first.id), people["admin"], "cutoff", 0.5)
    second = jury.create_round(db.session, people["admin"], name="Runde 2", mode="stars", blind=False,
                               deadline=utcnow() + timedelta(days=1), juror_ids=[people["curator"].id],
                               pool=jury.pool_from_round(db.session, first.id))
    assert [jp.photo_id for jp in second.photos] == [ids[0], ids[2]]
    assert "Ergebnis der Runde „Runde 1“" in second.pool_source


def test_pool_from_a_search_pages_through_every_hit(client: FlaskClient, people: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from archive.services import get_jobs, get_search_index

    monkeypatch.setattr(jury, "SEARCH_PAGE", 2)  # three hits over two pages
    login(client, "mia")
    ids = [upload_one(client, (20 + 40 * n, 90, 60)) for n in range(4)]
    for n, photo_id in enumerate(ids):
        complete_bundle(photo_id, people["curator"], title=f"Rheinbrücke {n}" if n < 3 else "Hafenkran")
        publish(photo_id, people["curator"])
    get_jobs().outbox_changed()
    pool = jury.pool_from_search(get_search_index(), "Rheinbrücke")
    assert sorted(pool.photo_ids) == sorted(ids[:3])
    assert pool.source == "Suche „Rheinbrücke“"


def test_the_new_round_form_makes_a_round(client: FlaskClient, jurors: dict[str, User]) -> None:
    ids = [add_photo("A"), add_photo("B", status=S.IN_REVIEW)]
    login(client, "ada")
    assert "Neue Jury-Runde" in page(client, "/curate/jury/new")
    response = client.post("/curate/jury/new", data={
        "name": "Rathaus 2026", "mode": "stars", "blind": "1", "deadline": "2099-06-30T18:00",
        "pool": "photos", "photo_ids": f"{ids[0]}, #{ids[1]}", "juror_ids": [str(jurors["cora"].id),
                                                                                str(jurors["pia"].id)]})
    assert response.status_code == 302, response.get_data(as_text=True)
    made = db.session.scalar(select(JuryRound).where(JuryRound.name == "Rathaus 2026"))
    assert made is not None and made.mode == JuryMode.STARS and made.blind
    assert made.deadline is not None and (made.deadline.hour, made.deadline.minute) == (16, 0)  # 18:00 CEST in UTC
    assert sorted(j.user_id for j in made.jurors) == sorted([jurors["cora"].id, jurors["pia"].id])
    assert response.headers["Location"].endswith(f"/curate/jury/{made.id}")

    refused = client.post("/curate/jury/new", data={"name": "Ohne Jury", "mode": "yes_no",
                                                     "deadline": "2099-06-30T18:00", "pool": "photos",
                                                     "photo_ids": str(ids[0])})
    assert refused.status_code == 422
    assert "mindestens eine Jurorin" in refused.get_data(as_text=True)
    assert 'value="Ohne Jury"' in refused.get_data(as_text=True)  # what was typed stays


# --------------------------------------------------------------------------------------------------------------------
# The juror's page


def test_blind_mode_shows_no_association_photographer_or_uploader(client: FlaskClient, people: dict[str, Any]) -> None:
    login(client, "mia")
    real = upload_one(client, (30, 120, 200))  # with real images: the page shows the preview
    complete_bundle(real, people["curator"], title="Brücke im Nebel", credit="Anna Beispiel")
    publish(real, people["curator"])
    other = add_photo("Pont de Lorient", slug="lorient", credit="Jean Dupont", uploader=people["other_member"],
                      filename="jean_dupont_pont.jpg")
    blind_id = make_round(people["admin"], [people["curator"]], [real, other])
    open_id = make_round(people["admin"], [people["curator"]], [real, other], blind=False, name="Offen")
    login(client, "cora")

    for position, (title, caption, name, credit, uploader) in enumerate(
            [("Brücke im Nebel", "Abendlicht über der Konrad-Adenauer-Brücke", PASADENA, "Anna Beispiel", "mia"),
             ("Pont de Lorient", "Bildunterschrift zu Pont de Lorient", LORIENT, "Jean Dupont", "omar")], start=1):
        html = page(client, f"/curate/jury/{blind_id}/judge?position={position}")
        assert title in html and caption in html
        for secret in (name, credit, uploader, "jean_dupont_pont", "bruecke.jpg", "Verein</dt>", "Fotograf"):
            assert secret not in html, f"blind page shows {secret!r}"
        overview = page(client, f"/curate/jury/{blind_id}/judge?overview=1")
        assert name not in overview and credit not in overview and "jean_dupont" not in overview
        # Not blind: the same photo with its association and photographer.
        shown = page(client, f"/curate/jury/{open_id}/judge?position={position}")
        assert name in shown and credit in shown

    html = page(client, f"/curate/jury/{blind_id}/judge?position=1")
    assert f'src="/media/{real}/preview.jpg"' in html
    assert client.get(f"/media/{real}/preview.jpg").status_code == 200


def test_a_juror_never_gets_photos_of_their_own_association(client: FlaskClient, jurors: dict[str, User]) -> None:
    own = [add_photo(f"Pasadena {n}") for n in range(3)]
    others = [add_photo(f"Lorient {n}", slug="lorient") for n in range(2)]
    pool = [own[0], others[0], own[1], own[2], others[1]]
    round_id = make_round(jurors["ada"], [jurors["pia"], jurors["cora"]], pool)
    login(client, "pia")

    seen = []
    html = page(client, f"/curate/jury/{round_id}/judge")
    assert "0 von 2" in html
    for _ in range(2):
        photo_id = shown_photo(html)
        seen.append(photo_id)
        response = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": photo_id, "value": "1"})
        assert response.status_code == 302
        html = page(client, response.headers["Location"])
    assert seen == others
    assert "2 von 2" in html
    for position in (1, 2):
        assert shown_photo(page(client, f"/curate/jury/{round_id}/judge?position={position}")) in others
    page(client, f"/curate/jury/{round_id}/judge?position=3", status=404)
    for title in ("Pasadena 0", "Pasadena 1", "Pasadena 2"):
        assert title not in html

    refused = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": own[1], "value": "1"})
    assert refused.status_code == 403
    assert "eigenen Vereins" in refused.get_data(as_text=True)
    assert (own[1], jurors["pia"].id) not in votes_of(round_id)
    # cora (no association) judges all five.
    login(client, "cora")
    assert "0 von 5" in page(client, f"/curate/jury/{round_id}/judge")


def test_progress_going_back_and_changing_a_vote(client: FlaskClient, people: dict[str, Any]) -> None:
    ids = [add_photo(f"Foto {n}", slug="lorient") for n in range(4)]
    round_id = make_round(people["admin"], [people["curator"]], ids, mode="stars")
    login(client, "cora")
    html = page(client, f"/curate/jury/{round_id}/judge")
    assert shown_photo(html) == ids[0] and "0 von 4" in html and "Foto 1 von 4" in html

    response = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": ids[0], "value": "4"})
    assert response.headers["Location"].endswith(f"/curate/jury/{round_id}/judge?position=2")
    html = page(client, response.headers["Location"])
    assert shown_photo(html) == ids[1] and "1 von 4" in html

    # Skip ahead, vote on the third, then go back to the first and change the vote.
    html = page(client, f"/curate/jury/{round_id}/judge?position=3")
    assert shown_photo(html) == ids[2]
    response = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": ids[2], "value": "2"})
    assert response.headers["Location"].endswith("position=4")
    html = page(client, f"/curate/jury/{round_id}/judge?position=1")
    assert shown_photo(html) == ids[0] and "(4 von 5)" in html and 'rel="prev"' not in html
    response = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": ids[0], "value": "5"})
    assert response.headers["Location"].endswith("position=2")  # on to the next unjudged one: the skipped one
    assert votes_of(round_id) == {(ids[0], people["curator"].id): 5, (ids[2], people["curator"].id): 2}
    html = page(client, f"/curate/jury/{round_id}/judge")
    assert "2 von 4" in html and shown_photo(html) == ids[1]
    assert f'href="/curate/jury/{round_id}/judge?position=1" rel="prev"' in html

    for photo_id in (ids[1], ids[3]):
        response = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": photo_id, "value": "3"})
    assert "overview=1" in response.headers["Location"]
    html = page(client, response.headers["Location"])
    assert "4 von 4" in html and "alle 4 Fotos" in html

    bad = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": ids[1], "value": "7"})
    assert bad.status_code == 422
    assert votes_of(round_id)[ids[1], people["curator"].id] == 3


def test_jurors_see_only_their_own_votes_and_others_get_403(client: FlaskClient, jurors: dict[str, User]) -> None:
    ids = [add_photo(f"Foto {n}", slug="lorient") for n in range(2)]
    round_id = make_round(jurors["ada"], [jurors["cora"], jurors["carl"]], ids)
    vote(round_id, jurors["carl"], ids[0], 0)
    vote(round_id, jurors["cora"], ids[0], 1)

    login(client, "pia")  # a curator, but not on this jury
    refused = client.get(f"/curate/jury/{round_id}/judge")
    assert refused.status_code == 403 and "nicht in der Jury" in refused.get_data(as_text=True)
    assert client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": ids[1], "value": "1"}).status_code == 403
    assert (ids[1], jurors["pia"].id) not in votes_of(round_id)

    login(client, "cora")
    html = page(client, f"/curate/jury/{round_id}/judge?position=1")
    assert "Ihre Stimme: <strong>Ja</strong>" in html and "carl" not in html and "Nein</strong>" not in html
    html = page(client, f"/curate/jury/{round_id}")
    assert "1 von 2" in html and "Bewerten" in html  # everybody's progress, but no scores
    assert "% Ja" not in html and "results.csv" not in html and "Runde abschließen" not in html
    assert client.get(f"/curate/jury/{round_id}/results.csv").status_code == 403
    assert client.post(f"/curate/jury/{round_id}/close", data={"rule": "count", "value": "1"}).status_code == 403

    login(client, "ada")  # the organiser: scores and everybody's votes
    html = page(client, f"/curate/jury/{round_id}")
    assert "50 % Ja" in html and "results.csv" in html and "Runde abschließen" in html
    assert "Bewerten" not in html.split("<h2>Fortschritt")[0]


# --------------------------------------------------------------------------------------------------------------------
# Deadline and closing


def test_after_the_deadline_voting_is_refused_but_the_organiser_closes(client: FlaskClient,
                                                                       people: dict[str, Any]) -> None:
    ids = [add_photo("A", slug="lorient"), add_photo("B", slug="lorient")]
    round_id = make_round(people["admin"], [people["curator"]], ids)
    vote(round_id, people["curator"], ids[0], 1)
    made = the_round(round_id)
    made.deadline = utcnow() - timedelta(minutes=1)
    db.session.commit()

    login(client, "cora")
    refused = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": ids[1], "value": "1"})
    assert refused.status_code == 409 and "Frist" in refused.get_data(as_text=True)
    changed = client.post(f"/curate/jury/{round_id}/judge", data={"photo_id": ids[0], "value": "0"})
    assert changed.status_code == 409
    assert votes_of(round_id) == {(ids[0], people["curator"].id): 1}
    html = page(client, f"/curate/jury/{round_id}/judge")
    assert "Frist ist abgelaufen" in html and 'name="value"' not in html

    login(client, "ada")
    response = client.post(f"/curate/jury/{round_id}/close", data={"rule": "count", "value": "5"})
    assert response.status_code == 302
    made = the_round(round_id)
    assert made.closed_at is not None and made.close_rule == "count" and made.close_value == 5
    assert {jp.photo_id: jp.selected for jp in made.photos} == {ids[0]: True, ids[1]: False}  # B: no vote at all
    flashed = page(client, f"/curate/jury/{round_id}")
    assert "1 Stimme fehlte" in flashed and "keine Stimme" in flashed


def test_closing_by_count_with_missing_votes_and_a_tie_at_the_boundary(client: FlaskClient,
                                                                       jurors: dict[str, User]) -> None:
    # pia (Pasadena) may not judge the two Pasadena photos; carl leaves some out.
    p = [add_photo(f"P{n}", slug="pasadena") for n in range(2)]
    lo = [add_photo(f"L{n}", slug="lorient") for n in range(4)]
    pool = [*p, *lo]
    round_id = make_round(jurors["ada"], [jurors["cora"], jurors["pia"], jurors["carl"]], pool, mode="stars")
    cora, pia, carl = jurors["cora"], jurors["pia"], jurors["carl"]
    for photo_id, value in zip(pool, (5, 3, 4, 4, 2, 1), strict=True):
        vote(round_id, cora, photo_id, value)
    vote(round_id, pia, lo[0], 4)  # L0: 4, 4 -> 4.0 with two votes
    vote(round_id, carl, p[1], 5)  # P1: 3, 5 -> 4.0 with two votes
    # L1: 4 with one vote -> 4.0 too, but fewer votes: it loses the tie.
    with pytest.raises(Refusal) as refused:
        vote(round_id, pia, p[0], 5)
    assert refused.value.code == "conflict_of_interest"

    ranked = jury.standings(db.session, the_round(round_id))
    assert [s.photo.id for s in ranked] == [p[0], p[1], lo[0], lo[1], lo[2], lo[3]]
    assert [s.score for s in ranked] == [5.0, 4.0, 4.0, 4.0, 2.0, 1.0]
    progress = {row.juror.username: (row.judged, row.total) for row in jury.progress(db.session, the_round(round_id))}
    assert progress == {"cora": (6, 6), "pia": (1, 4), "carl": (1, 6)}

    login(client, "ada")
    response = client.post(f"/curate/jury/{round_id}/close", data={"rule": "count", "value": "3"})
    assert response.status_code == 302
    made = the_round(round_id)
    assert sorted(jp.photo_id for jp in made.photos if jp.selected) == sorted([p[0], p[1], lo[0]])
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "jury.closed"))
    assert event is not None and event.actor_id == jurors["ada"].id and event.subject_id == round_id
    assert event.detail["missing_votes"] == 3 + 5 and event.detail["tied"] == 3 and event.detail["selected"] == 3
    html = page(client, f"/curate/jury/{round_id}")
    assert "3 von 6 Fotos ausgewählt" in html and "denselben Wert" in html and "8 Stimmen fehlten" in html

    # Closed: no more votes, no second closing.
    assert client.post(f"/curate/jury/{round_id}/close", data={"rule": "count", "value": "1"}).status_code == 409
    with pytest.raises(Refusal) as refused:
        vote(round_id, cora, lo[3], 5)
    assert refused.value.code == "round_closed" and refused.value.status == 409


def test_closing_by_cutoff(client: FlaskClient, jurors: dict[str, User]) -> None:
    ids = [add_photo(f"L{n}", slug="lorient") for n in range(5)]
    round_id = make_round(jurors["ada"], [jurors["cora"], jurors["carl"], jurors["pia"]], ids)
    for user, values in ((jurors["cora"], (1, 1, 0, 0)), (jurors["carl"], (1, 0, 1)), (jurors["pia"], (1, 1, 0))):
        for photo_id, value in zip(ids, values, strict=False):
            vote(round_id, user, photo_id, value)
    # yes shares: L0 3/3, L1 2/3, L2 1/3, L3 0/1, L4 no votes
    login(client, "ada")
    bad = client.post(f"/curate/jury/{round_id}/close", data={"rule": "cutoff", "value": "150"})
    assert bad.status_code == 422 and "zwischen 0 und 100" in bad.get_data(as_text=True)
    assert the_round(round_id).closed_at is None
    response = client.post(f"/curate/jury/{round_id}/close", data={"rule": "cutoff", "value": "66,67"})
    assert response.status_code == 302
    made = the_round(round_id)
    assert {jp.photo_id: jp.selected for jp in made.photos} == {ids[0]: True, ids[1]: True, ids[2]: False,
                                                                ids[3]: False, ids[4]: False}
    assert made.close_rule == "cutoff" and made.close_value == pytest.approx(0.6667)  # 2/3 shows as "67 % Ja"
    assert "67 % Ja" in page(client, f"/curate/jury/{round_id}")

    # Stars: "at least 3.5"
    stars = make_round(jurors["ada"], [jurors["cora"], jurors["carl"]], ids[:3], mode="stars", name="Sterne")
    for photo_id, (a, b) in zip(ids[:3], ((4, 3), (3, 3), (5, 2)), strict=True):
        vote(stars, jurors["cora"], photo_id, a)
        vote(stars, jurors["carl"], photo_id, b)
    outcome = jury.close_round(db.session, the_round(stars), jurors["ada"], "cutoff", 3.5)
    assert outcome.selected == 2 and outcome.missing_votes == 0
    assert sorted(jp.photo_id for jp in the_round(stars).photos if jp.selected) == [ids[0], ids[2]]


# --------------------------------------------------------------------------------------------------------------------
# The CSV


def test_results_as_csv(client: FlaskClient, jurors: dict[str, User]) -> None:
    p0 = add_photo("=Brücke, Nacht", slug="pasadena", credit="Anna Beispiel")
    l0 = add_photo("Pont", slug="lorient", credit="Jean Dupont")
    l1 = add_photo("Quai", slug="lorient")
    round_id = make_round(jurors["ada"], [jurors["cora"], jurors["pia"]], [p0, l0, l1], mode="stars")
    vote(round_id, jurors["cora"], p0, 5)
    vote(round_id, jurors["cora"], l0, 2)
    vote(round_id, jurors["pia"], l0, 3)

    login(client, "ada")
    response = client.get(f"/curate/jury/{round_id}/results.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["Position", "Foto-Nr.", "Titel", "Verein", "Fotograf:in", "cora", "pia", "Stimmen",
                       "Wert (Mittel der Sterne)", "Ausgewählt"]
    assert rows[1] == ["1", str(p0), "'=Brücke, Nacht", PASADENA, "Anna Beispiel", "5", "x", "1", "5", ""]
    assert rows[2] == ["2", str(l0), "Pont", LORIENT, "Jean Dupont", "2", "3", "2", "2.5", ""]
    assert rows[3] == ["3", str(l1), "Quai", LORIENT, "", "", "", "0", "", ""]
    assert len(rows) == 4

    jury.close_round(db.session, the_round(round_id), jurors["ada"], "count", 1)
    rows = list(csv.reader(io.StringIO(client.get(f"/curate/jury/{round_id}/results.csv")
                                       .get_data().decode("utf-8-sig"))))
    assert [row[-1] for row in rows[1:]] == ["ja", "nein", "nein"]
    assert f'href="/curate/jury/new?from_round={round_id}"' in page(client, f"/curate/jury/{round_id}")
    assert f'value="{round_id}" selected' in page(client, f"/curate/jury/new?from_round={round_id}")
    # Closed: the jurors may see the results now.
    login(client, "cora")
    assert client.get(f"/curate/jury/{round_id}/results.csv").status_code == 200


def test_the_rounds_list(client: FlaskClient, jurors: dict[str, User]) -> None:
    ids = [add_photo("A", slug="lorient"), add_photo("B", slug="lorient")]
    round_id = make_round(jurors["ada"], [jurors["cora"]], ids)
    vote(round_id, jurors["cora"], ids[0], 1)
    login(client, "cora")
    html = page(client, "/curate/jury")
    assert "Brunch 2026, 1. Runde" in html and "1 von 2 bewertet" in html
    assert f'href="/curate/jury/{round_id}/judge"' in html
    login(client, "carl")
    assert "nicht in der Jury" in page(client, "/curate/jury")
    login(client, "mia")
    assert client.get("/curate/jury").status_code == 403
    assert db.session.scalar(select(func.count(JuryPhoto.id))) == 2
