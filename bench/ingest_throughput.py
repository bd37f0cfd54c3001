"""Benchmark: ingest and processing throughput with 1, 2, 4 job workers against a real S3 server and Redis.

    python -m bench.ingest_throughput [--photos N] [--workers 1,2,4] [--corpus PATH]

Starts a one-node Ceph radosgw (``tests.servers.radosgw``, about 15 s; or uses the server named by
BRUCKEN_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY, in a bucket of its own that it removes afterwards) and a
redis-server, and sets up an archive with ``brucken init``: SQLite, STORAGE=s3 on a fresh bucket, QUEUE=redis.
Then, for each worker count W, in this order:

1. ingest: N new photos go through ``archive.ingest.Ingest`` (the service the upload view and ``brucken
   import`` use): staged, checked, original stored on S3, row created, processing job queued in Redis. No
   worker runs yet, so this is the pure upload rate.
2. anchor: the same N files (the same bytes) go through ``archive.media.make_derivatives`` one after the other
   in this process, without sandbox, S3, queue or database; the sum of their wall times is the anchor. Reading
   the metadata (the other half of a processing job) is timed too and shown, but is not in the anchor.
3. processing: W ``brucken worker --threads 1`` processes start; the time from their start until the last photo
   of the batch is processed (``processed_at`` of the last one, status no longer 'processing', derivatives on
   S3) is the wall time. The job queue is left to drain (index jobs), then the workers are stopped.

Every round gets new photos: the same corpus files (real camera JPEGs and HEICs of mixed sizes) each made
distinct by bytes that change nothing of the picture (a JPEG comment segment before the image data, a trailing
``free`` box in a HEIF file), so each has a new SHA-256 and nothing is a duplicate.

The table shows photos/s, the speed-up over one worker, and (wall time × workers) / anchor: how much longer the
work takes in the archive than the derivatives alone would (sandbox processes, metadata, S3, queue, database,
index), per worker. With more workers than CPUs the workers wait for a CPU, and that waiting counts in the
ratio too: on a 2-CPU machine 4 workers cannot beat 2. Other processes on the machine distort the wall times;
the load average before each round is printed, and a second table gives CPU times, which they disturb far
less: the workers' (with their sandbox children, start-up shown apart) against the anchor's, and the S3 and
Redis servers'. Not a timed test: it prints figures and asserts nothing about them; it exits 1 only when a
photo failed or a derivative is missing on S3.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import logging
import os
import platform
import secrets
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load.files import with_comment

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
# Real camera files, small enough that a 2-CPU machine processes a batch in a few minutes.
MIN_BYTES, MAX_BYTES = 20_000, 4 * 1024 * 1024
MIN_PIXELS, MAX_PIXELS = 1_000_000, 24_000_000  # the corpus's 640 × 480 test images left out
HEIF_SHARE = 6  # about one photo in six is a HEIC, as from a phone
STOP_SECONDS = 20.0
DRAIN_SECONDS = 30.0


# --------------------------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A corpus file a batch is made from."""

    name: str
    data: bytes
    fmt: str  # "jpeg" or "heif"
    pixels: int


def candidate_sources(corpus: Path) -> tuple[list[Source], list[Source]]:
    """JPEGs and HEIFs of the corpus whose headers look like a real camera photo: (jpegs, heifs), by size.

    Only headers are read here; ``pick_sources`` decodes the ones it picks."""
    from archive.errors import Refusal
    from archive.media import SNIFF_BYTES, read_header, sniff

    jpegs, heifs = [], []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        if "ImageTestSuite" in path.parts or "corrupt" in path.name.lower():
            continue  # fuzzed and broken files are other tests' business
        if not MIN_BYTES <= path.stat().st_size <= MAX_BYTES:
            continue
        data = path.read_bytes()
        fmt = sniff(data[:SNIFF_BYTES]).format
        if fmt not in ("jpeg", "heif"):
            continue
        try:
            header = read_header(path, fmt, 1_000_000_000)
        except Refusal:
            continue
        pixels = header.width * header.height
        if MIN_PIXELS <= pixels <= MAX_PIXELS:
            (jpegs if fmt == "jpeg" else heifs).append(Source(path.name, data, fmt, pixels))
    jpegs.sort(key=lambda s: s.pixels)
    heifs.sort(key=lambda s: s.pixels)
    return jpegs, heifs


def _spread(items: list[Source], count: int) -> Iterator[Source]:
    """``items`` (sorted by size) starting at ``count`` evenly spaced places, then the rest, for a mix of sizes."""
    if not items or count <= 0:
        return
    step = len(items) / count
    first = list(dict.fromkeys(int(i * step) for i in range(count)))
    yield from (items[i] for i in first)
    taken = set(first)
    yield from (item for i, item in enumerate(items) if i not in taken)


def _decodes(source: Source, folder: Path) -> bool:
    """Whether the archive makes derivatives from this file once made distinct (also warms up the decoders)."""
    from archive.media import MediaError, make_derivatives

    path = folder / "probe"
    path.write_bytes(make_distinct(source, "probe"))
    try:
        make_derivatives(path, max_pixels=200_000_000)
    except MediaError:
        return False
    finally:
        path.unlink()
    return True


def pick_sources(corpus: Path, count: int, folder: Path) -> list[Source]:
    """``count`` different corpus files of mixed sizes (as many as there are, if fewer), about one in six a HEIC;
    each one checked to decode."""
    jpegs, heifs = candidate_sources(corpus)
    want_heifs = min(len(heifs), max(1, count // HEIF_SHARE) if count >= 3 else 0)
    picked_heifs = [s for s in _spread(heifs, want_heifs) if _decodes(s, folder)][:want_heifs]
    picked_jpegs: list[Source] = []
    for source in _spread(jpegs, count - len(picked_heifs)):
        if len(picked_jpegs) >= count - len(picked_heifs):
            break
        if _decodes(source, folder):
            picked_jpegs.append(source)
    if not picked_jpegs and not picked_heifs:
        raise SystemExit(f"no camera JPEG or HEIC in {corpus} decodes")
    # A HEIC at every HEIF_SHARE-th place (starting at the third), so that even a batch of 3 has one.
    sources = list(picked_jpegs)
    for n, heif in enumerate(picked_heifs):
        sources.insert(min(len(sources), 2 + n * HEIF_SHARE), heif)
    return sources


def make_distinct(source: Source, tag: str) -> bytes:
    """The file with ``tag`` in bytes the picture does not depend on: a new SHA-256, the same photo."""
    text = f"Brücken ingest benchmark {tag}"
    if source.fmt == "jpeg":
        return with_comment(source.data, text)
    # ISO-BMFF: a 'free' box after the last one is skipped by every reader.
    payload = text.encode()
    return source.data + struct.pack(">I", 8 + len(payload)) + b"free" + payload


def make_batch(sources: list[Source], count: int, round_tag: str) -> list[tuple[str, bytes]]:
    """``count`` new photos (cycling through ``sources``), each with a name and bytes of its own."""
    batch = []
    for i in range(count):
        source = sources[i % len(sources)]
        batch.append((f"{round_tag}-{i:03d}-{source.name}", make_distinct(source, f"{round_tag} {i}")))
    return batch


# --------------------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM when the benchmark dies, so that no worker or server outlives it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_redis() -> Any:
    """A running redis-server of our own (never a shared one: the queue's keys would mix)."""
    from tests.servers.redis import RedisServer

    server = RedisServer()
    server.start()
    return server


@dataclass
class S3:
    endpoint: str
    access_key: str
    secret_key: str
    gateway: Any  # the RadosGateway we started, None for a server someone else runs
    note: str


def start_s3() -> S3:
    from tests.servers.radosgw import RadosGateway, server_from_environment

    external = server_from_environment()
    if external is not None:
        return S3(external.endpoint, external.access_key, external.secret_key, None,
                  f"radosgw at {external.endpoint} (from BRUCKEN_TEST_S3_ENDPOINT)")
    gateway = RadosGateway()
    gateway.start()
    return S3(gateway.endpoint, gateway.access_key, gateway.secret_key, gateway,
              f"radosgw started in {gateway.startup_seconds:.1f} s at {gateway.endpoint}")


# --------------------------------------------------------------------------------------------------------
# The archive
# --------------------------------------------------------------------------------------------------------


class BenchArchive:
    """An archive in its own folder: ``brucken init`` as a process, the same settings in this process."""

    def __init__(self, folder: Path, s3: S3, redis_url: str) -> None:
        self.folder = folder
        self.settings: dict[str, Any] = {
            "INSTANCE_DIR": str(folder / "instance"),
            "UPLOAD_DIR": str(folder / "uploads"),
            "INDEX_DIR": str(folder / "index"),
            "STORAGE": "s3",
            "S3_ENDPOINT": s3.endpoint,
            "S3_BUCKET": f"bench-ingest-{secrets.token_hex(4)}",
            "S3_ACCESS_KEY": s3.access_key,
            "S3_SECRET_KEY": s3.secret_key,
            "S3_ADDRESSING_STYLE": "path",
            "QUEUE": "redis",
            "REDIS_URL": redis_url,
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
        self.env.update({f"ARCHIVE_{k}": str(v) for k, v in self.settings.items()})
        self.env["PYTHONUNBUFFERED"] = "1"  # the worker's "running" line reaches its log at once
        self.app: Any = None

    def init(self) -> None:
        done = subprocess.run([sys.executable, "-m", "archive", "init"], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180, check=False)
        if done.returncode != 0:
            raise SystemExit(f"brucken init failed:\n{done.stdout}\n{done.stderr}")
        from archive import create_app

        self.app = create_app(dict(self.settings))

    @contextlib.contextmanager
    def context(self) -> Iterator[Any]:
        """An app context and its database session, removed afterwards."""
        from archive.models import db

        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()

    def remove_bucket(self) -> None:
        """Every object and the bucket itself (for a server that outlives the benchmark)."""
        from archive.services import get_store

        with self.context():
            store = get_store()
            for info in list(store.list()):
                store.delete(info.key)
            store.client.delete_bucket(Bucket=store.bucket)


@dataclass
class Ingested:
    photo_ids: list[int]
    seconds: float
    megabytes: float


def ingest_batch(archive: BenchArchive, batch: list[tuple[str, bytes]]) -> Ingested:
    """Every photo through the upload service, one after the other, as ``brucken import --no-wait`` does."""
    from sqlalchemy import select

    from archive.ingest import Ingest
    from archive.models import Association
    from archive.services import get_jobs, get_store

    with archive.context() as session:
        association = session.scalars(select(Association).order_by(Association.id)).first()
        store, jobs = get_store(), get_jobs()
        # First-use costs (boto3's client and transfer manager, the Redis connection) are not the upload rate.
        store.put_bytes("bench-warm-up", b"warm-up", "text/plain")
        store.delete("bench-warm-up")
        jobs.huey.pending_count()
        ingest = Ingest(session, store, archive.app.config, jobs.enqueue_processing)
        ids = []
        began = time.perf_counter()
        for name, data in batch:
            result = ingest.ingest(io.BytesIO(data), name, association, uploader=None)
            if result.outcome != "archived" or result.photo_id is None:
                reason = result.refusal.en if result.refusal else result.outcome
                raise SystemExit(f"{name} was not archived: {reason}")
            ids.append(result.photo_id)
        seconds = time.perf_counter() - began
    return Ingested(ids, seconds, sum(len(data) for _, data in batch) / 1e6)


@dataclass
class Anchor:
    derivatives: float  # seconds of make_derivatives, summed (wall)
    derivatives_cpu: float
    metadata: float  # seconds of read_metadata, summed (wall)


def measure_anchor(archive: BenchArchive, batch: list[tuple[str, bytes]]) -> Anchor:
    """The pure work on the same bytes, in this process: no sandbox, S3, queue or database."""
    from archive.media import make_derivatives
    from archive.metadata import read_metadata

    config = archive.app.config
    folder = archive.folder / "anchor"
    folder.mkdir(exist_ok=True)
    derivatives = cpu = metadata = 0.0
    for _name, data in batch:
        path = folder / "photo"
        path.write_bytes(data)
        began, began_cpu = time.perf_counter(), time.process_time()
        make_derivatives(path, max_pixels=int(config["MAX_PIXELS"]), jpeg_quality=int(config["JPEG_QUALITY"]),
                         webp_quality=int(config["WEBP_QUALITY"]))
        derivatives += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
        began = time.perf_counter()
        read_metadata(path)
        metadata += time.perf_counter() - began
        path.unlink()
    return Anchor(derivatives, cpu, metadata)


@dataclass
class Processed:
    seconds: float  # from the workers' start to the last photo processed
    startup: float  # from their start until the last of them said it runs
    failed: int
    drained: bool
    worker_cpu: float  # CPU seconds of the workers and their children (forkserver, sandbox processes)
    startup_cpu: float  # of that, until each worker said it runs (imports, app, connections)
    server_cpu: float  # CPU seconds of radosgw, its Ceph daemons and redis-server meanwhile (0: not ours)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children() -> dict[int, list[int]]:
    """Every living process's children, by parent pid (/proc/PID/task/*/children is not always there)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_cpu(pid: int, children: dict[int, list[int]] | None = None) -> float:
    """CPU seconds of a process alone, or (given ``children`` from ``_children``) with its children that ended
    (cutime) and its living children, recursively.

    Processing spends most of its time in the sandbox's children, which the forkserver forks and reaps: their
    time is the forkserver's cutime, and the forkserver is the worker's child."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children is not None:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children waited for
    total = ticks / CLOCK_TICKS
    for child in (children or {}).get(pid, []):
        total += process_cpu(child, children)
    return total


def _servers_cpu(pids: list[int]) -> float:
    return sum(process_cpu(pid) for pid in pids)


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT: huey's graceful stop (running jobs finish); SIGKILL for one that does not stop in time."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_SECONDS
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_workers(archive: BenchArchive, count: int, photo_ids: list[int], timeout: float,
                server_pids: list[int]) -> Processed:
    """Start ``count`` workers and wait until none of ``photo_ids`` is 'processing' any more."""
    from sqlalchemy import func, select

    from archive.models import Photo, PhotoStatus
    from archive.services import get_jobs

    logs = [archive.folder / f"worker-{count}-{n}.log" for n in range(count)]
    servers_before = _servers_cpu(server_pids)
    started_utc = datetime.now(UTC).replace(tzinfo=None)  # the clock of Photo.processed_at
    began = time.monotonic()
    workers = []
    try:
        for log in logs:
            with log.open("wb") as out:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "archive", "worker", "--threads", "1"], env=archive.env, cwd=ROOT,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent))
        ready: dict[int, float] = {}
        startup_cpu = 0.0
        while True:
            for n, log in enumerate(logs):
                if n not in ready and b"Worker running" in log.read_bytes():
                    ready[n] = time.monotonic() - began
                    startup_cpu += process_cpu(workers[n].pid, _children())
            for worker, log in zip(workers, logs, strict=True):
                if worker.poll() is not None:
                    raise SystemExit(f"a worker stopped (exit status {worker.returncode}):\n{_tail(log)}")
            with archive.context() as session:
                left = session.scalar(select(func.count()).select_from(Photo).where(
                    Photo.id.in_(photo_ids), Photo.status == PhotoStatus.PROCESSING))
            if left == 0:
                break
            if time.monotonic() - began > timeout:
                raise SystemExit(f"{left} of {len(photo_ids)} photos still processing after {timeout:.0f} s; "
                                 f"last lines of {logs[0]}:\n{_tail(logs[0])}")
            time.sleep(0.2)
        polled = time.monotonic() - began
        with archive.context() as session:
            last = session.scalar(select(func.max(Photo.processed_at)).where(Photo.id.in_(photo_ids)))
            failed = session.scalar(select(func.count()).select_from(Photo).where(
                Photo.id.in_(photo_ids), Photo.status == PhotoStatus.FAILED))
        # processed_at of the last photo is exact; the polling only bounds it (0.2 s steps).
        seconds = (last - started_utc).total_seconds() if last is not None else polled
        # The index jobs the photos queued must not spill into the next round.
        drained = False
        with archive.context():
            huey = get_jobs().huey
            deadline = time.monotonic() + DRAIN_SECONDS
            while not (drained := huey.pending_count() == 0) and time.monotonic() < deadline:
                time.sleep(0.2)
        startup = max(ready.values()) if len(ready) == count else float("nan")
        # After the drain: the index jobs are part of the work; idle polling costs the workers next to nothing.
        tree = _children()
        worker_cpu = sum(process_cpu(worker.pid, tree) for worker in workers)
        server_cpu = _servers_cpu(server_pids) - servers_before
        return Processed(min(seconds, polled), startup, failed or 0, drained, worker_cpu, startup_cpu, server_cpu)
    finally:
        _stop(workers)


def derivatives_on_s3(archive: BenchArchive, photo_ids: list[int]) -> tuple[int, int]:
    """(derivatives found on S3, derivatives expected) for the photos."""
    from archive.media import FORMATS, SIZES
    from archive.models import Photo
    from archive.services import get_store

    found = 0
    with archive.context() as session:
        store = get_store()
        for photo_id in photo_ids:
            photo = session.get(Photo, photo_id)
            found += sum(1 for d in photo.derivatives if store.exists(d.key))
    return found, len(photo_ids) * len(SIZES) * len(FORMATS)


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


@dataclass
class Round:
    workers: int
    photos: int
    ingested: Ingested
    anchor: Anchor
    processed: Processed
    on_s3: tuple[int, int]
    load: str


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


COLUMNS = (f"{'workers':>7} {'photos':>6} {'seconds':>8} {'photos/s':>8} {'speed-up':>8} {'wall×W/anchor':>13} "
           f"{'ingest/s':>8} {'ingest MB/s':>11}")
COST_COLUMNS = (f"{'workers':>7} {'anchor s':>8} {'anchor CPU s':>12} {'worker CPU s':>12} {'of it start':>11} "
                f"{'(CPU-start)/anchor CPU':>22} {'server CPU s':>12} {'start s':>7} {'after start':>11}  load before")


def print_table(rounds: list[Round]) -> None:
    one = next((r for r in rounds if r.workers == 1), None)
    print()
    print(COLUMNS)
    print("-" * len(COLUMNS))
    for r in rounds:
        rate = r.photos / r.processed.seconds
        speedup = f"{rate / (one.photos / one.processed.seconds):.2f}x" if one else "-"
        ratio = r.processed.seconds * r.workers / r.anchor.derivatives
        print(f"{r.workers:>7} {r.photos:>6} {r.processed.seconds:>8.1f} {rate:>8.2f} {speedup:>8} {ratio:>13.2f} "
              f"{r.photos / r.ingested.seconds:>8.1f} {r.ingested.megabytes / r.ingested.seconds:>11.1f}")
    print()
    print("seconds: from starting the workers to the last photo processed (derivatives on S3, row updated),")
    print("  worker start-up included")
    print("speed-up: photos/s over photos/s with 1 worker")
    print("wall×W/anchor: seconds × workers / anchor s; anchor: make_derivatives on the same bytes, one after the")
    print("  other in this process (no sandbox, S3, queue, database); 1.0 would be no overhead at all")
    print("ingest: the upload service (stage, check, original to S3, row, job queued), one photo at a time")
    print()
    print(COST_COLUMNS)
    print("-" * len(COST_COLUMNS))
    for r in rounds:
        p = r.processed
        work_cpu = (p.worker_cpu - p.startup_cpu) / r.anchor.derivatives_cpu
        print(f"{r.workers:>7} {r.anchor.derivatives:>8.1f} {r.anchor.derivatives_cpu:>12.1f} {p.worker_cpu:>12.1f} "
              f"{p.startup_cpu:>11.1f} {work_cpu:>22.2f} {p.server_cpu:>12.1f} {p.startup:>7.1f} "
              f"{p.seconds - p.startup:>11.1f}  {r.load}")
    print()
    print("worker CPU s: CPU time of the worker processes and their children (sandbox processes) until the queue")
    print("  was empty; 'of it start': until each worker said it runs (imports, app); (CPU-start)/anchor CPU: the")
    print("  processing's CPU over the anchor's; server CPU s: radosgw, Ceph OSD and monitor, redis-server meanwhile")
    print("  (0 for an S3 server the benchmark did not start); CPU times are far less disturbed by other")
    print("  processes on the machine than wall times")
    print("start s: until the last worker said it runs; after start: seconds minus start s")
    for r in rounds:
        problems = []
        if r.processed.failed:
            problems.append(f"{r.processed.failed} photo(s) FAILED processing")
        if r.on_s3[0] != r.on_s3[1]:
            problems.append(f"only {r.on_s3[0]} of {r.on_s3[1]} derivatives on S3")
        if not r.processed.drained:
            problems.append(f"the job queue did not drain within {DRAIN_SECONDS:.0f} s")
        print(f"{r.workers} worker(s): {r.on_s3[0]} of {r.on_s3[1]} derivatives found on S3; the anchor's rate "
              f"{r.photos / r.anchor.derivatives:.2f} photos/s; reading the metadata would add "
              f"{r.anchor.metadata:.1f} s to it" + (f"; {'; '.join(problems)}" if problems else ""))


# --------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------


def _worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are positive whole numbers, e.g. 1,2,4")
    return counts


def run(args: argparse.Namespace) -> int:
    # Warnings about odd corpus files (broken EXIF, a truncated JPEG) from the anchor are not the benchmark's.
    logging.basicConfig(level=logging.ERROR)
    if not args.corpus.is_dir():
        raise SystemExit(f"corpus not found at {args.corpus}")
    print(f"ingest throughput: Brücken job workers against a real Ceph radosgw (S3) and Redis; "
          f"{datetime.now():%Y-%m-%d %H:%M}")
    print(f"python {platform.python_version()}, os.cpu_count() = {os.cpu_count()}, load average {_load()}")
    if max(args.workers) > (os.cpu_count() or 1):
        print(f"note: {max(args.workers)} workers on {os.cpu_count()} CPUs: no more than {os.cpu_count()} "
              "run at once; the others wait, and the waiting counts in the ratio")
    folder = Path(tempfile.mkdtemp(prefix="brucken-bench-ingest-"))
    s3 = redis_server = archive = None
    try:
        sources = pick_sources(args.corpus, args.photos, folder)
        sizes = [s.pixels / 1e6 for s in sources]
        heifs = sum(1 for s in sources if s.fmt == "heif")
        print(f"photos: {args.photos} per round from {len(sources)} corpus files ({len(sources) - heifs} JPEG, "
              f"{heifs} HEIC; {min(sizes):.1f}-{max(sizes):.1f} MP, median {statistics.median(sizes):.1f} MP, "
              f"{statistics.mean(len(s.data) for s in sources) / 1e6:.2f} MB on average), new bytes every round",
              flush=True)
        s3 = start_s3()
        redis_server = start_redis()
        print(f"servers: {s3.note}; redis-server at {redis_server.url}", flush=True)
        server_pids = [*(s3.gateway.pids.values() if s3.gateway else []), redis_server.pid]
        archive = BenchArchive(folder, s3, redis_server.url)
        archive.init()
        print(f"archive: SQLite in {folder}, STORAGE=s3 bucket {archive.settings['S3_BUCKET']}, QUEUE=redis; "
              f"workers: brucken worker --threads 1", flush=True)
        rounds = []
        for n, workers in enumerate(args.workers, start=1):
            batch = make_batch(sources, args.photos, f"r{n}w{workers}-{secrets.token_hex(3)}")
            load = _load()
            ingested = ingest_batch(archive, batch)
            anchor = measure_anchor(archive, batch)
            print(f"round {n}: {workers} worker(s): {len(batch)} photos ingested in {ingested.seconds:.1f} s, "
                  f"anchor {anchor.derivatives:.1f} s; processing ...", flush=True)
            processed = run_workers(archive, workers, ingested.photo_ids, args.timeout, server_pids)
            on_s3 = derivatives_on_s3(archive, ingested.photo_ids)
            print(f"round {n}: processed in {processed.seconds:.1f} s", flush=True)
            rounds.append(Round(workers, len(batch), ingested, anchor, processed, on_s3, load))
        print_table(rounds)
        print(f"load average after: {_load()}")
        bad = any(r.processed.failed or r.on_s3[0] != r.on_s3[1] for r in rounds)
        return 1 if bad else 0
    finally:
        if archive is not None and archive.app is not None and s3 is not None and s3.gateway is None:
            with contextlib.suppress(Exception):
                archive.remove_bucket()
        if redis_server is not None:
            redis_server.stop()
        if s3 is not None and s3.gateway is not None:
            s3.gateway.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=24, help="photos per round (default 24)")
    parser.add_argument("--workers", type=_worker_counts, default=[1, 2, 4],
                        help="worker counts, one round each (default 1,2,4)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one round may take to process (default 60 + 15 per photo)")
    args = parser.parse_args(argv)
    if args.photos < 1:
        parser.error("--photos must be at least 1")
    if args.timeout is None:
        args.timeout = 60.0 + 15.0 * args.photos
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
