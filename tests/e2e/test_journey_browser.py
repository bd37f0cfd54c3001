"""The whole path in English on a phone, as a visiting member and a visitor from a partner city would take it:
a member drops real camera files (and a PDF named .jpg) on the upload page, each file reports on its own, the
member describes a photo; a curator publishes it (in German, on a desktop); a visitor searches, narrows the hits
by a facet, opens the photo and its lightbox, and the exhibition. No console errors anywhere. Screenshots go to
test-artifacts/journey-*.png.

The archive and its people come from the accessibility test's scene (tests/e2e/test_accessibility.py)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_accessibility import contexts, scene  # noqa: F401 (fixtures: one archive, its people)
from tests.e2e.test_browser import ARTIFACTS, browser, fits_the_screen, wait_until_loaded  # noqa: F401
from tests.e2e.test_workflow_browser import Watch

DROP = """async files => {
  const data = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), c => c.charCodeAt(0));
    data.items.add(new File([bytes], f.name, {type: f.type}));
  }
  const zone = document.getElementById("dropzone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
  }
}"""


def shoot(page: Any, name: str) -> None:
    fits_the_screen(page)
    page.screenshot(path=str(ARTIFACTS / f"journey-{name}.png"), full_page=True)


def test_drop_describe_publish_then_find_in_english_on_a_phone(scene: Any, contexts: Any,  # noqa: F811
                                                               corpus: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    member_context = contexts("member", "en", "phone")
    watch_member = Watch(member_context)
    member = member_context.new_page()

    # Three files dropped at once: two camera photos and a PDF that calls itself a JPEG.
    member.goto(scene.base + "/upload")
    member.locator("summary").first.click()
    member.get_by_label("Photographer").fill("Mia Müller")
    member.get_by_label("Licence").select_option("cc-by-4.0")
    member.get_by_label("People in the photos").select_option("none")
    member.get_by_label("Minors shown?").select_option("no")
    member.get_by_label("Place or bridge").select_option(index=1)
    files = [{"name": name, "type": "image/jpeg", "b64": base64.b64encode(data).decode()} for name, data in (
        ("nikon.jpg", (corpus / "cameras/jpg/Nikon D40.jpg").read_bytes()),
        ("canon.jpg", (corpus / "cameras/jpg/Canon PowerShot G11.jpg").read_bytes()),
        ("scan.jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"))]
    member.evaluate(DROP, files)
    expect(member.locator(".upload-item")).to_have_count(3)
    member.get_by_role("button", name="Upload", exact=True).click()
    expect(member.locator(".upload-item.archived")).to_have_count(2, timeout=60_000)
    refused = member.locator(".upload-item.refused")
    expect(refused).to_have_count(1)
    assert "This file is not a photo (PDF detected)" in refused.inner_text()
    assert "scan.jpg" in refused.inner_text()
    shoot(member, "upload")

    # The member describes the first photo; the batch gave it the licence, credit, people answer and place.
    member.locator(".upload-item.archived").first.get_by_role("link", name="edit").click()
    member.get_by_label("Title", exact=True).fill("Colorado Street Bridge at dusk")
    member.get_by_label("Caption", exact=True).fill("The arch bridge over the Arroyo Seco in Pasadena")
    member.get_by_label("Alt text", exact=False).first.fill("A concrete arch bridge over a wooded valley")
    member.get_by_role("button", name="Save").click()
    expect(member.locator(".flash").first).to_be_visible()
    photo_url = member.url.removesuffix("/edit")
    deadline = time.monotonic() + 120  # the worker reads the camera's date and makes the images meanwhile
    while (member.locator(".photo-figure img").count() == 0
           or "the date the photo was taken" in member.inner_text("main")):
        assert time.monotonic() < deadline, "the photo was never processed"
        time.sleep(1)
        member.goto(photo_url)
    shoot(member, "photo-member")

    # A curator publishes it from the review queue, in German at a desk.
    curator_context = contexts("curator", "de", "desktop")
    watch_curator = Watch(curator_context)
    curator = curator_context.new_page()
    curator.goto(scene.base + "/curate")
    curator.get_by_label("„Colorado Street Bridge at dusk“ auswählen").check()
    curator.get_by_role("button", name="Veröffentlichen …").click()
    curator.get_by_role("button", name="Ja, 1 Foto").click()
    assert "1 veröffentlicht" in curator.locator(".flash").first.inner_text()

    # A visitor from Pasadena, in English on a phone: search, narrow by the association, open the photo.
    visitor_context = contexts("visitor", "en", "phone")
    watch_visitor = Watch(visitor_context)
    visitor = visitor_context.new_page()
    deadline = time.monotonic() + 60
    while True:
        visitor.goto(scene.base + "/search?q=Arroyo")
        if visitor.locator(".hit").count() == 1:
            break
        assert time.monotonic() < deadline, "the published photo never became searchable"
        time.sleep(0.5)
    facet = visitor.locator(".facets a", has_text="Pasadena").first
    facet.click()
    expect(visitor.locator(".hit")).to_have_count(1)
    assert "association=" in visitor.url
    shoot(visitor, "search")
    visitor.locator(".hit a").first.click()
    wait_until_loaded(visitor, ".photo-figure img")
    assert visitor.url.split("?")[0] == photo_url
    facts = visitor.locator("main").inner_text()
    for words in ("Photographer", "Mia Müller", "CC BY 4.0", "The arch bridge over the Arroyo Seco"):
        assert words in facts, words
    shoot(visitor, "photo")

    # The home page's lightbox: open, step with the keyboard, close with Escape.
    visitor.goto(scene.base + "/")
    visitor.locator(".grid .tile a").first.click()
    dialog = visitor.locator("dialog")
    expect(dialog).to_be_visible()
    first = dialog.locator("img").get_attribute("src")
    visitor.keyboard.press("ArrowRight")
    expect(dialog.locator("img")).not_to_have_attribute("src", first)
    shoot(visitor, "lightbox")
    visitor.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # And the exhibition.
    visitor.goto(scene.base + "/ausstellungen")
    visitor.locator("main a", has_text="Brücken verbinden").first.click()
    expect(visitor.locator("h1")).to_contain_text("Brücken verbinden")
    shoot(visitor, "exhibition")

    for page in (member, curator, visitor):
        page.close()
    # The member's one expected failure: the PDF's refusal is a 415 (which the console reports too).
    assert [p for p in watch_member.problems if "415" not in p] == []
    assert len(watch_member.problems) <= 2
    assert watch_curator.problems == [] and watch_visitor.problems == []


def test_photos_chosen_before_the_upload_script_arrives_are_uploaded(scene: Any, contexts: Any,  # noqa: F811
                                                                      corpus: Path) -> None:
    """On a slow connection people pick their photos before upload.js has arrived: the script takes them over
    (before, it said "Bitte wählen Sie mindestens ein Foto aus." and sent nothing)."""
    page = contexts("member", "de", "phone").new_page()
    held: list[Any] = []
    page.route("**/static/upload.js*", lambda route: held.append(route))  # held until the photo is chosen
    page.goto(scene.base + "/upload", wait_until="commit")
    page.get_by_label("Fotos", exact=True).set_input_files(str(corpus / "cameras/jpg/Sony D5403 (Xperia Z2).jpg"))
    deadline = time.monotonic() + 30
    while not held:
        assert time.monotonic() < deadline, "the page never asked for upload.js"
        page.wait_for_timeout(50)
    held[0].continue_()
    expect(page.locator(".upload-item")).to_have_count(1)
    page.get_by_role("button", name="Hochladen", exact=True).click()
    expect(page.locator(".summary")).to_contain_text("1 neu archiviert", timeout=60_000)
    page.close()
