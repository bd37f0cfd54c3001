"""The failed list: background jobs that failed on every try, and starting them again.

``archive.jobs`` records a job here when its last retry failed (a photo whose store stayed unreachable, a search
index that could not be written). Admins see the list on /admin/jobs and start a job again once the cause is
fixed: the same task with the same arguments goes back into the queue with fresh retries, and the entry shows when
that happened. Every restart lands in the audit log.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import Refusal, Unavailable
from .models import AuditEvent, FailedJob, Photo, PhotoStatus, utcnow

if TYPE_CHECKING:
    from huey import Huey

    from .jobs import Jobs

log = logging.getLogger(__name__)

ERROR_CHARS = 300
LIST_LIMIT = 200
# "scheme://user:password@host" in a message (a database or Redis URL) keeps its host, never its password.
_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def describe_error(error: BaseException) -> str:
    """One short line for the admins' page: the kind of error and its message, without the SQL statement and its
    parameters that SQLAlchemy adds (they may hold people's data), without passwords in URLs, cut at ERROR_CHARS."""
    cause = getattr(error, "orig", None)  # SQLAlchemy wraps the driver's error: its message alone says enough
    message = str(cause if cause is not None else error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0] if message else ''}".rstrip(": ")
    text = _CREDENTIALS.sub(r"\1***@", text)
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def record(session: Session, task: str, args: list[Any], error: str, attempts: int) -> FailedJob:
    """Add the job to the failed list; the same job still waiting there (not started again) is updated instead, so
    a job that fails again and again stays one entry with its attempts added up."""
    encoded = json.dumps(args)
    entry = session.scalar(select(FailedJob).where(FailedJob.task == task, FailedJob.args == encoded,
                                                   FailedJob.retried_at.is_(None)).limit(1))
    if entry is None:
        entry = FailedJob(task=task, args=encoded, attempts=0)
        session.add(entry)
    entry.error = error
    entry.attempts += attempts
    entry.failed_at = utcnow()
    session.commit()
    return entry


def list_failed(session: Session, limit: int = LIST_LIMIT) -> list[FailedJob]:
    """The newest first, those started again included (they show when)."""
    return list(session.scalars(select(FailedJob).order_by(FailedJob.failed_at.desc(), FailedJob.id.desc())
                                .limit(limit)))


def count_open(session: Session) -> int:
    """Failed jobs nobody has started again yet."""
    return int(session.scalar(select(func.count()).select_from(FailedJob).where(FailedJob.retried_at.is_(None))))


def existing_photos(session: Session, entries: list[FailedJob]) -> set[int]:
    """Which of the entries' photos still exist (the page links those, and says which are gone)."""
    ids = {entry.photo_id for entry in entries if entry.photo_id is not None}
    if not ids:
        return set()
    return set(session.scalars(select(Photo.id).where(Photo.id.in_(ids))))


def queue_depth(huey: Huey) -> int | None:
    """Jobs waiting in the queue, or None when the queue cannot be asked (Redis down): the page still shows the
    failed list then."""
    try:
        return int(huey.pending_count())
    except Exception as error:  # redis.ConnectionError, sqlite3.OperationalError, ...: all mean "unknown now"
        log.warning("cannot count the jobs in the queue: %s", error)
        return None


def retry(session: Session, jobs: Jobs, actor: Any, failed_id: int) -> FailedJob:
    """Queue the failed job again with the same arguments and mark the entry as started again (audited).

    A photo that no longer exists is refused in words (there is nothing left to do). A photo that reconcile has
    meanwhile marked as failed (too many attempts) is processed again from its original."""
    entry = session.get(FailedJob, failed_id)
    if entry is None:
        raise Refusal("job_not_found", "Diesen gescheiterten Auftrag gibt es nicht (mehr).",
                      "There is no such failed job (any more).", status=404)
    if entry.retried_at is not None:
        raise Refusal("job_already_retried",
                      "Dieser Auftrag wurde schon erneut gestartet. Scheitert er wieder, erscheint er neu in der "
                      "Liste.",
                      "This job has already been started again. If it fails again, it appears in the list anew.",
                      status=409)
    args = entry.arguments
    if entry.photo_id is not None:
        photo = session.get(Photo, entry.photo_id)
        if photo is None:
            raise Refusal("job_photo_gone",
                          f"Das Foto Nr. {entry.photo_id} gibt es nicht mehr (es wurde gelöscht). Es gibt nichts "
                          "mehr zu verarbeiten; der Eintrag bleibt nur zur Information stehen.",
                          f"Photo no. {entry.photo_id} no longer exists (it was deleted). There is nothing left to "
                          "process; the entry stays only for the record.", status=409)
        if photo.status == PhotoStatus.FAILED:
            args = [photo.id, True]  # remake: the job skips photos that are no longer 'processing'
    # Marked first, then queued: with the embedded queue the job may start at once in another session, and it
    # must not find (and update) this entry as still waiting.
    entry.retried_at = utcnow()
    session.add(AuditEvent(action="job.retried", actor_id=getattr(actor, "id", None), photo_id=entry.photo_id,
                           subject="job", subject_id=entry.id, detail={"task": entry.task, "args": args}))
    session.commit()
    try:
        jobs.enqueue_again(entry.task, args)
    except Exception as error:  # the queue is down (Redis unreachable): nothing was queued, undo the mark
        log.warning("cannot queue the failed job %s again: %s", entry.id, error)
        entry.retried_at = None
        session.add(AuditEvent(action="job.retry_failed", actor_id=getattr(actor, "id", None),
                               photo_id=entry.photo_id, subject="job", subject_id=entry.id,
                               detail={"error": describe_error(error)}))
        session.commit()
        raise Unavailable("queue_unavailable",
                          "Die Auftragswarteschlange ist gerade nicht erreichbar. Der Auftrag wurde nicht neu "
                          "gestartet. Bitte versuchen Sie es in einer Minute noch einmal.",
                          "The job queue cannot be reached right now. The job was not started again. Please try "
                          "again in a minute.") from error
    return entry
