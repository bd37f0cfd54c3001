"""`brucken import`: a folder tree of photos into the archive, one file at a time, with a summary."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from .ingest import Ingest
from .models import Association, Photo, PhotoStatus
from .reconcile import discard_photo
from .storage import ObjectStore


@dataclass
class ImportSummary:
    archived: int = 0
    duplicates: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    # Which file each newly archived photo came from, to name it if processing fails later.
    photo_paths: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"archived": self.archived, "duplicates": self.duplicates, "refused": self.refused}


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Every regular file under the given files and folders, in a stable order; hidden files skipped."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                parts = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in parts):
                    yield child
        elif path.is_file():
            yield path


def import_files(files: Iterable[Path], ingest: Ingest, association: Association) -> ImportSummary:
    summary = ImportSummary()
    for path in files:
        try:
            with path.open("rb") as stream:
                result = ingest.ingest(stream, path.name, association, uploader=None)
        except OSError as error:
            summary.refused.append({"path": str(path), "reason": f"Datei nicht lesbar / unreadable: {error}"})
            continue
        if result.outcome == "archived" and result.photo_id is not None:
            summary.archived += 1
            summary.photo_paths[result.photo_id] = str(path)
        elif result.outcome == "duplicate":
            summary.duplicates += 1
        elif result.refusal is not None:
            summary.refused.append({"path": str(path), "reason": f"{result.refusal.de} / {result.refusal.en}"})
    return summary


def settle_failures(session: Session, store: ObjectStore, summary: ImportSummary) -> None:
    """After processing: a photo no image could be made from is refused with the reason, and removed,
    so that the summary and the archive agree."""
    for photo_id, path in list(summary.photo_paths.items()):
        photo = session.get(Photo, photo_id)
        if photo is not None and photo.status == PhotoStatus.FAILED:
            reason = photo.processing_error or "failed"
            discard_photo(session, store, photo, reason="import: no image could be made")
            summary.archived -= 1
            del summary.photo_paths[photo_id]
            summary.refused.append({"path": path, "reason": reason})
