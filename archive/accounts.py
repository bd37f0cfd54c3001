"""Accounts: invitation and reset links, personal API tokens, the login limit, and the admins' changes to
people and associations.

Every change is written to the audit log in the same transaction; the functions commit. Views and commands
call these and stay thin. ``actor`` is the person acting; ``None`` means the command line (someone with
access to the server), which may do what an admin may.

Links and tokens are random secrets shown once; only their SHA-256 is stored, so a copy of the database
opens no account.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from . import audit
from .auth import hash_password, set_password
from .errors import Refusal
from .models import (
    ApiToken,
    Association,
    AuditEvent,
    Invitation,
    LoginFailure,
    OutboxEvent,
    Photo,
    Role,
    User,
    parse_id,
    utcnow,
)
from .text import clean_text

TOKEN_PREFIX = "brk_"
INVITE, RESET = "invite", "reset"
MIN_PASSWORD = 10
MAX_PASSWORD = 1000  # hashing a megabyte on every login attempt would be an easy way to tire the server
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
# Lazy: translated where a page shows them, never stored.
ROLE_LABELS = {Role.ADMIN: _l("Admin"), Role.CURATOR: _l("Kurator:in"), Role.MEMBER: _l("Mitglied")}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------------------------
# Who may do what


def forbidden() -> Refusal:
    return Refusal("not_allowed", "Dafür fehlt Ihnen die Berechtigung.", "You are not allowed to do this.",
                   status=403)


def is_admin(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "active", False)
                and getattr(user, "role", None) == Role.ADMIN)


def _require_admin(actor: User | None) -> None:
    if actor is not None and not is_admin(actor):
        raise forbidden()


# --------------------------------------------------------------------------------------------------------------------
# Checking what people type


def parse_role(value: Role | str | None) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Refusal("role_unknown", "Bitte wählen Sie eine Rolle: Admin, Kurator:in oder Mitglied.",
                      "Please choose a role: admin, curator or member.") from None


def normalize_username(value: str | None) -> str:
    return (value or "").strip().lower()


def check_username(session: Session, value: str | None) -> str:
    username = normalize_username(value)
    if not USERNAME.fullmatch(username):
        raise Refusal("username_invalid",
                      "Der Benutzername braucht 2 bis 40 Zeichen: Kleinbuchstaben a–z, Ziffern, Punkt, Binde- oder "
                      "Unterstrich, am Anfang ein Buchstabe oder eine Ziffer (zum Beispiel „anna.schmidt“).",
                      "The username needs 2 to 40 characters: lowercase letters a-z, digits, dot, hyphen or "
                      "underscore, starting with a letter or digit (for example 'anna.schmidt').")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise _username_taken()
    return username


def _username_taken() -> Refusal:
    return Refusal("username_taken", "Diesen Benutzernamen gibt es schon. Bitte wählen Sie einen anderen.",
                   "This username is taken. Please choose another one.", status=409)


def check_password(password: str | None, confirm: str | None = None) -> str:
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise Refusal("password_too_short",
                      f"Das Passwort ist zu kurz. Bitte wählen Sie mindestens {MIN_PASSWORD} Zeichen; "
                      "ein Satz aus mehreren Wörtern lässt sich gut merken.",
                      f"The password is too short. Please choose at least {MIN_PASSWORD} characters; "
                      "a sentence of several words is easy to remember.")
    if len(password) > MAX_PASSWORD:
        raise Refusal("password_too_long", f"Das Passwort ist zu lang (höchstens {MAX_PASSWORD} Zeichen).",
                      f"The password is too long (at most {MAX_PASSWORD} characters).")
    if confirm is not None and confirm != password:
        raise Refusal("password_mismatch", "Die beiden Passwörter stimmen nicht überein. Bitte tippen Sie es "
                      "noch einmal zweimal gleich.", "The two passwords differ. Please type the same one twice.")
    return password


def _association_for(session: Session, role: Role, association_id: int | str | None) -> Association | None:
    """Members belong to one association; curators and admins work for all of them and belong to none."""
    if role != Role.MEMBER:
        return None
    association = None
    if association_id not in (None, ""):
        ident = parse_id(association_id)
        association = session.get(Association, ident) if ident is not None else None
    if association is None:
        raise Refusal("association_missing", "Ein Mitglied gehört zu einem Verein: bitte wählen Sie ihn aus.",
                      "A member belongs to an association: please choose it.")
    return association


def _limited(value: str | None, field_de: str, field_en: str, limit: int, *, required: bool = False) -> str:
    text = clean_text(value)
    if required and not text:
        raise Refusal(f"{field_en.replace(' ', '_')}_missing", f"Bitte geben Sie {field_de} an.",
                      f"Please enter the {field_en}.")
    if len(text) > limit:
        raise Refusal(f"{field_en.replace(' ', '_')}_too_long",
                      f"{field_de[0].upper()}{field_de[1:]}: höchstens {limit} Zeichen.",
                      f"The {field_en}: at most {limit} characters.")
    return text


# --------------------------------------------------------------------------------------------------------------------
# Invitation and reset links


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _link_refusal(code: str, status: int, de: str, en: str) -> Refusal:
    return Refusal(code, f"{de} Bitte fragen Sie eine Administratorin oder einen Administrator nach einem neuen Link.",
                   f"{en} Please ask an admin for a new link.", status=status)


def open_link(session: Session, token: str, purpose: str, *, now: datetime | None = None) -> Invitation:
    """The invitation or reset link behind ``token``, if it still works; otherwise a refusal that says why
    (404 unknown, 410 used or expired)."""
    now = now or utcnow()
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == digest(token or ""),
                                                         Invitation.purpose == purpose))
    if invitation is None:
        raise _link_refusal("link_unknown", 404, "Diesen Link kennen wir nicht. Vielleicht wurde er nicht "
                            "vollständig kopiert.", "This link is not known. Perhaps it was not copied completely.")
    if invitation.used_at is not None:
        raise _link_refusal("link_used", 410, "Dieser Link wurde schon benutzt; jeder Link gilt nur einmal.",
                            "This link has been used already; each link works only once.")
    if invitation.expires_at <= now:
        raise _link_refusal("link_expired", 410, "Dieser Link ist abgelaufen.", "This link has expired.")
    if purpose == RESET and (invitation.user is None or not invitation.user.active):
        raise _link_refusal("account_disabled", 410, "Dieses Konto ist gesperrt.", "This account is disabled.")
    if purpose == INVITE and invitation.role == Role.MEMBER and invitation.association_id is None:
        raise _link_refusal("link_expired", 410, "Den Verein dieser Einladung gibt es nicht mehr.",
                            "The association of this invitation no longer exists.")
    return invitation


def _claim(session: Session, invitation: Invitation, now: datetime) -> None:
    """Marks the link used, exactly once even when it is sent twice at the same moment."""
    claimed = session.execute(update(Invitation).where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
                              .values(used_at=now).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise _link_refusal("link_used", 410, "Dieser Link wurde schon benutzt; jeder Link gilt nur einmal.",
                            "This link has been used already; each link works only once.")
    invitation.used_at = now


def create_invitation(session: Session, actor: User | None, role: Role | str | None,
                      association_id: int | str | None = None, *, days: int = 7,
                      now: datetime | None = None) -> tuple[Invitation, str]:
    """A link for a new person; returns the invitation and its secret (to show once)."""
    _require_admin(actor)
    now = now or utcnow()
    role = parse_role(role)
    association = _association_for(session, role, association_id)
    secret = _new_secret()
    invitation = Invitation(token_hash=digest(secret), purpose=INVITE, role=role,
                            association_id=association.id if association else None,
                            created_by_id=actor.id if actor else None, created_at=now,
                            expires_at=now + timedelta(days=days))
    session.add(invitation)
    session.flush()
    audit.record(session, "invitation.created", actor=actor, subject="invitation", subject_id=invitation.id,
                 after={"role": role, "association": association.slug if association else None,
                        "expires_at": invitation.expires_at})
    session.commit()
    return invitation, secret


def accept_invitation(session: Session, token: str, *, username: str | None, password: str | None,
                      confirm: str | None = None, display_name: str | None = "",
                      now: datetime | None = None) -> User:
    """The invited person chooses a name and a password: the account exists from now on."""
    now = now or utcnow()
    invitation = open_link(session, token, INVITE, now=now)
    name = check_username(session, username)
    password = check_password(password, confirm)
    display = _limited(display_name, "den Namen", "name", 200)
    role = invitation.role or Role.MEMBER
    _claim(session, invitation, now)
    user = User(username=name, display_name=display, password_hash=hash_password(password), role=role,
                association_id=invitation.association_id if role == Role.MEMBER else None, created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise _username_taken() from None
    slug = invitation.association.slug if invitation.association else None
    audit.record(session, "invitation.used", actor=user, subject="invitation", subject_id=invitation.id,
                 user_id=user.id)
    audit.record(session, "user.created", actor=user, subject="user", subject_id=user.id,
                 after={"username": name, "role": role, "association": slug, "active": True},
                 invitation_id=invitation.id, invited_by_id=invitation.created_by_id)
    session.commit()
    return user


def withdraw_invitation(session: Session, actor: User | None, invitation_id: int, *,
                        now: datetime | None = None) -> Invitation:
    """An open link stops working at once."""
    _require_admin(actor)
    now = now or utcnow()
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        raise Refusal("invitation_unknown", "Diese Einladung gibt es nicht.", "This invitation does not exist.",
                      status=404)
    if invitation.used_at is None and invitation.expires_at > now:
        before = invitation.expires_at
        invitation.expires_at = now
        audit.record(session, f"{'invitation' if invitation.purpose == INVITE else 'reset_link'}.withdrawn",
                     actor=actor, subject="invitation", subject_id=invitation.id,
                     before={"expires_at": before}, after={"expires_at": now}, user_id=invitation.user_id)
        session.commit()
    return invitation


def open_invitations(session: Session, *, now: datetime | None = None) -> list[Invitation]:
    now = now or utcnow()
    return list(session.scalars(
        select(Invitation).where(Invitation.used_at.is_(None), Invitation.expires_at > now)
        .options(selectinload(Invitation.association), selectinload(Invitation.user))
        .order_by(Invitation.expires_at)))


def create_reset_link(session: Session, actor: User | None, user: User, *, hours: int = 24,
                      now: datetime | None = None) -> tuple[Invitation, str]:
    """A link with which ``user`` sets a new password. Earlier open reset links of that person stop working."""
    _require_admin(actor)
    now = now or utcnow()
    if not user.active:
        raise Refusal("account_disabled", "Dieses Konto ist gesperrt. Bitte geben Sie es zuerst wieder frei.",
                      "This account is disabled. Please enable it first.", status=409)
    _expire_reset_links(session, user, now)
    secret = _new_secret()
    invitation = Invitation(token_hash=digest(secret), purpose=RESET, user_id=user.id,
                            created_by_id=actor.id if actor else None, created_at=now,
                            expires_at=now + timedelta(hours=hours))
    session.add(invitation)
    session.flush()
    audit.record(session, "user.reset_link_created", actor=actor, subject="user", subject_id=user.id,
                 invitation_id=invitation.id, expires_at=invitation.expires_at)
    session.commit()
    return invitation, secret


def _expire_reset_links(session: Session, user: User, now: datetime) -> None:
    session.execute(update(Invitation).where(Invitation.purpose == RESET, Invitation.user_id == user.id,
                                             Invitation.used_at.is_(None), Invitation.expires_at > now)
                    .values(expires_at=now).execution_options(synchronize_session=False))


def use_reset_link(session: Session, token: str, *, password: str | None, confirm: str | None = None,
                   now: datetime | None = None) -> User:
    """Sets the new password; every session of that person ends, their failed logins are forgotten."""
    now = now or utcnow()
    invitation = open_link(session, token, RESET, now=now)
    password = check_password(password, confirm)
    user = invitation.user
    assert user is not None  # open_link refuses reset links without an active person
    _claim(session, invitation, now)
    _expire_reset_links(session, user, now)
    session.execute(delete(LoginFailure).where(LoginFailure.username == user.username))
    audit.record(session, "user.password_reset", actor=user, subject="user", subject_id=user.id,
                 invitation_id=invitation.id)
    revoke_all_tokens(session, user, user, "password reset")
    set_password(session, user, password)  # commits
    return user


def record_password_change(session: Session, user: User, password: str) -> None:
    """The person chose a new password themselves (their other sessions end)."""
    audit.record(session, "user.password_changed", actor=user, subject="user", subject_id=user.id)
    set_password(session, user, password)


# --------------------------------------------------------------------------------------------------------------------
# Personal API tokens


def create_token(session: Session, user: User, name: str | None, *, actor: User | None = None) -> tuple[ApiToken, str]:
    """A token for scripts; returns the row and the token itself (shown once, never again)."""
    if actor is not None and actor.id != user.id:
        _require_admin(actor)
    label = _limited(name, "einen Namen für den Schlüssel", "token name", 100, required=True)
    if not user.active:
        raise Refusal("account_disabled", "Dieses Konto ist gesperrt.", "This account is disabled.", status=409)
    secret = TOKEN_PREFIX + _new_secret()
    token = ApiToken(user_id=user.id, name=label, token_hash=digest(secret), prefix=secret[:12])
    session.add(token)
    session.flush()
    audit.record(session, "token.created", actor=actor, subject="token",
                 subject_id=token.id, user_id=user.id, after={"name": label, "prefix": token.prefix})
    session.commit()
    return token, secret


def user_for_token(session: Session, secret: str, *, now: datetime | None = None) -> User | None:
    """The person a bearer token stands for, or None (unknown, revoked, or the account is disabled)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret))
                           .options(selectinload(ApiToken.user)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = now or utcnow()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now  # at most one write a minute per token
        session.commit()
    return token.user


def tokens_of(session: Session, user: User | None = None) -> list[ApiToken]:
    """Newest first; every token when ``user`` is None (the command line)."""
    query = select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def revoke_token(session: Session, actor: User | None, token_id: int, *, now: datetime | None = None) -> ApiToken:
    """The owner or an admin revokes a token; it stops working at once. Revoking twice changes nothing."""
    token = session.get(ApiToken, token_id)
    if token is None or (actor is not None and token.user_id != actor.id and not is_admin(actor)):
        raise Refusal("token_unknown", "Diesen Schlüssel gibt es nicht (oder nicht für Sie).",
                      "This token does not exist (or not for you).", status=404)
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        audit.record(session, "token.revoked", actor=actor, subject="token", subject_id=token.id,
                     user_id=token.user_id, name=token.name, prefix=token.prefix)
        session.commit()
    return token


def revoke_all_tokens(session: Session, actor: User | None, user: User, why: str) -> int:
    """Every open token of ``user`` stops working (a password reset or a disabled account: the tokens may be in the
    wrong hands too). Adds to the caller's transaction; returns how many."""
    now = utcnow()
    tokens = [t for t in tokens_of(session, user) if t.revoked_at is None]
    for token in tokens:
        token.revoked_at = now
        audit.record(session, "token.revoked", actor=actor, subject="token", subject_id=token.id,
                     user_id=user.id, name=token.name, prefix=token.prefix, why=why)
    return len(tokens)


# --------------------------------------------------------------------------------------------------------------------
# The login limit: counted in the database, so that every web process and host counts the same


@dataclass(frozen=True)
class Throttle:
    window: timedelta = timedelta(minutes=15)
    per_name: int = 10
    per_address: int = 30

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Throttle:
        return cls(window=timedelta(minutes=int(config["LOGIN_WINDOW_MINUTES"])),
                   per_name=int(config["LOGIN_MAX_FAILURES_PER_NAME"]),
                   per_address=int(config["LOGIN_MAX_FAILURES_PER_ADDRESS"]))


class TooManyAttempts(Refusal):
    """Too many failed logins for a name or from an address: try again after ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        de_unit, en_unit = ("Minute", "minute") if minutes == 1 else ("Minuten", "minutes")
        super().__init__(
            "too_many_attempts",
            "Zu viele fehlgeschlagene Anmeldeversuche. Zum Schutz der Konten ist die Anmeldung gerade gesperrt. "
            f"Bitte versuchen Sie es in {minutes} {de_unit} wieder. Passwort vergessen? Eine Administratorin "
            "oder ein Administrator kann Ihnen einen Link zum Zurücksetzen geben.",
            f"Too many failed logins. To protect the accounts, logging in is blocked for now. Please try again in "
            f"{minutes} {en_unit}. Forgot your password? An admin can give you a reset link.",
        )
        self.retry_after = retry_after


def _wait(times: list[datetime], limit: int, window: timedelta, now: datetime) -> int:
    """Seconds until fewer than ``limit`` of these failures (oldest first) are inside the window; 0: none."""
    if limit <= 0 or len(times) < limit:
        return 0
    frees_at = times[len(times) - limit] + window
    return max(1, math.ceil((frees_at - now).total_seconds()))


def _seconds_to_wait(session: Session, username: str, address: str, throttle: Throttle, now: datetime,
                     excluding: int | None = None) -> int:
    """0, or how long the name or the address must wait, counting the window's failures (but ``excluding``)."""
    recent = [LoginFailure.at > now - throttle.window]
    if excluding is not None:
        recent.append(LoginFailure.id != excluding)
    name_times = list(session.scalars(select(LoginFailure.at).where(
        LoginFailure.username == normalize_username(username)[:80], *recent).order_by(LoginFailure.at)))
    address_times = list(session.scalars(select(LoginFailure.at).where(
        LoginFailure.address == address[:64], *recent).order_by(LoginFailure.at)))
    return max(_wait(name_times, throttle.per_name, throttle.window, now),
               _wait(address_times, throttle.per_address, throttle.window, now))


def record_login_failure(session: Session, username: str, address: str, throttle: Throttle, *,
                         now: datetime | None = None) -> int:
    """Writes one failure (and prunes those older than the window); returns its id."""
    now = now or utcnow()
    # Pruning here keeps the table as small as the last window's failures: the delete stays cheap.
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - throttle.window))
    failure = LoginFailure(username=normalize_username(username)[:80], address=address[:64], at=now)
    session.add(failure)
    session.commit()
    return failure.id


def reserve_login_attempt(session: Session, username: str, address: str, throttle: Throttle, *,
                          now: datetime | None = None) -> None:
    """Call before the password is checked. Counts this attempt as a failure first, then refuses (429) when the
    failures before it already used up the name's or the address's limit; a refused attempt is taken back, so
    it does not count. The same for names that exist and names that do not.

    Recording first and counting afterwards, each committed, is what makes the limit exact for attempts that
    arrive at the same moment in different processes: the k-th recorded attempt sees at least k-1 others, so no
    more than the limit ever reach the password. (Checking first and recording after the password let every
    parallel attempt pass the check before any of them was recorded.) A login that succeeds clears the name's
    failures, this attempt among them (``clear_login_failures``); one that fails leaves its row as the record."""
    now = now or utcnow()
    attempt = record_login_failure(session, username, address, throttle, now=now)
    wait = _seconds_to_wait(session, username, address, throttle, now, excluding=attempt)
    if wait:
        session.execute(delete(LoginFailure).where(LoginFailure.id == attempt))
        session.commit()
        raise TooManyAttempts(wait)


def clear_login_failures(session: Session, username: str) -> None:
    """After a successful login the name's failures are forgotten."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == normalize_username(username)[:80]))
    session.commit()


# --------------------------------------------------------------------------------------------------------------------
# People: the admins' changes


def list_people(session: Session) -> list[User]:
    return list(session.scalars(select(User).options(selectinload(User.association)).order_by(User.username)))


def _snapshot(user: User) -> dict[str, Any]:
    return {"role": user.role, "association": user.association.slug if user.association else None,
            "active": user.active, "display_name": user.display_name}


def _other_active_admins(session: Session, user: User) -> int:
    return session.scalar(select(func.count(User.id)).where(User.role == Role.ADMIN, User.active.is_(True),
                                                            User.id != user.id)) or 0


def change_account(session: Session, actor: User | None, user: User, *, role: Role | str | None,
                   association_id: int | str | None, active: bool, display_name: str | None) -> User:
    """An admin sets a person's role, association, name and whether the account works. Disabling ends every
    session of that person (and their tokens stop working). The last active admin stays one."""
    _require_admin(actor)
    new_role = parse_role(role)
    association = _association_for(session, new_role, association_id)
    display = _limited(display_name, "den Namen", "name", 200)
    if (user.role == Role.ADMIN and user.active and (new_role != Role.ADMIN or not active)
            and _other_active_admins(session, user) == 0):
        raise Refusal("last_admin",
                      f"„{user.username}“ ist die letzte aktive Admin-Person. Bitte machen Sie zuerst jemand anderen "
                      "zum Admin; sonst könnte niemand mehr Konten und Vereine verwalten.",
                      f"'{user.username}' is the last active admin. Please make someone else an admin first; "
                      "otherwise nobody could manage accounts and associations any more.", status=409)
    before = _snapshot(user)
    user.role = new_role
    user.association = association
    user.display_name = display
    if user.active and not active:
        user.session_version += 1  # every session of the person ends now
        revoke_all_tokens(session, actor, user, "account disabled")
    user.active = bool(active)
    old, new = audit.changes(before, _snapshot(user))
    if new:
        audit.record(session, "user.changed", actor=actor, subject="user", subject_id=user.id, before=old, after=new)
    session.commit()
    return user


def change_own_name(session: Session, user: User, display_name: str | None) -> User:
    """The one thing people change about themselves here. Role and association are the admins'."""
    display = _limited(display_name, "den Namen", "name", 200)
    if display != user.display_name:
        audit.record(session, "user.changed", actor=user, subject="user", subject_id=user.id,
                     before={"display_name": user.display_name}, after={"display_name": display})
        user.display_name = display
        session.commit()
    return user


def end_sessions(session: Session, actor: User | None, user: User) -> None:
    """Every login session of ``user`` ends (the person's own current one too: log it in again after)."""
    if actor is not None and actor.id != user.id:
        _require_admin(actor)
    user.session_version += 1
    audit.record(session, "user.sessions_ended", actor=actor, subject="user", subject_id=user.id)
    session.commit()


def account_history(session: Session, user: User, limit: int = 50) -> list[AuditEvent]:
    """What happened to an account: its own entries and those of its tokens, newest first."""
    token_ids = select(ApiToken.id).where(ApiToken.user_id == user.id).scalar_subquery()
    return list(session.scalars(
        select(AuditEvent).where(or_((AuditEvent.subject == "user") & (AuditEvent.subject_id == user.id),
                                     (AuditEvent.subject == "token") & AuditEvent.subject_id.in_(token_ids)))
        .options(selectinload(AuditEvent.actor)).order_by(AuditEvent.id.desc()).limit(limit)))


# --------------------------------------------------------------------------------------------------------------------
# Associations


@dataclass(frozen=True)
class AssociationFields:
    name: str | None
    partner_city: str | None
    country: str | None = ""
    contact: str | None = ""

    def checked(self) -> dict[str, str]:
        return {
            "name": _limited(self.name, "den Namen des Vereins", "association name", 200, required=True),
            "partner_city": _limited(self.partner_city, "die Partnerstadt", "partner city", 120, required=True),
            "country": _limited(self.country, "das Land", "country", 120),
            "contact": _limited(self.contact, "den Kontakt", "contact", 300),
        }


def list_associations(session: Session) -> list[Association]:
    return list(session.scalars(select(Association).order_by(Association.name)))


def create_association(session: Session, actor: User | None, slug: str | None,
                       fields: AssociationFields) -> Association:
    _require_admin(actor)
    slug = (slug or "").strip().lower()
    if not SLUG.fullmatch(slug):
        raise Refusal("slug_invalid",
                      "Das Kürzel braucht 2 bis 40 Zeichen: Kleinbuchstaben a–z, Ziffern und Bindestriche "
                      "(zum Beispiel „pasadena“). Es erscheint in Adressen und lässt sich später nicht ändern.",
                      "The short name needs 2 to 40 characters: lowercase letters a-z, digits and hyphens "
                      "(for example 'pasadena'). It appears in addresses and cannot be changed later.")
    if session.scalar(select(Association.id).where(Association.slug == slug)) is not None:
        raise Refusal("slug_taken", "Dieses Kürzel hat schon ein anderer Verein.",
                      "Another association has this short name already.", status=409)
    values = fields.checked()
    association = Association(slug=slug, **values)
    session.add(association)
    session.flush()
    audit.record(session, "association.created", actor=actor, subject="association", subject_id=association.id,
                 after={"slug": slug, **values})
    session.commit()
    return association


def update_association(session: Session, actor: User | None, association: Association,
                       fields: AssociationFields) -> Association:
    """Name and partner city are searchable: a change re-indexes the association's photos (via the outbox)."""
    _require_admin(actor)
    values = fields.checked()
    old, new = audit.changes({name: getattr(association, name) for name in values}, values)
    if not new:
        return association
    for name, value in new.items():
        setattr(association, name, value)
    if {"name", "partner_city"} & new.keys():
        for photo_id in session.scalars(select(Photo.id).where(Photo.association_id == association.id)):
            session.add(OutboxEvent(topic="photo.changed", photo_id=photo_id))
    audit.record(session, "association.changed", actor=actor, subject="association", subject_id=association.id,
                 before=old, after=new)
    session.commit()
    return association
