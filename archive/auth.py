"""Logging in: password hashing (argon2id), the Flask-Login session, CSRF protection, role checks."""

from __future__ import annotations

import functools
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, abort, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Photo, User, db

_hasher = PasswordHasher()

login_manager = LoginManager()
csrf = CSRFProtect()

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


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Bitte melden Sie sich an. / Please log in."
    csrf.init_app(app)
    app.before_request(_one_time_password_first)


def _one_time_password_first() -> Any:
    """Someone logged in with a one-time password may do nothing before choosing their own."""
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in ("auth.password", "auth.logout", "static")):
        return redirect(url_for("auth.password"))
    return None


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    ident, _, version = user_id.partition(":")
    if not ident.isdigit():
        return None
    user = db.session.get(User, int(ident))
    if user is None or str(user.session_version) != version:
        return None
    return user


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
