"""The database: associations, people, photos and their images, tags, the audit log and the outbox.

The database and the object store are the sources of truth; the search index is derived from these
rows (through the outbox), the staging area is transient.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, Date, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy import text as sql_text
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


def parse_id(value: object) -> int | None:
    """A database id from a form or query: plain ASCII digits within range, else None ("²", "-1" and 10**20 are
    not ids, and must not become a 500 on the way to the database)."""
    text = str(value if value is not None else "").strip()
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 15 else None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Role(enum.StrEnum):
    ADMIN = "admin"
    CURATOR = "curator"
    MEMBER = "member"


class PhotoStatus(enum.StrEnum):
    """Where a photo stands. Processing ends in SUBMITTED (or FAILED); from there only
    ``archive.workflow.transition`` moves a photo, along the paths it allows."""

    PROCESSING = "processing"  # original stored, derivatives not made yet
    SUBMITTED = "submitted"  # processed; waiting for review
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    RETURNED = "returned"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"  # stored, but no image could be made from it


class Licence(enum.StrEnum):
    CC_BY = "cc-by-4.0"
    CC_BY_SA = "cc-by-sa-4.0"
    CC0 = "cc0-1.0"
    PROJECT_ONLY = "project-only"  # only for Fotoprojekt Brücken exhibitions and website


class PeopleShown(enum.StrEnum):
    """Identifiable people in the photo, and the legal basis for showing them (KUG §22/23, DSGVO Art. 6)."""

    NONE = "none"
    CONSENT = "consent"  # identifiable, with consent on file (see Consent)
    PUBLIC_EVENT = "public_event"  # identifiable, at a public event (KUG §23), with a curator's justification
    UNKNOWN = "unknown"  # nobody has said yet: not publishable


class ConsentScope(enum.StrEnum):
    WEB = "web"
    EXHIBITION = "exhibition"
    PRINT = "print"


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
    contact: Mapped[str] = mapped_column(String(300), default="", server_default="")
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
    # The key starts with photo_id; the tag pages look up by tag.
    Index("ix_photo_tags_tag_id", "tag_id"),
)


class Tag(db.Model):
    """A word for finding photos. Controlled tags are the curators' vocabulary; the others are free keywords
    (typed by members, or read from the file's IPTC/XMP keywords)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    controlled: Mapped[bool] = mapped_column(default=False, server_default="0")


class Place(db.Model):
    """A place or bridge from the curators' list. Public pages show its name and its coordinates, never a
    photo's own GPS position."""

    __tablename__ = "places"
    __table_args__ = (UniqueConstraint("name", "city"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(120))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def label(self) -> str:
        return f"{self.name}, {self.city}" if self.city and self.city not in self.name else self.name


# Photos waiting for a curator: the condition of the review queue's partial index (migration 0011).
OPEN_PHOTOS_SQL = "status IN ('submitted', 'in_review')"


class Photo(db.Model):
    __tablename__ = "photos"
    # The newest published photos (home page, feed, browse pages), also of one association, read from an index
    # backwards instead of sorting every published row (bench/SCALE_NOTE.md: 93 ms -> under 1 ms at 100 000).
    # The review queue, oldest first, from a partial index of the open photos (57 -> 0.07 ms at 100 000 on
    # PostgreSQL): the queue writes its statuses into the SQL as literals, or no planner could match the condition.
    __table_args__ = (Index("ix_photos_status_changed", "status", "status_changed_at", "id"),
                      Index("ix_photos_status_association_changed", "status", "association_id", "status_changed_at",
                            "id"),
                      Index("ix_photos_open_created", "created_at", "id", sqlite_where=sql_text(OPEN_PHOTOS_SQL),
                            postgresql_where=sql_text(OPEN_PHOTOS_SQL)))

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

    alt_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    # The rights bundle: complete before publication (archive.workflow.publication_gaps).
    licence: Mapped[Licence | None] = mapped_column(_enum(Licence))
    people: Mapped[PeopleShown] = mapped_column(_enum(PeopleShown), default=PeopleShown.UNKNOWN,
                                                server_default=PeopleShown.UNKNOWN.value)
    minors: Mapped[bool | None]  # None: not stated yet
    public_event_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"), index=True)
    # The latest curator decision's reason (returned, rejected, withdrawn), shown to the association.
    status_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Set when the photo is made and at every change of status: never empty, so that "newest first" is the same
    # order on every database and an index can give it (nullable only because SQLite cannot change that in place).
    status_changed_at: Mapped[datetime | None] = mapped_column(default=utcnow)

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
    # Optimistic locking: every UPDATE checks and bumps it, so two changes decided on the same old state (a
    # publication and a consent withdrawal at the same moment) cannot both land: the second gets StaleDataError.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    association: Mapped[Association] = relationship()
    uploader: Mapped[User | None] = relationship()
    derivatives: Mapped[list[Derivative]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", order_by="Derivative.id"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=photo_tags, order_by="Tag.name")
    place: Mapped[Place | None] = relationship()
    translations: Mapped[list[PhotoText]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", order_by="PhotoText.lang"
    )
    consents: Mapped[list[Consent]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", order_by="Consent.id"
    )

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


class PhotoText(db.Model):
    """Title, caption and alt text in a language other than German (German lives on the photo itself)."""

    __tablename__ = "photo_texts"
    __table_args__ = (UniqueConstraint("photo_id", "lang"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(300), default="")
    caption: Mapped[str] = mapped_column(Text, default="")
    alt_text: Mapped[str] = mapped_column(Text, default="")

    photo: Mapped[Photo] = relationship(back_populates="translations")


class Consent(db.Model):
    """Consent on file from a person shown (or their guardian), with what it covers. Withdrawn consents stay
    as a record; only active ones count."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    person: Mapped[str] = mapped_column(String(200))
    by_guardian: Mapped[bool] = mapped_column(default=False)
    given_on: Mapped[date] = mapped_column(Date)
    scope_web: Mapped[bool] = mapped_column(default=False)
    scope_exhibition: Mapped[bool] = mapped_column(default=False)
    scope_print: Mapped[bool] = mapped_column(default=False)
    reference: Mapped[str] = mapped_column(String(300), default="")  # where the signed form is kept
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_reason: Mapped[str] = mapped_column(Text, default="")

    photo: Mapped[Photo] = relationship(back_populates="consents")

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    def covers(self, scope: ConsentScope) -> bool:
        return self.active and self.covers_when_active(scope)

    def covers_when_active(self, scope: ConsentScope) -> bool:
        return bool(getattr(self, f"scope_{scope.value}"))

    @property
    def scopes(self) -> list[ConsentScope]:
        return [scope for scope in ConsentScope if getattr(self, f"scope_{scope.value}")]


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
    """Who did what, when: every change of rights, consent, status, ownership and roles lands here, with the
    values before and after in ``detail``. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    photo_id: Mapped[int | None] = mapped_column(index=True)
    # What else the event is about, when it is not a photo: "user", "association", "place", "tag", "token".
    subject: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[int | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()


class Invitation(db.Model):
    """A link an admin copies to a new person (purpose "invite") or to someone who forgot their password
    ("reset"). Only the token's SHA-256 is stored; the link works once, until it expires."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(10))
    role: Mapped[Role | None] = mapped_column(_enum(Role))
    association_id: Mapped[int | None] = mapped_column(ForeignKey("associations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # whose password a reset sets
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    association: Mapped[Association | None] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])


class ApiToken(db.Model):
    """A personal token for scripts (Authorization: Bearer …). Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in lists, so people can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginSession(db.Model):
    """One login on one device. The signed session cookie carries its secret; only the SHA-256 is stored. Logging
    out ends it here too, so a copied cookie stops working; a new ``session_version`` ends all of a person's."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship()


class LoginFailure(db.Model):
    """Failed logins of the last minutes, counted per name and per address to slow down guessing. Kept in the
    database so that every web process and host counts the same."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_username_at", "username", "at"),
                      Index("ix_login_failures_address_at", "address", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEvent(db.Model):
    """Ordered changes for derived data (the search index), written in the same transaction as the change."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    topic: Mapped[str] = mapped_column(String(40))
    photo_id: Mapped[int | None] = mapped_column(index=True)


class OutboxCursor(db.Model):
    """How far one follower of the outbox has got: each host's search index replica ("index:<host>") and the
    public copies for the CDN ("public-media"). The health page shows each one's lag behind the newest event."""

    __tablename__ = "outbox_cursors"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FailedJob(db.Model):
    """A background job that failed on every try (JOB_RETRIES retries): listed on /admin/jobs, where an admin
    starts it again (``archive.failed_jobs``). A job that keeps failing with the same arguments stays one entry
    until it is started again."""

    __tablename__ = "failed_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(60))  # the Huey task name: "process_photo", "apply_outbox"
    args: Mapped[str] = mapped_column(Text, default="[]")  # the task's positional arguments as a JSON list
    error: Mapped[str] = mapped_column(Text, default="")  # the last error, one short line (no traceback, no secrets)
    attempts: Mapped[int] = mapped_column(default=0)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None]

    @property
    def arguments(self) -> list[Any]:
        import json

        value = json.loads(self.args or "[]")
        return value if isinstance(value, list) else []

    @property
    def photo_id(self) -> int | None:
        """The photo the job was about, if it was about one."""
        arguments = self.arguments
        if self.task == "process_photo" and arguments and isinstance(arguments[0], int):
            return arguments[0]
        return None


# --------------------------------------------------------------------------------------------------------------------
# Selecting for exhibitions: ratings, shortlists, jury rounds, exhibitions and their exports.


class Rating(db.Model):
    """One curator's 1–5 stars for one photo (a curator changes their own rating; the average is shown)."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("photo_id", "curator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    curator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    stars: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


shortlist_photos = db.Table(
    "shortlist_photos",
    db.Column("shortlist_id", ForeignKey("shortlists.id", ondelete="CASCADE"), primary_key=True),
    db.Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    db.Column("added_at", db.DateTime, nullable=False, default=utcnow),
)


class Shortlist(db.Model):
    """A named selection the curators keep ("Brunch 2026 – Kandidaten")."""

    __tablename__ = "shortlists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    photos: Mapped[list[Photo]] = relationship(secondary=shortlist_photos, order_by=shortlist_photos.c.added_at)


class ExhibitionStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Exhibition(db.Model):
    """A show (the Partnerschaftsbrunch, the town hall, the web): an ordered list of photos with captions."""

    __tablename__ = "exhibitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    venue: Mapped[str] = mapped_column(String(300), default="")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    intro: Mapped[str] = mapped_column(Text, default="")  # Markdown; sanitised when shown
    status: Mapped[ExhibitionStatus] = mapped_column(_enum(ExhibitionStatus), default=ExhibitionStatus.DRAFT)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]

    items: Mapped[list[ExhibitionItem]] = relationship(
        back_populates="exhibition", cascade="all, delete-orphan", order_by="ExhibitionItem.position"
    )


class ExhibitionItem(db.Model):
    __tablename__ = "exhibition_items"
    __table_args__ = (UniqueConstraint("exhibition_id", "photo_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    exhibition_id: Mapped[int] = mapped_column(ForeignKey("exhibitions.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    caption: Mapped[str] = mapped_column(Text, default="")  # the exhibition's own caption, if any

    exhibition: Mapped[Exhibition] = relationship(back_populates="items")
    photo: Mapped[Photo] = relationship()


class JuryMode(enum.StrEnum):
    YES_NO = "yes_no"
    STARS = "stars"


class JuryRound(db.Model):
    """A jury round: a fixed pool of photos, jurors, a mode, a deadline; closed by count or score cutoff."""

    __tablename__ = "jury_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    exhibition_id: Mapped[int | None] = mapped_column(ForeignKey("exhibitions.id"), index=True)
    mode: Mapped[JuryMode] = mapped_column(_enum(JuryMode))
    blind: Mapped[bool] = mapped_column(default=True)
    deadline: Mapped[datetime | None]
    pool_source: Mapped[str] = mapped_column(String(300), default="")  # how the pool was made, for people
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    close_rule: Mapped[str | None] = mapped_column(String(10))  # "count" or "cutoff"
    close_value: Mapped[float | None]

    photos: Mapped[list[JuryPhoto]] = relationship(
        back_populates="round", cascade="all, delete-orphan", order_by="JuryPhoto.position"
    )
    jurors: Mapped[list[Juror]] = relationship(back_populates="round", cascade="all, delete-orphan")


class JuryPhoto(db.Model):
    """A photo in a round's pool; ``selected`` is set when the round closes."""

    __tablename__ = "jury_photos"
    __table_args__ = (UniqueConstraint("round_id", "photo_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("jury_rounds.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    selected: Mapped[bool | None]

    round: Mapped[JuryRound] = relationship(back_populates="photos")
    photo: Mapped[Photo] = relationship()


class Juror(db.Model):
    __tablename__ = "jurors"
    __table_args__ = (UniqueConstraint("round_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("jury_rounds.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)

    round: Mapped[JuryRound] = relationship(back_populates="jurors")
    user: Mapped[User] = relationship()


class Vote(db.Model):
    """One juror's vote on one photo of a round: 0/1 (yes/no) or 1–5 stars. Changeable until the round closes."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("round_id", "photo_id", "juror_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("jury_rounds.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    juror_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    value: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ExportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Export(db.Model):
    """A print package (ZIP), a catalogue or a contact sheet (PDF), made by a background job into the object store."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    exhibition_id: Mapped[int] = mapped_column(ForeignKey("exhibitions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # "zip", "catalogue", "contact_sheet"
    language: Mapped[str] = mapped_column(String(5), default="de")
    status: Mapped[ExportStatus] = mapped_column(_enum(ExportStatus), default=ExportStatus.QUEUED)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    key: Mapped[str | None] = mapped_column(String(200))  # where the finished file is in the object store
    size_bytes: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    exhibition: Mapped[Exhibition] = relationship()
