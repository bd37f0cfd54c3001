"""Decoding untrusted files in a child process with limits on memory and time.

Every uploaded file is hostile until decoded: a crafted EXIF block can keep exifread busy for ever, a
header can make a C decoder ask for gigabytes, a fuzzed image can crash it. ``run`` calls a function in a
child process that limits itself before it touches the file, so none of that can take the worker down:

* memory: ``RLIMIT_AS`` at the child's size when it starts plus ``memory_mb``. Allocations beyond it
  fail (``MemoryError`` in Python, an error or an abort in C) inside the child only.
* time: ``RLIMIT_CPU`` stops a busy loop (SIGXCPU, then SIGKILL a second later); the parent kills the
  child with SIGKILL when no answer has come within ``seconds`` of wall-clock time (a child that sleeps
  or waits uses no CPU); ``alarm`` ends a child whose parent is gone.
* every outcome other than a returned value reaches the caller as a ``SandboxError`` naming what
  happened: too much memory, too long, a crash with signal N, or the exception the function raised.

Children come from a ``multiprocessing`` *forkserver*: a small process started once (per worker process)
that has already imported the decoders and forks a fresh child for each call. Forking the worker itself
is unsafe (it runs threads: huey's, SQLAlchemy's, boto3's), and a *spawned* child would import Python and
Pillow again for every photo. A fork from the forkserver costs a few milliseconds.

This bounds resources; it is not a security boundary. The child runs as the same user with the same
files and environment, and its answer is unpickled in the parent: a decoder exploited into running code
gains nothing it did not already have in the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import math
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TypeVar

from .errors import ArchiveError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Imported once by the forkserver, so that each child starts with the decoders loaded: every module that
# reading metadata and making derivatives import on first use (Pillow's Image.open loads the Bmp, Gif, Ppm
# and Tiff plugins even for a JPEG).
PRELOAD = ("ctypes", "archive.sandbox", "archive.media", "archive.metadata", "exifread", "pillow_heif",
           "PIL.AvifImagePlugin", "PIL.BmpImagePlugin", "PIL.GifImagePlugin", "PIL.IptcImagePlugin",
           "PIL.JpegImagePlugin", "PIL.PngImagePlugin", "PIL.PpmImagePlugin", "PIL.TiffImagePlugin",
           "PIL.WebPImagePlugin")

# How long after its wall-clock limit a child whose parent has gone ends itself (SIGALRM).
_ALARM_GRACE_SECONDS = 5
# A child that has answered only has to exit; waiting longer than this for that means it hangs in exit.
_EXIT_WAIT_SECONDS = 5


@dataclass(frozen=True)
class Limits:
    memory_mb: int  # address space the function may add to the child's size at its start
    seconds: float  # wall-clock time until the parent kills the child; also its CPU-time limit


class SandboxError(ArchiveError):
    """The function did not return a value. The message says why, in English, for logs and error texts."""


class SandboxUnavailable(SandboxError):
    """No child process could be started (too many processes, the forkserver died): try again later."""


class SandboxMemoryError(SandboxError):
    """The function needed more memory than the limit allows."""


class SandboxTimeout(SandboxError):
    """The function ran longer than the limit allows (wall-clock or CPU time)."""


class SandboxCrashed(SandboxError):
    """The child ended without an answer: killed by a signal (a decoder crash) or an exit of its own."""

    def __init__(self, message: str, *, signal_number: int | None = None, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.signal_number = signal_number
        self.exitcode = exitcode


class SandboxRaised(SandboxError):
    """The function raised. ``exc_type`` is its qualified name; ``original`` the exception itself when it
    could be sent back (it is also the ``__cause__``), else None."""

    def __init__(self, exc_type: str, message: str, original: BaseException | None, remote_traceback: str) -> None:
        super().__init__(f"{exc_type}: {message}" if message else exc_type)
        self.exc_type = exc_type
        self.exc_message = message
        self.original = original
        self.remote_traceback = remote_traceback


# ---------------------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------------------


@functools.cache
def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


class _Popen(popen_forkserver.Popen):
    """Starts a child from the forkserver without running the parent's main script in it again.

    multiprocessing makes each child import the parent's ``__main__`` (for functions defined there). Ours
    only run importable functions, and the worker's script may be costly to import: ``brucken worker``
    imports the whole CLI and Flask, 0.3 s for every child. (The forkserver's own ``__main__`` preload,
    meant to avoid this, never receives the path in Python 3.11: it looks for a key the preparation data
    does not have.) Python 3.11's ``_launch`` with the main module left out of the preparation data; newer
    Pythons, whose internals may differ, get multiprocessing's own (see ``_LAUNCH_WITHOUT_MAIN``).
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        mp_context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            mp_context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        # A duplicate of the data pipe's write end tells the child that its parent is alive.
        parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


# Checked on 3.11 (tests/test_sandbox.py: the child does not run the parent's script); check again before
# widening.
_LAUNCH_WITHOUT_MAIN = sys.version_info < (3, 12)


class _Process(mp_context.ForkServerProcess):  # type: ignore[misc]
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


def run(func: Callable[..., T], *args: Any, limits: Limits, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a limited child process; its value, or a ``SandboxError``.

    ``func`` must be importable by name (a module-level function), and arguments and value picklable.
    Warnings and errors the child logs are logged here again. Safe to call from several threads.
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process_class = _Process if _LAUNCH_WITHOUT_MAIN else context.Process
    process = process_class(target=_child, args=(sender, func, args, kwargs, limits), daemon=True,
                            name=f"sandbox {getattr(func, '__qualname__', func)}")
    try:
        try:
            process.start()
        except OSError as error:  # EAGAIN (process limit), ENOMEM, the forkserver's socket gone
            raise SandboxUnavailable(f"cannot start a decoding process: {error}") from error
        finally:
            sender.close()  # ours; the child has its own copy. Its end of file tells us the child is gone.
        reply = _await_reply(receiver, process, limits.seconds)
    finally:
        receiver.close()
        exitcode = _reap(process)
    if reply is None:
        raise _ended_without_reply(exitcode, limits)
    for record in reply.log_records:
        logging.getLogger(record.name).handle(record)
    if isinstance(reply, _Failure):
        raise reply.as_error(limits)
    return reply.value  # type: ignore[no-any-return]


def _await_reply(receiver: Connection, process: Any, seconds: float) -> _Reply | _Failure | None:
    """The child's answer, or None when it ended without one. Kills it when the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            process.kill()
            process.join()
            raise SandboxTimeout(f"took longer than {seconds:g} seconds (stopped)")
        ready = wait([receiver, process.sentinel], timeout=remaining)
        if receiver in ready or (ready and receiver.poll()):
            try:
                return receiver.recv()  # type: ignore[no-any-return]
            except EOFError:  # the child ended (or died) before it said anything
                return None
        if ready:  # only the sentinel: ended, and nothing is in the pipe
            return None


def _reap(process: Any) -> int | None:
    """Wait for the child's end (the forkserver reaps it), release its handles and return its exit code.
    Never leaves it running."""
    if process._popen is None:  # never started
        return None
    process.join(_EXIT_WAIT_SECONDS)
    if process.exitcode is None:
        process.kill()
        process.join()
    exitcode: int | None = process.exitcode
    process.close()
    return exitcode


def _ended_without_reply(exitcode: int | None, limits: Limits) -> SandboxError:
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        if number in (signal.SIGXCPU, signal.SIGALRM):
            return SandboxTimeout(f"used more than {limits.seconds:g} seconds of processor time (stopped)")
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        if number == signal.SIGKILL:
            # Not ours (we raise SandboxTimeout when we kill): the hard CPU limit, or the system's OOM killer.
            return SandboxCrashed(f"was killed ({name}): too much processor time or memory",
                                  signal_number=number, exitcode=exitcode)
        return SandboxCrashed(f"crashed with signal {number} ({name})", signal_number=number, exitcode=exitcode)
    return SandboxCrashed(f"ended without an answer (exit code {exitcode})", exitcode=exitcode)


# ---------------------------------------------------------------------------------------------------------
# Child
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Reply:
    value: Any
    log_records: list[logging.LogRecord] = field(default_factory=list)


@dataclass
class _Failure:
    exc_type: str
    message: str
    out_of_memory: bool
    pickled: bytes | None  # the exception itself, when it pickles; unpickling may still fail in the parent
    remote_traceback: str
    log_records: list[logging.LogRecord] = field(default_factory=list)

    def original(self) -> BaseException | None:
        if self.pickled is None:
            return None
        try:
            original = pickle.loads(self.pickled)
        except Exception:  # an exception class whose __init__ wants other arguments than it pickles
            return None
        return original if isinstance(original, BaseException) else None

    def as_error(self, limits: Limits) -> SandboxError:
        original = self.original()
        error: SandboxError
        if self.out_of_memory:
            error = SandboxMemoryError(f"needed more than {limits.memory_mb} MB of memory ({self.exc_type})")
        else:
            error = SandboxRaised(self.exc_type, self.message, original, self.remote_traceback)
        error.__cause__ = original
        return error


class _Capture(logging.Handler):
    """Keeps the child's warnings and errors, made picklable, to be logged again by the parent."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = self.formatException(record.exc_info) if self.formatter is None \
                    else self.formatter.formatException(record.exc_info)
                record.exc_info = None
            self.records.append(record)
        except Exception:  # a record that cannot be formatted is not worth losing the answer over
            pass


def _child(sender: Connection, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
           limits: Limits) -> None:
    _limit_self(limits)
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    try:
        reply: _Reply | _Failure = _Reply(func(*args, **kwargs))
    except BaseException as exc:  # every failure is the parent's to judge
        reply = _failure(exc, limits)
    reply.log_records = capture.records
    try:
        sender.send(reply)
    except Exception as exc:  # the value cannot be pickled, or memory ran out doing so
        sender.send(_failure(exc, limits))
    sender.close()


def _limit_self(limits: Limits) -> None:
    """Set before anything reads the file. The limits hold for this child only, and cannot be raised."""
    global _start_size
    _start_size = _proc_status()["VmSize"]
    memory = _start_size + limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, math.ceil(limits.seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL at the hard
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash or SIGXCPU must not write gigabytes of core
    _few_malloc_arenas()
    signal.alarm(cpu + _ALARM_GRACE_SECONDS)  # SIGALRM's default action ends the process


def _few_malloc_arenas() -> None:
    """glibc gives each new thread a malloc arena that reserves 64 MB of address space it hardly uses: a
    HEIC decode with 9 libheif threads then counts 640 MB against RLIMIT_AS while its memory peaks at 120.
    With two arenas the limit measures what a decode really uses. Other C libraries lack mallopt: fine."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 2)


def _proc_status() -> dict[str, int]:
    """The memory figures of /proc/self/status (VmSize, VmPeak, VmHWM, ...), in bytes."""
    figures = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.startswith("Vm") and value.strip().endswith("kB"):
            figures[name] = int(value.split()[0]) * 1024
    return figures


_M_ARENA_MAX = -8  # glibc's malloc.h
_start_size = 0  # the child's address space when it limited itself, in bytes

# Messages of C libraries that ran out of memory and said so instead of raising MemoryError: libjpeg,
# libheif (C++ std::bad_alloc), Pillow's WebP plugin when libwebp cannot allocate its decoder (a WebP whose
# data is broken is refused by the header check at upload already, which opens that decoder too).
_OUT_OF_MEMORY_WORDS = ("out of memory", "insufficient memory", "cannot allocate memory", "bad_alloc",
                        "memory allocation", "could not create decoder object")


def _ran_out_of_memory(exc: BaseException, peak_share: float) -> bool:
    """Whether a failure was the memory limit's doing. Decoders report it in many ways: MemoryError, often
    wrapped (MediaError from MemoryError), an error message, or an error that says nothing (WebP: "could not
    create decoder object"). A failure at 90 % or more of the allowed memory is counted as the limit's too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError) or any(w in str(current).lower() for w in _OUT_OF_MEMORY_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return peak_share >= 0.9


def _peak_share(limits: Limits) -> float:
    """How much of the allowed growth of the address space the child has used at its peak (0..1)."""
    try:
        status = _proc_status()
        return (status["VmPeak"] - _start_size) / (limits.memory_mb * 1024 * 1024)
    except (OSError, KeyError, ValueError):
        return 0.0


def _failure(exc: BaseException, limits: Limits) -> _Failure:
    exc_type = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    message = str(exc)
    out_of_memory = _ran_out_of_memory(exc, _peak_share(limits))
    try:
        remote = "".join(traceback.format_exception(exc))
    except MemoryError:
        remote = ""
    try:
        pickled: bytes | None = pickle.dumps(exc)
    except Exception:
        pickled = None
    return _Failure(exc_type, message, out_of_memory, pickled, remote)
