"""Log in, log out, replace a one-time password."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..auth import authenticate, set_password
from ..models import db

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("Benutzername / Username", validators=[DataRequired()])
    password = PasswordField("Passwort / Password", validators=[DataRequired()])


class PasswordForm(FlaskForm):
    # Not asked after a one-time password (the person just typed it); asked otherwise, so that a session
    # left open on a shared computer cannot be used to take the account over.
    current = PasswordField("Bisheriges Passwort / Current password")
    password = PasswordField("Neues Passwort / New password", validators=[DataRequired(), Length(min=10)])
    confirm = PasswordField("Noch einmal / Repeat",
                            validators=[EqualTo("password", message="Die Passwörter stimmen nicht überein.")])


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a crafted ?next= must not send people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("photos.grid")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(db.session, form.username.data or "", form.password.data or "")
        if user is not None:
            login_user(user)
            if user.must_change_password:
                return redirect(url_for("auth.password"))
            return redirect(_safe_next(request.args.get("next")))
        flash("Benutzername oder Passwort ist falsch. / Wrong username or password.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Any:
    logout_user()
    return redirect(url_for("gallery.index"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    form = PasswordForm()
    if form.validate_on_submit() and _current_password_ok(form):
        set_password(db.session, current_user, form.password.data or "")
        login_user(current_user._get_current_object())  # the session carries the new session version
        flash("Ihr Passwort ist geändert. / Your password was changed.", "ok")
        return redirect(url_for("photos.grid"))
    return render_template("auth/password.html", form=form), (422 if form.errors else 200)


def _current_password_ok(form: PasswordForm) -> bool:
    if current_user.must_change_password:
        return True
    if authenticate(db.session, current_user.username, form.current.data or "") is None:
        form.current.errors = ["Das bisherige Passwort stimmt nicht. / The current password is wrong."]
        return False
    return True
