"""The admins' pages: people, associations, invitation and reset links, and the background jobs that failed.
The work is done in ``archive.accounts`` and ``archive.failed_jobs``; every change lands in the audit log there."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import accounts, failed_jobs
from ..errors import Refusal, Unavailable
from ..models import Association, Role, User, db
from ..services import get_jobs
from .account import when

bp = Blueprint("admin", __name__)


@bp.before_request
@login_required
def _admins_only() -> None:
    if not accounts.is_admin(current_user):
        raise accounts.forbidden()


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"when": when, "role_labels": accounts.ROLE_LABELS, "roles": list(Role)}


def link_for(endpoint: str, secret: str) -> str:
    """The full address to copy: BASE_URL when it is set (the request may have come through a proxy)."""
    base = str(current_app.config.get("BASE_URL") or "")
    if base:
        return base.rstrip("/") + url_for(endpoint, token=secret)[len(request.script_root):]
    return url_for(endpoint, token=secret, _external=True)


def _secret_page(**context: Any) -> Any:
    response = current_app.make_response((render_template("admin/link.html", **context), 201))
    response.headers["Cache-Control"] = "no-store"  # the link is shown on this page once
    return response


def _overview(error: Refusal | None = None, status: int = 200) -> Any:
    return render_template("admin/index.html", people=accounts.list_people(db.session),
                           associations=accounts.list_associations(db.session),
                           invitations=accounts.open_invitations(db.session), error=error,
                           failed_count=failed_jobs.count_open(db.session), values=request.form), status


@bp.get("/admin")
def index() -> Any:
    return _overview()


@bp.post("/admin/invitations")
def invite() -> Any:
    try:
        invitation, secret = accounts.create_invitation(
            db.session, current_user, request.form.get("role"), request.form.get("association_id"),
            days=int(current_app.config["INVITATION_DAYS"]))
    except Refusal as refusal:
        return _overview(refusal, refusal.status)
    return _secret_page(kind="invite", invitation=invitation, link=link_for("auth.accept_invitation", secret))


@bp.post("/admin/invitations/<int:invitation_id>/withdraw")
def withdraw_invitation(invitation_id: int) -> Any:
    accounts.withdraw_invitation(db.session, current_user, invitation_id)
    flash(_("Der Link gilt nicht mehr."), "ok")
    return redirect(url_for("admin.index"))


def _person_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
def person(user_id: int) -> Any:
    user = _person_or_404(user_id)
    error, status = None, 200
    if request.method == "POST":
        form = request.form
        # A field left out keeps its value: a form of another page cannot change what it does not show.
        try:
            accounts.change_account(
                db.session, current_user, user,
                role=form.get("role", user.role),
                association_id=form.get("association_id", user.association_id),
                active=form["active"] == "1" if "active" in form else user.active,
                display_name=form.get("display_name", user.display_name))
        except Refusal as refusal:
            db.session.rollback()
            error, status = refusal, refusal.status
        else:
            flash(_("Das Konto „%(name)s“ ist gespeichert.", name=user.username), "ok")
            if not accounts.is_admin(current_user):  # an admin who just gave up the role
                return redirect(url_for("account.index"))
            return redirect(url_for("admin.person", user_id=user.id))
    return render_template("admin/person.html", person=user, associations=accounts.list_associations(db.session),
                           tokens=accounts.tokens_of(db.session, user),
                           history=accounts.account_history(db.session, user), error=error), status


@bp.post("/admin/users/<int:user_id>/reset-link")
def reset_link(user_id: int) -> Any:
    user = _person_or_404(user_id)
    invitation, secret = accounts.create_reset_link(db.session, current_user, user,
                                                    hours=int(current_app.config["RESET_LINK_HOURS"]))
    return _secret_page(kind="reset", invitation=invitation, person=user,
                        link=link_for("auth.reset_password", secret))


@bp.post("/admin/users/<int:user_id>/sessions")
def end_sessions(user_id: int) -> Any:
    user = _person_or_404(user_id)
    accounts.end_sessions(db.session, current_user, user)
    flash(_("Alle Sitzungen von „%(name)s“ sind beendet.", name=user.username), "ok")
    if user.id == current_user.id:
        return redirect(url_for("auth.login"))
    return redirect(url_for("admin.person", user_id=user.id))


@bp.post("/admin/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Any:
    token = accounts.revoke_token(db.session, current_user, token_id)
    flash(_("Der Schlüssel „%(name)s“ ist widerrufen.", name=token.name), "ok")
    return redirect(url_for("admin.person", user_id=token.user_id))


def _fields() -> accounts.AssociationFields:
    form = request.form
    return accounts.AssociationFields(name=form.get("name"), partner_city=form.get("partner_city"),
                                      country=form.get("country"), contact=form.get("contact"))


@bp.route("/admin/associations/new", methods=["GET", "POST"])
def new_association() -> Any:
    error, status = None, 200
    if request.method == "POST":
        try:
            association = accounts.create_association(db.session, current_user, request.form.get("slug"), _fields())
        except Refusal as refusal:
            error, status = refusal, refusal.status
        else:
            flash(_("Der Verein „%(name)s“ ist angelegt.", name=association.name), "ok")
            return redirect(url_for("admin.index"))
    return render_template("admin/association.html", association=None, values=request.form, error=error), status


@bp.route("/admin/associations/<int:association_id>", methods=["GET", "POST"])
def association(association_id: int) -> Any:
    found = db.session.get(Association, association_id)
    if found is None:
        abort(404)
    error, status = None, 200
    if request.method == "POST":
        try:
            accounts.update_association(db.session, current_user, found, _fields())
        except Refusal as refusal:
            db.session.rollback()
            error, status = refusal, refusal.status
        else:
            get_jobs().outbox_changed()  # the name is searchable: the index follows
            flash(_("Der Verein „%(name)s“ ist gespeichert.", name=found.name), "ok")
            return redirect(url_for("admin.index"))
    values = request.form if request.method == "POST" else {
        "name": found.name, "partner_city": found.partner_city, "country": found.country, "contact": found.contact}
    return render_template("admin/association.html", association=found, values=values, error=error), status


def _jobs_page(error: Refusal | None = None, status: int = 200) -> Any:
    entries = failed_jobs.list_failed(db.session)
    return render_template("admin/jobs.html", entries=entries, pending=failed_jobs.queue_depth(get_jobs().huey),
                           photos=failed_jobs.existing_photos(db.session, entries),
                           open_count=failed_jobs.count_open(db.session), error=error), status


@bp.get("/admin/jobs")
def jobs() -> Any:
    return _jobs_page()


@bp.post("/admin/jobs/<int:failed_id>/retry")
def retry_job(failed_id: int) -> Any:
    try:
        failed_jobs.retry(db.session, get_jobs(), current_user, failed_id)
    except Refusal as refusal:
        db.session.rollback()
        page = _jobs_page(refusal, refusal.status)
        if isinstance(refusal, Unavailable):
            return (*page, {"Retry-After": str(refusal.retry_after)})
        return page
    flash(_("Der Auftrag ist wieder in der Warteschlange."), "ok")
    return redirect(url_for("admin.jobs"))
