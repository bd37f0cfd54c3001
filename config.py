"""Brücken's settings: every one with its default and what it is for.

Each setting can be overridden by an environment variable named ``ARCHIVE_<NAME>`` (for example
``ARCHIVE_DATABASE_URL=postgresql+psycopg://...``), or by a Python file named in ``ARCHIVE_CONFIG``.
The embedded defaults run on one small machine with no extra services: SQLite, the local object
store under ``uploads/`` and the Whoosh index under ``index/``.

This file only declares data; ``archive.settings`` reads it. Paths that are empty are derived from
the folders above them when the app starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent


class Setting(NamedTuple):
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    # --- where things live -------------------------------------------------------------------------
    Setting("DATABASE_URL", "", "SQLAlchemy URL of the database. Empty: SQLite in instance/brucken.sqlite."),
    Setting("INSTANCE_DIR", str(ROOT / "instance"),
            "Folder for the SQLite database, the secret key and the job queue."),
    Setting("UPLOAD_DIR", str(ROOT / "uploads"), "Upload staging area and, with STORAGE=local, the object store."),
    Setting("INDEX_DIR", str(ROOT / "index"), "Folder of the Whoosh search index (derived data, rebuilt by reindex)."),
    Setting("INDEX_LOCK_SECONDS", 5.0, "How long the index writer waits for another process's write lock before "
            "it gives up and tries again later (searches are never blocked by it)."),
    Setting(
        "SEARCH_INDEX_WRITER",
        "worker",
        "Who keeps the search index in INDEX_DIR up to date: 'worker' (one host: the job worker applies each "
        "change) or 'follower' (several web hosts: 'brucken follow-index' on every host keeps that host's own "
        "index following the database's outbox).",
    ),
    Setting("INDEX_FOLLOW_SECONDS", 1.0, "How often 'brucken follow-index' looks for new changes in the "
            "database (seconds)."),
    Setting("SQLITE_BUSY_TIMEOUT_MS", 15000, "How long a SQLite writer waits for another before giving up (ms)."),
    Setting("POSTGRES_LOCK_TIMEOUT_MS", 15000, "How long a PostgreSQL statement waits for a lock another holds "
            "(a long migration, a table locked by hand) before the request is answered 'try again shortly' (ms)."),
    Setting("SECRET_KEY", "", "Signs sessions and forms. Empty: a random key is made once and kept in INSTANCE_DIR."),
    # --- object storage -----------------------------------------------------------------------------
    Setting("STORAGE", "local", "Where originals and derivatives are kept: 'local' or 's3'."),
    Setting("LOCAL_STORE_DIR", "", "Root of the local object store. Empty: UPLOAD_DIR/store."),
    Setting("S3_ENDPOINT", "", "URL of the S3-compatible service (Ceph RGW, MinIO, ...). Empty: AWS S3."),
    Setting("S3_BUCKET", "brucken", "Bucket for originals and derivatives. It is never made public."),
    Setting("S3_REGION", "us-east-1", "Region name the service expects in signatures."),
    Setting("S3_ACCESS_KEY", "", "Access key id."),
    Setting("S3_SECRET_KEY", "", "Secret access key."),
    Setting("S3_ADDRESSING_STYLE", "path", "'path', 'virtual' or 'auto'. Most self-hosted services need 'path'."),
    Setting(
        "S3_CHECKSUM",
        "when_required",
        "'when_required' or 'when_supported': when boto3 sends CRC checksums (some services reject them).",
    ),
    # A person waiting on an upload while S3 hangs gets the 503 after about attempts × (read timeout + 1 s):
    # ~12 s with these values (measured 8 s with 3 s; tests/test_faults.py), not minutes.
    Setting("S3_CONNECT_TIMEOUT", 2.0, "Seconds to wait for a connection to the S3 service."),
    Setting("S3_READ_TIMEOUT", 5.0, "Seconds to wait for an answer from the S3 service (raise it for a slow "
            "cluster with large multipart parts)."),
    Setting("S3_MAX_ATTEMPTS", 2, "How often a failed S3 request is tried in all."),
    Setting("S3_MULTIPART_THRESHOLD", 16 * 1024 * 1024, "Files larger than this go up in parts (bytes)."),
    Setting(
        "MEDIA_CDN_URL",
        "",
        "Address of a CDN (or the S3 service itself) in front of the bucket's public prefix, e.g. "
        "https://cdn.example.org/brucken-public. Set: thumbnails and previews of published photos are copied "
        "under S3_PUBLIC_PREFIX, readable by anyone, and pages link them there. Empty (default): every image "
        "goes through the app, which checks who may see it.",
    ),
    Setting("S3_PUBLIC_PREFIX", "public/", "Key prefix of the public copies made for MEDIA_CDN_URL (only "
            "thumbnails and previews of published photos, under keys nobody can guess)."),
    # --- uploads and images --------------------------------------------------------------------------
    Setting("MAX_UPLOAD_BYTES", 100_000_000, "Largest file accepted, in bytes (a 100 MB camera file fits)."),
    Setting("MAX_REQUEST_BYTES", 2 * 1024 * 1024 * 1024, "Largest upload request (many files at once), in bytes."),
    Setting("UPLOAD_RESUME_HOURS", 24, "Hours an unfinished chunked upload (/api/uploads) waits to be resumed before "
            "it is removed."),
    Setting("MAX_PIXELS", 200_000_000, "Largest image accepted, in pixels (width × height); guards against bombs."),
    Setting("JPEG_QUALITY", 85, "JPEG quality of thumbnails and previews."),
    Setting("WEBP_QUALITY", 80, "WebP quality of thumbnails and previews."),
    Setting(
        "DECODE_MEMORY_MB",
        1536,
        "Memory (MB) that reading one photo's metadata, or making its thumbnails and previews, may use; each runs "
        "in a process of its own that is stopped beyond this. A 50-megapixel photo needs up to 800 (WebP; HEIC "
        "450, JPEG 50). A photo that needs more fails with a message; one whose metadata needs more is archived "
        "without it.",
    ),
    Setting(
        "DECODE_SECONDS",
        60,
        "Seconds (wall clock, and processor time) that reading one photo's metadata, or making its thumbnails and "
        "previews, may take before it is stopped. A 50-megapixel photo takes 1-6. Beyond the limit the photo "
        "fails with a message, or is archived without its metadata.",
    ),
    # --- background jobs ----------------------------------------------------------------------------
    Setting("QUEUE", "sqlite", "Job queue: 'sqlite' (embedded), 'redis', or 'immediate' (run jobs at once; tests)."),
    Setting("QUEUE_PATH", "", "SQLite file of the embedded queue. Empty: INSTANCE_DIR/jobs.sqlite."),
    Setting("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis server for QUEUE=redis."),
    Setting("WORKER_THREADS", 2, "Jobs processed at once by one worker process."),
    Setting("JOB_RETRIES", 4, "How often a failed job is tried again before it lands in the failed list "
            "(/admin/jobs), where an admin can start it again."),
    Setting("JOB_RETRY_SECONDS", 10.0, "Wait before the first retry of a failed job; each further retry waits "
            "twice as long as the one before (10, 20, 40, 80 s). The worker looks for due retries once a second."),
    Setting("STALE_MINUTES", 30, "A photo still 'processing' after this long is finished or cleaned by reconcile."),
    # --- serving -------------------------------------------------------------------------------------
    Setting("HOST", "127.0.0.1", "Address 'brucken run' listens on."),
    Setting("PORT", 5000, "Port 'brucken run' listens on."),
    Setting("WEB_WORKERS", 2, "gunicorn worker processes started by 'brucken run' (gunicorn.conf.py)."),
    Setting("WEB_THREADS", 4, "Threads per gunicorn worker process (gunicorn.conf.py)."),
    Setting(
        "METRICS_TOKEN",
        "",
        "Bearer token that Prometheus sends to read /metrics. Empty: /metrics answers 404 (metrics are off).",
    ),
    Setting(
        "MEDIA_MAX_AGE",
        0,
        "Seconds caches may keep a public image without asking again. 0: they ask every time (a cheap 304), "
        "so an image taken offline (consent withdrawn) disappears at once.",
    ),
    Setting(
        "S3_REDIRECT_DOWNLOADS",
        True,
        "Send originals as short-lived signed S3 links (True) or stream them through the app (False: for an "
        "S3 service that browsers cannot reach).",
    ),
    Setting("DEFAULT_LANGUAGE", "de", "Language of the interface when the browser states no preference."),
    Setting("TIME_ZONE", "Europe/Berlin", "Time zone in which pages show dates and times (the database keeps UTC)."),
    Setting(
        "BASE_URL",
        "",
        "Address of the archive as people reach it (e.g. https://bruecken.example.org), for the links that "
        "'brucken invite' prints and the admin pages show. Empty: the pages use the address of the request, "
        "the command prints only the path.",
    ),
    Setting(
        "TRUSTED_PROXIES",
        0,
        "Reverse proxies in front of the archive that add X-Forwarded-For/-Proto/-Host (nginx, a load balancer): "
        "the login limit then counts the visitor's address instead of the proxy's, and links use the visitor's "
        "scheme and host. 0: the connection itself, X-Forwarded-* headers ignored.",
    ),
    # --- accounts -------------------------------------------------------------------------------------
    Setting("INVITATION_DAYS", 7, "How many days an invitation link works (it works once)."),
    Setting("RESET_LINK_HOURS", 24, "How many hours a password reset link works (it works once)."),
    Setting("LOGIN_WINDOW_MINUTES", 15, "Failed logins are counted over this many minutes."),
    Setting("LOGIN_MAX_FAILURES_PER_NAME", 10,
            "Failed logins for one username within the window before further tries are refused (429)."),
    Setting("LOGIN_MAX_FAILURES_PER_ADDRESS", 30,
            "Failed logins from one address within the window before further tries are refused (429)."),
)
