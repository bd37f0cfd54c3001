"""Logging in: password hashing (argon2id), the Flask-Login session, personal API tokens (``Authorization:
Bearer …``), CSRF protection, role checks.

A request carrying a bearer token is the token's person and nobody else's: the cookie session is not looked
at, and no CSRF token is asked for (a browser sends that header across sites only if our own page's script
sets it, and we have none). Every other state-changing request needs the CSRF token of its session.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, Request, Response, abort, current_app, g, jsonify, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .errors import Refusal
from .models import LoginSession, Photo, User, db, utcnow

_hasher = PasswordHasher()

login_manager = LoginManager()
csrf = CSRFProtect()

# Pages where a token does not count: accounts, tokens and passwords are changed in the browser, so that a
# token that leaked from a script cannot make itself new tokens, a password or an admin.
SESSION_ONLY_BLUEPRINTS = frozenset({"account", "admin", "auth"})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when a name is unknown keeps the answer time the same: names do not leak."""
    return _hasher.hash("brucken-no-such-user")


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """New password; ends every other session of this user."""
    user.password_hash = hash_password(password)
    user.must_change_password = False
    user.session_version += 1
    session.commit()


# How often a session's "last seen" is written: often enough to tell devices apart, rarely enough not to write
# on every request.
LAST_SEEN_EVERY = timedelta(minutes=5)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def open_login_session(db_session: Session, user: User, *, user_agent: str = "", address: str = "") -> str:
    """A new login session row for ``user``; returns the secret the session cookie carries."""
    secret = secrets.token_urlsafe(32)
    db_session.add(LoginSession(user_id=user.id, secret_hash=_digest(secret), session_version=user.session_version,
                                user_agent=user_agent[:200], address=address[:64]))
    db_session.commit()
    return secret


def sign_in(user: User) -> None:
    """Logs ``user`` in on this browser: a session row of its own, so that logging out ends it for good.
    Whatever the session held before is dropped, its CSRF token among them: a cookie planted before the login
    (by another site or someone at the same computer) carries nothing its planter knows into the new session."""
    session.clear()
    session["sid"] = open_login_session(db.session, user, user_agent=request.user_agent.string,
                                        address=request.remote_addr or "")
    login_user(user)


def sign_out() -> None:
    """Ends this browser's session here and in the database: a copy of the cookie stops working too."""
    row = current_login_session()
    if row is not None:
        row.ended_at = utcnow()
        db.session.commit()
    logout_user()
    session.pop("sid", None)


def current_login_session() -> LoginSession | None:
    secret = session.get("sid")
    if not secret:
        return None
    return db.session.scalar(select(LoginSession).where(LoginSession.secret_hash == _digest(secret)))


def active_sessions(db_session: Session, user: User) -> list[LoginSession]:
    return list(db_session.scalars(select(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.ended_at.is_(None),
        LoginSession.session_version == user.session_version).order_by(LoginSession.last_seen_at.desc())))


def end_login_session(db_session: Session, user: User, session_id: int) -> bool:
    """Ends one of ``user``'s own sessions (another device); False when there is no such active session."""
    row = db_session.get(LoginSession, session_id)
    if row is None or row.user_id != user.id or row.ended_at is not None:
        return False
    row.ended_at = utcnow()
    audit.record(db_session, "user.session_ended", actor=user, subject="user", subject_id=user.id,
                 device=row.user_agent[:80])
    db_session.commit()
    return True


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Bitte melden Sie sich an. / Please log in."
    # CSRFProtect's own check would also ask token requests for a CSRF token: _bearer_or_csrf checks instead.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.before_request(_bearer_or_csrf)
    app.before_request(_one_time_password_first)
    app.after_request(_no_cookie_for_tokens)


def bearer_token(req: Request | None = None) -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" when the header is there but empty); None: no token."""
    scheme, _, value = (req or request).headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def _token_answer(refusal: Refusal) -> Any:
    headers = {"WWW-Authenticate": 'Bearer realm="brucken", error="invalid_token"'} if refusal.status == 401 else {}
    return jsonify({"error": refusal.as_dict()}), refusal.status, headers


def _bearer_or_csrf() -> Any:
    """Token requests: the token must work, and only where tokens count. Cookie sessions: the CSRF check."""
    if bearer_token() is None:
        if current_app.config["WTF_CSRF_ENABLED"]:
            csrf.protect(apply_exemptions=True)
        return None
    if not current_user.is_authenticated or g.get("token_user_id") != current_user.id:
        return _token_answer(Refusal(
            "token_invalid",
            "Dieser API-Schlüssel gilt nicht (unbekannt, widerrufen oder das Konto ist gesperrt). "
            "Unter „Konto“ können Sie einen neuen anlegen.",
            "This API token is not valid (unknown, revoked, or the account is disabled). "
            "You can create a new one under 'Konto' (account).", status=401))
    if request.blueprint in SESSION_ONLY_BLUEPRINTS:
        return _token_answer(Refusal(
            "token_not_accepted_here",
            "Konten, Passwörter und API-Schlüssel verwalten Sie im Browser, nicht mit einem API-Schlüssel.",
            "Accounts, passwords and API tokens are managed in the browser, not with an API token.", status=403))
    g.csrf_valid = True  # for FlaskForm: this request cannot have been forged by another site
    return None


def _no_cookie_for_tokens(response: Response) -> Response:
    """A script with a token gets no session cookie (a page's CSRF token would otherwise start one)."""
    if bearer_token() is not None:
        session.modified = False
    return response


def _one_time_password_first() -> Any:
    """Someone logged in with a one-time password may do nothing before choosing their own."""
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in ("auth.password", "auth.logout", "static")):
        if g.get("token_user_id") is not None:
            return _token_answer(Refusal(
                "password_change_required",
                "Für dieses Konto muss zuerst im Browser ein neues Passwort gewählt werden.",
                "A new password must first be chosen for this account in the browser.", status=403))
        return redirect(url_for("auth.password"))
    return None


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """The cookie's person, if their session row is still open and of their current session version (a password
    change, "log out everywhere" or disabling the account moves the version on and so ends every session)."""
    if bearer_token() is not None:
        return None  # a token request is the token's person, never the cookie's
    ident, _, version = user_id.partition(":")
    if not ident.isdigit():
        return None
    user = db.session.get(User, int(ident))
    if user is None or str(user.session_version) != version or not user.active:
        return None
    row = current_login_session()
    if row is None or row.user_id != user.id or row.ended_at is not None or row.session_version != user.session_version:
        return None
    if utcnow() - row.last_seen_at > LAST_SEEN_EVERY:
        row.last_seen_at = utcnow()
        db.session.commit()
    return user


@login_manager.request_loader
def _load_user_from_token(req: Request) -> User | None:
    secret = bearer_token(req)
    if not secret:
        return None
    from .accounts import user_for_token

    user = user_for_token(db.session, secret)
    if user is not None:
        g.token_user_id = user.id
    return user


def curators_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """For the curators' and admins' pages: visitors go to the login page (Flask-Login), members get a 403."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not (current_user.is_authenticated and current_user.sees_everything):
            abort(403)
        return view(*args, **kwargs)

    return login_required(checked)


def can_view(user: Any, photo: Photo) -> bool:
    """Who may see a photo's thumbnails and preview."""
    if photo.status == "published":
        return True
    return can_manage(user, photo)


def can_manage(user: Any, photo: Photo) -> bool:
    """The owning association, curators and admins: they see unpublished photos and the original."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.sees_everything or user.association_id == photo.association_id)


def visible_photo_or_404(photo_id: int, *, manage: bool = False) -> Photo:
    """404, not 403, for a photo the caller may not see: its existence must not leak."""
    photo = db.session.get(Photo, photo_id)
    allowed = can_manage if manage else can_view
    if photo is None or not allowed(current_user, photo):
        abort(404)
    return photo
