"""The public gallery: home page, browse pages with counts, the Atom feed, the photo page and its lightbox links.
Only published photos, ever; a withdrawn one is gone from every page in the same request."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from archive import workflow
from archive.models import Exhibition, ExhibitionItem, ExhibitionStatus, Photo, User, db
from tests.conftest import login, recorded_statements
from tests.photos import a_place, complete_bundle, publish, upload_one

ATOM = "{http://www.w3.org/2005/Atom}"
EN = {"Accept-Language": "en"}


@pytest.fixture
def shown(client: FlaskClient, people: dict[str, User]) -> dict[str, Any]:
    """Three photos of Pasadena's association: two published (at two places, in two years, one with a tag and an
    English text and camera data), one only submitted."""
    login(client, "mia")
    member, curator = people["member"], people["curator"]
    first = upload_one(client, (200, 30, 30))
    second = upload_one(client, (30, 200, 30))
    hidden = upload_one(client, (30, 30, 200))
    rhine = a_place()
    harbour = a_place("Hafenbrücke", "Pasadena")
    complete_bundle(first, member, title="Rheinbrücke am Abend", keywords=["Abendlicht"],
                    translations={"en": ("Rhine bridge at dusk", "Evening light over the bridge",
                                         "A steel bridge at dusk")},
                    taken_at=datetime(2023, 9, 2, 18, 45))
    complete_bundle(second, member, title="Hafenbrücke", caption="Die Hafenbrücke im Nebel", place_id=harbour.id,
                    taken_at=datetime(2024, 3, 1, 8, 0))
    complete_bundle(hidden, member, title="Noch nicht öffentlich", keywords=["Geheimwort"],
                    taken_at=datetime(2022, 1, 1, 12, 0))
    photo = db.session.get(Photo, first)
    photo.camera_make, photo.camera_model, photo.lens = "Canon", "Canon EOS 30D", "EF 24-105mm f/4L"
    photo.exposure_time, photo.f_number, photo.focal_length_mm, photo.iso = "1/250", 8.0, 24.0, 200
    photo.gps_lat, photo.gps_lon = 49.123456, 8.654321
    db.session.commit()
    publish(first, curator)
    publish(second, curator)
    db.session.get(Photo, second).alt_text = ""  # from before alt text was required: the title stands in
    db.session.commit()
    client.post("/logout")
    return {"first": first, "second": second, "hidden": hidden, "rhine": rhine.id, "harbour": harbour.id,
            "curator": curator}


def _photo_links(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/photos/(\d+)"', html)}


def _withdraw(photo_id: int, curator: User) -> None:
    workflow.transition(db.session, db.session.get(Photo, photo_id), "withdraw", curator, "Rechte ungeklärt")


def test_home_shows_the_newest_published_photos_exhibitions_partners_and_the_feed_link(
        client: FlaskClient, shown: dict[str, Any]) -> None:
    exhibition = Exhibition(slug="bruecken-2024", title="Brücken 2024", status=ExhibitionStatus.PUBLISHED,
                            created_by_id=shown["curator"].id)
    draft = Exhibition(slug="entwurf", title="Geheimer Entwurf", created_by_id=shown["curator"].id)
    db.session.add_all([exhibition, draft])
    db.session.flush()
    db.session.add(ExhibitionItem(exhibition_id=exhibition.id, photo_id=shown["first"], position=1))
    db.session.commit()
    html = client.get("/").get_data(as_text=True)
    assert _photo_links(html) == {shown["first"], shown["second"]}
    # newest publication first
    assert html.index(f'/photos/{shown["second"]}"') < html.index(f'/photos/{shown["first"]}"')
    assert "/ausstellungen/bruecken-2024" in html and "Geheimer Entwurf" not in html
    assert 'href="/entdecken/verein/pasadena"' in html and 'href="/entdecken/stadt/Pasadena"' in html
    assert re.search(r'/entdecken/verein/pasadena">[^<]+</a>\s*<span class="n">2 Fotos', html)
    assert '<link rel="alternate" type="application/atom+xml" href="/feed.atom"' in html
    assert 'action="/search"' in html
    assert "gallery.js" in html and "<dialog" in html
    # every image has alt text; the photo without one falls back to its title
    assert 'alt="Eine Stahlbrücke über einen breiten Fluss im Abendlicht"' in html
    assert 'alt="Hafenbrücke"' in html
    assert not re.search(r"<img(?![^>]*\balt=)[^>]*>", html)
    assert "style=" not in html and "<script>" not in html  # nothing inline: the CSP forbids it


def test_home_in_english(client: FlaskClient, shown: dict[str, Any]) -> None:
    html = client.get("/", headers=EN).get_data(as_text=True)
    assert "Newest photos" in html and "Neueste Fotos" not in html
    assert "Partner cities and associations" in html
    assert "Rhine bridge at dusk" in html  # the English title on the tile
    assert 'alt="A steel bridge at dusk"' in html


def test_the_overview_counts_only_published_photos(client: FlaskClient, shown: dict[str, Any]) -> None:
    html = client.get("/entdecken").get_data(as_text=True)
    assert re.search(r'/entdecken/jahr/2023">2023</a>\s*<span class="n">1 Foto<', html)
    assert re.search(r'/entdecken/jahr/2024">2024</a>\s*<span class="n">1 Foto<', html)
    assert "/entdecken/jahr/2022" not in html  # only the hidden photo was taken then
    assert f'/entdecken/ort/{shown["harbour"]}"' in html and f'/entdecken/ort/{shown["rhine"]}"' in html
    assert "/entdecken/schlagwort/Abendlicht" in html
    assert "Geheimwort" not in html  # a keyword only on an unpublished photo does not leak
    assert re.search(r'/entdecken/verein/lorient">[^<]+</a>\s*<span class="n">0 Fotos<', html)
    english = client.get("/entdecken", headers=EN).get_data(as_text=True)
    assert "Places and bridges" in english and "1 photo" in english


@pytest.mark.parametrize("path, expected", [
    ("/entdecken/verein/pasadena", {"first", "second"}),
    ("/entdecken/stadt/Pasadena", {"first", "second"}),
    ("/entdecken/schlagwort/Abendlicht", {"first"}),
    ("/entdecken/jahr/2024", {"second"}),
])
def test_each_browse_page_lists_only_published_photos_with_counts(
        client: FlaskClient, shown: dict[str, Any], path: str, expected: set[str]) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert _photo_links(html) == {shown[name] for name in expected}
    count = len(expected)
    assert f"{count} veröffentlichte{'s' if count == 1 else ''} Foto{'' if count == 1 else 's'}" in html
    assert "gallery.js" in html


def test_the_place_pages(client: FlaskClient, shown: dict[str, Any]) -> None:
    html = client.get(f"/entdecken/ort/{shown['harbour']}").get_data(as_text=True)
    assert _photo_links(html) == {shown["second"]} and "1 veröffentlichtes Foto" in html
    english = client.get(f"/entdecken/ort/{shown['rhine']}", headers=EN).get_data(as_text=True)
    assert _photo_links(english) == {shown["first"]} and "1 published photo" in english


def test_the_lorient_association_has_no_photos_yet(client: FlaskClient, shown: dict[str, Any]) -> None:
    html = client.get("/entdecken/verein/lorient").get_data(as_text=True)
    assert "0 veröffentlichte Fotos" in html and _photo_links(html) == set()


def test_browse_pages_are_paged(client: FlaskClient, shown: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from archive import browse

    monkeypatch.setattr(browse, "PER_PAGE", 1)
    first = client.get("/entdecken/verein/pasadena").get_data(as_text=True)
    second = client.get("/entdecken/verein/pasadena?page=2").get_data(as_text=True)
    assert _photo_links(first) == {shown["second"]} and _photo_links(second) == {shown["first"]}
    assert 'href="/entdecken/verein/pasadena?page=2"' in first and "Seite 1 von 2" in first
    assert client.get("/entdecken/verein/pasadena?page=99999999").status_code == 200  # past the end: empty page


def test_a_withdrawn_photo_vanishes_from_every_page_at_once(client: FlaskClient, shown: dict[str, Any]) -> None:
    before = client.get("/feed.atom").get_data(as_text=True)
    assert f"/photos/{shown['first']}" in before
    _withdraw(shown["first"], shown["curator"])
    for path in ("/", "/entdecken/verein/pasadena", "/entdecken/stadt/Pasadena", "/entdecken/jahr/2024",
                 f"/photos/{shown['second']}"):
        assert f"/photos/{shown['first']}\"" not in client.get(path).get_data(as_text=True), path
    assert f"/photos/{shown['first']}" not in client.get("/feed.atom").get_data(as_text=True)
    # its place, tag and year now have no published photo: those pages are gone too
    for path in (f"/entdecken/ort/{shown['rhine']}", "/entdecken/schlagwort/Abendlicht", "/entdecken/jahr/2023"):
        assert client.get(path).status_code == 404, path
    overview = client.get("/entdecken").get_data(as_text=True)
    assert "Abendlicht" not in overview and "/entdecken/jahr/2023" not in overview
    assert client.get(f"/photos/{shown['first']}").status_code == 404


def test_the_feed_is_atom_without_private_data(client: FlaskClient, shown: dict[str, Any],
                                               people: dict[str, User]) -> None:
    response = client.get("/feed.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    body = response.get_data(as_text=True)
    feed = ET.fromstring(response.data)
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}id").text and feed.find(f"{ATOM}updated").text
    assert feed.find(f"{ATOM}title").text
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    first = db.session.get(Photo, shown["first"])
    entry = next(e for e in entries if e.find(f"{ATOM}id").text.endswith(f"/photos/{first.id}"))
    assert entry.find(f"{ATOM}title").text == "Rheinbrücke am Abend"
    assert entry.find(f"{ATOM}updated").text == first.status_changed_at.replace(microsecond=0).isoformat() + "Z"
    assert entry.find(f"{ATOM}link[@rel='alternate']").get("href") == f"http://localhost/photos/{first.id}"
    assert entry.find(f"{ATOM}summary").text == "Abendlicht über der Konrad-Adenauer-Brücke"
    assert entry.find(f"{ATOM}link[@rel='enclosure']").get("href").endswith(f"/media/{first.id}/thumb.jpg")
    content = entry.find(f"{ATOM}content").text
    assert "<img " in content and "thumb.jpg" in content
    for private in ("49.12", "8.65", "mia", "gps", "GPS", "Geheim", "Noch nicht öffentlich"):
        assert private not in body, private
    assert f"/photos/{shown['hidden']}" not in body
    english = ET.fromstring(client.get("/feed.atom", headers=EN).data)
    assert english.find(f"{ATOM}title").text == "Brücken – newly published photos"


def test_the_photo_page(client: FlaskClient, shown: dict[str, Any]) -> None:
    photo = db.session.get(Photo, shown["first"])
    html = client.get(f"/photos/{photo.id}").get_data(as_text=True)
    assert re.search(rf'<source type="image/webp" srcset="/media/{photo.id}/thumb.webp \d+w, '
                     rf'/media/{photo.id}/preview.webp \d+w" sizes="', html)
    assert re.search(rf'srcset="/media/{photo.id}/thumb.jpg \d+w, /media/{photo.id}/preview.jpg \d+w" sizes="', html)
    assert 'alt="Eine Stahlbrücke über einen breiten Fluss im Abendlicht"' in html
    assert "Canon EOS 30D" in html and "Canon Canon" not in html
    assert "EF 24-105mm f/4L" in html and "1/250 s · f/8 · 24 mm · ISO 200" in html
    assert "2.9.2023" in html or "02.09.2023" in html
    assert "Abendlicht" in html and 'href="/entdecken/schlagwort/Abendlicht"' in html
    assert 'href="/entdecken/verein/pasadena"' in html and f'href="/entdecken/ort/{shown["rhine"]}"' in html
    assert "49.123" not in html  # the photo's own GPS is not public
    # more from the association: the other published photo, never this one or the hidden one
    section = html.split('id="more-association"')[1]
    assert _photo_links(section) == {shown["second"]}
    assert "Mehr vom Verein" in html and "Mehr von Konrad-Adenauer-Brücke" not in html  # nothing else at this place
    assert 'loading="lazy"' in section
    assert "style=" not in html


def test_more_from_this_place(client: FlaskClient, shown: dict[str, Any], people: dict[str, User]) -> None:
    login(client, "mia")
    third = upload_one(client, (120, 120, 20))
    client.post("/logout")
    complete_bundle(third, people["member"], title="Noch eine Rheinbrücke")
    publish(third, people["curator"])
    html = client.get(f"/photos/{shown['first']}").get_data(as_text=True)
    section = html.split('id="more-place"')[1].split("</section>")[0]
    assert _photo_links(section) == {third}
    assert "Mehr von Konrad-Adenauer-Brücke, Ludwigshafen am Rhein" in html


def test_the_photo_page_in_english(client: FlaskClient, shown: dict[str, Any]) -> None:
    html = client.get(f"/photos/{shown['first']}", headers=EN).get_data(as_text=True)
    assert "Evening light over the bridge" in html and "Rhine bridge at dusk" in html
    assert 'alt="A steel bridge at dusk"' in html
    assert "Camera" in html and "Exposure" in html and "Kamera" not in html
    assert "More from the association" in html
    assert "Sep 2, 2023" in html
    # the German text is still there, marked as German, for whoever wants it
    assert 'lang="de"' in html and "Abendlicht über der Konrad-Adenauer-Brücke" in html
    # without a translation the German caption is shown, marked as German
    other = client.get(f"/photos/{shown['second']}", headers=EN).get_data(as_text=True)
    assert '<p class="photo-caption" lang="de">Die Hafenbrücke im Nebel</p>' in other


@pytest.mark.parametrize("path", [
    "/entdecken/verein/gibt-es-nicht", "/entdecken/stadt/Atlantis", "/entdecken/ort/987654",
    "/entdecken/schlagwort/Unbekannt", "/entdecken/schlagwort/Geheimwort", "/entdecken/jahr/1999",
    "/entdecken/jahr/99999999", "/entdecken/jahr/99999999999999999999999", "/entdecken/ort/0",
    "/entdecken/schlagwort/" + "x" * 500, "/entdecken/stadt/%00",
])
def test_unknown_or_odd_input_is_a_404_with_a_message(client: FlaskClient, shown: dict[str, Any], path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert 'class="flash error"' in html and ("gibt es" in html or "nicht" in html)
    assert "There" in client.get(path, headers=EN).get_data(as_text=True) or path.endswith("99999999999999999999999")


def test_an_empty_archive(client: FlaskClient) -> None:
    assert "Noch sind keine Fotos veröffentlicht." in client.get("/").get_data(as_text=True)
    feed = ET.fromstring(client.get("/feed.atom").data)
    assert feed.findall(f"{ATOM}entry") == [] and feed.find(f"{ATOM}updated").text.endswith("Z")
    assert client.get("/entdecken").status_code == 200


def test_the_overview_counts_are_kept_until_the_archive_changes(client: FlaskClient, shown: dict[str, Any]) -> None:
    """The counts are computed once, not for every visitor, and a withdrawal shows in the very next request."""
    def overview_and_counting_queries() -> tuple[str, int]:
        with recorded_statements() as seen:
            html = client.get("/entdecken").get_data(as_text=True)
        return html, sum("count(" in statement.lower() for statement, _ in seen)

    first, counted = overview_and_counting_queries()
    assert counted >= 4 and "/entdecken/jahr/2023" in first
    again, counted = overview_and_counting_queries()
    assert counted == 0 and again == first  # kept: nothing changed

    _withdraw(shown["first"], shown["curator"])
    after, counted = overview_and_counting_queries()
    assert counted >= 4 and "/entdecken/jahr/2023" not in after and "Abendlicht" not in after

    # An edit that writes no outbox event is seen once the answer is a minute old.
    from archive.outbox_cache import OutboxCache

    now = [1000.0]
    client.application.extensions["brucken.gallery_cache"] = OutboxCache(clock=lambda: now[0])
    assert overview_and_counting_queries()[1] >= 4
    now[0] += 59
    assert overview_and_counting_queries()[1] == 0
    now[0] += 2
    assert overview_and_counting_queries()[1] >= 4
