"""gunicorn's settings for Brücken in production:

    gunicorn -c gunicorn.conf.py "archive:create_app()"

(`brucken run` starts it so). Everything comes from the archive's own settings (config.py, the file named in
ARCHIVE_CONFIG, ARCHIVE_* variables: archive.settings.load_settings), so a host is configured in one place:
HOST and PORT, WEB_WORKERS processes of WEB_THREADS threads each, TRUSTED_PROXIES. gunicorn's own command-line
options still override what is set here.

Why these values:

- gthread workers, always: a worker's heartbeat to the master comes from its main loop, not from the thread
  serving a request, so a 100 MB upload that takes twenty minutes on a slow line is never taken for a hung
  worker, and ``timeout`` can stay short enough to replace a truly stuck process within a minute. (A sync worker
  would be killed after ``timeout`` seconds of one long upload.) Slow clients hold a thread each, not a process:
  put nginx in front (it buffers request bodies) for a site that many people upload to at once.
- ``graceful_timeout``: on a restart (deploy, ``max_requests``) a worker finishes what it serves for up to two
  minutes: every 4 MB chunk of the upload page's chunked uploads even at 0.3 Mbit/s, and a whole 100 MB form
  upload at about 8 Mbit/s. A chunked upload cut later than that resumes where it was; a form upload must be
  sent again.
- ``max_requests`` with jitter: each worker is replaced after about 2000 requests (against slow leaks in image
  and XML libraries), the workers at different moments, never all at once.
- ``forwarded_allow_ips`` follows TRUSTED_PROXIES. 0: no proxy, and gunicorn trusts no X-Forwarded-* header from
  anyone (its default would trust them from 127.0.0.1, which a local user could send). More: the archive's
  ProxyFix reads exactly that many hops of X-Forwarded-For/-Proto/-Host (archive/__init__.py), and gunicorn may
  take the scheme from X-Forwarded-Proto too, from the addresses in FORWARDED_ALLOW_IPS (default: any, since
  with proxies configured they must be the only way in). No other header may set the scheme or a WSGI variable.
- The worker heartbeat file lives in /dev/shm where there is one: on a disk, a slow or busy disk can block it
  and get healthy workers killed.
- Prometheus multiprocess mode: each worker counts into its own files in INSTANCE_DIR/prometheus, emptied when
  the master starts (a fresh run starts from zero, as counters should); /metrics adds up all files
  (archive/metrics.py). PROMETHEUS_MULTIPROC_DIR is set here, before any worker imports prometheus_client.
- The control socket (``gunicornc``) is this instance's, in INSTANCE_DIR, not one per user in $HOME that two
  archives on one machine would fight over.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # gunicorn started from another folder
    sys.path.insert(0, str(ROOT))

from archive.settings import load_settings  # noqa: E402

_settings = load_settings()
_instance = Path(_settings["INSTANCE_DIR"])


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- serving ------------------------------------------------------------------------------------------------------
bind = [_address(str(_settings["HOST"]), int(_settings["PORT"]))]
workers = max(int(_settings["WEB_WORKERS"]), 1)
threads = max(int(_settings["WEB_THREADS"]), 1)
worker_class = "gthread"
pythonpath = str(ROOT)
proc_name = "brucken"

# --- time -------------------------------------------------------------------------------------------------------
timeout = 60  # a worker whose main loop is silent this long is stuck: replaced (uploads do not count, see above)
graceful_timeout = 120
keepalive = 15  # behind a load balancer that reuses connections; keep its idle timeout below this

# --- recycling ----------------------------------------------------------------------------------------------------
max_requests = 2000
max_requests_jitter = 200

# --- logs: the access log to stdout, with the duration and, behind proxies, the visitor's address -----------------
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms "%({x-forwarded-for}i)s"'

# --- proxies --------------------------------------------------------------------------------------------------
_proxies = int(_settings.get("TRUSTED_PROXIES") or 0)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*") if _proxies > 0 else ""
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
forwarder_headers = ""

# --- machinery ----------------------------------------------------------------------------------------------------
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
_control = _instance / "gunicorn.ctl"
control_socket = str(_control)
control_socket_disable = len(str(_control)) > 100  # a Unix socket's path has room for about 107 bytes

# --- Prometheus, several worker processes -----------------------------------------------------------------------
METRICS_DIR = _instance / "prometheus"
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)


def on_starting(server: Any) -> None:
    """Once, in the master, before the first worker: an empty folder for this run's counts."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for leftover in METRICS_DIR.glob("*.db"):
        leftover.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its live gauges go (its counters stay, so totals do not drop)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(METRICS_DIR))
