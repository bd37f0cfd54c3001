"""The scale benchmark (bench/scale.py) in small, so CI keeps it working: 300 photos (anchor 100) on a real
PostgreSQL that the bench starts itself, a few requests per page kind, the query plans and the candidate indexes.
It must finish with exit 0 and print the figures table with every page kind, the plans and the flags; its bulk
load must give the gallery and search real pages (a broken load would answer 404 or find nothing, and the bench
exits 1 on any answer but 200)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_the_scale_bench_runs_on_postgresql_and_prints_its_table() -> None:
    from bench.scale import PROBES

    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--photos", "300", "--anchor", "100", "--requests", "5",
         "--warmup", "2", "--try-indexes"],
        cwd=ROOT, capture_output=True, text=True, timeout=540)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    figures = output.split("=== figures", 1)
    assert len(figures) == 2, output[-4000:]
    table = figures[1]
    for probe in PROBES:
        assert re.search(rf"^{re.escape(probe.label)}\s+{probe.who}\s+[\d.]+", table, re.MULTILINE), \
            f"no line for {probe.label!r}:\n{table}"
    assert re.search(r"300 photos: [\d,]+ rows loaded .* index rebuilt \(300 photos\)", table), table
    # the search found something: the API's totals are printed for each word, and common words match
    common = re.search(r"^api search, common words .*matches ([\d,]+)", table, re.MULTILINE)
    assert common and int(common.group(1).replace(",", "")) > 0, table
    assert "--- query plans at 300 photos (postgresql)" in output
    assert re.search(r"-> (Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)", output)
    assert "execution" in output and "buffers hit" in output  # EXPLAIN (ANALYZE, BUFFERS) ran
    assert "bench_photos_open_created: made in" in output
