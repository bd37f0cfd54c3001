"""How much memory an export needs as the exhibition grows: the print shop's ZIP and the PDF catalogue of 100 and
of 500 photos (the target: the peak stays flat, far below the size of the file written).

Builds a temporary archive (migrated database, local object store) per size, with published photos whose
originals are real ~3 MB JPEGs (one noise image, made distinct by a few bytes after its end marker) and whose
previews are ~0.8 MB noise JPEGs (worse than real previews, which compress better), all in one exhibition. Then
runs each export in this process and reads:

- the peak of Python's own allocations during the export (tracemalloc), and
- the growth of the process's peak resident memory (VmHWM from /proc/self/status, reset before each export
  through /proc/self/clear_refs), which also counts reportlab's and zlib's C allocations (and tracemalloc's own
  bookkeeping, so it is an upper bound),

against the bytes the export wrote. Needs about 4 GB of free disk per 500 photos; takes a minute or two.
Run: .venv/bin/python bench/export_memory.py [--sizes 100 500]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import logging
import re
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archive import exports  # noqa: E402
from archive.models import (  # noqa: E402
    Association,
    Derivative,
    Exhibition,
    ExhibitionItem,
    Export,
    ExportStatus,
    Licence,
    PeopleShown,
    Photo,
    PhotoStatus,
    Place,
    Role,
    User,
    db,
)
from archive.services import get_store  # noqa: E402
from archive.storage import content_key  # noqa: E402
from tests.conftest import make_ready_app, settings_for  # noqa: E402

MB = 1024 * 1024


def noise_jpeg(size: tuple[int, int], quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 30).convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    return int(match.group(1)) if match else 0


def build(folder: Path, count: int, original: bytes, preview: bytes, thumb: bytes) -> tuple[object, int, int]:
    """An archive of ``count`` published photos in one exhibition; returns (app, exhibition id, curator id)."""
    app = make_ready_app(settings_for(folder))
    with app.app_context():
        store = get_store()
        association = db.session.query(Association).first()
        curator = User(username="cora", role=Role.CURATOR, password_hash="-")
        place = Place(name="Konrad-Adenauer-Brücke", city="Ludwigshafen am Rhein")
        db.session.add_all([curator, place])
        db.session.flush()
        exhibition = Exhibition(slug=f"bench-{count}", title=f"Brücken – {count} Fotos", venue="Pfalzbau",
                                intro="Eine **Ausstellung** für den Benchmark.", created_by_id=curator.id)
        db.session.add(exhibition)
        db.session.flush()
        for n in range(count):
            tail = n.to_bytes(8, "big")  # after the JPEG's end marker: a distinct file that decodes the same
            data = original + tail
            sha = hashlib.sha256(data).hexdigest()
            store.put_bytes(content_key(sha), data, "image/jpeg")
            photo = Photo(association_id=association.id, status=PhotoStatus.PUBLISHED, sha256=sha,
                          original_key=content_key(sha), original_filename=f"IMG_{n:04d}.jpg", format="jpeg",
                          mime_type="image/jpeg", size_bytes=len(data), width=3000, height=2000,
                          title=f"Brücke Nummer {n + 1}", caption=f"Die {n + 1}. Brücke über den Rhein im Abendlicht.",
                          alt_text="Eine Brücke", credit="Anna Beispiel", licence=Licence.CC_BY,
                          people=PeopleShown.NONE, minors=False, place_id=place.id, taken_at=datetime(2024, 6, 1))
            db.session.add(photo)
            db.session.flush()
            for size, body, (w, h) in (("preview", preview, (1600, 1067)), ("thumb", thumb, (400, 267))):
                rendition = body + tail
                key = f"derivatives/{sha[:2]}/{sha}/{size}.jpg"
                store.put_bytes(key, rendition, "image/jpeg")
                db.session.add(Derivative(photo_id=photo.id, size=size, fmt="jpeg", key=key, width=w, height=h,
                                          size_bytes=len(rendition), etag=sha[:16]))
            db.session.add(ExhibitionItem(exhibition_id=exhibition.id, photo_id=photo.id, position=n + 1))
        db.session.commit()
        ids = exhibition.id, curator.id
        db.session.remove()
    return app, *ids


def run(app: object, exhibition_id: int, curator_id: int, kind: str) -> dict[str, float]:
    with app.app_context():  # type: ignore[attr-defined]
        exhibition = db.session.get(Exhibition, exhibition_id)
        export = exports.request_export(db.session, exhibition, kind, "de", db.session.get(User, curator_id))
        export_id = export.id
        db.session.expire_all()
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        rss_before = status_kb("VmRSS")
        tracemalloc.start()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        exports.run_export(db.session, get_store(), app.config, export_id,  # type: ignore[attr-defined]
                           base_url="https://bruecken.example.org")
        seconds = time.perf_counter() - started
        python_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss_peak = status_kb("VmHWM")
        export = db.session.get(Export, export_id)
        if export.status != ExportStatus.DONE:
            raise SystemExit(f"export failed: {export.error}")
        written = export.size_bytes or 0
        get_store().delete(export.key)  # keep the disk free for the next run
        db.session.remove()
    return {"written": written, "seconds": seconds, "python_peak": python_peak,
            "rss_growth": (rss_peak - rss_before) * 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--kinds", nargs="+", default=["zip", "catalogue"], choices=sorted(exports.KINDS))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    original = noise_jpeg((3000, 2000), 85)
    preview = noise_jpeg((1600, 1067), 80)
    thumb = noise_jpeg((400, 267), 80)
    print(f"original {len(original) / MB:.1f} MB, preview {len(preview) / MB:.2f} MB, thumbnail "
          f"{len(thumb) / 1024:.0f} kB (noise: compresses worse than photos)")
    print(f"{'photos':>6}  {'export':<13} {'written':>10} {'time':>7} {'Python peak':>12} {'RSS peak growth':>16} "
          f"{'peak/written':>13}")
    for count in args.sizes:
        with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
            app, exhibition_id, curator_id = build(Path(tmp), count, original, preview, thumb)
            # Warm up (imports, fonts, first queries) on a small exhibition, so they do not count as export cost.
            with app.app_context():
                small = Exhibition(slug="warm-up", title="Warm-up")
                db.session.add(small)
                db.session.flush()
                for position, photo_id in enumerate(db.session.scalars(db.select(Photo.id).limit(3)), start=1):
                    db.session.add(ExhibitionItem(exhibition_id=small.id, photo_id=photo_id, position=position))
                db.session.commit()
                small_id = small.id
                db.session.remove()
            for kind in args.kinds:
                run(app, small_id, curator_id, kind)
            for kind in args.kinds:
                result = run(app, exhibition_id, curator_id, kind)
                peak = max(result["python_peak"], result["rss_growth"])
                print(f"{count:>6}  {kind:<13} {result['written'] / MB:>7.1f} MB {result['seconds']:>5.1f} s "
                      f"{result['python_peak'] / MB:>9.1f} MB {result['rss_growth'] / MB:>13.1f} MB "
                      f"{100 * peak / max(1, result['written']):>12.2f}%")
            with app.app_context():  # type: ignore[attr-defined]
                db.engine.dispose()


if __name__ == "__main__":
    main()
