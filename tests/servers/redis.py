"""A real redis-server for tests: a child process on a free port of 127.0.0.1, nothing written to disk (no RDB
snapshots, no append-only file), stopped by its pid.

Needs the Debian package ``redis-server``. If the binary is missing or the server does not answer PING in time,
``start()`` raises RuntimeError with the reason and the server's log: tests fail, they never skip.

Reuse a running server by setting BRUCKEN_TEST_REDIS_URL (e.g. ``redis://127.0.0.1:6379/15``); tests empty the
database it names (FLUSHDB) before and after each test, so give it a database of its own.

For developers: ``python -m tests.servers.redis`` starts a server, prints its URL and runs until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.servers.radosgw import free_port

ENV_URL = "BRUCKEN_TEST_REDIS_URL"
INSTALL_HINT = "Install it with: apt-get install -y --no-install-recommends redis-server"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
DIR_PREFIX = "brucken-redis-"


class RedisServer:
    """A throw-away redis-server; ``url`` is the address of its database 0."""

    def __init__(self) -> None:
        self.port = 0
        self.pid: int | None = None
        self.dir: Path | None = None
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(f"Cannot start Redis for the tests: no redis-server on PATH. {INSTALL_HINT}")
        began = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        self.port = free_port()
        log = self.dir / "redis.log"
        # --dir: even with persistence off, Redis writes nothing outside its own folder.
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--daemonize", "no"]
        try:
            with log.open("wb") as out:
                self._process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, cwd=self.dir)
        except OSError as error:
            self.stop()
            raise RuntimeError(f"Cannot start Redis for the tests: {error}. {INSTALL_HINT}") from error
        self.pid = self._process.pid
        try:
            self._wait_for_ping(log)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def _wait_for_ping(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"redis-server for the tests exited with {self._process.returncode} on start:\n"
                                   f"{_tail(log)}")
            if ping(self.port):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server for the tests did not answer PING on 127.0.0.1:{self.port} within "
                                   f"{START_TIMEOUT:.0f} s:\n{_tail(log)}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM by pid, then SIGKILL; remove the folder. Safe to call twice."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=STOP_TIMEOUT)
        self._process = None
        self.pid = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class ExternalRedisServer:
    """A Redis server someone else runs (BRUCKEN_TEST_REDIS_URL): never started or stopped by us."""

    def __init__(self, url: str) -> None:
        self.url = url

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def server_from_environment() -> ExternalRedisServer | None:
    url = os.environ.get(ENV_URL, "").strip()
    return ExternalRedisServer(url) if url else None


def ping(port: int, host: str = "127.0.0.1") -> bool:
    """True when a Redis server answers PING on the port (plain RESP, no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main() -> int:
    with RedisServer() as server:
        print(f"Redis on {server.url} (started in {server.startup_seconds:.2f} s); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
