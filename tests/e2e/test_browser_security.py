"""What only a real browser can show (catalogue cases 32 and 36 of ../shared/reference/reliability.md):

* a page on another site that makes a logged-in curator's browser post the archive's "publish" form changes
  nothing (SameSite cookies and the CSRF token), while the same curator publishing on the archive's own page works;
* script injected into one of our pages (as if escaping had failed somewhere) does not run: the browser blocks
  it by our Content-Security-Policy and reports the violation.

Two host names point at 127.0.0.1 (Chromium's --host-resolver-rules), so the attacking page is really another
site, not just another port. The archive and its people come from the accessibility test's scene."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import PASSWORD
from tests.e2e.test_accessibility import scene  # noqa: F401 (fixture: one archive, its people)
from tests.e2e.test_browser import CHROMIUM, LAUNCH_ARGS, browser  # noqa: F401
from tests.servers.radosgw import free_port

pytestmark = pytest.mark.e2e

ARCHIVE_HOST = "archiv.brucken.test"
EVIL_HOST = "boese.example.test"

ATTACK = """<!doctype html><html><body><h1>Gewinnspiel</h1>
<form id="f" method="post" action="{action}"><input name="action" value="publish"></form>
<script>document.getElementById("f").submit();</script></body></html>"""


@pytest.fixture(scope="module")
def two_sites_browser(browser: Any) -> Iterator[Any]:  # noqa: F811
    """A second Chromium (from the same Playwright) in which both host names lead to 127.0.0.1."""
    rules = f"--host-resolver-rules=MAP {ARCHIVE_HOST} 127.0.0.1, MAP {EVIL_HOST} 127.0.0.1"
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=[*LAUNCH_ARGS, rules])
    yield chromium
    chromium.close()


@pytest.fixture
def evil_site() -> Iterator[str]:
    """A page on another site that posts a form to the archive as soon as it loads; returns its origin."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"not here")
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.pages = pages  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server  # type: ignore[misc]
    finally:
        server.shutdown()
        server.server_close()


def _status(base: str, session: requests.Session, photo_id: int) -> str:
    """What the curator's photo page offers: 'publish' while it is not public, 'withdraw' once it is."""
    page = session.get(f"{base}/photos/{photo_id}", timeout=10).text
    offered = {action for action in ("publish", "withdraw") if f'name="action" value="{action}"' in page}
    assert len(offered) == 1, f"the photo page offers {offered or 'neither'}"
    return "veröffentlicht" if offered == {"withdraw"} else "nicht veröffentlicht"


def test_another_site_cannot_make_a_curator_publish(scene: Any, two_sites_browser: Any,  # noqa: F811
                                                    evil_site: Any) -> None:
    port = urlsplit(scene.base).port
    archive = f"http://{ARCHIVE_HOST}:{port}"
    photo_id = scene.ids["review"]
    action = f"{archive}/photos/{photo_id}/status"
    evil_site.pages["/gewinnspiel"] = ATTACK.format(action=action).encode()

    curator_http = requests.Session()
    login_form = curator_http.get(f"{scene.base}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_form)
    assert token, "the login form has no CSRF token"
    curator_http.post(f"{scene.base}/login", timeout=10,
                      data={"username": "cora", "password": PASSWORD, "csrf_token": token.group(1)})
    assert _status(scene.base, curator_http, photo_id) == "nicht veröffentlicht"

    context = two_sites_browser.new_context(locale="de-DE")
    page = context.new_page()
    page.goto(f"{archive}/login")
    page.locator("input[name=username]").fill("cora")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state("load")
    assert "/login" not in page.url, "the curator could not log in"

    posted: list[tuple[str, int]] = []
    page.on("response", lambda r: posted.append((r.request.method, r.status)) if r.url == action else None)
    page.goto(f"http://{EVIL_HOST}:{evil_site.server_address[1]}/gewinnspiel")
    page.wait_for_url(lambda url: url.startswith(archive), timeout=15_000)
    page.wait_for_load_state("load")
    assert posted and posted[0][0] == "POST", "the attacking page did not post its form"
    assert posted[0][1] in (302, 303, 400, 401, 403), posted  # refused: not logged in there, or no CSRF token
    assert _status(scene.base, curator_http, photo_id) == "nicht veröffentlicht"

    # The same curator, on the archive's own page, can publish it: the attack failed for the right reason.
    page.goto(f"{archive}/photos/{photo_id}")
    page.locator("form:has(input[name=action][value=publish]) button").click()
    page.wait_for_load_state("load")
    assert _status(scene.base, curator_http, photo_id) == "veröffentlicht"
    context.close()


INJECTED = ('<script>window.__injected = "script";</script>'
            '<img src="/nicht-da.png" onerror="window.__injected_attr = \'onerror\'" alt="">')


def test_script_injected_into_a_page_is_blocked_by_the_policy(scene: Any, browser: Any) -> None:  # noqa: F811
    """As if a caption had escaped unescaped: the page keeps our headers, its body gets script in two forms."""
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)

    def inject(route: Any) -> None:
        response = route.fetch()
        assert "script-src 'self'" in response.headers["content-security-policy"]
        body = response.text().replace("<main", INJECTED + "<main", 1)
        route.fulfill(response=response, body=body)

    page.route(f"{scene.base}/", inject)
    page.goto(f"{scene.base}/")
    page.wait_for_load_state("load")
    assert page.locator("img[src='/nicht-da.png']").count() == 1  # the injected markup is in the page ...
    assert page.evaluate("() => [window.__injected, window.__injected_attr]") == [None, None]  # ... its script is not
    assert len(violations) >= 2, violations  # one report for the inline script, one for the handler
    context.close()
