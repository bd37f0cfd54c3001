"""Accessibility and browser hygiene of every page type, in a real browser (Debian Chromium) against the real
archive (gunicorn + worker): for each page in PAGES, in German and English at 1280 px and in German at 390 px
(COMBINATIONS),

- axe-core (WCAG 2.0/2.1 A and AA, plus 2.2 AA target sizes): no "serious" or "critical" violation,
- no console error, no uncaught script error, no subresource answered 4xx/5xx or failed,
- every <img> has a non-empty alt text, the page fits a phone's width,
- the keyboard (German only: focus styles do not depend on the language): the first Tab reaches the skip link,
  and every element the next TABS presses of Tab reach looks different when focused (outline or box-shadow),

and a screenshot per page, language and viewport in test-artifacts/a11y/. All axe findings (every impact) are
also written to test-artifacts/a11y/findings.json.

Problems that only a template can fix are listed in KNOWN (page → rule → what to change); such a check is
reported as xfail with the list, never skipped, and fails as soon as anything *else* turns up. Remove an entry
once its template is fixed. New page types (browse pages, the feed, the chunked uploader ...) are one line in
PAGES.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.e2e.test_browser import ARTIFACTS, browser  # noqa: F401 (the module's Chromium; fails if it cannot start)
from tests.servers.database import database_settings

pytestmark = pytest.mark.e2e

A11Y = ARTIFACTS / "a11y"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
LANGUAGES = ("de", "en")
# Both languages at desktop width, German (the longer words) at phone width: all four combinations took about
# 4.5 minutes on two shared cores, these three about 3.5. Add ("en", "phone") when there is time to spare.
COMBINATIONS = [("de", "desktop"), ("en", "desktop"), ("de", "phone")]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]  # 2.2 AA only adds target-size
BLOCKING = ("serious", "critical")
TABS = 30  # how far the keyboard check tabs through a page (the header, then the page's first controls)


def confirm_publish(page: Any) -> None:
    """From the review queue to the bulk confirmation page (nothing is changed until it is confirmed)."""
    page.locator("input[name=photo_ids]").first.check()
    page.locator("button[name=action][value=publish]").click()
    page.wait_for_load_state("load")


@dataclass(frozen=True)
class Page:
    name: str
    role: str  # visitor, member, curator, admin
    path: str  # formatted with the scene's ids (Scene.ids)
    status: int = 200
    then: Callable[[Any], None] | None = None  # what to do on the page before checking it


# Every page type. {photo}: a published photo of the member's association, {review}: one waiting for review.
PAGES = [
    Page("home", "visitor", "/"),
    Page("search", "visitor", "/search?q=Rhein"),
    Page("photo", "visitor", "/photos/{photo}"),
    Page("exhibitions", "visitor", "/ausstellungen"),
    Page("exhibition", "visitor", "/ausstellungen/{exhibition_slug}"),
    Page("login", "visitor", "/login"),
    Page("invite", "visitor", "/invite/{invite_token}"),
    Page("reset", "visitor", "/reset/{reset_token}"),
    Page("not-found", "visitor", "/gibt-es-nicht", status=404),
    Page("account", "member", "/account"),
    Page("password", "member", "/password"),
    Page("upload", "member", "/upload"),
    Page("grid", "member", "/photos"),
    Page("photo-member", "member", "/photos/{review}"),
    Page("edit", "member", "/photos/{review}/edit"),
    Page("queue", "curator", "/curate"),
    Page("confirm", "curator", "/curate", then=confirm_publish),
    Page("audit", "curator", "/curate/audit"),
    Page("photo-audit", "curator", "/curate/photos/{photo}/audit"),
    Page("places", "curator", "/curate/places"),
    Page("place", "curator", "/curate/places/{place}"),
    Page("tags", "curator", "/curate/tags"),
    Page("shortlists", "curator", "/curate/shortlists"),
    Page("shortlist", "curator", "/curate/shortlists/{shortlist}"),
    Page("jury-rounds", "curator", "/curate/jury"),
    Page("jury-new", "curator", "/curate/jury/new"),
    Page("jury-round", "curator", "/curate/jury/{round}"),
    Page("jury-judge", "curator", "/curate/jury/{round}/judge"),
    Page("exhibitions-manage", "curator", "/curate/exhibitions"),
    Page("exhibition-editor", "curator", "/curate/exhibitions/{exhibition}"),
    Page("export", "curator", "/curate/exports/{export}"),
    Page("photo-curator", "curator", "/photos/{review}"),
    Page("admin", "admin", "/admin"),
    Page("admin-person", "admin", "/admin/users/{member}"),
    Page("admin-association", "admin", "/admin/associations/{association}"),
    Page("admin-association-new", "admin", "/admin/associations/new"),
    Page("browse", "visitor", "/entdecken"),
    Page("browse-association", "visitor", "/entdecken/verein/{association_slug}"),
    Page("browse-year", "visitor", "/entdecken/jahr/{year}"),
]

# What only the markup can fix (templates are being rewritten elsewhere): page name ("*" = every page) → rule id
# (axe's, or one of ours: img-alt, skip-link, focus-visible, too-wide, console, request) → what to change.
# Each entry makes the check xfail with its list; anything not listed fails it.
KNOWN: dict[str, dict[str, str]] = {}

PASSWORD = "correct horse battery"


# --------------------------------------------------------------------------------------------------------------------
# The archive and its data, once for the module


@dataclass
class Scene:
    base: str
    ids: dict[str, Any]
    states: dict[str, Any] = field(default_factory=dict)  # role -> Playwright storage state (logged in)
    findings: list[dict[str, Any]] = field(default_factory=list)


def jpeg(seed: int) -> bytes:
    from PIL import Image

    from tests.imagefactory import photo

    picture = photo((960, 640), seed=seed)
    picture = Image.merge("RGB", [picture.split()[(n + seed) % 3] for n in range(3)])  # each photo its own colours
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def set_the_scene(app: Any) -> dict[str, Any]:
    """An admin, a member, a curator; four photos of Pasadena (three published with their rights complete, one
    waiting for review); a place, a tag, a shortlist, a jury round, a published exhibition with an export, an
    invitation and a password reset link."""
    from sqlalchemy import select

    from archive import accounts, exhibitions, jury, selection, vocabulary
    from archive.auth import hash_password
    from archive.models import Association, Photo, Role, User, db
    from tests.conftest import login
    from tests.photos import a_place, complete_bundle, publish, upload

    pasadena = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    admin = User(username="ada", role=Role.ADMIN, display_name="Ada Admin", password_hash=hash_password(PASSWORD))
    curator = User(username="cora", role=Role.CURATOR, display_name="Cora Kuratorin",
                   password_hash=hash_password(PASSWORD))
    member = User(username="mia", role=Role.MEMBER, display_name="Mia Müller", association_id=pasadena,
                  password_hash=hash_password(PASSWORD))
    db.session.add_all([admin, curator, member])
    db.session.commit()

    client = app.test_client()
    login(client, "mia")
    titles = ["Konrad-Adenauer-Brücke am Rhein", "Colorado Street Bridge", "Rheinufer bei Nacht", "Hochstraße Nord"]
    ids = []
    for n, title in enumerate(titles):
        response = upload(client, [(jpeg(n + 1), f"bruecke-{n}.jpg")])
        assert response.status_code == 201, response.get_data(as_text=True)
        photo_id = int(response.get_json()["results"][0]["photo_id"])
        complete_bundle(photo_id, member, title=title, caption=f"{title}: eine Brücke über den Rhein",
                        alt_text=f"Foto: {title}, eine Brücke im Abendlicht")
        if n < 3:
            publish(photo_id, curator)
        ids.append(photo_id)
    photos = [db.session.get(Photo, i) for i in ids]
    place = a_place()
    tag = vocabulary.create_tag(db.session, curator, "Rhein")
    vocabulary.tag_photos(db.session, photos[:2], tag, curator)
    shortlist = selection.create_shortlist(db.session, curator, "Brunch 2026")
    selection.add_photos(db.session, shortlist, curator, ids[:3])
    in_a_week = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=7)
    jury_round = jury.create_round(db.session, curator, name="Brunch 2026, 1. Runde", mode="stars", blind=True,
                                   deadline=in_a_week, juror_ids=[curator.id], pool=jury.pool_from_photos(ids[:3]))
    exhibition = exhibitions.create_exhibition(db.session, curator, exhibitions.ExhibitionFields(
        title="Brücken verbinden", venue="Pfalzbau Ludwigshafen, Foyer", starts_on="2026-05-12",
        ends_on="2026-06-30", intro="Brücken aus **allen Partnerstädten**."))
    exhibitions.add_photo_ids(db.session, exhibition, ids[:3], curator)
    exhibitions.publish(db.session, exhibition, curator)
    _invitation, invite_token = accounts.create_invitation(db.session, admin, "member", pasadena)
    _reset, reset_token = accounts.create_reset_link(db.session, admin, member)

    curating = app.test_client()
    login(curating, "cora")
    response = curating.post(f"/curate/exhibitions/{exhibition.id}/exports",
                             data={"kind": "contact_sheet", "language": "de"})
    assert response.status_code == 303, response.get_data(as_text=True)
    export_id = int(re.search(r"/curate/exports/(\d+)", response.headers["Location"]).group(1))
    return {"photo": ids[0], "review": ids[3], "place": place.id, "shortlist": shortlist.id, "round": jury_round.id,
            "exhibition": exhibition.id, "exhibition_slug": exhibition.slug, "export": export_id,
            "member": member.id, "association": pasadena, "association_slug": "pasadena",
            "year": photos[0].taken_at.year, "invite_token": invite_token, "reset_token": reset_token}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Scene]:  # noqa: F811
    from archive import create_app
    from archive.models import db
    from tests.conftest import IsolatedClient
    from tests.servers.archive import running_archive

    folder = tmp_path_factory.mktemp("a11y")
    A11Y.mkdir(parents=True, exist_ok=True)
    try:
        with pytest.MonkeyPatch.context() as env, running_archive(folder) as (base, _one_time):
            for name in [n for n in os.environ if n.startswith("ARCHIVE_")]:  # a developer's settings stay out
                env.delenv(name)
            # The running server's database and store, opened here too (jobs inline), to set the scene quickly.
            app = create_app({**database_settings(folder / "instance"),
                              "INSTANCE_DIR": str(folder / "instance"), "UPLOAD_DIR": str(folder / "uploads"),
                              "INDEX_DIR": str(folder / "index"), "QUEUE": "immediate",
                              "WTF_CSRF_ENABLED": False})
            app.test_client_class = IsolatedClient
            with app.app_context():
                ids = set_the_scene(app)
                db.session.remove()
                db.engine.dispose()
            deadline = time.monotonic() + 60  # the worker indexes the published photos within moments
            while 'class="hit' not in requests.get(f"{base}/search?q=Rhein", timeout=10).text:
                assert time.monotonic() < deadline, "the published photos never became searchable"
                time.sleep(0.5)
            found = Scene(base, ids)
            for role, username in (("member", "mia"), ("curator", "cora"), ("admin", "ada")):
                context = browser.new_context()
                page = context.new_page()
                page.goto(base + "/login")
                page.locator("input[name=username]").fill(username)
                page.locator("input[name=password]").fill(PASSWORD)
                page.locator("main form button[type=submit]").click()
                page.wait_for_load_state("load")
                assert "/login" not in page.url, f"{username} could not log in: {page.url}"
                found.states[role] = context.storage_state()
                context.close()
            yield found
            (A11Y / "findings.json").write_text(json.dumps(found.findings, indent=1, ensure_ascii=False))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def contexts(scene: Scene, browser: Any) -> Iterator[Callable[[str, str, str], Any]]:  # noqa: F811
    """One browser context per role, language and viewport, made when first needed. The language is chosen
    with the switch in the page header (/sprache/<lang>), as people do."""
    made: dict[tuple[str, str, str], Any] = {}

    def context_for(role: str, language: str, viewport: str) -> Any:
        key = (role, language, viewport)
        if key not in made:
            context = browser.new_context(viewport=VIEWPORTS[viewport], locale="de-DE",
                                          storage_state=scene.states.get(role))
            context.add_init_script(axe_script())  # axe-core in every page, before the page's own scripts
            page = context.new_page()
            page.goto(f"{scene.base}/sprache/{language}?next=/")
            assert page.locator("html").get_attribute("lang") == language
            page.close()
            made[key] = context
        return made[key]

    yield context_for
    for context in made.values():
        context.close()


# --------------------------------------------------------------------------------------------------------------------
# The checks

AXE_RUN = """async tags => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 160),
                              summary: (n.failureSummary || "").slice(0, 300)}))}));
}"""

FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"

# Each focusable element's look before anything is focused; then what Tab reaches, compared with that look.
SNAPSHOT_LOOKS = """sel => {
  const look = el => { const s = getComputedStyle(el);
    return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join("|"); };
  window.__a11yLook = look;
  window.__a11yBefore = new Map([...document.querySelectorAll(sel)].map(el => [el, look(el)]));
}"""
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const before = window.__a11yBefore.get(el);
  const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "") +
    ` "${(el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40)}"`;
  const r = el.getBoundingClientRect();
  return {name, skip: el.classList.contains("skip"), changed: before === undefined || before !== window.__a11yLook(el),
          visible: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.left < innerWidth};
}"""


def axe_script() -> str:
    try:
        from axe_playwright_python.base import AXE_SCRIPT
    except ImportError:
        pytest.fail("axe-core is missing: install the test extras (pip install -e '.[test]', "
                    "axe-playwright-python bundles axe.min.js)", pytrace=False)
    return AXE_SCRIPT


class Watch:
    """Console errors, uncaught script errors (CSP refusals among them) and failed subresources of one page."""

    def __init__(self, page: Any) -> None:
        self.console: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console.append(f"uncaught: {e}"))
        page.on("response", lambda r: self.requests.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)
        page.on("requestfailed", lambda r: self.requests.append(f"failed ({r.failure}) {r.url}")
                if r.resource_type != "document" else None)


def keyboard_problems(page: Any) -> list[tuple[str, str]]:
    """The first Tab reaches the skip link (and shows it); every element Tab reaches after it looks focused."""
    found: list[tuple[str, str]] = []
    # From the top: the document itself focused (an autofocused field would otherwise be the starting point).
    page.evaluate("""() => { window.scrollTo(0, 0); const b = document.body; b.tabIndex = -1; b.focus();
                             b.removeAttribute("tabindex"); }""")
    page.evaluate(SNAPSHOT_LOOKS, FOCUSABLE)
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUSED)
    if not first or not first["skip"]:
        found.append(("skip-link", f"the first Tab reaches {first and first['name']}, not the skip link"))
    elif not first["visible"] or not first["changed"]:
        found.append(("skip-link", "the skip link is not visible (or shows no focus) when focused"))
    seen = set()
    for _ in range(TABS):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        if now is None or now["skip"]:
            break
        if not now["changed"] and now["name"] not in seen:
            found.append(("focus-visible", f"no visible focus (outline/box-shadow unchanged) on {now['name']}"))
        seen.add(now["name"])
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    return found


def load_images(page: Any, seconds: float = 10) -> None:
    """Lazy images below the fold too, for the screenshot (not a check: the request watch reports failures)."""
    page.locator("img[loading=lazy]").evaluate_all("imgs => imgs.forEach(i => { i.loading = 'eager'; })")
    deadline = time.monotonic() + seconds
    check = "imgs => imgs.every(i => i.complete)"
    while not page.locator("img").evaluate_all(check) and time.monotonic() < deadline:
        time.sleep(0.1)


CASES = [pytest.param(p, lang, vp, id=f"{p.name}-{lang}-{vp}") for p in PAGES for lang, vp in COMBINATIONS]


@pytest.mark.parametrize(("spec", "language", "viewport"), CASES)
def test_page_is_accessible(spec: Page, language: str, viewport: str, scene: Scene,
                            contexts: Callable[[str, str, str], Any]) -> None:
    url = scene.base + spec.path.format(**scene.ids)
    page = contexts(spec.role, language, viewport).new_page()
    watch = Watch(page)
    where = f"{spec.name} ({spec.role}, {language}, {viewport}) {url}"
    try:
        response = page.goto(url)
        if spec.then is not None:
            spec.then(page)
        else:
            assert response.status == spec.status, f"{where}: answered {response.status}, expected {spec.status}"
        assert page.locator("html").get_attribute("lang") == language, f"{where}: <html lang> is not {language}"
        problems: list[tuple[str, str]] = []  # (rule, what)

        violations = page.evaluate(AXE_RUN, AXE_TAGS)
        for violation in violations:
            scene.findings.append({"page": spec.name, "language": language, "viewport": viewport, "url": url,
                                   **violation})
            if violation["impact"] in BLOCKING:
                targets = "; ".join(n["target"] for n in violation["nodes"][:8])
                more = f" (+{len(violation['nodes']) - 8} more)" if len(violation["nodes"]) > 8 else ""
                summary = violation["nodes"][0]["summary"].replace("\n", " ")
                problems.append((violation["id"], f"{violation['impact']}: {violation['help']} — {targets}{more}"
                                                  f" — e.g. {summary}"))

        for html in page.locator("img").evaluate_all(
                "imgs => imgs.filter(i => i.checkVisibility() && !(i.getAttribute('alt') || '').trim())"
                ".map(i => i.outerHTML.slice(0, 160))"):  # the closed lightbox's empty image is not shown
            problems.append(("img-alt", f"<img> without alt text: {html}"))
        width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if width > inner:
            problems.append(("too-wide", f"{width} px wide on a {inner} px screen"))
        if language == LANGUAGES[0]:  # focus rings do not depend on the language: one language suffices
            problems.extend(keyboard_problems(page))

        load_images(page)
        page.screenshot(path=str(A11Y / f"{spec.name}-{language}-{viewport}.png"), full_page=True)

        expected_console = {"Failed to load resource: the server responded with a status of 404 (NOT FOUND)"} \
            if spec.status == 404 else set()
        problems.extend(("console", text) for text in watch.console if text not in expected_console)
        problems.extend(("request", text) for text in watch.requests)
    finally:
        page.close()

    known = {**KNOWN.get("*", {}), **KNOWN.get(spec.name, {})}
    unexpected = [f"  [{rule}] {what}" for rule, what in problems if rule not in known]
    assert not unexpected, f"{where}:\n" + "\n".join(unexpected)
    remaining = sorted({rule for rule, _ in problems if rule in known})
    if remaining:
        pytest.xfail(f"{where}: known markup problems for the coordinator: "
                     + "; ".join(f"{rule} → {known[rule]}" for rule in remaining))
