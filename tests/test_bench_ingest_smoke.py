"""Smoke test of bench/ingest_throughput.py: one round, 3 photos, 1 worker, on the session's radosgw.

Not a timed test: it checks that the benchmark runs end to end against the real S3 server and Redis (exit
status 0, its table with a row, every derivative found on S3) and leaves no bucket behind, not its figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ingest_throughput import COLUMNS, COST_COLUMNS
from tests.servers.fixtures import admin_client
from tests.servers.radosgw import ENV_ACCESS_KEY, ENV_ENDPOINT, ENV_SECRET_KEY, S3Server

ROOT = Path(__file__).resolve().parent.parent

# workers, photos, seconds, photos/s, speed-up (1.00x against itself), wall×W/anchor, ingest/s, ingest MB/s
ROW = re.compile(r"^\s+1\s+3\s+\d+\.\d\s+\d+\.\d\d\s+1\.00x\s+\d+\.\d\d\s+\d+\.\d\s+\d+\.\d$", re.MULTILINE)


def _bench_buckets(server: S3Server) -> set[str]:
    client = admin_client(server)
    try:
        return {b["Name"] for b in client.list_buckets().get("Buckets", []) if b["Name"].startswith("bench-ingest-")}
    finally:
        client.close()


@pytest.mark.slow
def test_ingest_benchmark_runs_and_prints_its_table(s3_server: S3Server) -> None:
    before = _bench_buckets(s3_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
    env.update({ENV_ENDPOINT: s3_server.endpoint, ENV_ACCESS_KEY: s3_server.access_key,
                ENV_SECRET_KEY: s3_server.secret_key})
    done = subprocess.run([sys.executable, "-m", "bench.ingest_throughput", "--photos", "3", "--workers", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240,
                          check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"os.cpu_count() = {os.cpu_count()}" in done.stdout
    assert COLUMNS in done.stdout and COST_COLUMNS in done.stdout, output
    assert ROW.search(done.stdout), output
    assert "1 worker(s): 12 of 12 derivatives found on S3" in done.stdout, output
    assert _bench_buckets(s3_server) == before, "the benchmark left its bucket on the server"
