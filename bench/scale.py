"""Benchmark: the gallery, the review queue and search at 100 000 photos, and the query plans behind them.

    python -m bench.scale [--photos 100000] [--database postgresql|sqlite] [--anchor 1000] [--requests 200]
                          [--warmup 20] [--seed 1] [--try-indexes] [--no-explain]

For each size (the anchor, then ``--photos``): a new database (PostgreSQL: a throw-away server from
tests/servers/postgres.py, a new database on it per size; SQLite: a file in a temporary folder), migrated as
tests/conftest.py's make_ready_app does, then filled in bulk (COPY on PostgreSQL, executemany on SQLite; never the
ORM row by row) with the photos bench/search.py generates (German and English titles and captions, all seven
associations, ~90 % published, 200 tags, 41 places, photographers, licences), taken over 30 years and created over
ten, each with four derivative rows, with English texts for some, consents for some, uploaders, and two outbox events
per photo as a real archive's outbox has. PostgreSQL gets VACUUM ANALYZE afterwards (what autovacuum does after a
bulk load); SQLite is left without ANALYZE, as the app leaves it. The Whoosh index is built from the database with
archive.indexing.rebuild (timed).

Then, through the Flask test client, as an anonymous visitor and as a logged-in curator: ``--warmup`` requests, then
``--requests`` timed ones, of each page kind (gallery home, overview, an association's pages 1 and 50, a year, a tag,
the review queue, the curator's grid pages 1 and 50, the search page and /api/v1/search with common words, rarer
words and filters). Percentiles are nearest-rank; every answer must be 200 (else exit 1). The table shows both sizes
and the ratio of their p95.

At the large size only: the SQL each of those pages runs is captured (SQLAlchemy ``before_cursor_execute``) and
explained with its own parameters: EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN QUERY PLAN (plus the
statement's own time) on SQLite. Sequential scans of big tables, sorts of more than SORT_FLAG rows and aggregates
over more than AGGREGATE_FLAG rows are flagged. ``--try-indexes`` then creates the candidate indexes of
CANDIDATE_INDEXES by hand in the bench database (never in the app's models or migrations), analyzes, explains the
flagged statements again and times the affected pages again: before and after, side by side.

The Python process is pinned to one core (the database server is not). Figures are in bench/SCALE_NOTE.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search import Timing, generate  # noqa: E402

PASSWORD = "correct horse battery"
BIG_TABLES = ("photos", "derivatives", "photo_tags", "outbox", "photo_texts", "consents", "audit_events")
SORT_FLAG = 1_000  # a sort of more rows than this, on a page that shows 24-50, is worth an index
SEQ_FLAG = 1_000  # below this the planner rightly reads a small table whole
OPEN = ("processing", "submitted", "in_review")  # still with the association or the curators
AGGREGATE_FLAG = 10_000
ASSOCIATION = "pasadena"  # the most active association: its pages are the longest
YEAR = 2010
TAG = "Rhein bei Nacht"  # the most used tag
COMMON_WORDS = ("Brücke", "Rhein", "Hafen", "Nacht")  # in a large share of the captions
RARE_WORDS = ("Leuchtturm", "Stahlträger", "Schleuse", "Geländer")  # in 1-2 % of them
FILTERED = ("Brücke verein:pasadena", "Rhein jahr:2005..2015", f'Hafen tag:"{TAG}"', "Nacht verein:lorient jahr:2019")
FIRST_TAKEN_YEAR, LAST_TAKEN_YEAR = 1996, 2026
CREATED_FROM = datetime(2016, 1, 1)
CREATED_DAYS = 10 * 365
LICENCES = {"CC BY 4.0": "cc-by-4.0", "CC BY-SA 4.0": "cc-by-sa-4.0", "CC0": "cc0-1.0",
            "Alle Rechte vorbehalten": "project-only", "": None}
DERIVATIVES = (("thumb", 400, 300), ("preview", 1600, 1200))
CAMERAS = (("Canon", "Canon EOS 5D Mark IV"), ("NIKON CORPORATION", "NIKON D750"), ("FUJIFILM", "X-T3"),
           ("Apple", "iPhone 13"), ("SONY", "ILCE-7M3"), (None, None))

# Indexes to try by hand in the bench database (--try-indexes): name, PostgreSQL DDL, SQLite DDL (None: the
# existing indexes already serve SQLite), and the page kinds whose timing they should change. Proposals only: the
# app's indexes live in archive/models.py and its migrations. Not partial: SQLAlchemy binds the status as a
# parameter, and neither SQLite nor a prepared PostgreSQL statement's generic plan can match a bound parameter
# against a partial index's WHERE.
CANDIDATE_INDEXES: tuple[tuple[str, str, str | None, tuple[str, ...]], ...] = (
    # The first two proposals of the first run are the app's own now (migration 0010: ix_photos_status_changed,
    # ix_photos_status_association_changed, with every photo's status_changed_at set). What is left:
    ("bench_photos_status_created",
     "CREATE INDEX bench_photos_status_created ON photos (status, created_at, id)",
     "CREATE INDEX bench_photos_status_created ON photos (status, created_at, id)",
     ("review queue", "review queue, one association")),
    # The open queue asks for two statuses at once, which no (status, ...) index returns in created_at order, and
    # the planner, not knowing that open photos are the newest, walks ix_photos_created_at from the oldest photo.
    # A partial index holds only the open photos, in order; SQLite cannot match it against bound parameters.
    ("bench_photos_open_created",
     "CREATE INDEX bench_photos_open_created ON photos (created_at, id) WHERE status IN ('submitted', 'in_review')",
     None,
     ("review queue", "review queue, one association")),
)


# --------------------------------------------------------------------------------------------------------------------
# What is asked for


@dataclass
class Probe:
    """One page kind: who asks, and the addresses asked for in turn."""

    label: str
    who: str  # "visitor" or "curator"
    urls: tuple[str, ...]


def _search(path: str, words: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{path}?{urlencode({'q': text})}" for text in words)


PROBES: tuple[Probe, ...] = (
    Probe("gallery home /", "visitor", ("/",)),
    Probe("gallery overview /entdecken", "visitor", ("/entdecken",)),
    Probe("gallery association p1", "visitor", (f"/entdecken/verein/{ASSOCIATION}",)),
    Probe("gallery association p50", "visitor", (f"/entdecken/verein/{ASSOCIATION}?page=50",)),
    Probe(f"gallery year {YEAR}", "visitor", (f"/entdecken/jahr/{YEAR}",)),
    Probe("gallery tag (most used)", "visitor", (f"/entdecken/schlagwort/{quote(TAG)}",)),
    Probe("review queue", "curator", ("/curate",)),
    Probe("review queue, one association", "curator", (f"/curate?association={ASSOCIATION}",)),
    Probe("curator grid /photos p1", "curator", ("/photos",)),
    Probe("curator grid /photos p50", "curator", ("/photos?page=50",)),
    Probe("search page, common words", "visitor", _search("/search", COMMON_WORDS)),
    Probe("search page, rarer words", "visitor", _search("/search", RARE_WORDS)),
    Probe("search page, filters", "visitor", _search("/search", FILTERED)),
    Probe("search page, common, curator", "curator", _search("/search", COMMON_WORDS)),
    Probe("api search, common words", "visitor", _search("/api/v1/search", COMMON_WORDS)),
    Probe("api search, rarer words", "visitor", _search("/api/v1/search", RARE_WORDS)),
    Probe("api search, filters", "visitor", _search("/api/v1/search", FILTERED)),
)

# The pages whose SQL is explained (one address each).
EXPLAINED = ("gallery home /", "gallery association p1", "gallery association p50", f"gallery year {YEAR}",
             "gallery tag (most used)", "gallery overview /entdecken", "review queue", "review queue, one association",
             "search page, common words", "api search, filters")


# --------------------------------------------------------------------------------------------------------------------
# Filling the database in bulk


class BulkWriter:
    """Rows into a table as fast as the database takes them: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def write(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
        raw = self.engine.raw_connection()
        written = 0
        try:
            cursor = raw.cursor()
            if self.postgres:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        written += 1
            else:
                def counted() -> Iterator[tuple[Any, ...]]:
                    nonlocal written
                    for row in rows:
                        written += 1
                        yield tuple(_sqlite_value(value) for value in row)

                marks = ", ".join("?" for _ in columns)
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", counted())
            cursor.close()
            raw.commit()
        finally:
            raw.close()
        return written


def _sqlite_value(value: Any) -> Any:
    """As SQLAlchemy stores it in SQLite (not sqlite3's own adapters, deprecated since Python 3.12)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


PHOTO_COLUMNS = ("id", "association_id", "uploader_id", "status", "sha256", "original_key", "original_filename",
                 "format", "mime_type", "size_bytes", "width", "height", "title", "caption", "credit", "copyright",
                 "alt_text", "licence", "people", "minors", "place_id", "status_changed_at", "taken_at",
                 "camera_make", "camera_model", "iso", "metadata_warnings", "created_at", "processed_at")


@dataclass
class Filled:
    rows: int = 0
    by_table: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def fill(engine: Any, size: int, seed: int) -> Filled:
    """The generated photos and everything around them; returns the rows written per table."""
    from sqlalchemy import insert, select

    from archive.auth import hash_password
    from archive.models import Association, Place, Role, Tag, User, db

    began = time.perf_counter()
    corpus = generate(size, seed)
    rng = random.Random(seed * 7919 + size)
    session = db.session
    associations = dict(session.execute(select(Association.slug, Association.id)).all())
    session.execute(insert(Tag), [{"name": name, "controlled": index < 30} for index, name in enumerate(corpus.tags)])
    places = sorted({doc.place for doc in corpus.docs if doc.place})
    session.execute(insert(Place), [{"name": name, "city": ""} for name in places])
    member_hash = hash_password(PASSWORD)  # one hash for everyone: hashing is deliberately slow
    users = [{"username": "cora", "role": Role.CURATOR, "password_hash": member_hash, "association_id": None}]
    users += [{"username": f"{slug}-{n}", "role": Role.MEMBER, "password_hash": member_hash, "association_id": ident}
              for slug, ident in associations.items() for n in range(3)]
    session.execute(insert(User), users)
    session.commit()
    tag_ids = dict(session.execute(select(Tag.name, Tag.id)).all())
    place_ids = dict(session.execute(select(Place.name, Place.id)).all())
    uploaders: dict[int, list[int]] = {}
    for user_id, association_id in session.execute(select(User.id, User.association_id)
                                                   .where(User.association_id.is_not(None))):
        uploaders.setdefault(association_id, []).append(user_id)
    session.remove()

    statuses = _statuses_in_time(corpus.docs, rng)
    photos: list[tuple[Any, ...]] = []
    for doc, status in zip(corpus.docs, statuses, strict=True):
        created = CREATED_FROM + timedelta(days=CREATED_DAYS * doc.id / (size + 1),
                                           seconds=rng.randrange(86_400))  # ids follow time, as uploads do
        changed = created + timedelta(days=rng.expovariate(1 / 20)) if status != "processing" else None
        if status == "published" and rng.random() < 0.01:
            changed = None  # published by hand before the moment was recorded (old data)
        taken = None
        if rng.random() > 0.01:
            taken = datetime(rng.randint(FIRST_TAKEN_YEAR, LAST_TAKEN_YEAR), 1, 1) + \
                timedelta(seconds=rng.randrange(365 * 86_400))
        association_id = associations[doc.association]
        make, model = rng.choice(CAMERAS)
        digest = hashlib.sha256(f"photo {doc.id}".encode()).hexdigest()
        people = rng.choices(("none", "consent", "public_event"), weights=(85, 5, 10))[0]
        photos.append((
            doc.id, association_id, rng.choice(uploaders[association_id]), status, digest,
            f"originals/{digest[:2]}/{digest}.jpg", f"IMG_{doc.id:06d}.JPG", "JPEG", "image/jpeg",
            rng.randint(1_500_000, 9_000_000), 4000, 3000, doc.title, doc.caption, doc.photographer, "",
            "", LICENCES[doc.licence], people, False, place_ids.get(doc.place), changed, taken, make, model,
            rng.choice((100, 200, 400, 800, None)), "[]", created, None if status == "processing" else created))
    writer = BulkWriter(engine)
    filled = Filled()

    def write(table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
        filled.by_table[table] += writer.write(table, columns, rows)

    write("photos", PHOTO_COLUMNS, photos)
    write("derivatives", ("photo_id", "size", "fmt", "key", "width", "height", "size_bytes", "etag"),
          ((row[0], name, fmt, f"derivatives/{row[4][:2]}/{row[4]}/{name}.{fmt}", width, height,
            width * height // 10, row[4][:32])
           for row in photos if row[3] not in ("processing", "failed")
           for name, width, height in DERIVATIVES for fmt in ("jpeg", "webp")))
    write("photo_tags", ("photo_id", "tag_id"),
          ((doc.id, tag_ids[tag]) for doc in corpus.docs for tag in doc.tags))
    english = rng.sample(range(len(photos)), len(photos) // 10)
    write("photo_texts", ("photo_id", "lang", "title", "caption", "alt_text"),
          ((photos[i][0], "en", f"{photos[i][12]} (en)", photos[i][13], "") for i in sorted(english)))
    write("consents", ("photo_id", "person", "by_guardian", "given_on", "scope_web", "scope_exhibition",
                       "scope_print", "reference", "recorded_at", "withdrawn_reason"),
          ((row[0], "Abgebildete Person", False, row[27].date(), True, True, False, "Ordner 3", row[27], "")
           for row in photos if row[18] == "consent"))
    # Two outbox events per photo (uploaded, then processed or decided), oldest first, as a year of use leaves it.
    write("outbox", ("at", "topic", "photo_id"),
          ((moment, "photo.changed", row[0]) for row in photos for moment in (row[27], row[21] or row[27])))
    filled.by_table.update({"tags": len(corpus.tags), "places": len(places), "users": len(users)})
    _after_bulk_load(engine)
    filled.rows = sum(filled.by_table.values())
    filled.seconds = time.perf_counter() - began
    return filled


def _statuses_in_time(docs: list[Any], rng: random.Random) -> list[str]:
    """The generated statuses (same counts), in the order time gives them: what still waits for the association or
    the curators is among the newest uploads, the old ones are decided. The review queue then looks as it does in
    a real archive: its oldest open photo is younger than most of the table."""
    statuses = [doc.status for doc in docs]
    waiting = [s for s in statuses if s in OPEN]
    decided = [s for s in statuses if s not in OPEN]
    rng.shuffle(decided)
    window = min(len(statuses), len(waiting) * 5 // 4)  # the newest uploads: mostly open, some decided already
    recent = waiting + decided[len(decided) - (window - len(waiting)):]
    rng.shuffle(recent)
    return decided[:len(decided) - (window - len(waiting))] + recent


def _after_bulk_load(engine: Any) -> None:
    """PostgreSQL: ids given by hand move the sequence on; VACUUM ANALYZE, as autovacuum would after the load
    (statistics for the planner, the visibility map for index-only scans). SQLite: nothing (the app never
    runs ANALYZE, so the planner works without statistics there)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('photos', 'id'), "
                                   "(SELECT max(id) FROM photos))")
        connection.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


# --------------------------------------------------------------------------------------------------------------------
# Measuring pages


@dataclass
class Measured:
    probe: Probe
    timing: Timing
    note: str = ""


class Clients:
    """A visitor's and a logged-in curator's test clients on one app."""

    def __init__(self, app: Any) -> None:
        self.visitor = app.test_client()
        self.curator = app.test_client()
        answer = self.curator.post("/login", data={"username": "cora", "password": PASSWORD})
        if answer.status_code != 302:
            raise RuntimeError(f"the curator cannot log in: HTTP {answer.status_code}")

    def of(self, who: str) -> Any:
        return self.curator if who == "curator" else self.visitor


def _get(client: Any, url: str) -> Any:
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}")
    return response


def measure(clients: Clients, probe: Probe, requests: int, warmup: int) -> Measured:
    client = clients.of(probe.who)
    totals: list[int] = []
    for number in range(warmup):
        response = _get(client, probe.urls[number % len(probe.urls)])
        if number < len(probe.urls) and response.is_json:
            totals.append(response.get_json()["total"])
    gc.collect()
    seconds = []
    for number in range(requests):
        url = probe.urls[number % len(probe.urls)]
        start = time.perf_counter()
        _get(client, url)
        seconds.append(time.perf_counter() - start)
    note = f"matches {', '.join(f'{t:,}' for t in totals)}" if totals else ""
    return Measured(probe, Timing(probe.label, seconds), note)


def measure_all(clients: Clients, requests: int, warmup: int, labels: Iterable[str] | None = None,
                progress: Callable[[str], None] = print) -> dict[str, Measured]:
    wanted = set(labels) if labels is not None else None
    results = {}
    for probe in PROBES:
        if wanted is not None and probe.label not in wanted:
            continue
        results[probe.label] = measure(clients, probe, requests, warmup)
        timing = results[probe.label].timing
        progress(f"  {probe.label:34} p50 {timing.p(0.5):7.1f} ms  p95 {timing.p(0.95):7.1f} ms")
    return results


# --------------------------------------------------------------------------------------------------------------------
# Query plans


@dataclass
class Statement:
    sql: str
    parameters: Any
    pages: list[str] = field(default_factory=list)


@dataclass
class Explained:
    statement: Statement
    plan: list[str]
    flags: list[str]
    milliseconds: float


def capture(engine: Any, client: Any, url: str) -> list[tuple[str, Any]]:
    """The SELECTs one request runs, as the driver gets them (statement and parameters)."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def hook(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", hook)
    try:
        _get(client, url)
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    return seen


def captured_statements(engine: Any, clients: Clients) -> list[Statement]:
    """Every distinct SELECT of the explained pages, with the pages that run it (first seen parameters)."""
    found: dict[str, Statement] = {}
    for probe in PROBES:
        if probe.label not in EXPLAINED:
            continue
        for sql, parameters in capture(engine, clients.of(probe.who), probe.urls[0]):
            statement = found.setdefault(sql, Statement(sql, parameters))
            if probe.label not in statement.pages:
                statement.pages.append(probe.label)
    return list(found.values())


def explain(engine: Any, statement: Statement) -> Explained:
    with engine.connect() as connection:
        try:
            if engine.dialect.name == "postgresql":
                return _explain_postgres(connection, statement)
            return _explain_sqlite(connection, statement)
        finally:
            connection.rollback()


def _explain_postgres(connection: Any, statement: Statement) -> Explained:
    document = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.sql,
                                          statement.parameters).scalar()
    if isinstance(document, str):
        document = json.loads(document)
    top = document[0]
    lines: list[str] = []
    flags: list[str] = []
    _pg_node(top["Plan"], 0, lines, flags)
    plan = top["Plan"]
    lines.append(f"planning {top.get('Planning Time', 0):.2f} ms, execution {top['Execution Time']:.2f} ms, "
                 f"buffers hit {plan.get('Shared Hit Blocks', 0):,} read {plan.get('Shared Read Blocks', 0):,}")
    return Explained(statement, lines, flags, top["Execution Time"])


def _rows(node: dict[str, Any]) -> int:
    return int(node.get("Actual Rows", 0) * max(node.get("Actual Loops", 1), 1))


def _pg_node(node: dict[str, Any], depth: int, lines: list[str], flags: list[str]) -> None:
    kind = node["Node Type"]
    relation = node.get("Relation Name")
    text = kind
    if node.get("Index Name"):
        text += f" using {node['Index Name']}"
    if relation:
        text += f" on {relation}"
    details = [f"rows {_rows(node):,}", f"{node.get('Actual Total Time', 0):.1f} ms"]
    for key in ("Index Cond", "Filter", "Recheck Cond", "Hash Cond", "Join Filter"):
        if node.get(key):
            details.append(f"{key.lower()}: {_short(node[key], 90)}")
    removed = int(node.get("Rows Removed by Filter", 0) * max(node.get("Actual Loops", 1), 1))
    if removed:
        details.append(f"removed {removed:,}")
    if node.get("Sort Key"):
        details.append(f"key: {', '.join(node['Sort Key'])}; {node.get('Sort Method', '')}")
    if node.get("Group Key"):
        details.append(f"group: {', '.join(node['Group Key'])}")
    if node.get("Heap Fetches") is not None:
        details.append(f"heap fetches {node['Heap Fetches']:,}")
    lines.append("  " * depth + f"-> {text} ({'; '.join(details)})")
    children = node.get("Plans", [])
    input_rows = sum(_rows(child) for child in children)
    if kind == "Seq Scan" and relation in BIG_TABLES and _rows(node) + removed > SEQ_FLAG:
        flags.append(f"sequential scan of {relation} ({_rows(node) + removed:,} rows read)")
    if kind in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") and relation in BIG_TABLES \
            and removed > SEQ_FLAG:
        flags.append(f"{kind.lower()} of {relation} reads {_rows(node) + removed:,} rows to keep {_rows(node):,}")
    if kind in ("Sort", "Incremental Sort") and input_rows > SORT_FLAG:
        flags.append(f"sort of {input_rows:,} rows ({', '.join(node.get('Sort Key', []))})")
    if kind == "Aggregate" and input_rows > AGGREGATE_FLAG:
        flags.append(f"aggregate over {input_rows:,} rows")
    for child in children:
        _pg_node(child, depth + 1, lines, flags)


def _explain_sqlite(connection: Any, statement: Statement) -> Explained:
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement.sql, statement.parameters).all()
    # A sort of the rows a page already picked (selectinload's "WHERE photo_id IN (…)") is bounded by the page size.
    one_page = re.search(r"(?:\.id|_id) IN \(\?", statement.sql) is not None
    depth: dict[int, int] = {0: -1}
    lines: list[str] = []
    flags: list[str] = []
    for ident, parent, _unused, detail in rows:
        depth[ident] = depth.get(parent, -1) + 1
        lines.append("  " * depth[ident] + f"-> {detail}")
        scanned = re.match(r"SCAN (\w+)", detail)
        if scanned and scanned.group(1) in BIG_TABLES and "INDEX" not in detail:
            flags.append(f"full scan of {scanned.group(1)}")
        if "TEMP B-TREE" in detail and not one_page:
            flags.append(detail.lower())
    connection.exec_driver_sql(statement.sql, statement.parameters).all()  # warm
    start = time.perf_counter()
    connection.exec_driver_sql(statement.sql, statement.parameters).all()
    milliseconds = (time.perf_counter() - start) * 1000
    lines.append(f"execution {milliseconds:.2f} ms")
    return Explained(statement, lines, flags, milliseconds)


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def summary(sql: str) -> str:
    """The statement in one short line: a long select list and lists of bound values folded to "…"."""
    text = " ".join(sql.split())
    text = re.sub(r"::[A-Z]+(?: WITHOUT TIME ZONE)?", "", text)
    text = re.sub(r"\((?:%\(\w+\)s|\?)(?:, (?:%\(\w+\)s|\?))+\)", "(…)", text)
    depth = 0
    for position, char in enumerate(text):  # the first FROM outside parentheses ends the select list
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and text.startswith(" FROM ", position):
            select_list = text[len("SELECT "):position]
            if len(select_list) > 60:
                text = f"SELECT {select_list[:40]}… {text[position + 1:]}"
            break
    return _short(text, 230)


def print_plans(explained: list[Explained], out: Callable[[str], None] = print) -> None:
    for number, item in enumerate(explained, 1):
        out(f"\n[{number}] {summary(item.statement.sql)}")
        out(f"    pages: {', '.join(item.statement.pages)}")
        out(f"    parameters: {_short(repr(item.statement.parameters), 160)}")
        for line in item.plan:
            out("    " + line)
        for flag in item.flags:
            out(f"    FLAG: {flag}")


# --------------------------------------------------------------------------------------------------------------------
# One size


@dataclass
class SizeResult:
    size: int
    filled: Filled
    index_seconds: float
    indexed: int
    measured: dict[str, Measured]
    explained: list[Explained] = field(default_factory=list)
    without_indexes: dict[str, Measured] = field(default_factory=dict)
    with_indexes: dict[str, Measured] = field(default_factory=dict)
    explained_after: list[Explained] = field(default_factory=list)


@contextlib.contextmanager
def database(kind: str, server: Any, folder: Path) -> Iterator[str]:
    """A new empty database: its URL ("" for the SQLite file that settings_for's instance folder holds)."""
    if kind == "sqlite":
        yield ""
        return
    url = server.create_database()
    try:
        yield url
    finally:
        from sqlalchemy.engine import make_url

        server.drop_database(str(make_url(url).database))


def run_size(size: int, args: argparse.Namespace, server: Any, deep: bool) -> SizeResult:
    from archive import indexing
    from archive.models import db
    from archive.services import get_search_index
    from tests.conftest import make_ready_app, settings_for

    print(f"\n=== {size:,} photos on {args.database} ===")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder, \
            database(args.database, server, Path(folder)) as url:
        overrides = {"DATABASE_URL": url} if url else {}
        app = make_ready_app(settings_for(Path(folder), **overrides))
        try:
            with app.app_context():
                engine = db.engine
                filled = fill(engine, size, args.seed)
                print(f"database: {filled.rows:,} rows in {filled.seconds:.1f} s ("
                      + ", ".join(f"{table} {count:,}" for table, count in filled.by_table.most_common()) + ")")
                start = time.perf_counter()
                indexed = indexing.rebuild(db.session, get_search_index())
                index_seconds = time.perf_counter() - start
                print(f"index: {indexed:,} photos rebuilt (archive.indexing.rebuild) in {index_seconds:.1f} s")
                db.session.remove()
            clients = Clients(app)
            result = SizeResult(size, filled, index_seconds, indexed, {})
            result.measured = measure_all(clients, args.requests, args.warmup)
            if deep and not args.no_explain:
                explain_and_try(engine, clients, args, result)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return result


def explain_and_try(engine: Any, clients: Clients, args: argparse.Namespace, result: SizeResult) -> None:
    statements = captured_statements(engine, clients)
    result.explained = [explain(engine, statement) for statement in statements]
    print(f"\n--- query plans at {result.size:,} photos ({args.database}): {len(statements)} distinct SELECTs of "
          f"{len(EXPLAINED)} pages ---")
    print_plans(result.explained)
    flagged = [item for item in result.explained if item.flags]
    print(f"\n{len(flagged)} of {len(result.explained)} statements flagged")
    if not args.try_indexes:
        return
    pages: list[str] = []
    for *_ddl, affected in CANDIDATE_INDEXES:
        pages += [page for page in affected if page not in pages]
    # Measured again right before the indexes are made: the machine is shared, so a before and an after taken
    # minutes apart would compare two different loads.
    print("\n--- the affected pages once more, before the candidate indexes ---")
    result.without_indexes = measure_all(clients, args.requests, args.warmup, pages)
    print("\n--- candidate indexes, made by hand in the bench database ---")
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        for name, pg_ddl, sqlite_ddl, _affected in CANDIDATE_INDEXES:
            ddl = pg_ddl if postgres else sqlite_ddl
            if ddl is None:
                print(f"{name}: not needed on this database")
                continue
            start = time.perf_counter()
            connection.exec_driver_sql(ddl)
            connection.commit()
            print(f"{name}: made in {time.perf_counter() - start:.1f} s")
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE photos")
    again = [item for item in result.explained if item.flags or set(item.statement.pages) & set(pages)]
    result.explained_after = [explain(engine, item.statement) for item in again
                              if item.statement.sql.lstrip().startswith("SELECT photos")
                              or " photos " in item.statement.sql]
    print("\nthe flagged statements and those of the affected pages that read photos, with the candidate indexes:")
    print_plans(result.explained_after)
    print("\nthe affected pages again, with the candidate indexes:")
    result.with_indexes = measure_all(clients, args.requests, args.warmup, pages)


# --------------------------------------------------------------------------------------------------------------------
# Report


def _load() -> str:
    try:
        return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "load average unknown"


def table(results: list[SizeResult], out: Callable[[str], None] = print) -> None:
    big = results[-1]
    small = results[0] if len(results) > 1 else None
    head = f"{'page':34}{'who':>8}"
    if small:
        head += f"{f'p50 {small.size:,}':>13}{f'p95 {small.size:,}':>13}"
    head += f"{f'p50 {big.size:,}':>15}{f'p95 {big.size:,}':>15}{'max':>9}"
    if small:
        head += f"{'p95 ratio':>11}"
    if big.with_indexes:
        head += f"{'p95 -idx':>10}{'p95 +idx':>10}"
    out(head + "  (ms)")
    for label, measured in big.measured.items():
        line = f"{label:34}{measured.probe.who:>8}"
        if small:
            before = small.measured[label].timing
            line += f"{before.p(0.5):13.1f}{before.p(0.95):13.1f}"
        timing = measured.timing
        line += f"{timing.p(0.5):15.1f}{timing.p(0.95):15.1f}{max(timing.seconds) * 1000:9.1f}"
        if small:
            line += f"{timing.p(0.95) / small.measured[label].timing.p(0.95):11.1f}"
        if big.with_indexes:
            without, after = big.without_indexes.get(label), big.with_indexes.get(label)
            line += f"{without.timing.p(0.95):10.1f}{after.timing.p(0.95):10.1f}" if without and after else " " * 20
        out(line + (f"  {measured.note}" if measured.note else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--anchor", type=int, default=1_000, help="the small size to compare with (0: none)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page kind")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--try-indexes", action="store_true",
                        help="make CANDIDATE_INDEXES by hand in the bench database and measure again")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    print(f"bench.scale: {args.photos:,} photos on {args.database}, anchor {args.anchor:,}, {args.requests} timed "
          f"requests per page after {args.warmup}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{_load()}")
    with contextlib.ExitStack() as stack:
        server = None
        if args.database == "postgresql":
            from tests.servers.postgres import PostgresServer

            server = stack.enter_context(PostgresServer())
            print(f"PostgreSQL on port {server.port} (started in {server.startup_seconds:.1f} s)")
        if hasattr(os, "sched_setaffinity"):  # after the server started: it keeps both cores
            core = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {core})
            print(f"pinned to core {core}")
        sizes = [n for n in (args.anchor, args.photos) if n > 0]
        sizes = sorted(set(sizes))
        try:
            results = [run_size(size, args, server, deep=size == sizes[-1]) for size in sizes]
        except RuntimeError as error:
            print(f"FAILED: {error}", file=sys.stderr)
            return 1
    print(f"\n=== figures ({args.database}; nearest-rank percentiles of {args.requests} requests after "
          f"{args.warmup} warm-up; ratio = p95 at {sizes[-1]:,} / p95 at {sizes[0]:,}) ===")
    table(results)
    for result in results:
        print(f"{result.size:,} photos: {result.filled.rows:,} rows loaded in {result.filled.seconds:.1f} s, "
              f"index rebuilt ({result.indexed:,} photos) in {result.index_seconds:.1f} s")
    flagged = [item for item in results[-1].explained if item.flags]
    if results[-1].explained:
        print(f"flagged statements at {sizes[-1]:,}: {len(flagged)} of {len(results[-1].explained)}")
        for item in flagged:
            print(f"  {summary(item.statement.sql)[:150]}: {'; '.join(item.flags)}")
    print(f"whole run {time.perf_counter() - began:.0f} s; {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
