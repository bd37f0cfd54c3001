"""The load harness: a real archive (gunicorn with several workers + the job worker) on 127.0.0.1, members with
API tokens, published photos to find, then uploaders, searchers and caption editors at once for a bounded time;
afterwards the accounting (status classes, every accepted photo exactly once and processed, the index equal to
the database) and the figures (latencies, throughput, memory per process). Used by ``python -m bench.load`` and
by tests/test_load_smoke.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.load.files import CORPUS, InvalidFiles, Upload, corpus_photos, small_photo, with_comment
from bench.search import ASSOCIATIONS, PLACES, generate, make_queries

CHUNK_BYTES = 1024 * 1024  # smaller than the archive's 4 MB advice, so camera files take several chunks
TIMEOUT = (10, 180)  # connect, read: generous; a request that takes longer is counted as a client error
SAMPLE_EVERY = 2.0  # seconds between two memory samples
FLAT_GROWTH = 0.20  # "flat": the mean of the last third of the samples is < 20 % above the first third's
SUCCESS_KINDS = ("photo", "duplicate", "twin")


@dataclass
class Options:
    uploaders: int = 20
    searchers: int = 50
    editors: int = 4
    seconds: float = 60.0
    workers: int = 4
    storage: str = "local"
    seeds: int = 40
    invalid_share: float = 0.10
    duplicate_share: float = 0.05
    drain_seconds: float = 600.0
    corpus: Path = CORPUS
    keep: Path | None = None
    seed: int = 1
    settings: dict[str, str] = field(default_factory=dict)  # more ARCHIVE_* settings (no prefix), e.g. for S3


# --------------------------------------------------------------------------------------------------------------------
# What the clients saw


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank, as bench/search.py."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else float("nan")


class Recorder:
    """Every request's kind, status and time, from all client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[tuple[str, str]] = Counter()
        self.client_errors: Counter[tuple[str, str]] = Counter()
        self.server_errors: list[str] = []  # the first few 5xx answers, with their bodies
        self.unexpected_4xx: list[str] = []

    def request(self, session: requests.Session, kind: str, method: str, url: str, *,
                expect_4xx: bool = False, **kwargs: Any) -> requests.Response | None:
        start = time.perf_counter()
        try:
            response = session.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
        except requests.RequestException as error:
            with self.lock:
                self.client_errors[(kind, type(error).__name__)] += 1
            return None
        elapsed = time.perf_counter() - start
        status_class = f"{response.status_code // 100}xx"
        with self.lock:
            self.seconds[kind].append(elapsed)
            self.statuses[(kind, status_class)] += 1
            if response.status_code >= 500 and len(self.server_errors) < 20:
                self.server_errors.append(f"{kind} {method} {url} -> {response.status_code} "
                                          f"{response.text[:300]!r}")
            if 400 <= response.status_code < 500 and not expect_4xx and len(self.unexpected_4xx) < 20:
                self.unexpected_4xx.append(f"{kind} {method} {url} -> {response.status_code} "
                                           f"{response.text[:200]!r}")
        return response

    def time(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.seconds[kind].append(seconds)

    def count(self, status_class: str) -> int:
        return sum(n for (_kind, cls), n in self.statuses.items() if cls == status_class)


@dataclass
class UploadRecord:
    uploader: int
    kind: str
    sha256: str
    size: int
    status: int | None  # None: no answer (connection error)
    outcome: str | None
    photo_id: int | None


@dataclass
class EditRecord:
    photo_id: int
    caption: str
    status: int | None


# --------------------------------------------------------------------------------------------------------------------
# The archive


@dataclass
class Archive:
    base: str
    folder: Path
    app: Any  # an app of our own on the same database, store and index (set-up and checks)


@contextmanager
def running(folder: Path, options: Options) -> Iterator[Archive]:
    """``brucken init`` + ``brucken run`` (gunicorn with ``options.workers`` workers and the job worker) in
    ``folder``, through tests/servers/archive.py; stopped afterwards (the folder stays for the checks)."""
    from archive import create_app
    from archive.settings import load_settings
    from tests.servers.archive import running_archive
    from tests.servers.database import database_settings

    # The test suite's database when it runs on PostgreSQL (nothing otherwise: SQLite in the folder).
    settings = {**database_settings(folder / "instance"), "WEB_WORKERS": str(options.workers), **options.settings}
    with running_archive(folder, **settings) as (base, _password):
        environ = {f"ARCHIVE_{k}": v for k, v in settings.items()}
        environ.update(ARCHIVE_INSTANCE_DIR=str(folder / "instance"), ARCHIVE_UPLOAD_DIR=str(folder / "uploads"),
                       ARCHIVE_INDEX_DIR=str(folder / "index"))
        archive = Archive(base, folder, create_app(load_settings(environ=environ)))
        try:
            yield archive
        finally:
            _release(archive)


def _release(archive: Archive) -> None:
    from archive.models import db

    with archive.app.app_context():
        db.session.remove()
        db.engine.dispose()


@contextmanager
def work_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="bench-load-") as name:
        yield Path(name)


def server_processes() -> dict[str, psutil.Process]:
    """The gunicorn workers and the job worker among this process's descendants, by a readable name."""
    found: dict[str, psutil.Process] = {}
    for process in psutil.Process().children(recursive=True):
        with suppress(psutil.Error):
            command = " ".join(process.cmdline())
            parent = process.parent()
            if "gunicorn" in command and parent is not None and "gunicorn" in " ".join(parent.cmdline()):
                found[f"web worker {process.pid}"] = process
            elif command.endswith("-m archive worker"):
                found[f"job worker {process.pid}"] = process
    return found


class MemorySampler(threading.Thread):
    """Resident memory of every web worker and the job worker, every few seconds."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="memory-sampler")
        self.samples: dict[str, list[float]] = defaultdict(list)  # name -> MB
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for name, process in server_processes().items():
                with suppress(psutil.Error):
                    self.samples[name].append(process.memory_info().rss / 1e6)
            self.stopping.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def memory_verdict(samples: list[float]) -> tuple[float, bool]:
    """Growth of the last third's mean over the first third's, and whether that is flat."""
    third = max(1, len(samples) // 3)
    first, last = sum(samples[:third]) / third, sum(samples[-third:]) / third
    growth = last / first - 1 if first else 0.0
    return growth, growth < FLAT_GROWTH


# --------------------------------------------------------------------------------------------------------------------
# Set-up: members, a curator, tokens, published photos to find


@dataclass
class Population:
    member_tokens: list[str]  # member i belongs to ASSOCIATIONS[i % 7]
    curator_token: str
    published: list[int]
    years: list[int]
    tags: list[str]
    queries: list[str]


def populate(archive: Archive, options: Options, recorder: Recorder) -> Population:
    from sqlalchemy import select

    from archive.accounts import create_token
    from archive.auth import hash_password
    from archive.models import Association, Role, User, db

    members = max(options.uploaders, 1)
    with archive.app.app_context():
        association_ids = {slug: db.session.scalar(select(Association.id).where(Association.slug == slug))
                           for slug, _name, _city in ASSOCIATIONS}
        password = hash_password(uuid.uuid4().hex)  # nobody logs in: the clients use tokens
        people = [User(username=f"member{i:02}", role=Role.MEMBER, password_hash=password,
                       association_id=association_ids[ASSOCIATIONS[i % len(ASSOCIATIONS)][0]])
                  for i in range(members)]
        curator = User(username="curator", role=Role.CURATOR, password_hash=password)
        db.session.add_all([*people, curator])
        db.session.commit()
        member_tokens = [create_token(db.session, person, "load")[1] for person in people]
        curator_token = create_token(db.session, curator, "load")[1]
        curator_id = curator.id
    docs = generate(options.seeds, options.seed).docs
    photo_ids = _upload_seeds(archive, docs, member_tokens, recorder)
    _wait(lambda: _unprocessed(archive, photo_ids) == 0, 300, "the seed photos were not processed")
    published = _publish_seeds(archive, docs, photo_ids, curator_id)
    _wait(lambda: _index_behind(archive) == 0, 120, "the index did not catch up with the seeds")
    years = sorted({d.taken_at.year for d in docs if d.taken_at})
    tags = sorted({t for d in docs for t in d.tags})
    return Population(member_tokens, curator_token, published, years, tags, make_queries(300, options.seed))


def _upload_seeds(archive: Archive, docs: list[Any], tokens: list[str], recorder: Recorder) -> list[int]:
    slugs = [slug for slug, _name, _city in ASSOCIATIONS]
    ids = []
    session = requests.Session()
    for number, doc in enumerate(docs):
        owner = next((i for i in range(len(tokens)) if slugs[i % len(slugs)] == doc.association), 0)
        data = small_photo((number * 37 % 256, number * 91 % 256, 200 - number % 200))
        for _attempt in range(5):  # a 503 says "try again": the set-up does, the load's clients count it
            response = recorder.request(session, "seed upload", "POST", f"{archive.base}/upload",
                                        files={"photos": (f"seed-{number}.jpg", data, "image/jpeg")},
                                        headers={"Authorization": f"Bearer {tokens[owner]}",
                                                 "Accept": "application/json"})
            if response is None or response.status_code != 503:
                break
            time.sleep(1)
        if response is None or response.status_code != 201:
            status = "no answer" if response is None else f"{response.status_code} {response.text[:300]}"
            raise RuntimeError(f"seed upload failed: {status}")
        ids.append(int(response.json()["results"][0]["photo_id"]))
    return ids


def _publish_seeds(archive: Archive, docs: list[Any], photo_ids: list[int], curator_id: int) -> list[int]:
    from archive import workflow
    from archive.models import Licence, PeopleShown, Photo, Place, User, db
    from archive.services import get_jobs

    with archive.app.app_context():
        places = [Place(name=name, city="Ludwigshafen am Rhein", lat=49.48, lon=8.45) for name in PLACES[:12]]
        db.session.add_all(places)
        db.session.commit()
        curator = db.session.get(User, curator_id)
        for number, (doc, photo_id) in enumerate(zip(docs, photo_ids, strict=True)):
            photo = db.session.get(Photo, photo_id)
            change = workflow.RightsChange(
                title=doc.title, caption=doc.caption, alt_text=doc.caption[:200],
                credit=doc.photographer or "Anna Beispiel", licence=Licence.CC_BY, people=PeopleShown.NONE,
                minors=False, place_id=places[number % len(places)].id,
                taken_at=doc.taken_at or datetime(2024, 6, 1), keywords=list(doc.tags))
            workflow.update_photo(db.session, photo, change, curator)
            workflow.transition(db.session, photo, "publish", curator)
        get_jobs().outbox_changed()
        db.session.remove()
    return photo_ids


def _unprocessed(archive: Archive, photo_ids: list[int] | None = None) -> int:
    from sqlalchemy import func, select

    from archive.models import Photo, PhotoStatus, db

    with archive.app.app_context():
        query = select(func.count()).select_from(Photo).where(Photo.status == PhotoStatus.PROCESSING)
        if photo_ids is not None:
            query = query.where(Photo.id.in_(photo_ids))
        count = int(db.session.scalar(query) or 0)
        db.session.remove()
    return count


def _index_behind(archive: Archive) -> int:
    """Outbox events the index has not applied yet."""
    from sqlalchemy import func, select

    from archive.models import OutboxEvent, db
    from archive.services import get_search_index

    with archive.app.app_context():
        newest = int(db.session.scalar(select(func.max(OutboxEvent.id))) or 0)
        behind = int(db.session.scalar(select(func.count()).select_from(OutboxEvent)
                                       .where(OutboxEvent.id > get_search_index().position())) or 0)
        db.session.remove()
    return behind if newest else 0


def _wait(done: Callable[[], bool], seconds: float, failure: str) -> float:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > seconds:
            raise RuntimeError(f"{failure} within {seconds:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


# --------------------------------------------------------------------------------------------------------------------
# The clients


class UploadPlan:
    """What each uploader sends next: mostly new unique camera photos, some invalid files, some duplicates of
    photos already accepted, and "twins": the same new photo sent by two uploaders at the same moment."""

    TWIN_EVERY = 10

    def __init__(self, options: Options, photos: list[tuple[str, bytes]]) -> None:
        self.options = options
        self.photos = photos
        self.run_id = uuid.uuid4().hex[:12]
        self.lock = threading.Lock()
        self.accepted: list[Upload] = []
        self.barriers: dict[tuple[int, int], threading.Barrier] = {}

    def invalid_files(self) -> InvalidFiles:
        return InvalidFiles(self.photos[0][1])

    def next(self, uploader: int, number: int, rng: random.Random, invalid: InvalidFiles) -> Upload:
        pair = uploader // 2
        has_partner = uploader ^ 1 < self.options.uploaders
        if has_partner and number % self.TWIN_EVERY == 3:
            self._meet(pair, number)
            name, data = self.photos[(pair * 7 + number) % len(self.photos)]
            return Upload(name, with_comment(data, f"bench-load {self.run_id} twin {pair} {number}"), True, "twin")
        roll = rng.random()
        if roll < self.options.invalid_share:
            return invalid.next()
        if roll < self.options.invalid_share + self.options.duplicate_share:
            with self.lock:
                earlier = rng.choice(self.accepted) if self.accepted else None
            if earlier is not None:
                return Upload(earlier.name, earlier.data, True, "duplicate")
        name, data = rng.choice(self.photos)
        return Upload(name, with_comment(data, f"bench-load {self.run_id} uploader {uploader} upload {number}"),
                      True, "photo")

    def _meet(self, pair: int, number: int) -> None:
        """Both uploaders of a pair send their twin at the same moment (or give up waiting after a few seconds)."""
        with self.lock:
            barrier = self.barriers.setdefault((pair, number), threading.Barrier(2))
        with suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)

    def remember(self, upload: Upload) -> None:
        with self.lock:
            self.accepted.append(upload)


def uploader(index: int, token: str, base: str, deadline: float, plan: UploadPlan, recorder: Recorder,
             records: list[UploadRecord], seed: int) -> None:
    """Uploads until the deadline, closed loop. Even uploaders use the upload form, odd ones the chunk API."""
    rng = random.Random(seed * 1000 + index)
    invalid = plan.invalid_files()
    invalid.turn = index  # not every uploader starts with the same kind of bad file
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    number = 0
    while time.monotonic() < deadline:
        upload = plan.next(index, number, rng, invalid)
        number += 1
        start = time.perf_counter()
        send = _send_form if index % 2 == 0 else _send_chunked
        status, outcome, photo_id = send(session, base, upload, recorder)
        recorder.time("upload, whole file", time.perf_counter() - start)
        if outcome == "archived":
            plan.remember(upload)
        record = UploadRecord(index, upload.kind, hashlib.sha256(upload.data).hexdigest(), len(upload.data),
                              status, outcome, photo_id)
        with recorder.lock:
            records.append(record)


def _send_form(session: requests.Session, base: str, upload: Upload,
               recorder: Recorder) -> tuple[int | None, str | None, int | None]:
    response = recorder.request(session, "upload form", "POST", f"{base}/upload", expect_4xx=not upload.valid,
                                files={"photos": (upload.name, upload.data, "application/octet-stream")})
    if response is None:
        return None, None, None
    try:
        result = response.json()["results"][0]
    except (ValueError, KeyError, IndexError):
        return response.status_code, None, None
    return response.status_code, result.get("outcome"), result.get("photo_id")


def _send_chunked(session: requests.Session, base: str, upload: Upload,
                  recorder: Recorder) -> tuple[int | None, str | None, int | None]:
    created = recorder.request(session, "upload api: create", "POST", f"{base}/api/uploads",
                               expect_4xx=not upload.valid, json={"filename": upload.name, "size": len(upload.data)})
    if created is None:
        return None, None, None
    if created.status_code != 201:  # an empty file is refused when it is announced
        return created.status_code, "refused" if created.status_code < 500 else None, None
    url = base + created.json()["url"]
    offset = 0
    while True:
        chunk = upload.data[offset:offset + CHUNK_BYTES]
        last = offset + len(chunk) >= len(upload.data)
        response = recorder.request(session, "upload api: chunk", "PATCH", url, data=chunk,
                                    expect_4xx=last and not upload.valid,
                                    headers={"Upload-Offset": str(offset),
                                             "Content-Type": "application/offset+octet-stream"})
        if response is None:
            return None, None, None
        offset += len(chunk)
        if last or response.status_code != 200:
            try:
                result = response.json().get("result") or {}
            except ValueError:
                result = {}
            return response.status_code, result.get("outcome"), result.get("photo_id")


def searcher(index: int, base: str, deadline: float, population: Population, recorder: Recorder,
             seed: int, member_token: str | None = None) -> None:
    """Searches and browses until the deadline: the search API and page, with filters and later pages, the
    public gallery pages, photo pages and thumbnails."""
    rng = random.Random(seed * 7919 + index)
    session = requests.Session()
    if member_token:
        session.headers["Authorization"] = f"Bearer {member_token}"
    while time.monotonic() < deadline:
        kind, path = search_request(rng, population)
        recorder.request(session, kind, "GET", base + path)


def search_request(rng: random.Random, population: Population) -> tuple[str, str]:
    from urllib.parse import urlencode

    query = rng.choice(population.queries)
    roll = rng.random()
    if roll < 0.35:
        return "search api", "/api/v1/search?" + urlencode({"q": query})
    if roll < 0.55:
        return "search page", "/search?" + urlencode({"q": query})
    if roll < 0.70:
        params: list[tuple[str, Any]] = [("q", rng.choice(["", query, query.split()[0]]))]
        facet = rng.choice(("association", "year", "tag", "licence", "page"))
        if facet == "association":
            params.append(("association", rng.choice(ASSOCIATIONS)[0]))
        elif facet == "year" and population.years:
            params.append(("year", rng.choice(population.years)))
        elif facet == "tag" and population.tags:
            params.append(("tag", rng.choice(population.tags)))
        elif facet == "licence":
            params.append(("licence", "CC BY 4.0"))
        else:
            params.append(("page", 2))
        path = rng.choice(("/search?", "/api/v1/search?"))
        return "search with filters", path + urlencode(params)
    if roll < 0.85:
        page = rng.choice([
            "/", "/entdecken", f"/entdecken/verein/{rng.choice(ASSOCIATIONS)[0]}",
            *(f"/entdecken/jahr/{rng.choice(population.years)}" for _ in range(1 if population.years else 0)),
        ])
        return "gallery page", page
    photo_id = rng.choice(population.published)
    if roll < 0.93:
        return "photo page", f"/photos/{photo_id}"
    return "thumbnail", f"/media/{photo_id}/thumb.{rng.choice(('jpg', 'webp'))}"


def editor(index: int, token: str, base: str, deadline: float, population: Population, recorder: Recorder,
           edits: list[EditRecord], seed: int) -> None:
    """A curator's script changing captions of published photos (catalogue 53/54: caption updates committed
    while people search, written beside the uploads)."""
    rng = random.Random(seed * 104729 + index)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    number = 0
    while time.monotonic() < deadline:
        photo_id = rng.choice(population.published)
        caption = f"Brücke bei Nacht, Fassung {index}-{number}: Rhein und Lichter"
        number += 1
        response = recorder.request(session, "caption edit", "POST", f"{base}/photos/{photo_id}/edit",
                                    expect_4xx=True, data={"caption": caption})
        with recorder.lock:
            edits.append(EditRecord(photo_id, caption, response.status_code if response is not None else None))
        time.sleep(rng.uniform(0.1, 0.5))  # people do not edit in a tight loop


# --------------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Result:
    options: Options
    recorder: Recorder
    records: list[UploadRecord]
    edits: list[EditRecord]
    memory: dict[str, list[float]]
    idle_search: list[float]
    after_search: list[float]
    load_seconds: float
    drain_seconds: float
    drained: bool
    problems: list[str]  # accounting and consistency problems, in words; empty: all fine
    database: dict[str, int]
    log_findings: list[str]
    corpus_files: int


def idle_searches(archive: Archive, population: Population, recorder: Recorder, count: int = 150) -> list[float]:
    """The anchor: the search API on an archive with nothing else to do, one request at a time."""
    from urllib.parse import urlencode

    session = requests.Session()
    seconds = []
    for query in population.queries[:count]:
        start = time.perf_counter()
        response = recorder.request(session, "search api, idle", "GET",
                                    f"{archive.base}/api/v1/search?" + urlencode({"q": query}))
        if response is not None and response.status_code == 200:
            seconds.append(time.perf_counter() - start)
    return seconds


def run(options: Options, progress: Callable[[str], None] = print) -> Result:
    photos = corpus_photos(options.corpus)
    source = "Pillow" if photos[0][0].startswith("generated") else options.corpus
    progress(f"{len(photos)} corpus photos ({sum(len(d) for _, d in photos) / len(photos) / 1e6:.1f} MB "
             f"on average) from {source}")
    recorder = Recorder()
    with work_folder(options.keep) as folder:
        with running(folder, options) as archive:
            progress(f"archive on {archive.base}: {options.workers} gunicorn workers × 4 threads + the job worker "
                     f"({options.storage} storage, SQLite)")
            start = time.monotonic()
            population = populate(archive, options, recorder)
            progress(f"set-up: {len(population.member_tokens)} members with tokens, a curator, "
                     f"{len(population.published)} published photos indexed in {time.monotonic() - start:.1f} s")
            idle = idle_searches(archive, population, recorder)
            sampler = MemorySampler()
            sampler.start()
            progress(f"load: {options.uploaders} uploaders, {options.searchers} searchers, {options.editors} "
                     f"caption editors for {options.seconds:.0f} s")
            records, edits, load_seconds = load(archive, options, population, photos, recorder)
            progress(f"load done in {load_seconds:.1f} s; waiting for the job queue and the index "
                     f"({_unprocessed(archive)} photos to process)")
            drained, drain_seconds = drain(archive, options, progress)
            sampler.stop()
            after = idle_searches(archive, population, recorder, count=50)
            problems = account(archive, records, edits)
            database = _database_counts(archive)
        log_findings = scan_log(folder / "run.log")
        problems += consistency(archive)
    return Result(options, recorder, records, edits, dict(sampler.samples), idle, after, load_seconds,
                  drain_seconds, drained, problems, database, log_findings, len(photos))


def load(archive: Archive, options: Options, population: Population, photos: list[tuple[str, bytes]],
         recorder: Recorder) -> tuple[list[UploadRecord], list[EditRecord], float]:
    """All clients at once until the deadline; returns what the uploaders and editors did and how long it took."""
    records: list[UploadRecord] = []
    edits: list[EditRecord] = []
    plan = UploadPlan(options, photos)
    start = time.monotonic()
    deadline = start + options.seconds
    tokens, seed = population.member_tokens, options.seed
    threads = [threading.Thread(target=uploader, name=f"uploader-{i}",
                                args=(i, tokens[i], archive.base, deadline, plan, recorder, records, seed))
               for i in range(options.uploaders)]
    threads += [threading.Thread(target=searcher, name=f"searcher-{i}",
                                 args=(i, archive.base, deadline, population, recorder, seed,
                                       tokens[i % len(tokens)] if i % 5 == 4 else None))
                for i in range(options.searchers)]
    threads += [threading.Thread(target=editor, name=f"editor-{i}", args=(
        i, population.curator_token, archive.base, deadline, population, recorder, edits, seed))
        for i in range(options.editors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records, edits, time.monotonic() - start


def drain(archive: Archive, options: Options, progress: Callable[[str], None]) -> tuple[bool, float]:
    """Waits (bounded) until no photo is processing and the index has applied every outbox event."""
    start = time.monotonic()
    try:
        _wait(lambda: _unprocessed(archive) == 0 and _index_behind(archive) == 0, options.drain_seconds,
              "the job queue did not drain")
    except RuntimeError as error:
        progress(str(error))
        return False, time.monotonic() - start
    return True, time.monotonic() - start


# --------------------------------------------------------------------------------------------------------------------
# The accounting


def account(archive: Archive, records: list[UploadRecord], edits: list[EditRecord]) -> list[str]:
    """Every accepted upload exactly once and processed; every answer what its file deserved; captions are
    what some successful edit wrote."""
    from sqlalchemy import select

    from archive.models import Photo, PhotoStatus, db

    problems: list[str] = []
    with archive.app.app_context():
        rows = db.session.execute(select(Photo.id, Photo.sha256, Photo.status, Photo.caption,
                                         Photo.original_filename)).all()
        db.session.remove()
    by_sha: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_sha[row.sha256].append(row)
    problems += [f"SHA-256 {sha[:12]} is in the database {len(found)} times" for sha, found in by_sha.items()
                 if len(found) > 1]
    archived = Counter(r.sha256 for r in records if r.outcome == "archived")
    problems += [f"SHA-256 {sha[:12]} was answered 'archived' {n} times" for sha, n in archived.items() if n > 1]
    sent_valid = {r.sha256 for r in records if r.kind in SUCCESS_KINDS}
    seeds = {row.sha256 for row in rows if row.original_filename.startswith("seed-")}
    unexplained = set(by_sha) - sent_valid - seeds
    problems += [f"unexpected photo in the database: {sha[:12]}" for sha in sorted(unexplained)]
    # Told "kept" (archived, or a duplicate of a kept photo) but not there. A photo answered 503 or not at all
    # need not be there: its client was told to try again (and the 5xx is counted on its own).
    kept = {r.sha256 for r in records if r.kind in SUCCESS_KINDS and r.outcome in ("archived", "duplicate")}
    problems += [f"lost: {sha[:12]} was answered as kept but is not in the database"
                 for sha in sorted(kept - set(by_sha))]
    for record in records:
        if record.kind in SUCCESS_KINDS and record.outcome not in ("archived", "duplicate") and not (
                record.status is None or record.status >= 500):  # 5xx and no answer: counted on their own
            problems.append(f"a valid {record.kind} ({record.size} bytes) was answered {record.status} "
                            f"{record.outcome!r}")
        if record.kind not in SUCCESS_KINDS and not (record.status and 400 <= record.status < 500):
            problems.append(f"an invalid file ({record.kind}) was answered {record.status} {record.outcome!r}")
    for row in rows:
        if row.status == PhotoStatus.PROCESSING:
            problems.append(f"photo {row.id} is still processing after the drain")
        elif row.status == PhotoStatus.FAILED and row.sha256 in sent_valid:
            problems.append(f"photo {row.id}, a valid camera photo, failed processing")
    caption_of = {row.id: row.caption for row in rows}
    written: dict[int, set[str]] = defaultdict(set)
    for edit in edits:
        if edit.status == 302:
            written[edit.photo_id].add(edit.caption)
    problems += [f"photo {pid}: its caption is none of the {len(captions)} captions written to it"
                 for pid, captions in written.items() if caption_of.get(pid) not in captions]
    return problems


def _database_counts(archive: Archive) -> dict[str, int]:
    from sqlalchemy import func, select

    from archive.models import Photo, db

    with archive.app.app_context():
        counts = {str(status): n for status, n in db.session.execute(
            select(Photo.status, func.count()).group_by(Photo.status))}
        db.session.remove()
    return counts


LOG_PATTERNS = re.compile(r"Traceback|OperationalError|database is locked|LockError|\[CRITICAL\]|WORKER TIMEOUT"
                          r"|Worker .* was sent|\" 5\d\d ")


def scan_log(path: Path) -> list[str]:
    """Lines of the server's log (gunicorn, access log, job worker) that speak of errors."""
    if not path.exists():
        return []
    return [line.strip()[:240] for line in path.read_text(errors="replace").splitlines() if LOG_PATTERNS.search(line)]


def consistency(archive: Archive) -> list[str]:
    """I1, I3, I4, I5 of the catalogue (tests/consistency.py), once the server has stopped: it applies the outbox
    itself, which must not race the worker. The chunk API keeps a finished upload's answer (``<id>.json`` and its
    ``.lock``) for UPLOAD_RESUME_HOURS by design, so that a client whose connection dropped can still learn it:
    those are no leftovers; a ``.part`` file or anything else is."""
    from tests.consistency import problems

    staging = Path(archive.app.config["STAGING_DIR"])
    try:
        return [p for p in problems(archive.app) if not _kept_answer(staging, p)]
    finally:
        _release(archive)


KEPT_ANSWER = re.compile(r"^I5: file left on the staging disk: (uploads/\d+/[0-9a-f]{32})\.(json|lock)$")


def _kept_answer(staging: Path, problem: str) -> bool:
    match = KEPT_ANSWER.match(problem)
    if match is None:
        return False
    record = staging / f"{match.group(1)}.json"
    try:
        return json.loads(record.read_text()).get("result") is not None
    except (OSError, ValueError):
        return False
