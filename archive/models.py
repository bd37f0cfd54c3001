"""The database: associations, people, photos and their images, tags, the audit log and the outbox.

The database and the object store are the sources of truth; the search index is derived from these
rows (through the outbox), the staging area is transient.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, ForeignKey, MetaData, String, Text, UniqueConstraint
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so Alembic migrations look the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

# The errors that mean "the database cannot answer right now" (locked, gone, pool exhausted): a 503 and a
# retry, not a bug. Constraint violations are not among them.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Role(enum.StrEnum):
    ADMIN = "admin"
    CURATOR = "curator"
    MEMBER = "member"


class PhotoStatus(enum.StrEnum):
    """Where a photo stands. The curators' lifecycle (issue: workflow) builds on SUBMITTED."""

    PROCESSING = "processing"  # original stored, derivatives not made yet
    SUBMITTED = "submitted"  # processed; waiting for review
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    RETURNED = "returned"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"  # stored, but no image could be made from it


def _enum(kind: type[enum.Enum], length: int = 20) -> Any:
    """Enums stored as their plain string value (readable in SQL, no native ENUM types to migrate)."""
    from sqlalchemy import Enum

    return Enum(kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e],
                validate_strings=True)


class Association(db.Model):
    __tablename__ = "associations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    partner_city: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[User]] = relationship(back_populates="association")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.MEMBER)
    association_id: Mapped[int | None] = mapped_column(ForeignKey("associations.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # A one-time password (set by init or an admin) must be replaced at the first login.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Part of the login session; changing it ends every other session of this user.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    association: Mapped[Association | None] = relationship(back_populates="members")

    @property
    def is_active(self) -> bool:  # Flask-Login asks this
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def sees_everything(self) -> bool:
        return self.role in (Role.ADMIN, Role.CURATOR)


photo_tags = db.Table(
    "photo_tags",
    db.Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    db.Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Photo(db.Model):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id"), index=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[PhotoStatus] = mapped_column(_enum(PhotoStatus), default=PhotoStatus.PROCESSING, index=True)
    processing_error: Mapped[str | None] = mapped_column(Text)
    # How often the processing job has started on this photo: reconcile gives up after a few.
    processing_attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    # The original, byte for byte, under a content key.
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    original_key: Mapped[str] = mapped_column(String(200))
    original_filename: Mapped[str] = mapped_column(String(255), default="")
    format: Mapped[str] = mapped_column(String(10))
    mime_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]

    # Words about the photo: seeded from IPTC/XMP at processing, edited by people later.
    title: Mapped[str] = mapped_column(String(300), default="")
    caption: Mapped[str] = mapped_column(Text, default="")
    credit: Mapped[str] = mapped_column(String(200), default="")
    copyright: Mapped[str] = mapped_column(String(300), default="")

    # Camera metadata as typed columns.
    taken_at: Mapped[datetime | None] = mapped_column(index=True)
    camera_make: Mapped[str | None] = mapped_column(String(100))
    camera_model: Mapped[str | None] = mapped_column(String(100))
    lens: Mapped[str | None] = mapped_column(String(200))
    exposure_time: Mapped[str | None] = mapped_column(String(20))
    f_number: Mapped[float | None]
    focal_length_mm: Mapped[float | None]
    iso: Mapped[int | None]
    gps_lat: Mapped[float | None]
    gps_lon: Mapped[float | None]
    orientation: Mapped[int | None]
    metadata_warnings: Mapped[list[str]] = mapped_column(JSON, default=list)

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[datetime | None]

    association: Mapped[Association] = relationship()
    uploader: Mapped[User | None] = relationship()
    derivatives: Mapped[list[Derivative]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", order_by="Derivative.id"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=photo_tags, order_by="Tag.name")

    def derivative(self, size: str, fmt: str) -> Derivative | None:
        return next((d for d in self.derivatives if d.size == size and d.fmt == fmt), None)

    @property
    def display_title(self) -> str:
        return self.title or self.original_filename or f"Foto {self.id}"

    @property
    def camera(self) -> str | None:
        make, model = self.camera_make or "", self.camera_model or ""
        if model.lower().startswith(make.lower()):
            make = ""  # "Canon Canon EOS 30D" reads badly
        return " ".join(part for part in (make, model) if part) or None


class Derivative(db.Model):
    """One rendition (size × format) of a photo, stored under its own key. Free of all metadata."""

    __tablename__ = "derivatives"
    __table_args__ = (UniqueConstraint("photo_id", "size", "fmt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    size: Mapped[str] = mapped_column(String(20))
    fmt: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(200))
    width: Mapped[int]
    height: Mapped[int]
    size_bytes: Mapped[int]
    etag: Mapped[str] = mapped_column(String(64))

    photo: Mapped[Photo] = relationship(back_populates="derivatives")


class AuditEvent(db.Model):
    """Who did what, when: every change of rights, consent or publication lands here."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    photo_id: Mapped[int | None] = mapped_column(index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboxEvent(db.Model):
    """Ordered changes for derived data (the search index), written in the same transaction as the change."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    topic: Mapped[str] = mapped_column(String(40))
    photo_id: Mapped[int | None] = mapped_column(index=True)
