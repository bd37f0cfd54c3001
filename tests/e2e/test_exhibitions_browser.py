"""An exhibition in a real browser against the real server (gunicorn + worker, CSRF on): a curator reorders the
photos with the keyboard (Tab to ↓, Enter; the focus stays, the move is announced) and by drag and drop at the
handle, publishes, and a visitor sees the public page with the photos in that order, credits and licences; a
photo withdrawn meanwhile is gone with the next page load. Without JavaScript the ↑/↓ buttons do the same. Every
page is checked at phone width; screenshots go to test-artifacts/exhibition-*.png."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import select

from archive import create_app, exhibitions, workflow
from archive.auth import hash_password
from archive.models import Association, ExhibitionItem, Licence, PeopleShown, Photo, Role, User, db
from tests.conftest import PASSWORD, IsolatedClient, login
from tests.e2e.test_browser import ARTIFACTS, browser, fits_the_screen, wait_until_loaded  # noqa: F401 (fixture)
from tests.e2e.test_workflow_browser import Watch
from tests.photos import a_place, upload
from tests.servers.database import database_settings

pytestmark = pytest.mark.e2e

SAVE_CAPTION = re.compile(r"Speichern\s*: Bildunterschrift")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

PHOTOS = [  # file in the corpus, title, caption, credit
    ("Canon PowerShot G11.jpg", "Konrad-Adenauer-Brücke im Abendlicht", "Der Rhein zwischen Ludwigshafen und Mannheim.",
     "Anna Beispiel"),
    ("Olympus E-10.jpg", "Pont du Bonhomme", "Die Hängebrücke über den Blavet bei Lorient.", "Yann Le Goff"),
    ("Nikon E5700.jpg", "Colorado Street Bridge", "Die Bogenbrücke über den Arroyo Seco in Pasadena.", "Paula Ortiz"),
    ("Sony DSC-G1.jpg", "Hochstraße Nord", "Noch in Prüfung: erscheint nicht öffentlich.", "Mia Müller"),
    ("Nikon D40.jpg", "Tower Bridge", "Havering liegt im Osten Londons; die Tower Bridge kennt jeder.",
     "Harriet Jones"),
]
INTRO = """Zum **Partnerschaftsbrunch 2026** zeigen die Vereine Brücken aus allen Partnerstädten.

## Über die Auswahl

Eine Jury aus allen Vereinen hat *blind* ausgewählt. Mehr zum Projekt: [Stadt Ludwigshafen](https://www.ludwigshafen.de/).
<script>alert('nicht hier')</script>"""


@pytest.fixture
def archive_app(running_archive: tuple[str, str], tmp_path: Path) -> Iterator[Flask]:
    """The running server's database and store, opened here too (jobs inline), to set the scene quickly."""
    app = create_app({**database_settings(tmp_path / "instance"),
                      "INSTANCE_DIR": str(tmp_path / "instance"), "UPLOAD_DIR": str(tmp_path / "uploads"),
                      "INDEX_DIR": str(tmp_path / "index"), "QUEUE": "immediate", "WTF_CSRF_ENABLED": False})
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def set_the_scene(app: Flask, corpus: Path) -> tuple[int, list[int]]:
    """A curator, a member, five photos (four published, one in review) and a draft exhibition of them."""
    pasadena = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    curator = User(username="cora", role=Role.CURATOR, display_name="Cora Kuratorin",
                   password_hash=hash_password(PASSWORD))
    member = User(username="mia", role=Role.MEMBER, association_id=pasadena, password_hash=hash_password(PASSWORD))
    db.session.add_all([curator, member])
    db.session.commit()
    client: FlaskClient = app.test_client()
    login(client, "mia")
    ids = []
    for n, (name, title, caption, credit) in enumerate(PHOTOS):
        response = upload(client, [((corpus / "cameras/jpg" / name).read_bytes(), name)])
        assert response.status_code == 201, response.get_data(as_text=True)
        photo_id = int(response.get_json()["results"][0]["photo_id"])
        photo = db.session.get(Photo, photo_id)
        workflow.update_photo(db.session, photo, workflow.RightsChange(
            title=title, caption=caption, alt_text=f"Foto: {title}", credit=credit,
            licence=Licence.CC_BY_SA if n == 1 else Licence.CC_BY, people=PeopleShown.NONE, minors=False,
            place_id=a_place().id, taken_at=datetime(2024, 6, 1 + n, 19, 30)), member)
        if n != 3:
            workflow.transition(db.session, photo, "publish", curator)
        ids.append(photo_id)
    exhibition = exhibitions.create_exhibition(db.session, curator, exhibitions.ExhibitionFields(
        title="Brücken verbinden – Partnerschaftsbrunch 2026", venue="Pfalzbau Ludwigshafen, Foyer",
        starts_on="2026-05-12", ends_on="2026-06-30", intro=INTRO))
    exhibitions.add_photo_ids(db.session, exhibition, ids, curator)
    return exhibition.id, ids


def saved_order(exhibition_id: int) -> list[int]:
    db.session.expire_all()
    return list(db.session.scalars(select(ExhibitionItem.photo_id).where(ExhibitionItem.exhibition_id == exhibition_id)
                                   .order_by(ExhibitionItem.position)))


def dom_order(page: Any) -> list[str]:
    return page.locator("#ex-items > .ex-item").evaluate_all("lis => lis.map(li => li.dataset.title)")


def wait_saved(page: Any) -> None:
    """The script marks the list with the order the server confirmed."""
    expect(page.locator("#ex-items")).to_have_attribute(
        "data-saved", ",".join(page.locator("#ex-items > .ex-item").evaluate_all(
            "lis => lis.map(li => li.dataset.itemId)")), timeout=10_000)


def shoot(page: Any, name: str, phone_context: Any) -> None:
    page.screenshot(path=str(ARTIFACTS / f"exhibition-{name}.png"), full_page=True)
    fits_the_screen(page)
    phone = phone_context.new_page()
    phone.goto(page.url)
    fits_the_screen(phone)
    phone.screenshot(path=str(ARTIFACTS / f"exhibition-{name}-phone.png"), full_page=True)
    phone.close()


def test_reorder_by_keyboard_and_drag_publish_and_visit(browser: Any, archive_app: Flask,  # noqa: F811
                                                        running_archive: tuple[str, str], corpus: Path) -> None:
    base, _one_time = running_archive
    ARTIFACTS.mkdir(exist_ok=True)
    exhibition_id, (bridge, bonhomme, colorado, hochstrasse, tower) = set_the_scene(archive_app, corpus)
    titles = {photo_id: PHOTOS[n][1] for n, photo_id in enumerate((bridge, bonhomme, colorado, hochstrasse, tower))}

    curator = browser.new_context(viewport=DESKTOP, locale="de-DE")
    watch = Watch(curator)
    page = curator.new_page()
    page.goto(base + "/login")
    page.get_by_label("Benutzername").fill("cora")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.get_by_role("link", name="Prüfung").click()
    page.get_by_role("link", name="Ausstellungen").last.click()
    page.get_by_role("link", name="Brücken verbinden – Partnerschaftsbrunch 2026").click()
    editor_url = page.url
    wait_until_loaded(page, "#ex-items img.thumb")
    assert dom_order(page) == [titles[i] for i in (bridge, bonhomme, colorado, hochstrasse, tower)]
    hidden = page.locator(f"#item-{page.locator('.ex-item.not-public').get_attribute('data-item-id')}")
    assert "nicht öffentlich: eingereicht, wartet auf Prüfung" in hidden.inner_text()
    expect(page.locator(".ex-handle").first).to_be_visible()  # the script is there: drag handles shown

    # The keyboard: Tab from the first caption's button reaches ↑ then ↓; Enter moves the photo one down.
    first = page.locator(".ex-item").first
    first.get_by_role("button", name=SAVE_CAPTION).focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.direction") == "up"
    page.keyboard.press("Enter")  # already first: nothing moves, and it is said
    expect(page.locator("#order-status")).to_have_text("„Konrad-Adenauer-Brücke im Abendlicht“ steht schon an "
                                                       "erster Stelle.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.direction") == "down"
    # Both saves are held on their way, as on a slow connection: the list marks as saved only the order the
    # server confirmed, and the second move is saved too (the list once marked the newest order as saved when only
    # the first had arrived).
    held: list[Any] = []
    page.route("**/order", lambda route: held.append(route))

    def wait_for_requests(count: int) -> None:
        deadline = time.monotonic() + 10
        while len(held) < count:
            assert time.monotonic() < deadline, f"save {count} was never sent"
            page.wait_for_timeout(50)

    page.keyboard.press("Enter")
    expect(page.locator("#order-status")).to_have_text("„Konrad-Adenauer-Brücke im Abendlicht“ ist jetzt an "
                                                       "Position 2 von 5.")
    first_move = ",".join(page.locator("#ex-items > .ex-item").evaluate_all("lis => lis.map(li => li.dataset.itemId)"))
    # The focus stays on the same button, which moved with its photo; Enter again moves it on.
    assert page.evaluate("document.activeElement.closest('.ex-item').dataset.title") == titles[bridge]
    page.keyboard.press("Enter")
    wait_for_requests(1)
    held[0].continue_()
    wait_for_requests(2)  # the newest order goes out once the first is answered
    expect(page.locator("#ex-items")).to_have_attribute("data-saved", first_move)
    held[1].continue_()
    wait_saved(page)
    page.unroute("**/order")
    assert dom_order(page) == [titles[i] for i in (bonhomme, colorado, bridge, hochstrasse, tower)]
    assert saved_order(exhibition_id) == [bonhomme, colorado, bridge, hochstrasse, tower]
    assert page.locator(".ex-item").nth(2).locator(".ex-pos").inner_text() == "3"

    # Drag and drop at the handle: Tower Bridge to the top.
    tower_item = page.locator(".ex-item", has_text="Tower Bridge")
    top = page.locator(".ex-item").first
    tower_item.locator(".ex-handle").drag_to(top, target_position={"x": 200, "y": 8})
    wait_saved(page)
    assert dom_order(page)[0] == "Tower Bridge"
    assert saved_order(exhibition_id) == [tower, bonhomme, colorado, bridge, hochstrasse]
    expect(page.locator("#order-status")).to_have_text("„Tower Bridge“ ist jetzt an Position 1 von 5.")
    # ... and Pont du Bonhomme below Konrad-Adenauer-Brücke.
    target = page.locator(".ex-item", has_text="Konrad-Adenauer-Brücke")
    box = target.bounding_box()
    page.locator(".ex-item", has_text="Pont du Bonhomme").locator(".ex-handle").drag_to(
        target, target_position={"x": 200, "y": box["height"] - 6})
    wait_saved(page)
    assert saved_order(exhibition_id) == [tower, colorado, bridge, bonhomme, hochstrasse]

    # A caption of the exhibition's own.
    item = page.locator(".ex-item", has_text="Colorado Street Bridge")
    item.get_by_label("Bildunterschrift in dieser Ausstellung").fill("Beim Brunch an der Stirnwand, 2 m breit.")
    item.get_by_role("button", name=SAVE_CAPTION).click()
    expect(page.locator(".flash.ok")).to_contain_text("Bildunterschrift für „Colorado Street Bridge“")
    phone = browser.new_context(viewport=PHONE, locale="de-DE")
    phone.add_cookies(curator.cookies())
    page.goto(editor_url)
    wait_until_loaded(page, "#ex-items img.thumb")
    shoot(page, "editor", phone)

    # Publish, and look at it as a visitor.
    page.get_by_role("button", name="Ausstellung veröffentlichen").click()
    expect(page.locator(".flash.ok")).to_contain_text("ist veröffentlicht")
    visitor = browser.new_context(viewport=DESKTOP, locale="de-DE")
    watch_visitor = Watch(visitor)
    visitor_phone = browser.new_context(viewport=PHONE, locale="de-DE")
    public = visitor.new_page()
    public.goto(base + "/")
    public.get_by_role("link", name="Ausstellungen").click()
    wait_until_loaded(public, ".ex-card img")
    shoot(public, "index", visitor_phone)
    public.get_by_role("link", name="Brücken verbinden").click()
    wait_until_loaded(public, ".ex-photos img")
    shown = public.locator(".ex-photo-title").all_inner_texts()
    assert [t.split(" ", 1)[1] for t in shown] == [titles[i] for i in (tower, colorado, bridge, bonhomme)]
    text = public.locator("main").inner_text()
    assert "Hochstraße Nord" not in text and "Entwurf" not in text
    assert "12. Mai – 30. Juni 2026" in text and "Pfalzbau Ludwigshafen, Foyer" in text
    assert "Beim Brunch an der Stirnwand, 2 m breit." in text
    assert "Foto: Yann Le Goff · CC BY-SA 4.0" in text and "Foto: Anna Beispiel · CC BY 4.0" in text
    assert public.locator(".ex-intro h2").inner_text() == "Über die Auswahl"
    assert public.locator(".ex-intro a").get_attribute("rel") == "nofollow noopener"
    assert public.locator(".ex-intro script").count() == 0 and "alert" not in public.content()
    shoot(public, "page", visitor_phone)

    # A photo withdrawn in the meantime: gone from the public page with the next load.
    workflow.transition(db.session, db.session.get(Photo, colorado), "withdraw",
                        db.session.scalar(select(User).where(User.username == "cora")), "Rechte unklar")
    public.reload()
    shown = public.locator(".ex-photo-title").all_inner_texts()
    assert [t.split(" ", 1)[1] for t in shown] == [titles[i] for i in (tower, bridge, bonhomme)]
    page.goto(editor_url)
    withdrawn = page.locator(".ex-item", has_text="Colorado").inner_text()
    assert "nicht öffentlich: zurückgezogen – Rechte unklar" in withdrawn

    # Without JavaScript the ↑ button is a plain form: the page reloads with the photo one place up.
    plain = browser.new_context(viewport=DESKTOP, locale="de-DE", java_script_enabled=False)
    plain.add_cookies(curator.cookies())
    no_js = plain.new_page()
    no_js.goto(editor_url)
    expect(no_js.locator(".ex-handle").first).to_be_hidden()
    no_js.get_by_role("button", name="Nach oben: „Pont du Bonhomme“").click()
    expect(no_js.locator(".flash.ok")).to_have_text("„Pont du Bonhomme“ ist jetzt an Position 3 von 5.")
    assert saved_order(exhibition_id) == [tower, colorado, bonhomme, bridge, hochstrasse]
    assert no_js.url.endswith("#item-" + no_js.locator(".ex-item", has_text="Pont du Bonhomme")
                              .get_attribute("data-item-id"))

    for context in (curator, phone, visitor, visitor_phone, plain):
        context.close()
    assert watch.problems == [] and watch_visitor.problems == []
