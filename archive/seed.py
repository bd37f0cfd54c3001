"""What a new installation starts with: the seven associations of the project and one admin."""

from __future__ import annotations

import secrets
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .auth import hash_password
from .models import Association, Role, User


class SeedAssociation(NamedTuple):
    slug: str
    name: str
    partner_city: str
    country: str


ASSOCIATIONS = (
    SeedAssociation("pasadena", "Freundeskreis Ludwigshafen-Pasadena e.V.", "Pasadena", "USA"),
    SeedAssociation("lorient", "Deutsch-Französische Gesellschaft Ludwigshafen/Mannheim e.V.", "Lorient",
                    "Frankreich"),
    SeedAssociation("havering", "Bürgergruppe Havering", "Havering (London)", "Vereinigtes Königreich"),
    SeedAssociation("sumgait", "Freundeskreis Ludwigshafen-Sumgait e.V.", "Sumgait", "Aserbaidschan"),
    SeedAssociation("gaziantep", "Freundeskreis Ludwigshafen-Gaziantep e.V.", "Gaziantep", "Türkei"),
    SeedAssociation("swjahel", "Kindernothilfe Rhein-Neckar für Swjahel e.V.", "Swjahel", "Ukraine"),
    SeedAssociation("ruanda", "Arbeitskreis Ruanda", "Ruanda", "Ruanda (Landespartnerschaft Rheinland-Pfalz)"),
)


def seed_associations(session: Session) -> int:
    """Adds the missing associations; returns how many were added. Safe to run again."""
    existing = set(session.scalars(select(Association.slug)))
    added = 0
    for seed in ASSOCIATIONS:
        if seed.slug not in existing:
            session.add(Association(**seed._asdict()))
            added += 1
    session.commit()
    return added


def ensure_admin(session: Session, username: str = "admin") -> str | None:
    """Creates the first admin with a one-time password and returns it; None when an admin exists."""
    if session.scalar(select(User.id).where(User.role == Role.ADMIN)) is not None:
        return None
    admin = User(username=username, display_name="Administrator", role=Role.ADMIN, password_hash="")
    session.add(admin)
    session.flush()
    audit.record(session, "user.created", subject="user", subject_id=admin.id,
                 after={"username": username, "role": Role.ADMIN}, by="brucken init")
    return one_time_password(session, admin)


def one_time_password(session: Session, user: User) -> str:
    """A new random password that must be replaced at the next login; other sessions end."""
    password = secrets.token_urlsafe(12)
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.session_version = (user.session_version or 0) + 1
    audit.record(session, "user.one_time_password", subject="user", subject_id=user.id,
                 detail_note="a one-time password was set; every session of the person ended")
    session.commit()
    return password
