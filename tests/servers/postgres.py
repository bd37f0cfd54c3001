"""A real PostgreSQL server for tests: ``initdb`` into a temporary folder, ``pg_ctl start`` on a free port of
127.0.0.1, a fresh database per test, ``pg_ctl stop`` (then SIGKILL by pid) at the end.

Needs the Debian package ``postgresql`` (its binaries live in /usr/lib/postgresql/<version>/bin). PostgreSQL
refuses to run as root: as root, the server runs as the ``postgres`` user (made by the package) through
``runuser``, in a folder that user owns. If anything is missing or start-up fails, ``start()`` raises
RuntimeError with the reason and the log: tests fail, they never skip.

Reuse a running server by setting BRUCKEN_TEST_PG_URL (a SQLAlchemy URL of a role allowed to create databases).

For developers: ``python -m tests.servers.postgres`` starts a server, prints its URL and runs until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.servers.radosgw import free_port

ENV_URL = "BRUCKEN_TEST_PG_URL"
INSTALL_HINT = "Install it with: apt-get install -y --no-install-recommends postgresql"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DIR_PREFIX = "brucken-postgres-"


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


class PostgresServer:
    """A throw-away PostgreSQL cluster; ``url(database)`` gives SQLAlchemy URLs for psycopg."""

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.port = 0
        self.pid: int | None = None
        self.startup_seconds: float | None = None
        self._bin: Path | None = None
        self._as_user: list[str] = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._bin = _bin_dir()
        if self._bin is None:
            raise RuntimeError(f"Cannot start PostgreSQL for the tests: no /usr/lib/postgresql/*/bin. {INSTALL_HINT}")
        began = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(f"PostgreSQL cannot run as root and there is no 'postgres' user. {INSTALL_HINT}") \
                    from None
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        self._run([str(self._bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], "initdb")
        self.port = free_port()
        # fsync off: a test cluster that a crash loses is simply made again, and it is much faster.
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        try:
            self._run([str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"),
                       "-o", options, "-w", "-t", str(int(START_TIMEOUT)), "start"], "pg_ctl start")
            self.pid = int((data / "postmaster.pid").read_text().split()[0])
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"test_{secrets.token_hex(6)}"
        self._run([str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
                  "createdb")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(RuntimeError):
            self._run([str(self._bin / "dropdb"), "--force", "-h", "127.0.0.1", "-p", str(self.port),
                       "-U", "postgres", name], "dropdb")

    def stop(self) -> None:
        """Stop by pg_ctl (fast mode), then by pid; remove the folder. Safe to call twice."""
        if self.dir is None:
            return
        data = self.dir / "data"
        if self.pid is not None:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run([str(self._bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], "pg_ctl stop")
            if _alive(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _run(self, args: list[str], what: str) -> str:
        try:
            done = subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=START_TIMEOUT,
                                  cwd=self.dir, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"PostgreSQL for the tests: {what} failed: {error}") from error
        if done.returncode != 0:
            log = ""
            if self.dir is not None and (self.dir / "server.log").exists():
                log = "\n".join((self.dir / "server.log").read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"PostgreSQL for the tests: {what} exited with {done.returncode}:\n"
                               f"{done.stdout}{done.stderr}{log}")
        return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    with PostgresServer() as server:
        print(f"PostgreSQL on {server.url()} (started in {server.startup_seconds:.1f} s); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
