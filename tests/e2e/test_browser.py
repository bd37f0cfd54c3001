"""A new user in a real browser (Debian Chromium driven by Playwright): log in with the one-time
password, choose a password, upload photos with the file picker, watch the grid fill, open a photo.
Screenshots go to test-artifacts/ to be looked at."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import Error, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run ./dev.sh test (it installs the Debian package 'chromium')",
                    pytrace=False)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        except Error as error:
            pytest.fail(f"Chromium did not start: {error}", pytrace=False)
        yield browser
        browser.close()


def fits_the_screen(page: Any) -> None:
    """Nothing wider than the viewport: no sideways scrolling on a phone."""
    width, viewport = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"{page.url} is {width} px wide on a {viewport} px screen"


def wait_until_loaded(page: Any, selector: str, seconds: float = 30) -> None:
    """Every image matching selector has arrived and decoded."""
    deadline = time.monotonic() + seconds
    check = "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"
    while not page.locator(selector).evaluate_all(check):
        assert time.monotonic() < deadline, f"images {selector} did not load"
        time.sleep(0.2)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_first_login_upload_and_photo_page(browser: object, running_archive: tuple[str, str], corpus: Path,
                                           viewport: dict[str, int]) -> None:
    base, password = running_archive
    ARTIFACTS.mkdir(exist_ok=True)
    name = "desktop" if viewport["width"] > 800 else "phone"
    context = browser.new_context(viewport=viewport, locale="de-DE")  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(base + "/")
    page.get_by_role("link", name="Anmelden").click()
    page.get_by_label("Benutzername").fill("admin")
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Anmelden").click()
    assert page.url.endswith("/password")
    page.get_by_label("Neues Passwort").fill("brücken-verbinden-2026")
    page.get_by_label("Noch einmal").fill("brücken-verbinden-2026")
    page.get_by_role("button", name="Speichern").click()

    page.get_by_role("link", name="Hochladen", exact=True).click()
    page.get_by_label("Verein, dem die Fotos gehören").select_option("lorient")
    names = ("Canon EOS 30D (4).jpg", "Nikon D40.jpg", "Sony D5403 (Xperia Z2).jpg")
    cameras = [corpus / "cameras/jpg" / n for n in names]
    page.get_by_label("Fotos", exact=True).set_input_files([str(p) for p in cameras])
    page.screenshot(path=str(ARTIFACTS / f"upload-{name}.png"), full_page=True)
    fits_the_screen(page)
    page.get_by_role("button", name="Hochladen", exact=True).click()
    # Each file goes in its own chunks; the summary appears when the last one is answered.
    expect(page.locator(".summary")).to_contain_text("3 neu archiviert", timeout=120_000)
    expect(page.get_by_role("button", name="Hochladen", exact=True)).to_be_hidden()  # done: the links lead on
    page.screenshot(path=str(ARTIFACTS / f"results-{name}.png"), full_page=True)
    fits_the_screen(page)

    page.get_by_role("link", name="Zu den Fotos von").click()
    # The grid refreshes itself until the worker has made every thumbnail. (Locators and evaluate, not
    # wait_for_function: that compiles code in the page, which our Content-Security-Policy forbids.)
    expect(page.locator(".tile img")).to_have_count(3, timeout=60_000)
    wait_until_loaded(page, ".tile img")
    page.screenshot(path=str(ARTIFACTS / f"grid-{name}.png"), full_page=True)
    fits_the_screen(page)

    page.locator(".tile a").first.click()
    wait_until_loaded(page, ".photo-figure img")
    facts = page.locator(".facts").inner_text()
    assert "Kamera" in facts and "unbekannt" not in facts.split("Kamera")[1].split("\n")[1]
    page.screenshot(path=str(ARTIFACTS / f"photo-{name}.png"), full_page=True)
    fits_the_screen(page)

    # Search finds it (curators and admins see unpublished photos too), with facets beside the hits.
    page.get_by_role("link", name="Suche", exact=True).click()
    page.get_by_role("searchbox").fill("Nikon")
    page.get_by_role("button", name="Suchen").click()
    deadline = time.monotonic() + 60  # the worker indexes within moments of processing
    while "1 Treffer" not in page.locator(".hits").inner_text():
        assert time.monotonic() < deadline, "the photo never became searchable"
        time.sleep(0.5)
        page.reload()
    expect(page.locator(".hit")).to_have_count(1)
    assert "Deutsch-Französische Gesellschaft" in page.locator(".facets").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"search-{name}.png"), full_page=True)
    fits_the_screen(page)
    assert problems == []
    context.close()
