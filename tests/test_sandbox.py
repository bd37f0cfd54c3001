"""Decoding in a limited child process (archive.sandbox), and processing through it (catalogue cases 4, 10,
11, 12: a decoder that hangs, loops or asks for gigabytes costs its child process, never the worker).

Everything runs in real processes: the tasks below are module-level so that the forkserver's children can
import them by name."""

from __future__ import annotations

import ctypes
import hashlib
import io
import logging
import os
import resource
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select

from archive import media, processing, sandbox
from archive.metadata import PhotoMetadata
from archive.models import AuditEvent, PhotoStatus, db
from archive.services import get_store
from tests.conftest import jpeg_bytes
from tests.test_processing import archive_file

LIMITS = sandbox.Limits(memory_mb=200, seconds=5)
MB = 1024 * 1024


# --------------------------------------------------------------------------------------------------------
# Tasks, run in the child
# --------------------------------------------------------------------------------------------------------


def allocate(total_mb: int) -> int:
    """Allocate (and touch) ``total_mb`` in 10 MB blocks."""
    blocks = [bytearray(10 * MB) for _ in range(total_mb // 10)]
    return len(blocks)


def spin() -> None:
    while True:
        pass


def sleep_forever(_path: Path) -> PhotoMetadata:
    time.sleep(3600)
    return PhotoMetadata()


def allocate_metadata(_path: Path) -> PhotoMetadata:
    allocate(10_000)
    return PhotoMetadata()


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def raise_value_error() -> None:
    raise ValueError("bad bytes at offset 42")


class OddError(Exception):
    """An exception that pickles but cannot be rebuilt from what it pickles."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


def raise_odd() -> None:
    raise OddError(7, "odd one")


def log_and_return(value: int) -> int:
    logging.getLogger("archive.media").warning("a warning from the child: %s", value)
    return value * 2


def own_limits() -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int]:
    size = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmSize:")).split()[1]) * 1024
    return (resource.getrlimit(resource.RLIMIT_AS), resource.getrlimit(resource.RLIMIT_CPU),
            resource.getrlimit(resource.RLIMIT_CORE), size)


def main_file() -> str | None:
    return getattr(sys.modules["__main__"], "__file__", None)


# --------------------------------------------------------------------------------------------------------
# Mechanics
# --------------------------------------------------------------------------------------------------------


def _descendants() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """After each case: no child left running or unreaped, no file descriptor left open. The forkserver and
    multiprocessing's resource tracker are long-lived by design: they are started before the count."""
    sandbox.run(os.getpid, limits=LIMITS)
    before = {p.pid for p in _descendants()}
    fds = psutil.Process().num_fds()
    yield
    after = _descendants()
    assert {p.pid for p in after} == before, [(p.pid, p.name(), p.status()) for p in after]
    assert not [p for p in after if p.status() == psutil.STATUS_ZOMBIE]
    assert psutil.Process().num_fds() == fds


def test_a_value_comes_back_and_the_childs_warnings_are_logged_here(
        no_leftovers: None, caplog: pytest.LogCaptureFixture) -> None:
    assert sandbox.run(log_and_return, 21, limits=LIMITS) == 42
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("archive.media", logging.WARNING, "a warning from the child: 21")]


def test_the_child_limits_itself(no_leftovers: None) -> None:
    address_space, cpu, core, size = sandbox.run(own_limits, limits=sandbox.Limits(memory_mb=300, seconds=7.5))
    assert address_space[0] == address_space[1]  # cannot be raised again
    assert address_space[0] - size == pytest.approx(300 * MB, abs=1 * MB)  # the start size plus the allowance
    assert cpu == (8, 9)  # SIGXCPU at the limit, SIGKILL a second later
    assert core == (0, 0)


def test_allocating_far_beyond_the_limit_is_stopped_as_memory(no_leftovers: None) -> None:
    rss = psutil.Process().memory_info().rss
    with pytest.raises(sandbox.SandboxMemoryError, match="more than 200 MB"):
        sandbox.run(bytearray, 4000 * MB, limits=LIMITS)  # at once
    started = time.monotonic()
    with pytest.raises(sandbox.SandboxMemoryError, match="more than 200 MB"):
        sandbox.run(allocate, 4000, limits=LIMITS)  # bit by bit
    assert time.monotonic() - started < LIMITS.seconds  # stopped by the limit, not by the clock
    assert psutil.Process().memory_info().rss - rss < 20 * MB  # the parent never held any of it
    assert sandbox.run(allocate, 100, limits=LIMITS) == 10  # within the limit it is fine


@pytest.mark.parametrize(("task", "args"), [(spin, ()), (time.sleep, (3600,))], ids=["busy loop", "sleeping"])
def test_a_task_that_never_ends_is_stopped_in_time(no_leftovers: None, task: object, args: tuple[int]) -> None:
    limits = sandbox.Limits(memory_mb=200, seconds=1.5)
    started = time.monotonic()
    with pytest.raises(sandbox.SandboxTimeout):
        sandbox.run(task, *args, limits=limits)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 1.5 + 1.5, elapsed


@pytest.mark.parametrize(("task", "args", "number"), [
    (ctypes.string_at, (0,), signal.SIGSEGV),  # reads address 0
    (os.abort, (), signal.SIGABRT),
    (kill_self, (), signal.SIGKILL),
], ids=["SIGSEGV", "SIGABRT", "SIGKILL"])
def test_a_crash_is_reported_with_its_signal(no_leftovers: None, task: object, args: tuple[int], number: int) -> None:
    with pytest.raises(sandbox.SandboxCrashed, match=f"signal {number}|killed") as caught:
        sandbox.run(task, *args, limits=LIMITS)  # type: ignore[arg-type]
    assert caught.value.signal_number == number
    assert sandbox.run(log_and_return, 1, limits=LIMITS) == 2  # the next call is fine


def test_an_exit_without_answer_is_reported(no_leftovers: None) -> None:
    with pytest.raises(sandbox.SandboxCrashed, match="exit code 3"):
        sandbox.run(os._exit, 3, limits=LIMITS)


def test_exceptions_come_back_with_type_and_message(no_leftovers: None) -> None:
    with pytest.raises(sandbox.SandboxRaised) as caught:
        sandbox.run(raise_value_error, limits=LIMITS)
    assert caught.value.exc_type == "ValueError"
    assert caught.value.exc_message == "bad bytes at offset 42"
    assert isinstance(caught.value.original, ValueError) and caught.value.__cause__ is caught.value.original
    assert "raise_value_error" in caught.value.remote_traceback

    with pytest.raises(sandbox.SandboxRaised) as caught:  # one that cannot be rebuilt keeps type and message
        sandbox.run(raise_odd, limits=LIMITS)
    assert caught.value.exc_type == "tests.test_sandbox.OddError"
    assert caught.value.exc_message == "odd one" and caught.value.original is None


def test_a_media_error_comes_back_as_itself(no_leftovers: None, tmp_path: Path) -> None:
    text = tmp_path / "not-an-image.jpg"
    text.write_text("hello")
    with pytest.raises(sandbox.SandboxRaised) as caught:
        sandbox.run(media.make_derivatives, text, max_pixels=1000, limits=LIMITS)
    assert isinstance(caught.value.original, media.MediaError)
    assert "not an image format we accept" in caught.value.exc_message


def test_the_parent_stays_small_and_calls_are_cheap(no_leftovers: None) -> None:
    for _ in range(3):
        with pytest.raises(sandbox.SandboxMemoryError):
            sandbox.run(allocate, 4000, limits=LIMITS)
    rss = psutil.Process().memory_info().rss
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        sandbox.run(os.getpid, limits=LIMITS)  # a function the forkserver has loaded, as the decoders are
        timings.append(time.perf_counter() - started)
    assert psutil.Process().memory_info().rss - rss < 5 * MB
    # About 6-15 ms on an idle machine (fork from the forkserver, pickles both ways); generous for a busy one.
    assert statistics.median(timings) < 0.2, timings


def test_the_child_does_not_run_the_workers_script_again(no_leftovers: None) -> None:
    # multiprocessing would run the parent's main script (here pytest's, in production `brucken`, 0.3 s) in
    # every child; the child keeps the forkserver's, which has no file.
    assert sandbox.run(main_file, limits=LIMITS) is None


# --------------------------------------------------------------------------------------------------------
# Processing through the sandbox
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 20-megapixel PNG: decoding it needs over 100 MB and about a second of processor time."""
    noise = Image.effect_noise((625, 500), 60).convert("L")
    image = Image.merge("RGB", (noise, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise))
    buffer = io.BytesIO()
    image.resize((5000, 4000), Image.Resampling.BILINEAR).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _objects(prefix: str) -> list[str]:
    return sorted(info.key for info in get_store().list(prefix))


def test_a_camera_photo_gets_the_same_derivatives_as_decoded_in_process(app: Flask, corpus: Path) -> None:
    path = corpus / "cameras/jpg/Canon EOS 30D (4).jpg"
    direct = media.make_derivatives(path, max_pixels=int(app.config["MAX_PIXELS"]))
    photo = archive_file(app, path.read_bytes())
    assert photo.status == PhotoStatus.SUBMITTED and photo.camera_model == "Canon EOS 30D"
    stored = {(d.size, d.fmt): b"".join(get_store().iter_chunks(d.key)) for d in photo.derivatives}
    assert stored == {(r.size, r.fmt): r.data for r in direct}
    assert {d.key for d in photo.derivatives} == {
        processing.derivative_key(photo.sha256, r.size, r.fmt, hashlib.sha256(r.data).hexdigest()) for r in direct}


@pytest.mark.parametrize(("reader", "settings", "reason"), [
    (sleep_forever, {"DECODE_SECONDS": 2}, "took longer than 2 seconds"),
    (allocate_metadata, {"DECODE_MEMORY_MB": 300}, "needed more than 300 MB of memory"),
], ids=["hangs", "blows memory"])
def test_a_photo_whose_metadata_reader_is_stopped_is_archived_without_it(
        app: Flask, monkeypatch: pytest.MonkeyPatch, corpus: Path, reader: object, settings: dict[str, int],
        reason: str) -> None:
    # The reader the job runs is replaced by a hostile one (it runs in the child by name, like the real one).
    monkeypatch.setattr(processing, "read_metadata", reader)
    monkeypatch.setitem(app.config, "DECODE_SECONDS", settings.get("DECODE_SECONDS", 60))
    monkeypatch.setitem(app.config, "DECODE_MEMORY_MB", settings.get("DECODE_MEMORY_MB", 1536))
    photo = archive_file(app, (corpus / "cameras/jpg/Canon EOS 30D (4).jpg").read_bytes())
    assert photo.status == PhotoStatus.SUBMITTED
    assert len(photo.derivatives) == len(media.SIZES) * len(media.FORMATS)
    assert (photo.camera_make, photo.camera_model, photo.taken_at) == (None, None, None)
    [warning] = photo.metadata_warnings
    assert warning.startswith(f"Metadata not read: the reader {reason}"), warning
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "photo.processed"))
    assert audit is not None and audit.detail["metadata_warnings"] == photo.metadata_warnings


def test_a_photo_whose_derivatives_need_too_much_memory_fails_once(app: Flask, big_png: bytes) -> None:
    app.config["DECODE_MEMORY_MB"] = 40  # a 20 MP decode needs over 100
    rss = psutil.Process().memory_info().rss
    photo = archive_file(app, big_png, "gross.png")
    assert photo.status == PhotoStatus.FAILED
    assert "zu viel Speicher (mehr als 40 MB)" in photo.processing_error
    assert "too much memory to process (more than 40 MB)" in photo.processing_error
    assert photo.processing_attempts == 1  # failed, not retried
    assert photo.derivatives == [] and _objects("derivatives/") == []
    assert psutil.Process().memory_info().rss - rss < 50 * MB  # the decode happened elsewhere

    # The worker is fine: the next photo is processed as usual.
    app.config["DECODE_MEMORY_MB"] = 1536
    assert archive_file(app, jpeg_bytes((1, 2, 3))).status == PhotoStatus.SUBMITTED


def test_a_photo_whose_derivatives_take_too_long_fails_with_the_reason(app: Flask, big_png: bytes) -> None:
    app.config["DECODE_SECONDS"] = 0.3  # a 20 MP PNG takes about a second to decode
    photo = archive_file(app, big_png, "langsam.png")
    assert photo.status == PhotoStatus.FAILED
    assert "zu lange gedauert (mehr als 0.3 Sekunden)" in photo.processing_error
    assert "took too long (more than 0.3 seconds)" in photo.processing_error
    assert photo.derivatives == [] and _objects("derivatives/") == []
