"""The archive itself as a real server: `brucken init`, then `brucken run` (gunicorn + job worker) on a free
port of 127.0.0.1, in folders of its own; stopped by its pid."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.servers.database import database_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_archive(folder: Path, **settings: str) -> Iterator[tuple[str, str]]:
    """Yields the base URL and the admin's one-time password ("" when the database already had an admin)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
    port = free_port()
    env.update(ARCHIVE_INSTANCE_DIR=str(folder / "instance"), ARCHIVE_UPLOAD_DIR=str(folder / "uploads"),
               ARCHIVE_INDEX_DIR=str(folder / "index"), ARCHIVE_PORT=str(port))
    env.update({f"ARCHIVE_{k}": v for k, v in {**database_settings(folder / "instance"), **settings}.items()})
    init = subprocess.run([sys.executable, "-m", "archive", "init"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    if init.returncode != 0:
        raise RuntimeError(f"brucken init failed:\n{init.stdout}\n{init.stderr}")
    made = re.search(r"one-time password: (\S+)", init.stdout)
    password = made.group(1) if made else ""  # "": a second host on a database that already has its admin
    log_path = folder / "run.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "archive", "run"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{base}/login", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("brucken run did not come up:\n" + log_path.read_text())
                time.sleep(0.3)
            yield base, password
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                raise RuntimeError("brucken run did not stop on SIGTERM") from None
