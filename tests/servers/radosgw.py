"""A real S3 server for tests: a one-node Ceph cluster (mon + memstore OSD) behind a RADOS Gateway.

Everything lives in one temporary folder (ceph.conf, keyring, mon and OSD data, run dir, pid files, admin
sockets, logs); every daemon binds to 127.0.0.1 only. The daemons run in the foreground as our children and
are stopped by their pid (SIGTERM, then SIGKILL). Start-up takes about 15 seconds.

Needs the Debian packages ``radosgw ceph-mon ceph-osd`` (they bring ``ceph``, ``ceph-authtool``,
``monmaptool`` and ``radosgw-admin``). If anything is missing or start-up fails, ``start()`` raises
RuntimeError with the reason and the tail of the relevant log: tests fail, they never skip.

Reuse a server that is already running by setting BRUCKEN_TEST_S3_ENDPOINT, BRUCKEN_TEST_S3_ACCESS_KEY and
BRUCKEN_TEST_S3_SECRET_KEY (see ``server_from_environment``).

For developers: ``python -m tests.servers.radosgw`` starts a server, prints the endpoint and the keys, and
runs until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

ENV_ENDPOINT = "BRUCKEN_TEST_S3_ENDPOINT"
ENV_ACCESS_KEY = "BRUCKEN_TEST_S3_ACCESS_KEY"
ENV_SECRET_KEY = "BRUCKEN_TEST_S3_SECRET_KEY"

DEBIAN_PACKAGES = "radosgw ceph-mon ceph-osd"
INSTALL_HINT = f"Install them with: apt-get install -y --no-install-recommends {DEBIAN_PACKAGES}"
REQUIRED_BINARIES = (
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
    "ceph",
    "ceph-authtool",
    "monmaptool",
)

START_TIMEOUT = 90.0  # seconds for the whole start-up
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
COMMAND_TIMEOUT = 30.0  # seconds for one ceph / radosgw-admin command


class S3Server(Protocol):
    """What tests need to know about an S3 server."""

    endpoint: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class ExternalS3Server:
    """An S3 server that someone else started (given by environment variables); never stopped by us."""

    endpoint: str
    access_key: str
    secret_key: str


def server_from_environment(environ: Mapping[str, str] | None = None) -> ExternalS3Server | None:
    """The server named by BRUCKEN_TEST_S3_* variables, or None when BRUCKEN_TEST_S3_ENDPOINT is not set."""
    env = os.environ if environ is None else environ
    endpoint = env.get(ENV_ENDPOINT, "").strip()
    if not endpoint:
        return None
    access_key = env.get(ENV_ACCESS_KEY, "").strip()
    secret_key = env.get(ENV_SECRET_KEY, "").strip()
    if not access_key or not secret_key:
        raise RuntimeError(
            f"{ENV_ENDPOINT} is set, so {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} must be set too "
            "(or unset all three to let the tests start their own radosgw)."
        )
    return ExternalS3Server(endpoint=endpoint, access_key=access_key, secret_key=secret_key)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, so no daemon outlives a crash."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


DIR_PREFIX = "brucken-radosgw-"


def _in_use(folder: Path) -> bool:
    """Whether a live process was started with this folder's ceph.conf (our daemons always are)."""
    marker = str(folder / "ceph.conf").encode()
    for pid_file in (folder / "run").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except (OSError, ValueError):
            continue
    return False


def remove_stale_folders(max_age: float = 300.0) -> None:
    """Remove folders left by runs that were killed (their daemons die with them, the folder stays)."""
    for folder in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime > max_age and not _in_use(folder):
                shutil.rmtree(folder, ignore_errors=True)


class RadosGateway:
    """A throw-away one-node Ceph cluster with a RADOS Gateway on a free port of 127.0.0.1."""

    def __init__(self, *, start_timeout: float = START_TIMEOUT, keep_dir: bool = False) -> None:
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.endpoint = ""
        self.access_key = ""
        self.secret_key = ""
        self.pids: dict[str, int] = {}
        self.dir: Path | None = None
        self.startup_seconds: float | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._deadline = 0.0

    # -- context manager -------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- public ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Create the cluster, start mon, OSD and radosgw, and create an S3 user. Raises RuntimeError."""
        if self._procs:
            raise RuntimeError("this RadosGateway is already running")
        missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
        if missing:
            raise RuntimeError(
                "Cannot start the Ceph RADOS Gateway for the S3 tests: "
                f"{', '.join(missing)} not found on PATH. {INSTALL_HINT}"
            )
        remove_stale_folders()
        began = time.monotonic()
        self._deadline = began + self.start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        try:
            self._start_cluster()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the daemons by pid (gateway first), then remove the temporary folder. Safe to call twice."""
        for name in ("radosgw", "ceph-osd", "ceph-mon"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                self._terminate(proc)
        self._procs.clear()
        self.pids = {}
        if self.dir is not None and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- start-up steps --------------------------------------------------------------------------------
    def _start_cluster(self) -> None:
        assert self.dir is not None
        d = self.dir
        for sub in ("mon", "osd/ceph-0", "run", "log", "crash", "rgw", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        mon_port = free_port()
        rgw_port = free_port()
        while rgw_port == mon_port:
            rgw_port = free_port()
        fsid = str(uuid.uuid4())
        self._write_conf(fsid, mon_port, rgw_port)
        self._write_keyring()

        # Monitor: monmap, mkfs, start, wait for quorum.
        self._run(
            [
                "monmaptool",
                "--create",
                "--fsid",
                fsid,
                "--addv",
                "a",
                f"[v2:127.0.0.1:{mon_port}]",
                str(d / "monmap"),
            ],
            log="mon.a",
        )
        self._run(
            [
                "ceph-mon",
                *self._conf_args(),
                "--mkfs",
                "-i",
                "a",
                "--monmap",
                str(d / "monmap"),
                "--keyring",
                str(d / "keyring"),
            ],
            log="mon.a",
        )
        self._spawn("ceph-mon", ["ceph-mon", *self._conf_args(), "-f", "-i", "a"], log="mon.a")
        self._wait_for("the monitor to answer", lambda: self._ceph_ok(["mon", "stat"]), "ceph-mon", "mon.a")

        # OSD: register, mkfs (memstore), place in the CRUSH map, start, wait until it is up.
        osd_uuid = str(uuid.uuid4())
        osd_id = self._ceph(["osd", "create", osd_uuid]).strip()
        if osd_id != "0":
            raise self._failure(f"`ceph osd create` returned {osd_id!r}, expected '0'", "mon.a")
        self._run(["ceph-osd", *self._conf_args(), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid], log="osd.0")
        self._ceph(["osd", "crush", "add", "osd.0", "1.0", "host=localhost", "root=default"])
        self._spawn("ceph-osd", ["ceph-osd", *self._conf_args(), "-f", "-i", "0"], log="osd.0")
        self._wait_for("the OSD to be up", self._osd_up, "ceph-osd", "osd.0")

        # Gateway: start, wait for its port, create the S3 user.
        self._spawn(
            "radosgw", ["radosgw", *self._conf_args(), "-f", "-n", "client.rgw.gw"], log="client.rgw.gw"
        )
        self._wait_for("radosgw to listen", lambda: self._port_open(rgw_port), "radosgw", "client.rgw.gw")
        self.access_key = "BRUCKEN" + secrets.token_hex(6).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self._run(
            [
                "radosgw-admin",
                *self._conf_args(),
                "user",
                "create",
                "--uid=brucken-tests",
                "--display-name=Brücken tests",
                f"--access-key={self.access_key}",
                f"--secret={self.secret_key}",
            ],
            log="client.admin",
        )
        self.endpoint = f"http://127.0.0.1:{rgw_port}"

    def _write_conf(self, fsid: str, mon_port: int, rgw_port: int) -> None:
        assert self.dir is not None
        d = self.dir
        conf = f"""\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_port}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {d}/keyring
run dir = {d}/run
crash dir = {d}/crash
tmp dir = {d}/tmp
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
log to stderr = false
err to stderr = false
log to syslog = false
log to journald = false
mon cluster log file = {d}/log/cluster.log
mon cluster log to syslog = false
mon data = {d}/mon/$cluster-$id
osd data = {d}/osd/$cluster-$id
rgw data = {d}/rgw
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mon osd auto mark in = true
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw dns name = localhost
rgw enable usage log = false
rgw thread pool size = 64
"""
        (d / "ceph.conf").write_text(conf, encoding="utf-8")

    def _write_keyring(self) -> None:
        assert self.dir is not None
        entities: dict[str, dict[str, str]] = {
            "mon.": {"mon": "allow *"},
            "client.admin": {"mon": "allow *", "osd": "allow *", "mgr": "allow *", "mds": "allow *"},
            "osd.0": {"mon": "allow profile osd", "mgr": "allow profile osd", "osd": "allow *"},
            "client.rgw.gw": {"mon": "allow rw", "osd": "allow rwx", "mgr": "allow rw"},
        }
        parts = []
        for name, caps in entities.items():
            key = self._run(["ceph-authtool", "--gen-print-key"], log="client.admin").strip()
            lines = [f"[{name}]", f"\tkey = {key}"]
            lines += [f'\tcaps {service} = "{cap}"' for service, cap in caps.items()]
            parts.append("\n".join(lines))
        path = self.dir / "keyring"
        path.write_text("\n".join(parts) + "\n", encoding="utf-8")
        path.chmod(0o600)

    # -- helpers ---------------------------------------------------------------------------------------
    def _conf_args(self) -> list[str]:
        assert self.dir is not None
        return ["-c", str(self.dir / "ceph.conf")]

    def _log(self, name: str) -> Path:
        assert self.dir is not None
        return self.dir / "log" / f"{name}.log"

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    def _failure(self, what: str, log: str, output: str = "") -> RuntimeError:
        parts = [f"Ceph RADOS Gateway for the S3 tests did not start: {what}."]
        if output.strip():
            parts.append(f"Command output:\n{output.strip()[-3000:]}")
        parts.append(f"Last lines of {self._log(log)}:\n{_tail(self._log(log))}")
        parts.append(f"Is Ceph installed completely? {INSTALL_HINT}")
        return RuntimeError("\n".join(parts))

    def _run(self, args: Sequence[str], *, log: str) -> str:
        timeout = max(1.0, min(COMMAND_TIMEOUT, self._remaining()))
        try:
            done = subprocess.run(
                list(args),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = f"{exc.stdout or ''}{exc.stderr or ''}"
            raise self._failure(
                f"`{' '.join(args[:3])} ...` took longer than {timeout:.0f} s", log, out
            ) from None
        except OSError as exc:
            raise self._failure(f"cannot run {args[0]}: {exc}", log) from None
        if done.returncode != 0:
            raise self._failure(
                f"`{' '.join(args)}` exited with status {done.returncode}", log, done.stdout + done.stderr
            )
        return done.stdout

    def _ceph(self, args: Sequence[str]) -> str:
        return self._run(["ceph", *self._conf_args(), "--connect-timeout", "10", *args], log="mon.a")

    def _ceph_ok(self, args: Sequence[str]) -> bool:
        try:
            done = subprocess.run(
                ["ceph", *self._conf_args(), "--connect-timeout", "3", *args],
                capture_output=True,
                timeout=10,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def _osd_up(self) -> bool:
        try:
            out = subprocess.run(
                ["ceph", *self._conf_args(), "--connect-timeout", "3", "osd", "stat", "--format", "json"],
                capture_output=True,
                text=True,
                timeout=10,
                stdin=subprocess.DEVNULL,
                check=False,
            ).stdout
            return int(json.loads(out).get("num_up_osds", 0)) >= 1
        except (subprocess.TimeoutExpired, ValueError, AttributeError):
            return False

    @staticmethod
    def _port_open(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def _spawn(self, name: str, args: Sequence[str], *, log: str) -> None:
        assert self.dir is not None
        with open(self.dir / "log" / f"{name}.stdout", "ab") as out:
            proc = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._procs[name] = proc
        self.pids[name] = proc.pid

    def _wait_for(self, what: str, ready: Callable[[], bool], name: str, log: str) -> None:
        delay = 0.1
        while True:
            proc = self._procs[name]
            if proc.poll() is not None:
                raise self._failure(
                    f"{name} exited with status {proc.returncode} while waiting for {what}", log
                )
            if ready():
                return
            if self._remaining() <= 0:
                raise self._failure(f"timed out after {self.start_timeout:.0f} s waiting for {what}", log)
            time.sleep(min(delay, max(0.0, self._remaining())))
            delay = min(delay * 1.5, 1.0)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)


def main() -> int:
    """Start a server for manual use and wait until Ctrl-C."""
    external = server_from_environment()
    if external is not None:
        print(f"{ENV_ENDPOINT} is set; using {external.endpoint}, not starting a server.")
        return 0
    print("Starting a one-node Ceph cluster with radosgw (about 15 s) ...", flush=True)
    with RadosGateway() as gw:
        print(f"Started in {gw.startup_seconds:.1f} s; data in {gw.dir}; pids {gw.pids}")
        print(f"export {ENV_ENDPOINT}={gw.endpoint}")
        print(f"export {ENV_ACCESS_KEY}={gw.access_key}")
        print(f"export {ENV_SECRET_KEY}={gw.secret_key}")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while all(proc.poll() is None for proc in gw._procs.values()):
                time.sleep(1)
            print("A daemon exited; stopping.", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nStopping ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
