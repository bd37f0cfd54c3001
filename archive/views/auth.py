"""Log in (with the failed-login limit), log out, change the password, accept an invitation, use a reset
link. The work is done in ``archive.accounts``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from .. import accounts
from ..auth import authenticate, sign_in, sign_out
from ..errors import Refusal
from ..errors_web import language
from ..models import Role, db
from ..security import same_site_path
from .account import when

bp = Blueprint("auth", __name__)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"when": when, "role_labels": accounts.ROLE_LABELS}


class LoginForm(FlaskForm):
    username = StringField(_l("Benutzername"), validators=[DataRequired()])
    password = PasswordField(_l("Passwort"), validators=[DataRequired()])


class PasswordForm(FlaskForm):
    # Not asked after a one-time password (the person just typed it); asked otherwise, so that a session
    # left open on a shared computer cannot be used to take the account over.
    current = PasswordField(_l("Bisheriges Passwort"))
    password = PasswordField(_l("Neues Passwort"), validators=[DataRequired(), Length(min=10)])
    confirm = PasswordField(_l("Noch einmal"),
                            validators=[EqualTo("password", message=_l("Die Passwörter stimmen nicht überein."))])


def _safe_next(target: str | None) -> str:
    return same_site_path(target) or url_for("photos.grid")


def client_address() -> str:
    """The visitor's address (behind TRUSTED_PROXIES reverse proxies, ProxyFix has already put the one the
    nearest of them saw here)."""
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        username = accounts.normalize_username(form.username.data)
        address = client_address()
        throttle = accounts.Throttle.from_config(current_app.config)
        try:
            # Before the password is looked at: guessing stays slow, and the answer is the same for every name.
            # The attempt counts as a failure from here on, unless the password turns out right.
            accounts.reserve_login_attempt(db.session, username, address, throttle)
        except accounts.TooManyAttempts as refusal:
            return (render_template("auth/login.html", form=form, refusal=refusal), refusal.status,
                    {"Retry-After": str(refusal.retry_after)})
        user = authenticate(db.session, username, form.password.data or "")
        if user is not None:
            accounts.clear_login_failures(db.session, username)
            sign_in(user)
            if user.must_change_password:
                return redirect(url_for("auth.password"))
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Benutzername oder Passwort ist falsch."), "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Any:
    sign_out()
    return redirect(url_for("gallery.index"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    form = PasswordForm()
    if form.validate_on_submit() and _current_password_ok(form):
        accounts.record_password_change(db.session, current_user, form.password.data or "")
        sign_in(current_user._get_current_object())  # a new session, of the new session version
        flash(_("Ihr Passwort ist geändert. Ihre anderen Sitzungen sind beendet."), "ok")
        return redirect(url_for("photos.grid"))
    return render_template("auth/password.html", form=form), (422 if form.errors else 200)


def _current_password_ok(form: PasswordForm) -> bool:
    """The current password, under the same limit as the login: a session left open is no way to guess it."""
    if current_user.must_change_password:
        return True
    username, address = current_user.username, client_address()
    throttle = accounts.Throttle.from_config(current_app.config)
    try:
        accounts.reserve_login_attempt(db.session, username, address, throttle)
    except accounts.TooManyAttempts as refusal:
        form.current.errors = [refusal.message(language())]
        return False
    if authenticate(db.session, username, form.current.data or "") is None:
        form.current.errors = [_("Das bisherige Passwort stimmt nicht.")]
        return False  # the reserved attempt stays counted as a failure
    accounts.clear_login_failures(db.session, username)
    return True


def _private(response: Any, status: int = 200) -> Response:
    """Pages reached by a secret link: never cached, and the link is not passed on to other pages."""
    response = current_app.make_response((response, status))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


FIELD_OF = {"username_invalid": "username", "username_taken": "username", "password_too_short": "password",
            "password_too_long": "password", "password_mismatch": "confirm", "name_too_long": "display_name"}


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Any:
    """The invited person chooses a username and a password, and is logged in."""
    invitation = accounts.open_link(db.session, token, accounts.INVITE)  # 404/410 page when it does not work
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = request.form
        try:
            user = accounts.accept_invitation(db.session, token, username=form.get("username"),
                                              password=form.get("password"), confirm=form.get("confirm"),
                                              display_name=form.get("display_name"))
        except Refusal as refusal:
            if refusal.code not in FIELD_OF:
                raise
            errors[FIELD_OF[refusal.code]] = refusal.message(language())
            status = refusal.status
        else:
            sign_in(user)
            flash(_("Willkommen, %(name)s! Ihr Konto ist eingerichtet.", name=user.display_name or user.username),
                  "ok")
            return redirect(url_for("upload.form") if user.role == Role.MEMBER else url_for("photos.grid"))
    return _private(render_template("auth/invite.html", invitation=invitation, errors=errors,
                                    values=request.form), status)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    """Someone who forgot their password sets a new one with the link an admin gave them."""
    invitation = accounts.open_link(db.session, token, accounts.RESET)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            user = accounts.use_reset_link(db.session, token, password=request.form.get("password"),
                                           confirm=request.form.get("confirm"))
        except Refusal as refusal:
            if refusal.code not in FIELD_OF:
                raise
            errors[FIELD_OF[refusal.code]] = refusal.message(language())
            status = refusal.status
        else:
            sign_in(user)
            flash(_("Ihr neues Passwort gilt. Alle anderen Sitzungen sind beendet."), "ok")
            return redirect(url_for("photos.grid"))
    return _private(render_template("auth/reset.html", invitation=invitation, errors=errors), status)
