"""``python -m bench.load``: see bench/load/__init__.py."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.load import __doc__ as DESCRIPTION
from bench.load.harness import Options, run
from bench.load.report import lines, verdicts


def _options() -> Options:
    parser = argparse.ArgumentParser(description=(DESCRIPTION or "").split("\n\n")[0])
    parser.add_argument("--uploaders", type=int, default=20)
    parser.add_argument("--searchers", type=int, default=50)
    parser.add_argument("--editors", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (4 threads each)")
    parser.add_argument("--storage", choices=("local", "s3"), default="local")
    parser.add_argument("--seeds", type=int, default=40, help="published photos made before the load")
    parser.add_argument("--drain-seconds", type=float, default=600.0,
                        help="longest wait for the job queue and the index after the load")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (for a look)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="an archive setting for this run (ARCHIVE_NAME), e.g. SQLITE_BUSY_TIMEOUT_MS=1")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.setting)
    return Options(uploaders=args.uploaders, searchers=args.searchers, editors=args.editors, seconds=args.seconds,
                   workers=args.workers, storage=args.storage, seeds=args.seeds, drain_seconds=args.drain_seconds,
                   keep=args.keep, seed=args.seed, settings=settings)


def main() -> int:
    options = _options()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    started = time.monotonic()
    if options.storage == "s3":
        from bench.load.s3 import s3_bucket

        with s3_bucket() as settings:
            options.settings = {**settings, **options.settings}
            result = run(options)
    else:
        result = run(options)
    print()
    for line in lines(result):
        print(line)
    print(f"\nwhole run {time.monotonic() - started:.0f} s; load average after "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0 if all(met for _text, met in verdicts(result)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
