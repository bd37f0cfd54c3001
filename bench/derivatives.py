"""Benchmark: archive.media.make_derivatives against pyvips making the same four renditions.

    python bench/derivatives.py [--repeat N] [--rounds R] [--corpus PATH]

Picks the 12-24 MP camera JPEGs of the shared corpus (by header dimensions, not by file name), and for
each photo runs every engine in R rounds of fresh child processes: one warm-up run, then N timed runs.
Each child reports the median wall and CPU time per photo and its peak resident memory (VmHWM from
/proc, which counts C allocations that tracemalloc never sees), plus its resident memory after imports,
before any image work, so that the cost of loading the libraries can be told apart from the work.
Time ratios are per-photo medians of wall time; CPU time is shown too because it is far less disturbed
when other processes share the machine.

Engines:
  ours      archive.media.make_derivatives (Pillow, one thread)
  pyvips    thumbnail to 1600 with shrink-on-load, auto-rotation and (for a non-sRGB embedded profile,
            the same rule as ours) sRGB export, then 400 from the 1600 image, JPEG Q85 and WebP Q80 at the
            same effort as ours, no metadata kept; libvips's default thread pool (one thread per core)
  pyvips-1  the same with VIPS_CONCURRENCY=1, for a one-core comparison

Targets: time(ours) <= 1.0 x pyvips, peak memory(ours) <= 1.2 x pyvips.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
ENGINES = ("ours", "pyvips", "pyvips-1")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


# --------------------------------------------------------------------------------------------------------
# Child: one engine, one photo
# --------------------------------------------------------------------------------------------------------


def _ours(path: Path) -> list[tuple[str, str, int, int, bytes]]:
    from archive.media import make_derivatives

    return [
        (r.size, r.fmt, r.width, r.height, r.data) for r in make_derivatives(path, max_pixels=200_000_000)
    ]


def _pyvips_engine() -> Callable[[Path], list[tuple[str, str, int, int, bytes]]]:
    import pyvips

    from archive.media import SIZES, WEBP_METHOD

    # The operation cache would hand later runs the earlier results: every run must do the work.
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    largest = max(s.max_edge for s in SIZES)
    keep = {"keep": "none"} if pyvips.at_least_libvips(8, 15) else {"strip": True}

    @functools.cache
    def needs_conversion(icc: bytes) -> bool:
        # The rule make_derivatives follows: convert unless the embedded profile is sRGB already. Asking
        # thumbnail for an sRGB export unconditionally costs libvips 150-300 ms per photo even for
        # untagged files, which would flatter ours.
        from PIL import ImageCms

        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return "srgb" not in ImageCms.getProfileDescription(profile).lower()

    def run(path: Path) -> list[tuple[str, str, int, int, bytes]]:
        # thumbnail: shrink-on-load, auto-rotation from EXIF, and (for a non-sRGB embedded profile) the
        # conversion to sRGB. new_from_file reads only the header.
        header = pyvips.Image.new_from_file(str(path))
        convert = header.get_typeof("icc-profile-data") and needs_conversion(header.get("icc-profile-data"))
        options = {"export_profile": "srgb"} if convert else {}
        preview = pyvips.Image.thumbnail(
            str(path), largest, height=largest, size="down", **options
        ).copy_memory()
        images = {}
        for size in SIZES:
            if size.max_edge >= largest:
                images[size.name] = preview
            else:
                images[size.name] = preview.thumbnail_image(
                    size.max_edge, height=size.max_edge, size="down"
                ).copy_memory()
        out = []
        for size in SIZES:
            im = images[size.name]
            out.append((size.name, "jpeg", im.width, im.height, im.jpegsave_buffer(Q=85, **keep)))
            webp = im.webpsave_buffer(Q=80, effort=WEBP_METHOD, **keep)
            out.append((size.name, "webp", im.width, im.height, webp))
        return out

    return run


def child(engine: str, path: Path, repeat: int) -> None:
    sys.path.insert(0, str(ROOT))
    if engine == "ours":
        import archive.media  # noqa: F401  (imports count as baseline, as for pyvips)

        run = _ours
    else:
        run = _pyvips_engine()
    from archive.media import metadata_markers

    baseline = _status_kb("VmRSS")
    renditions = run(path)  # warm-up: first-use costs (plugin loading, profile caches) are not measured
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        renditions = run(path)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    result = {
        "wall_ms": statistics.median(walls) * 1000,
        "cpu_ms": statistics.median(cpus) * 1000,
        "peak_kb": _status_kb("VmHWM"),
        "baseline_kb": baseline,
        "renditions": [
            {"size": s, "fmt": f, "width": w, "height": h, "bytes": len(d), "markers": metadata_markers(d)}
            for s, f, w, h, d in renditions
        ],
    }
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------------------


def pick_photos(corpus: Path, low_mp: float, high_mp: float) -> list[tuple[Path, int, int]]:
    sys.path.insert(0, str(ROOT))
    from archive.errors import Refusal
    from archive.media import read_header, sniff

    picked = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        with open(path, "rb") as fh:
            if sniff(fh.read(64)).format != "jpeg":
                continue
        try:
            header = read_header(path, "jpeg", 1_000_000_000)
        except Refusal:
            continue
        if low_mp <= header.width * header.height / 1e6 <= high_mp:
            picked.append((path, header.width, header.height))
    return picked


def run_child(engine: str, path: Path, repeat: int) -> dict:
    env = dict(os.environ)
    if engine == "pyvips-1":
        env["VIPS_CONCURRENCY"] = "1"
    command = [sys.executable, __file__, "--child", engine, str(path), "--repeat", str(repeat)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed on {path}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _combine(rounds: list[dict]) -> dict:
    return {
        "wall_ms": statistics.median(r["wall_ms"] for r in rounds),
        "cpu_ms": statistics.median(r["cpu_ms"] for r in rounds),
        "peak_kb": max(r["peak_kb"] for r in rounds),
        "baseline_kb": statistics.median(r["baseline_kb"] for r in rounds),
        "renditions": rounds[-1]["renditions"],
    }


def _row(engine: str, result: dict) -> str:
    out_kb = sum(r["bytes"] for r in result["renditions"]) / 1024
    return (
        f"{engine:<9} {result['wall_ms']:>8.1f} {result['cpu_ms']:>8.1f} {result['peak_kb'] / 1024:>8.1f} "
        f"{result['baseline_kb'] / 1024:>8.1f} {out_kb:>7.0f}"
    )


def _shapes(result: dict) -> list[tuple[str, str, int, int]]:
    return [(r["size"], r["fmt"], r["width"], r["height"]) for r in result["renditions"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per photo and engine (median)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh child processes per photo and engine")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--min-mp", type=float, default=12.0)
    parser.add_argument("--max-mp", type=float, default=24.0)
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.repeat)
        return

    if not args.corpus.is_dir():
        raise SystemExit(f"corpus not found at {args.corpus}")
    photos = pick_photos(args.corpus, args.min_mp, args.max_mp)
    if not photos:
        raise SystemExit(f"no {args.min_mp:g}-{args.max_mp:g} MP JPEGs in {args.corpus}")
    import pyvips

    from archive.media import WEBP_METHOD

    print(
        f"{len(photos)} photos of {args.min_mp:g}-{args.max_mp:g} MP, {args.rounds} rounds of {args.repeat} "
        "timed runs each; "
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, WebP effort {WEBP_METHOD}, "
        f"{os.cpu_count()} CPUs"
    )
    columns = f"{'engine':<9} {'wall ms':>8} {'cpu ms':>8} {'peak MB':>8} {'base MB':>8} {'out KB':>7}"
    print(f"{'photo':<34} {'MP':>5} {columns}")
    print("-" * (41 + len(columns)))
    results: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
    for path, width, height in photos:
        # Rounds interleave the engines in time, so that load from other processes on a shared machine
        # falls on all of them alike; per engine the medians of the rounds and the highest peak count.
        rounds: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
        for _ in range(args.rounds):
            for engine in ENGINES:
                rounds[engine].append(run_child(engine, path, args.repeat))
        for engine in ENGINES:
            result = _combine(rounds[engine])
            results[engine].append(result)
            dirty = [r for r in result["renditions"] if r["markers"]]
            warning = f"  METADATA LEFT: {dirty}" if dirty else ""
            print(f"{path.name[:34]:<34} {width * height / 1e6:>5.1f} {_row(engine, result)}{warning}")
        shapes = {engine: _shapes(results[engine][-1]) for engine in ENGINES}
        if shapes["ours"] != shapes["pyvips"]:
            print(f"  note: rendition sizes differ: ours {shapes['ours']} pyvips {shapes['pyvips']}")

    def median(engine: str, key: str) -> float:
        return statistics.median(r[key] for r in results[engine])

    def median_bytes(engine: str) -> float:
        return statistics.median(sum(x["bytes"] for x in r["renditions"]) for r in results[engine])

    def per_photo_ratio(engine: str, key: str, minus: str | None = None) -> float:
        ratios = []
        for ours, theirs in zip(results["ours"], results[engine], strict=True):
            a = ours[key] - (ours[minus] if minus else 0)
            b = theirs[key] - (theirs[minus] if minus else 0)
            ratios.append(a / b)
        return statistics.median(ratios)

    print()
    print(f"{'median over photos':<40} {columns}")
    for engine in ENGINES:
        keys = ("wall_ms", "cpu_ms", "peak_kb", "baseline_kb")
        medians = {key: median(engine, key) for key in keys}
        medians["renditions"] = [{"bytes": median_bytes(engine)}]
        print(f"{'':<40} {_row(engine, medians)}")
    print()
    for engine in ("pyvips", "pyvips-1"):
        time_ratio = per_photo_ratio(engine, "wall_ms")
        cpu_ratio = per_photo_ratio(engine, "cpu_ms")
        peak_ratio = per_photo_ratio(engine, "peak_kb")
        work_ratio = per_photo_ratio(engine, "peak_kb", minus="baseline_kb")
        print(
            f"ours / {engine:<8}  time {time_ratio:.2f}x (target <= 1.0)   cpu {cpu_ratio:.2f}x   "
            f"peak memory {peak_ratio:.2f}x (target <= 1.2)   memory above baseline {work_ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
