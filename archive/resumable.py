"""Resumable uploads: one file sent in chunks over a flaky connection, then archived like a form upload.

A person announces a file (name, size, optionally its SHA-256, the batch's defaults), then appends chunks at
the offset the archive has received so far. After a dropped connection they ask for the offset and go on from
there. When the last byte is in, the file goes through the same pipeline as a form upload (archive/ingest.py)
and the answer (the photo, or the refusal in words) is kept with the upload for a while, so that a client whose
connection dropped during that last request can still learn it.

Partial files live in the staging folder, under ``uploads/<owner id>/``: ``<id>.part`` (the bytes received)
and ``<id>.json`` (what was announced, and the result once finished). The received offset is the size of the
``.part`` file itself, so that it cannot disagree with the bytes. Each upload is bounded by MAX_UPLOAD_BYTES;
abandoned ones are removed by :func:`remove_abandoned`. No database row exists until the file is archived.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import Refusal, Unavailable
from .ingest import disk_full, staging_full

CHUNK_SIZE = 4 * 1024 * 1024  # what clients are told to send at once: a few MB survive a slow phone connection
READ = 256 * 1024
EXPIRE_SECONDS = 24 * 3600  # an upload untouched this long is abandoned
MAX_OPEN_PER_PERSON = 200  # unfinished uploads at once; more is a script gone wrong
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Upload:
    id: str
    owner_id: int
    filename: str
    size: int
    association_id: int
    sha256: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    result: dict[str, Any] | None = None  # once finished: the ingest result (IngestResult.as_dict() and more)
    received: int = 0

    @property
    def complete(self) -> bool:
        return self.result is not None


class OffsetMismatch(Exception):
    """A chunk sent for another offset than the one received so far."""

    def __init__(self, upload: Upload) -> None:
        super().__init__(f"the upload is at offset {upload.received}")
        self.upload = upload

    def refusal(self) -> Refusal:
        return Refusal(
            "wrong_offset",
            f"Dieses Stück passt nicht: angekommen sind bisher {self.upload.received} Byte. Bitte senden Sie "
            "ab dort weiter.",
            f"This chunk does not fit: {self.upload.received} bytes have arrived so far. Please continue "
            "from there.", status=409)


def too_large(max_bytes: int) -> Refusal:
    megabytes = f"{max_bytes / 1_000_000:.0f} MB"
    return Refusal("too_large",
                   f"Diese Datei ist größer als {megabytes}. Bitte laden Sie eine kleinere Fassung hoch.",
                   f"This file is larger than {megabytes}. Please upload a smaller version.", status=413)


def not_found() -> Refusal:
    return Refusal("upload_not_found",
                   "Dieses Hochladen gibt es nicht (mehr). Bitte beginnen Sie die Datei noch einmal.",
                   "This upload does not exist (any more). Please start the file again.", status=404)


def _more_than_announced(size: int) -> Refusal:
    return Refusal("more_than_announced",
                   f"Es kamen mehr Daten an als die angekündigten {size} Byte. Bitte beginnen Sie die Datei "
                   "noch einmal.",
                   f"More data arrived than the {size} bytes announced. Please start the file again.", status=413)


def _damaged() -> Refusal:
    return Refusal("checksum_mismatch",
                   "Die Datei ist beim Übertragen beschädigt worden (die Prüfsumme stimmt nicht). Bitte laden Sie "
                   "sie noch einmal hoch.",
                   "The file was damaged on the way (its checksum does not match). Please upload it again.",
                   status=422)


class ResumableUploads:
    """The partial uploads in ``staging_dir/uploads``. Every call names the owner: another person's upload is
    not found, exactly as one that does not exist."""

    def __init__(self, staging_dir: Path, max_bytes: int) -> None:
        self.root = Path(staging_dir) / "uploads"
        self.max_bytes = max_bytes

    # -- paths and records ---------------------------------------------------------------------------------

    def _folder(self, owner_id: int) -> Path:
        return self.root / str(int(owner_id))

    def _paths(self, owner_id: int, upload_id: str) -> tuple[Path, Path]:
        if not _ID.match(upload_id or ""):
            raise not_found()
        folder = self._folder(owner_id)
        return folder / f"{upload_id}.part", folder / f"{upload_id}.json"

    def _read(self, owner_id: int, upload_id: str) -> Upload:
        part, meta = self._paths(owner_id, upload_id)
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raise not_found() from None
        upload = Upload(**data)
        if upload.owner_id != owner_id:
            raise not_found()
        upload.received = upload.size if upload.complete else (part.stat().st_size if part.exists() else 0)
        return upload

    def _write(self, upload: Upload) -> None:
        _part, meta = self._paths(upload.owner_id, upload.id)
        record = asdict(upload)
        record.pop("received")
        partial = meta.with_suffix(".json.tmp")
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(meta)  # a reader sees the old record or the new one, never half of one

    @contextlib.contextmanager
    def _locked(self, owner_id: int, upload_id: str) -> Iterator[None]:
        """One request at a time per upload (two tabs, or a retry while the first try still runs)."""
        part, meta = self._paths(owner_id, upload_id)
        if not meta.exists():
            raise not_found()
        lock = part.with_suffix(".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- the API ---------------------------------------------------------------------------------------------

    def create(self, owner_id: int, filename: str, size: int, association_id: int, *, sha256: str | None = None,
               defaults: dict[str, Any] | None = None) -> Upload:
        if size > self.max_bytes:
            raise too_large(self.max_bytes)
        if size <= 0:
            raise Refusal("empty", "Diese Datei ist leer (0 Byte). Bitte wählen Sie das Foto noch einmal aus.",
                          "This file is empty (0 bytes). Please choose the photo again.", status=422)
        if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise Refusal("bad_sha256", "Die Prüfsumme (SHA-256) muss aus 64 Hex-Zeichen bestehen.",
                          "The checksum (SHA-256) must be 64 hex characters.", status=400)
        folder = self._folder(owner_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            if disk_full(error):
                raise staging_full(error) from error
            raise
        if sum(1 for _ in folder.glob("*.part")) >= MAX_OPEN_PER_PERSON:
            raise Refusal("too_many_uploads",
                          f"Sie haben schon {MAX_OPEN_PER_PERSON} unfertige Dateien. Bitte schließen Sie diese ab "
                          "oder warten Sie einen Tag, bis sie verfallen.",
                          f"You already have {MAX_OPEN_PER_PERSON} unfinished files. Please finish them or wait a "
                          "day until they expire.", status=429)
        upload = Upload(id=secrets.token_hex(16), owner_id=owner_id, filename=filename[:255], size=size,
                        association_id=association_id, sha256=sha256, defaults=dict(defaults or {}),
                        created=time.time())
        part, meta = self._paths(owner_id, upload.id)
        try:
            part.touch()
            self._write(upload)
        except OSError as error:
            part.unlink(missing_ok=True)
            meta.with_suffix(".json.tmp").unlink(missing_ok=True)
            if disk_full(error):
                raise staging_full(error) from error
            raise
        return upload

    def get(self, owner_id: int, upload_id: str) -> Upload:
        return self._read(owner_id, upload_id)

    def append(self, owner_id: int, upload_id: str, offset: int, stream: BinaryIO, *,
               length: int | None = None) -> Upload:
        """Adds a chunk at ``offset``. Bytes that arrived before the connection dropped are kept: the next
        ``get`` tells how far it got. A chunk past the announced size is refused and not kept, and so is a chunk
        that does not fit on the staging disk (503 ``staging_full``: the same chunk can be sent again later)."""
        with self._locked(owner_id, upload_id):
            upload = self._read(owner_id, upload_id)
            if upload.complete or offset != upload.received:
                raise OffsetMismatch(upload)
            if length is not None and offset + length > upload.size:
                raise _more_than_announced(upload.size)
            part, _meta = self._paths(owner_id, upload_id)
            # Unbuffered: a write that fails leaves nothing in a buffer that closing the file would write again.
            with part.open("r+b", buffering=0) as out:
                out.seek(offset)
                try:
                    while data := stream.read(READ):
                        if out.tell() + len(data) > upload.size:
                            out.truncate(offset)
                            raise _more_than_announced(upload.size)
                        _write_all(out, data)
                except OSError as error:
                    if not disk_full(error):
                        raise
                    out.truncate(offset)  # give the space back; the offset stays where the chunk began
                    raise staging_full(error) from error
                finally:
                    os.fsync(out.fileno())
            upload.received = part.stat().st_size
            return upload

    def finish(self, owner_id: int, upload_id: str,
               archive: Callable[[IO[bytes], Upload], dict[str, Any]]) -> Upload:
        """Archives a complete upload (``archive`` runs the ingest on the file) and keeps its result. The partial
        file goes in every case but one: the archive was unavailable (503), and the same bytes can simply be
        finished again later."""
        with self._locked(owner_id, upload_id):
            upload = self._read(owner_id, upload_id)
            if upload.complete or upload.received != upload.size:
                return upload
            part, _meta = self._paths(owner_id, upload_id)
            if upload.sha256 is not None and _sha256(part) != upload.sha256:
                upload.result = {"outcome": "refused", "filename": upload.filename, "photo_id": None,
                                 "reason": _damaged().as_dict(), "status": 422}
            else:
                with part.open("rb") as handle:
                    result = archive(handle, upload)
                if result.get("status") == Unavailable.status:
                    return upload  # kept: finishing again (an empty chunk at the end) tries once more
                upload.result = result
            self._write(upload)
            part.unlink(missing_ok=True)
            return upload

    def discard(self, owner_id: int, upload_id: str) -> None:
        with self._locked(owner_id, upload_id):
            part, meta = self._paths(owner_id, upload_id)
            part.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            part.with_suffix(".lock").unlink(missing_ok=True)

    def remove_abandoned(self, older_than: float = EXPIRE_SECONDS, now: float | None = None) -> list[str]:
        """Removes uploads (finished or not) untouched for ``older_than`` seconds; returns their ids."""
        return remove_abandoned(self.root.parent, older_than, now)


def remove_abandoned(staging_dir: Path, older_than: float = EXPIRE_SECONDS, now: float | None = None) -> list[str]:
    """Every upload under ``staging_dir/uploads`` untouched for ``older_than`` seconds goes, with its record and
    lock. Also what a crash left without its record. For reconcile and for each new upload."""
    root = Path(staging_dir) / "uploads"
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for folder in root.iterdir():
        if not folder.is_dir():
            continue
        stems: dict[str, list[Path]] = {}
        for path in folder.iterdir():
            stems.setdefault(path.name.split(".", 1)[0], []).append(path)
        for stem, paths in stems.items():
            with contextlib.suppress(FileNotFoundError):
                touched = max(p.stat().st_mtime for p in paths)
                if now - touched <= older_than:
                    continue
                for path in paths:
                    path.unlink(missing_ok=True)
                removed.append(stem)
        # The person's (possibly empty) folder stays: another request may have just made it for a new upload,
        # between its mkdir and its first file, and removing it there would fail that upload.
    return sorted(removed)


def _write_all(out: BinaryIO, data: bytes) -> None:
    """An unbuffered write may write less than asked (a disk filling up); the rest goes in further writes."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written or 0:]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while data := handle.read(READ):
            digest.update(data)
    return digest.hexdigest()
