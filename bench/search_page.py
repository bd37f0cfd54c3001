"""Benchmark: the search page's server time at 100 000 photos, through the real Flask app.

    python bench/search_page.py [--docs 100000] [--queries 200] [--seed 1]

Makes an app on a temporary folder with its SQLite database migrated (as tests/conftest.py's make_ready_app),
inserts the records bench/search.py generates (the same seed gives the same photos and queries) as photo rows with
their tags, places and four derivatives each (thumb and preview, JPEG and WebP), in bulk through SQLAlchemy Core,
builds the index from the database as `brucken reindex` does (archive.indexing.rebuild), then asks for
``/search?q=…`` as an anonymous visitor with the test client: each request runs everything a real one does (the
visitor's hidden photos from the outbox, the index search with facets, the hits' photos and thumbnails from the
database, the template). Each query once cold (the first search of each word since the index was built), then once
timed. Percentiles are nearest-rank; everything runs pinned to one core.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search import Timing, generate, make_queries  # noqa: E402

BATCH = 5_000
LICENCES = {"CC BY 4.0": "cc-by-4.0", "CC BY-SA 4.0": "cc-by-sa-4.0", "CC0": "cc0-1.0",
            "Alle Rechte vorbehalten": "project-only", "": None}
DERIVATIVES = (("thumb", 400, 300), ("preview", 1600, 1200))


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(docs: list[Any], tags: list[str]) -> int:
    """Inserts the records as photos (ids kept) with tags, places and derivatives; returns the rows written."""
    from sqlalchemy import insert, select

    from archive.models import Association, Derivative, Photo, PhotoStatus, Place, Tag, db, photo_tags

    associations = dict(db.session.execute(select(Association.slug, Association.id)).all())
    db.session.execute(insert(Tag), [{"name": name} for name in tags])
    tag_ids = dict(db.session.execute(select(Tag.name, Tag.id)).all())
    places = sorted({doc.place for doc in docs if doc.place})
    db.session.execute(insert(Place), [{"name": name, "city": ""} for name in places])
    place_ids = dict(db.session.execute(select(Place.name, Place.id)).all())

    def photos() -> Iterator[dict[str, Any]]:
        for doc in docs:
            digest = hashlib.sha256(f"photo {doc.id}".encode()).hexdigest()
            yield {"id": doc.id, "association_id": associations[doc.association], "status": PhotoStatus(doc.status),
                   "sha256": digest, "original_key": f"originals/{digest}.jpg", "original_filename": f"{doc.id}.jpg",
                   "format": "JPEG", "mime_type": "image/jpeg", "size_bytes": 3_000_000, "width": 4000,
                   "height": 3000, "title": doc.title, "caption": doc.caption, "credit": doc.photographer,
                   "licence": LICENCES[doc.licence], "place_id": place_ids.get(doc.place), "taken_at": doc.taken_at,
                   "created_at": doc.created_at}

    def derivatives() -> Iterator[dict[str, Any]]:
        for doc in docs:
            for size, width, height in DERIVATIVES:
                for fmt in ("jpeg", "webp"):
                    yield {"photo_id": doc.id, "size": size, "fmt": fmt, "key": f"derivatives/{doc.id}/{size}.{fmt}",
                           "width": width, "height": height, "size_bytes": width * height // 10,
                           "etag": f"{doc.id:032x}"}

    written = len(tags) + len(places)
    for table, rows in ((Photo, photos()), (Derivative, derivatives()),
                        (photo_tags, ({"photo_id": doc.id, "tag_id": tag_ids[tag]} for doc in docs
                                      for tag in doc.tags))):
        for batch in _batches(rows):
            db.session.execute(insert(table), batch)
            written += len(batch)
    db.session.commit()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        print(f"pinned to core {core}")

    from archive import indexing
    from archive.models import db
    from archive.services import get_search_index
    from tests.conftest import make_ready_app, settings_for

    start = time.perf_counter()
    corpus = generate(args.docs, args.seed)
    queries = make_queries(args.queries, args.seed)
    print(f"generated {len(corpus.docs):,} records and {len(queries)} queries in {time.perf_counter() - start:.1f} s")

    with tempfile.TemporaryDirectory(prefix="bench-search-page-") as folder:
        app = make_ready_app(settings_for(Path(folder)))
        with app.app_context():
            start = time.perf_counter()
            rows = fill(corpus.docs, corpus.tags)
            print(f"database: {rows:,} rows inserted in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            indexed = indexing.rebuild(db.session, get_search_index())
            print(f"index: {indexed:,} photos rebuilt from the database (archive.indexing.rebuild) in "
                  f"{time.perf_counter() - start:.1f} s")
            db.session.remove()

        client = app.test_client()  # outside the app context: each request has its own, as in production
        passes: list[list[float]] = []
        hits = 0
        for _ in range(2):
            gc.collect()
            seconds: list[float] = []
            for text in queries:
                url = "/search?" + urlencode({"q": text})
                start = time.perf_counter()
                response = client.get(url)
                seconds.append(time.perf_counter() - start)
                if response.status_code != 200:
                    print(f"{url}: HTTP {response.status_code}", file=sys.stderr)
                    return 1
                hits += response.get_data().count(b'class="hit"')
            passes.append(seconds)
        cold, warm = Timing("search page (cold pass)", passes[0]), Timing("search page", passes[1])
        print(f"\n{'':40}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'mean ms':>9}")
        for timing in (cold, warm):
            print(f"{timing.label:40}{timing.p(0.5):9.1f}{timing.p(0.95):9.1f}{max(timing.seconds) * 1000:9.1f}"
                  f"{timing.mean:9.1f}")
        print(f"({hits / 2 / len(queries):.1f} hits per page on average)")
        print(f"\nsearch page server time at {len(corpus.docs):,} photos: p50 {warm.p(0.5):.1f} ms, "
              f"p95 {warm.p(0.95):.1f} ms (cold pass p95 {cold.p(0.95):.1f} ms)")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
