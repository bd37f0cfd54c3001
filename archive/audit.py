"""The audit log: one function writes it, a few read it. Nothing updates or deletes an entry (the database
refuses it too, by triggers in migration 0003)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from .models import AuditEvent, User


def plain(value: Any) -> Any:
    """A value as it is kept in the log's JSON: enums by value, dates as ISO text."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return [plain(item) for item in value]
    return value


def record(session: Session, action: str, *, actor: User | None = None, photo_id: int | None = None,
           subject: str | None = None, subject_id: int | None = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None, **detail: Any) -> AuditEvent:
    """Adds an entry to the caller's transaction: it is kept exactly when the change it describes is."""
    payload = {name: plain(value) for name, value in detail.items()}
    if before is not None:
        payload["before"] = {name: plain(value) for name, value in before.items()}
    if after is not None:
        payload["after"] = {name: plain(value) for name, value in after.items()}
    event = AuditEvent(action=action, actor_id=actor.id if actor is not None else None, photo_id=photo_id,
                       subject=subject, subject_id=subject_id, detail=payload)
    session.add(event)
    return event


def changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, as (before, after)."""
    changed = [name for name in new if plain(old.get(name)) != plain(new[name])]
    return {name: old.get(name) for name in changed}, {name: new[name] for name in changed}


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    page: int
    pages: int


def read(session: Session, *, photo_id: int | None = None, action: str | None = None, page: int = 1,
         per_page: int = 50) -> AuditPage:
    """Newest first, for one photo or the whole archive."""
    query = select(AuditEvent)
    if photo_id is not None:
        query = query.where(AuditEvent.photo_id == photo_id)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    events = session.scalars(query.options(selectinload(AuditEvent.actor))
                             .order_by(AuditEvent.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
    return AuditPage(events=list(events), page=page, pages=pages)
