"""The whole path as a new user takes it: `brucken init`, `brucken run` (gunicorn and the worker as
real processes), log in with the one-time password, upload twenty photos over HTTP, and watch the
thumbnails appear."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from archive.media import metadata_markers
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.e2e


def csrf(session: requests.Session, url: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"',
                      session.get(url, timeout=10).text)
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


def test_upload_twenty_photos_and_see_the_thumbnails(running_archive: tuple[str, str], corpus: Path) -> None:
    base, password = running_archive
    web = requests.Session()
    response = web.post(f"{base}/login", data={"username": "admin", "password": password,
                                               "csrf_token": csrf(web, f"{base}/login")}, timeout=10)
    assert response.url.endswith("/password")  # the one-time password must be replaced first
    new = "brücken-sind-schön-2026"
    web.post(f"{base}/password", data={"password": new, "confirm": new,
                                       "csrf_token": csrf(web, f"{base}/password")}, timeout=10)

    cameras = sorted((corpus / "cameras/jpg").glob("*.jpg"))[:5]
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in cameras]
    files += [("photos", (f"farbe-{i}.jpg", jpeg_bytes((i * 15, 80, 120)), "image/jpeg")) for i in range(15)]
    started = time.monotonic()
    response = web.post(f"{base}/upload", files=files, timeout=120,
                        data={"association": "gaziantep", "csrf_token": csrf(web, f"{base}/upload")},
                        headers={"Accept": "application/json"})
    assert response.status_code == 201, response.text
    ids = [r["photo_id"] for r in response.json()["results"] if r["outcome"] == "archived"]
    assert len(ids) == 20

    # The worker makes the derivatives in the background; the grid shows them within seconds.
    waiting = set(ids)
    while waiting and time.monotonic() - started < 90:
        waiting = {i for i in waiting if web.get(f"{base}/media/{i}/thumb.jpg", timeout=10).status_code != 200}
        time.sleep(0.5)
    assert not waiting, f"no thumbnails after 90 s for {sorted(waiting)}"
    print(f"20 photos uploaded and thumbnailed in {time.monotonic() - started:.1f} s")

    grid = web.get(f"{base}/photos?association=gaziantep", timeout=10).text
    assert grid.count('<li class="tile') == 20  # curators get tiles with a checkbox (class "tile pick-tile")
    first = web.get(f"{base}/photos/{ids[0]}", timeout=10).text
    assert "preview.jpg" in first and "Kamera" in first
    for size, ext in (("thumb", "jpg"), ("preview", "webp")):
        image = web.get(f"{base}/media/{ids[0]}/{size}.{ext}", timeout=10)
        assert image.status_code == 200
        assert metadata_markers(image.content) == []
    # A visitor sees none of it: nothing is published yet.
    assert requests.get(f"{base}/media/{ids[0]}/thumb.jpg", timeout=10).status_code == 404


def test_the_same_on_a_real_s3_server(tmp_path: Path, s3_config: dict[str, object]) -> None:
    """`brucken init` and `brucken run` configured only by ARCHIVE_S3_* variables, bucket not made yet."""
    from tests.servers.archive import running_archive
    from tests.servers.fixtures import empty_and_remove_bucket
    from tests.test_s3_flow import admin_client_for

    raw = admin_client_for(s3_config)
    empty_and_remove_bucket(raw, str(s3_config["S3_BUCKET"]))
    settings = {key: str(value) for key, value in s3_config.items()}
    with running_archive(tmp_path, **settings) as (base, password):
        web = requests.Session()
        web.post(f"{base}/login", data={"username": "admin", "password": password,
                                        "csrf_token": csrf(web, f"{base}/login")}, timeout=10)
        new = "s3-ist-auch-gut-2026"
        web.post(f"{base}/password", data={"password": new, "confirm": new,
                                           "csrf_token": csrf(web, f"{base}/password")}, timeout=10)
        files = [("photos", (f"s3-{i}.jpg", jpeg_bytes((i * 40, 20, 90)), "image/jpeg")) for i in range(5)]
        response = web.post(f"{base}/upload", files=files, timeout=60, headers={"Accept": "application/json"},
                            data={"association": "ruanda", "csrf_token": csrf(web, f"{base}/upload")})
        assert response.status_code == 201, response.text
        ids = [r["photo_id"] for r in response.json()["results"]]
        deadline = time.monotonic() + 60
        waiting = set(ids)
        while waiting and time.monotonic() < deadline:
            waiting = {i for i in waiting if web.get(f"{base}/media/{i}/preview.jpg", timeout=10).status_code != 200}
            time.sleep(0.5)
        assert not waiting
        keys = {o["Key"] for o in raw.list_objects_v2(Bucket=s3_config["S3_BUCKET"])["Contents"]}
        assert sum(k.startswith("originals/") for k in keys) == 5
        assert sum(k.startswith("derivatives/") for k in keys) == 20
