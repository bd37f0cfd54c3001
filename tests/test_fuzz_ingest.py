"""Property test of the whole upload pipeline on mutated real camera files (catalogue section 8 (A), cases 8, 11-13,
and the issue's "every outcome is 'archived' or 'refused with a reason', within a time bound").

hypothesis takes a handful of small files from ../shared/corpus (JPEGs from five cameras, WebP, HEIC, AVIF, and a PNG
made here from a corpus photo, since the corpus has none), mutates them the ways real damage and hostile edits do
(bit flips and overwritten bytes in the header, truncation, duplicated or deleted segments/chunks/boxes, two files
spliced together) and sends each through ``Ingest`` and then ``process_photo``, as the upload and the worker do.

The property, for every example:

* the outcome is *archived* (the photo is 'submitted' with all its derivatives, none carrying metadata, or
  'failed' with a processing error in German and English), *a duplicate* of an earlier example, or *refused*
  with a ``Refusal`` that has a code and German and English words; never another exception;
* it takes less than ``TIME_BOUND`` seconds;
* after each test, ``tests.consistency.problems(app, index=False)`` finds nothing (no row without its original,
  no object without a row, nothing left on the staging disk).

Deterministic in CI: ``derandomize=True`` (the examples follow from the test's source) and no example database
(``database=None``; hypothesis's cache goes to the temporary folder, so no ``.hypothesis/`` appears in the
checkout). To search longer or elsewhere locally::

    BRUCKEN_FUZZ_EXAMPLES=2000 .venv/bin/pytest -p no:cacheprovider tests/test_fuzz_ingest.py   # per test
    BRUCKEN_FUZZ_RANDOM=1 BRUCKEN_FUZZ_EXAMPLES=500 .venv/bin/pytest ...   # fresh random examples each run

A failure prints the smallest mutation found and a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from PIL import Image, ImageFile
from sqlalchemy import select

from archive.errors import Refusal
from archive.ingest import Ingest, IngestResult
from archive.media import FORMATS, SIZES, metadata_markers
from archive.models import Association, Photo, PhotoStatus, db
from archive.processing import process_photo
from archive.services import get_store
from tests.conftest import CORPUS, make_ready_app, settings_for
from tests.consistency import problems

# Even with database=None, hypothesis caches the constants it finds in the code under test in its home folder,
# ./.hypothesis by default: keep that out of the checkout too (HYPOTHESIS_STORAGE_DIRECTORY still wins).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "brucken-hypothesis")

EXAMPLES = int(os.environ.get("BRUCKEN_FUZZ_EXAMPLES", "100"))
TIME_BOUND = 10.0  # seconds for one file through ingest and processing; the real ones take well under one

SEED_FILES = (
    "exif-py/jpg/Canon_40D.jpg",
    "exif-py/jpg/Nikon_COOLPIX_P1.jpg",
    "exif-py/jpg/Kodak_CX7530.jpg",
    "exif-py/jpg/Fujifilm_FinePix_E500.jpg",
    "exif-py/jpg/Olympus_C8080WZ.jpg",
    "cameras/webp/Alpha Lossy (2).webp",
    "cameras/webp/Nikon D1X.webp",
    "exif-py/heic/spring_1440x960.heic",
    "cameras/avif/32Bit-72dpi-sRGB-800x600.avif",
)


def _png_from_corpus() -> bytes:
    """The corpus has no PNG: a corpus photo saved as one, keeping its EXIF (eXIf) and a text chunk."""
    with Image.open(CORPUS / "exif-py/jpg/Canon_40D.jpg") as im:
        buffer = io.BytesIO()
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Comment", "Rheinufer, Abendlicht")
        im.save(buffer, "PNG", exif=im.info["exif"], pnginfo=info)
    return buffer.getvalue()


def _seeds() -> dict[str, bytes]:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared photo corpus is missing: expected it at {CORPUS}", pytrace=False)
    seeds = {Path(name).name: (CORPUS / name).read_bytes() for name in SEED_FILES}
    seeds["Canon_40D.png"] = _png_from_corpus()
    assert all(len(data) < 60_000 for data in seeds.values()), "keep the seeds small: examples must stay fast"
    return seeds


SEEDS = _seeds() if CORPUS.is_dir() else {"missing corpus": b""}
NAMES = sorted(SEEDS)


# --------------------------------------------------------------------------------------------------------------------
# Where the structure of each container is: the spans that "duplicate" and "delete" work on
# --------------------------------------------------------------------------------------------------------------------


def _jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    spans, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2: pos + 4], "big")
        if marker == 0xDA or length < 2:  # the scan: its data runs to the end of the image
            spans.append((pos, len(data) - 2))
            break
        spans.append((pos, min(len(data), pos + 2 + length)))
        pos += 2 + length
    return spans


def _sized_chunks(data: bytes, start: int, header: int, size_of: Callable[[bytes, int], int],
                  pad: bool) -> list[tuple[int, int]]:
    spans, pos = [], start
    while pos + header <= len(data):
        size = size_of(data, pos)
        end = pos + size + (size & 1 if pad else 0)
        if size < header or end > len(data):
            break
        spans.append((pos, end))
        pos = end
    return spans


def structure(data: bytes) -> list[tuple[int, int]]:
    """Spans of the JPEG segments, PNG chunks, RIFF chunks or ISO-BMFF boxes; [] for what is none of these."""
    if data[:2] == b"\xff\xd8":
        return _jpeg_segments(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _sized_chunks(data, 8, 12, lambda d, p: 12 + int.from_bytes(d[p: p + 4], "big"), False)
    if data[:4] == b"RIFF":
        return _sized_chunks(data, 12, 8, lambda d, p: 8 + int.from_bytes(d[p + 4: p + 8], "little"), True)
    if data[4:8] == b"ftyp":
        return _sized_chunks(data, 0, 8, lambda d, p: int.from_bytes(d[p: p + 4], "big"), False)
    return []


# --------------------------------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------------------------------


@st.composite
def header_damage(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """Bit flips and overwritten bytes, mostly in the first kilobyte where the headers and metadata live."""
    name = draw(st.sampled_from(NAMES))
    data = bytearray(SEEDS[name])
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        # The magic bytes, the rest of the first kilobyte, or anywhere: a third of the steps each, so that most
        # examples still get past the sniffer into the parsers.
        low, high = draw(st.sampled_from([(0, 16), (16, 1024), (16, len(data))]))
        at = draw(st.integers(low, min(high, len(data)) - 1))
        if draw(st.booleans()):
            bit = draw(st.integers(0, 7))
            data[at] ^= 1 << bit
            steps.append(f"flip bit {bit} at {at}")
        else:
            chunk = draw(st.one_of(st.binary(min_size=1, max_size=8),
                                   st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                                    b"\xff\xd9", b"\xff\xda", b"II*\x00", b"MM\x00*"])))
            data[at: at + len(chunk)] = chunk
            steps.append(f"overwrite {chunk!r} at {at}")
    return name, "; ".join(steps), bytes(data)


@st.composite
def structure_damage(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """Truncation, and segments/chunks/boxes duplicated or deleted (what broken copy tools and editors leave)."""
    name = draw(st.sampled_from(NAMES))
    data = SEEDS[name]
    steps = []
    for _ in range(draw(st.integers(1, 2))):
        spans = structure(data)
        kind = draw(st.sampled_from(["truncate", "duplicate", "delete"] if spans else ["truncate"]))
        if kind == "truncate":
            cut = draw(st.integers(0, max(0, len(data) - 1)))
            data = data[:cut]
            steps.append(f"truncate at {cut}")
        else:
            index = draw(st.integers(0, len(spans) - 1))
            start, end = spans[index]
            data = data[:end] + data[start:end] + data[end:] if kind == "duplicate" else data[:start] + data[end:]
            steps.append(f"{kind} span {index} ({start}-{end})")
        if not data:
            break
    return name, "; ".join(steps), data


@st.composite
def spliced(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """The start of one file and the rest of another (a card's file table pointing at the wrong clusters)."""
    first, second = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
    a, b = SEEDS[first], SEEDS[second]
    cut_a = draw(st.integers(0, len(a)))
    cut_b = draw(st.integers(0, len(b)))
    return f"{first}+{second}", f"{first}[:{cut_a}] + {second}[{cut_b}:]", a[:cut_a] + b[cut_b:]


# --------------------------------------------------------------------------------------------------------------------
# The pipeline and the property
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def fuzz_app(tmp_path: Path) -> Iterator[Flask]:
    """One archive for all the examples of a test: files accumulate as they do in real use (and duplicates occur)."""
    app = make_ready_app(settings_for(tmp_path))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def archive_one(app: Flask, data: bytes, name: str) -> str:
    """Ingest and process ``data``; returns the outcome after checking that it is one the archive promises."""
    association = db.session.scalar(select(Association).where(Association.slug == "pasadena"))
    result: IngestResult = Ingest(db.session, get_store(), app.config, lambda _id: None).ingest(
        io.BytesIO(data), name, association, uploader=None)
    if result.outcome == "refused":
        refusal = result.refusal
        assert isinstance(refusal, Refusal) and refusal.code, result
        assert refusal.de.strip() and refusal.en.strip() and refusal.de != refusal.en, refusal.as_dict()
        assert 400 <= refusal.status < 500, refusal.as_dict()
        return f"refused:{refusal.code}"
    assert result.photo_id is not None, result
    if result.outcome == "duplicate":
        return "duplicate"
    assert result.outcome == "archived", result
    process_photo(result.photo_id, db.session, get_store(), app.config)
    db.session.expire_all()
    photo = db.session.get(Photo, result.photo_id)
    if photo.status == PhotoStatus.FAILED:
        assert photo.processing_error and " / " in photo.processing_error, photo.processing_error
        assert photo.derivatives == []
        return "failed"
    assert photo.status == PhotoStatus.SUBMITTED, photo.status
    assert {(d.size, d.fmt) for d in photo.derivatives} == {(s.name, f) for s in SIZES for f in FORMATS}
    for derivative in photo.derivatives:
        body = b"".join(get_store().iter_chunks(derivative.key))
        assert metadata_markers(body) == [], derivative.key
    return "submitted"


def check_example(app: Flask, outcomes: dict[str, int], name: str, how: str, data: bytes) -> None:
    started = time.monotonic()
    try:
        outcome = archive_one(app, data, name)
    except AssertionError:
        raise
    except Exception as error:  # the property: no other exception, ever
        raise AssertionError(f"{name} ({how}): {type(error).__name__}: {error}") from error
    elapsed = time.monotonic() - started
    assert elapsed < TIME_BOUND, f"{name} ({how}) took {elapsed:.1f} s"
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def fuzz_settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        derandomize=os.environ.get("BRUCKEN_FUZZ_RANDOM") != "1",
        database=None,  # no .hypothesis/ folder in the checkout
        deadline=None,  # the time bound is asserted by check_example, on wall-clock time of the whole pipeline
        print_blob=True,
        # One archive serves all examples of a test on purpose (see fuzz_app); the seeds are fixed bytes.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large],
    )


def count(outcomes: dict[str, int], kind: str) -> int:
    """How many examples ended ``kind`` ("submitted", "failed", "duplicate", "refused" of any code)."""
    return sum(n for outcome, n in outcomes.items() if outcome.split(":")[0] == kind)


def finish(app: Flask, outcomes: dict[str, int]) -> None:
    print(dict(sorted(outcomes.items(), key=lambda item: -item[1])))
    assert problems(app, index=False) == []


def test_the_seeds_themselves_are_archived(fuzz_app: Flask) -> None:
    """Without damage every seed makes a photo: the property below is about the damage, not about the seeds."""
    outcomes: dict[str, int] = {}
    for name, data in SEEDS.items():
        check_example(fuzz_app, outcomes, name, "unchanged", data)
    assert outcomes == {"submitted": len(SEEDS)}
    assert all(structure(data) for data in SEEDS.values())


def test_damaged_headers_end_archived_or_refused_in_words(fuzz_app: Flask) -> None:
    outcomes: dict[str, int] = {}

    @fuzz_settings()
    @given(header_damage())
    def run(example: tuple[str, str, bytes]) -> None:
        check_example(fuzz_app, outcomes, *example)

    run()
    finish(fuzz_app, outcomes)
    assert count(outcomes, "submitted") and sum(outcomes.values()) >= EXAMPLES // 2


def test_damaged_structure_ends_archived_or_refused_in_words(fuzz_app: Flask) -> None:
    outcomes: dict[str, int] = {}

    @fuzz_settings()
    @given(structure_damage())
    def run(example: tuple[str, str, bytes]) -> None:
        check_example(fuzz_app, outcomes, *example)

    run()
    finish(fuzz_app, outcomes)
    assert count(outcomes, "submitted") and count(outcomes, "refused")


def test_spliced_files_end_archived_or_refused_in_words(fuzz_app: Flask) -> None:
    outcomes: dict[str, int] = {}

    @fuzz_settings()
    @given(spliced())
    def run(example: tuple[str, str, bytes]) -> None:
        check_example(fuzz_app, outcomes, *example)

    run()
    finish(fuzz_app, outcomes)
    assert count(outcomes, "refused")
